// Package testenv gives tests the real services they need (PostgreSQL, Chromium, an S3 server)
// or skips them with a clear message when the machine lacks one. CI sets PARLEY_TEST_STRICT=1,
// which turns every such skip into a failure, so CI can never pass by skipping.
//
// It is imported only by tests.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/parleyhq/parley"
)

// StrictEnv names the variable that makes a missing service fail the test instead of skipping.
const StrictEnv = "PARLEY_TEST_STRICT"

// PostgresEnv names the variable holding the URL of the PostgreSQL database tests may use.
const PostgresEnv = "PARLEY_TEST_POSTGRES_URL"

const defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Missing skips t because a service is missing, or fails it when PARLEY_TEST_STRICT is set.
func Missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv(StrictEnv) != "" {
		t.Fatalf("%s is required (%s is set) but unavailable: %v", what, StrictEnv, err)
	}
	t.Skipf("skipped: no %s (%v); set %s=1 to make this a failure", what, err, StrictEnv)
}

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
)

// PostgresURL returns the base URL of the test database, or skips.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		pgURL = os.Getenv(PostgresEnv)
		if pgURL == "" {
			pgURL = defaultPostgres
		}
		db, err := sql.Open("pgx", pgURL)
		if err != nil {
			pgErr = err
			return
		}
		defer db.Close()
		pgErr = busyRetry(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			return db.PingContext(ctx)
		})
	})
	if pgErr != nil {
		Missing(t, "PostgreSQL at "+pgURL, pgErr)
	}
	return pgURL
}

// PostgresSchema returns a URL whose connections work in a new, empty schema of the test
// database, dropped when the test ends: tests run in parallel without seeing each other. The
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	schema := "t_" + strings.ReplaceAll(parley.NewRandomID(), "-", "")[:20]
	// A connection only while creating and dropping: the server's max_connections is shared by
	// every test running at once, and this one would sit idle for the whole test.
	exec := func(q string) error {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return err
		}
		defer db.Close()
		return busyRetry(func() error { _, err := db.Exec(q); return err })
	}
	if err := exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	// The server the test starts opens a few connections of its own.
	WaitPostgresHeadroom(t, 8)
	t.Cleanup(func() {
		if err := exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	// Names the test process in pg_stat_activity, so who holds the shared server's
	// connections can be seen.
	q.Set("application_name", fmt.Sprintf("parley-test-%d", os.Getpid()))
	u.RawQuery = q.Encode()
	return u.String()
}

// Strict reports whether missing services fail tests.
func Strict() bool { return os.Getenv(StrictEnv) != "" }

// Describe is a one-line summary for test logs.
func Describe() string {
	return fmt.Sprintf("%s=%q %s=%q", StrictEnv, os.Getenv(StrictEnv), PostgresEnv, os.Getenv(PostgresEnv))
}

// WaitPostgresHeadroom waits, for at most a minute, until the test PostgreSQL server has n
// connection slots free. Its max_connections is shared by every test process on the machine;
// a test that needs n connections at once (concurrent requests waiting on one row lock) calls
// this first so it does not fail for connections other processes hold for a moment. After the
// wait it goes on regardless, and the test reports what it sees.
func WaitPostgresHeadroom(t testing.TB, n int) {
	t.Helper()
	db, err := sql.Open("pgx", PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		var free int
		err := db.QueryRowContext(t.Context(), `SELECT current_setting('max_connections')::int -
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')`).Scan(&free)
		if err == nil && free >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("PostgreSQL has %d free connections (%v), %d wanted; going on", free, err, n)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// busyRetry runs fn until it does not fail with "too many clients" (the shared server's
// connections are all taken by other test processes for a moment), for at most a minute.
func busyRetry(fn func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := fn()
		if err == nil || !strings.Contains(err.Error(), "SQLSTATE 53300") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
