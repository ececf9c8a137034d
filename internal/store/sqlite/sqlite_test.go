package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
	"github.com/parleyhq/parley/internal/store/sqltx"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// openPath opens the store at path, closed when the test ends, migrated if asked.
func openPath(t *testing.T, path string, migrate bool) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if migrate {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func open(t *testing.T) store.Store {
	return openPath(t, filepath.Join(t.TempDir(), "parley.db"), true)
}

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{Open: open})
}

// rawDB opens the database file without the store, to look at it or tamper with it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "parley.db")
	s := openPath(t, path, false)
	if err := s.CheckSchema(t.Context()); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("CheckSchema of a new database: err = %v, want a request to migrate", err)
	}
	for i := range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate %d: %v", i+1, err)
		}
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Errorf("CheckSchema after Migrate: %v", err)
	}
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if got := versions(t, db); len(got) != len(ms) || got[len(got)-1] != len(ms) {
		t.Errorf("schema_migrations holds %v after migrating twice, want 1..%d once each", got, len(ms))
	}

	// A newer parley migrated the database: this one must refuse it.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future.sql', 0)`, len(ms)+1); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(t.Context()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("CheckSchema of a newer schema: err = %v", err)
	}
	if err := s.Migrate(t.Context()); err == nil {
		t.Error("Migrate of a newer schema succeeded")
	}
}

// TestOddPath checks the path is a file name, not part of a URI: '?' and '#' must not start a
// query or a fragment.
func TestOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a dir with spaces & ümlauts")
	path := filepath.Join(dir, "db #1?mode=ro&x=%41.db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openPath(t, path, true)
	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://x", CreatedAt: time.UnixMilli(1)}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(tx store.Tx) error { return tx.CreateIntegration(in) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at its path: %v", err)
	}
	s = openPath(t, path, false)
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.View(t.Context(), func(tx store.ReadTx) error { _, err := tx.Integration(in.ID); return err }); err != nil {
		t.Errorf("reopened: %v", err)
	}
}

// TestCloseWhileUpdating checks that Updates racing Close either commit, and are then stored, or
// fail: none hangs and none is lost after reporting success.
func TestCloseWhileUpdating(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "parley.db")
	s := openPath(t, path, true)
	const n = 300
	ins := make([]*parley.Integration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		in := &parley.Integration{ID: parley.NewID(), Name: fmt.Sprint(i), WebhookURL: "http://x", CreatedAt: time.UnixMilli(1)}
		if err := in.Normalize(); err != nil {
			t.Fatal(err)
		}
		ins[i] = in
		wg.Go(func() {
			<-start
			errs[i] = s.Update(t.Context(), func(tx store.Tx) error { return tx.CreateIntegration(in) })
		})
	}
	close(start)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openPath(t, path, false)
	stored := 0
	for i, in := range ins {
		err := s.View(t.Context(), func(tx store.ReadTx) error { _, err := tx.Integration(in.ID); return err })
		switch {
		case errs[i] == nil && err != nil:
			t.Errorf("update %d reported success but is not stored: %v", i, err)
		case errs[i] != nil && !parley.IsCode(err, parley.ENotFound):
			t.Errorf("update %d failed (%v) but reading it gives %v", i, errs[i], err)
		case errs[i] == nil:
			stored++
		}
	}
	t.Logf("%d of %d updates committed before Close", stored, n)
}

// TestUpgrades migrates databases older parleys left: brain work waiting at schema 4,
// messages of two sessions at schema 6.
func TestUpgrades(t *testing.T) {
	t.Parallel()
	storetest.Upgrades(t, atSchema)
}

// atSchema is this store's storetest.AtSchema, on a SQLite file of its own.
func atSchema(t *testing.T, version int) (*sql.DB, func() store.Store) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "parley.db")
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	if err := sqltx.Migrate(t.Context(), db, &sqltx.Dialect{Name: "sqlite"}, ms[:version], nil); err != nil {
		t.Fatal(err)
	}
	return db, func() store.Store { return openPath(t, path, true) }
}

// TestMessagesCarrySessionState: user messages in a brain-handled conversation leave their
// session's row as it was (the saving UpdateSessionWithMessage is for), the session still
// reads back as they changed it, and after a restart, with nothing cached, the next message's
// job follows the last one's.
func TestMessagesCarrySessionState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "parley.db")
	s := openPath(t, path, true)
	engine := chat.New(nil)
	in := &parley.Integration{ID: parley.NewID(), Name: "t", WebhookURL: "http://127.0.0.1:9/hook",
		CreatedAt: engine.Now(), UpdatedAt: engine.Now()}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	var sid string
	update := func(s store.Store, fn func(tx store.Tx) error) {
		t.Helper()
		if err := s.Update(t.Context(), fn); err != nil {
			t.Fatal(err)
		}
	}
	update(s, func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		sess, err := engine.CreateSession(tx, in, chat.NewSession{})
		sid = sess.ID
		return err
	})
	post := func(s store.Store) {
		t.Helper()
		update(s, func(tx store.Tx) error {
			_, err := engine.PostUserMessage(tx, in, sid, chat.UserMessage{Text: "hi"})
			return err
		})
	}
	post(s)
	post(s)
	third := engine.Now()
	post(s)
	var rowJobSeq int64
	if err := rawDB(t, path).QueryRow(`SELECT job_seq FROM sessions WHERE id = ?`, sid).Scan(&rowJobSeq); err != nil {
		t.Fatal(err)
	}
	if rowJobSeq >= 3 {
		t.Errorf("the session's row has job_seq %d after 3 messages: it was rewritten", rowJobSeq)
	}
	var sess *parley.Session
	if err := s.View(t.Context(), func(tx store.ReadTx) (err error) { sess, err = tx.Session(sid); return err }); err != nil {
		t.Fatal(err)
	}
	if sess.JobSeq != 3 || sess.LastActivityAt.Before(third) || !sess.ExpiresAt.Equal(sess.LastActivityAt.Add(time.Duration(in.SessionTimeout)*time.Second)) {
		t.Errorf("session after 3 messages: job seq %d, active %v, expires %v", sess.JobSeq, sess.LastActivityAt, sess.ExpiresAt)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openPath(t, path, false)
	// A shorter timeout does not move the deadline earlier (it only grows), and the writer, which
	// caches the session, sees what a reader sees.
	in.SessionTimeout = parley.MinSessionTimeout
	post(s)
	var after *parley.Session
	if err := s.View(t.Context(), func(tx store.ReadTx) (err error) { after, err = tx.Session(sid); return err }); err != nil {
		t.Fatal(err)
	}
	if !after.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Errorf("deadline after a message under a shorter timeout: %v, want %v", after.ExpiresAt, sess.ExpiresAt)
	}
	update(s, func(tx store.Tx) error {
		locked, err := tx.LockSession(sid)
		if err == nil && (!locked.ExpiresAt.Equal(after.ExpiresAt) || locked.JobSeq != after.JobSeq) {
			t.Errorf("the writer sees deadline %v and job seq %d, a reader %v and %d",
				locked.ExpiresAt, locked.JobSeq, after.ExpiresAt, after.JobSeq)
		}
		return err
	})
	var jobs []*parley.BrainJob
	if err := s.View(t.Context(), func(tx store.ReadTx) (err error) { jobs, err = tx.PendingJobs(sid); return err }); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, j := range jobs {
		seqs = append(seqs, j.SessionSeq)
	}
	if !slices.Equal(seqs, []int64{1, 2, 3, 4}) {
		t.Errorf("jobs' numbers after a restart: %v, want [1 2 3 4]", seqs)
	}
}
