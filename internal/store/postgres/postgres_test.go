package postgres_test

import (
	"database/sql"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/postgres"
	"github.com/parleyhq/parley/internal/store/sqltx"
	"github.com/parleyhq/parley/internal/store/storetest"
	"github.com/parleyhq/parley/internal/testenv"
)

// openURL opens a store on url, closed when the test ends, migrated if asked.
func openURL(t *testing.T, url string, migrate bool) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, 6, slog.New(slog.DiscardHandler))
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

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store { return openURL(t, testenv.PostgresSchema(t), true) },
		OpenPair: func(t *testing.T) (store.Store, store.Store) {
			u := testenv.PostgresSchema(t)
			return openURL(t, u, true), openURL(t, u, false)
		},
		RowLocks: true,
	})
}

// rawDB opens the test schema without the store, to look at it or tamper with it.
func rawDB(t *testing.T, u string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	u := testenv.PostgresSchema(t)
	s := openURL(t, u, false)
	if err := s.CheckSchema(t.Context()); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("CheckSchema of a new schema: err = %v, want a request to migrate", err)
	}
	for i := range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate %d: %v", i+1, err)
		}
	}
	if err := s.CheckSchema(t.Context()); err != nil {
		t.Errorf("CheckSchema after Migrate: %v", err)
	}
	ms, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, u)
	var n, top int
	if err := db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &top); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || top != len(ms) {
		t.Errorf("schema_migrations holds %d rows up to %d after migrating twice, want 1..%d once each", n, top, len(ms))
	}

	// A newer parley migrated the database: this one must refuse it.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future.sql', 0)`, len(ms)+1); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(t.Context()); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("CheckSchema of a newer schema: err = %v", err)
	}
	if err := s.Migrate(t.Context()); err == nil {
		t.Error("Migrate of a newer schema succeeded")
	}
}

// TestMigrateConcurrently starts several processes' migrators on one new schema at once, as a
// deployment of several parley processes does: all must succeed, and migrate once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	u := testenv.PostgresSchema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	for i := range stores {
		stores[i] = openURL(t, u, false)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	var rows int
	if err := rawDB(t, u).QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if ms, _ := postgres.Migrations(); rows != len(ms) {
		t.Errorf("schema_migrations holds %d rows, want %d", rows, len(ms))
	}
}

// TestRescan cuts the connection a store listens on: its watchers must be told to rescan, and it
// must hear other processes' commits again once it has reconnected.
func TestRescan(t *testing.T) {
	t.Parallel()
	u := testenv.PostgresSchema(t)
	a, b := openURL(t, u, true), openURL(t, u, false)
	var mu sync.Mutex
	var changes []*store.Change
	poke := make(chan struct{}, 1)
	b.Watch(func(c *store.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
		select {
		case poke <- struct{}{}:
		default:
		}
	})
	seen := func(ok func(*store.Change) bool) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(changes, ok)
	}
	// hears commits on a until b hears one, or fails after about ten seconds.
	hears := func(what string) {
		t.Helper()
		for range 500 {
			j := &parley.BrainJob{IntegrationID: parley.NewID(), SessionID: parley.NewID(), ConversationID: parley.NewID(),
				SessionSeq: 1}
			if err := a.Update(t.Context(), func(tx store.Tx) error { return storetest.InsertJob(tx, j) }); err != nil {
				t.Fatal(err)
			}
			heard := func(c *store.Change) bool {
				return c.Remote && len(c.Jobs) == 1 && c.Jobs[0].SessionID == j.SessionID
			}
			select {
			case <-poke:
			case <-time.After(20 * time.Millisecond):
			}
			if seen(heard) {
				return
			}
		}
		t.Fatalf("b never heard a's commits %s", what)
	}
	hears("at first")

	schema, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	var killed int
	err = rawDB(t, u).QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "parley_changes_`+schema.Query().Get("search_path")+`"`).Scan(&killed)
	if err != nil || killed == 0 {
		t.Fatalf("terminating the listeners: %d terminated, %v", killed, err)
	}
	timeout := time.After(10 * time.Second)
	for !seen(func(c *store.Change) bool { return c.Rescan && c.Remote }) {
		select {
		case <-poke:
		case <-timeout:
			t.Fatal("b's watchers were not told to rescan after its listener was cut")
		}
	}
	hears("after reconnecting")
}

// TestUpgrades migrates databases older parleys left: brain work waiting at schema 4,
// messages of two sessions at schema 6.
func TestUpgrades(t *testing.T) {
	t.Parallel()
	storetest.Upgrades(t, atSchema)
}

// atSchema is this store's storetest.AtSchema, on a PostgreSQL schema of its own.
func atSchema(t *testing.T, version int) (*sql.DB, func() store.Store) {
	t.Helper()
	u := testenv.PostgresSchema(t)
	ms, err := postgres.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, u)
	if err := sqltx.Migrate(t.Context(), db, &sqltx.Dialect{Name: "postgres", Numbered: true}, ms[:version], nil); err != nil {
		t.Fatal(err)
	}
	return db, func() store.Store { return openURL(t, u, true) }
}
