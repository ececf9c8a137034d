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
	// Exclusive marks a migration older processes cannot live through: it drops or changes
	// what their code uses. Its file says so on a line of its own, "-- parley:exclusive". It
	// runs only once no process holds a partition lease, that is once every parley process of
	// an older version has stopped (see waitAlone).
	Exclusive bool
}

// exclusiveMarker is the line that makes a migration Exclusive.
const exclusiveMarker = "-- parley:exclusive"

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
		exclusive := slices.ContainsFunc(strings.Split(string(b), "\n"), func(line string) bool {
			return strings.TrimSpace(line) == exclusiveMarker // whatever the line ends with
		})
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b), Exclusive: exclusive})
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
		if m.Exclusive {
			if err := waitAlone(ctx, db, d, m); err != nil {
				return err
			}
		}
		if err := locked(ctx, db, lock, func(tx *sql.Tx) error { return apply(ctx, tx, d, m) }); err != nil {
			return err
		}
	}
	return CheckSchema(ctx, db, ms)
}

// exclusiveWait is how long waitAlone waits for leases to end: a killed process's leases lapse
// within the lease TTL (5 s), a stopped one's at once.
var exclusiveWait = 12 * time.Second

// waitAlone returns once no process holds a partition lease, unless m is applied already, and
// fails if leases are still held after exclusiveWait. Every serving parley process holds leases,
// and a new one takes them only after migrating, so live leases mean processes of an older
// version, which m would break. It waits outside any transaction: on SQLite a write lock held
// here would stop those processes renewing their leases, and so hide them.
func waitAlone(ctx context.Context, db *sql.DB, d *Dialect, m Migration) error {
	deadline := time.Now().Add(exclusiveWait)
	for {
		var applied, live int
		err := db.QueryRowContext(ctx, d.rebind(`SELECT (SELECT COUNT(*) FROM schema_migrations WHERE version = ?),
			(SELECT COUNT(*) FROM partitions WHERE owner <> '' AND lease_until >= ?)`), m.Version, time.Now().UnixMilli()).Scan(&applied, &live)
		switch {
		case err != nil:
			return fmt.Errorf("migration %s: looking for running processes: %w", m.Name, err)
		case applied > 0 || live == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("migration %s changes tables that running parley processes of an older version use, "+
				"and %d partition leases are held: stop every parley process using this database, then start this "+
				"version or run `parley migrate`", m.Name, live)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
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
