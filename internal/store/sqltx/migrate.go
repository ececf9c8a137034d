package sqltx

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the files dir/NNN_name.sql of fsys, in order. Numbers must run 1, 2, 3,
// ... without gaps, so two branches that both add migration 4 cannot both land unnoticed.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	fsys, err := fs.Sub(fsys, dir)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.Name, i+1)
		}
	}
	return ms, nil
}

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`

// Migrate applies the migrations db has not seen, each in its own transaction. lock, when not
// nil, runs first in each transaction to keep concurrent migrators apart (several processes may
// start at once). It refuses a database whose schema is newer than the newest migration known.
func Migrate(ctx context.Context, db *sql.DB, d *Dialect, ms []Migration, lock func(*sql.Tx) error) error {
	// Under the lock too: PostgreSQL processes creating the table at once collide in its
	// catalog, IF NOT EXISTS notwithstanding.
	err := locked(ctx, db, lock, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, createVersionTable)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := locked(ctx, db, lock, func(tx *sql.Tx) error { return apply(ctx, tx, d, m) }); err != nil {
			return err
		}
	}
	return CheckSchema(ctx, db, ms)
}

// locked runs fn in a transaction that first takes lock, when there is one, and commits.
func locked(ctx context.Context, db *sql.DB, lock func(*sql.Tx) error, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if lock != nil {
		if err := lock(tx); err != nil {
			return fmt.Errorf("lock for migrations: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func apply(ctx context.Context, tx *sql.Tx, d *Dialect, m Migration) error {
	var n int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	_, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
		m.Version, m.Name, time.Now().UnixMilli())
	return err
}

// SchemaVersion returns the newest migration applied to db, 0 for a new database.
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		// No table yet: nothing was ever migrated.
		return 0, nil
	}
	return int(v.Int64), nil
}

// CheckSchema returns an error unless db's schema is exactly the newest one this binary knows:
// parley refuses to run on a schema it does not know, older or newer.
func CheckSchema(ctx context.Context, db *sql.DB, ms []Migration) error {
	v, err := SchemaVersion(ctx, db)
	if err != nil {
		return err
	}
	want := ms[len(ms)-1].Version
	switch {
	case v > want:
		return fmt.Errorf("database schema is version %d, newer than this parley knows (%d): upgrade parley", v, want)
	case v < want:
		return fmt.Errorf("database schema is version %d, this parley needs %d: run `parley migrate`", v, want)
	}
	return nil
}
