package sqltx_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/parleyhq/parley/internal/store/sqlite"
	"github.com/parleyhq/parley/internal/store/sqltx"
)

// TestExclusiveMigration upgrades a database that a process of the older version still serves
// (it holds a partition lease): migration 5, which drops a table that version writes, must wait
// for it to stop, and refuse if it does not, leaving the schema as it was.
func TestExclusiveMigration(t *testing.T) {
	defer sqltx.SetExclusiveWait(time.Second)()
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var exclusive []string
	for _, m := range ms {
		if m.Exclusive {
			exclusive = append(exclusive, m.Name)
		}
	}
	if want := []string{"005_jobs_in_messages.sql", "007_session_num.sql", "008_messages_carry_session_state.sql"}; !slices.Equal(exclusive, want) {
		t.Fatalf("exclusive migrations: %v, want %v", exclusive, want)
	}
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := &sqltx.Dialect{Name: "sqlite"}
	if err := sqltx.Migrate(t.Context(), db, d, ms[:4], nil); err != nil {
		t.Fatal(err)
	}
	lease := func(until time.Time) {
		t.Helper()
		if _, err := db.Exec(`UPDATE partitions SET owner = 'old-node', lease_until = ? WHERE id = 3`, until.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}

	// A process that keeps running: refused after the wait, and nothing of migration 5 is done.
	lease(time.Now().Add(time.Hour))
	start := time.Now()
	err = sqltx.Migrate(t.Context(), db, d, ms, nil)
	if err == nil || !strings.Contains(err.Error(), "stop every parley process") {
		t.Fatalf("Migrate beside a running older process: %v", err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("refused after %v, before the wait was over", waited)
	}
	if v, _ := sqltx.SchemaVersion(t.Context(), db); v != 4 {
		t.Errorf("schema version %d after the refusal, want 4", v)
	}
	if _, err := db.Exec(`SELECT 1 FROM brain_jobs`); err != nil {
		t.Errorf("brain_jobs after the refusal: %v", err)
	}

	// A process that was killed: its lease lapses during the wait, and the migration goes on.
	lease(time.Now().Add(300 * time.Millisecond))
	if err := sqltx.Migrate(t.Context(), db, d, ms, nil); err != nil {
		t.Fatalf("Migrate once the older process's lease lapsed: %v", err)
	}
	if v, _ := sqltx.SchemaVersion(t.Context(), db); v != len(ms) {
		t.Errorf("schema version %d, want %d", v, len(ms))
	}

	// Once applied, the migration never waits again: new processes start beside each other.
	lease(time.Now().Add(time.Hour))
	start = time.Now()
	if err := sqltx.Migrate(t.Context(), db, d, ms, nil); err != nil || time.Since(start) > 500*time.Millisecond {
		t.Errorf("Migrate of a migrated database beside a running process: %v after %v", err, time.Since(start))
	}
}

// TestExclusiveMarker reads the marker on a line of its own, whatever the line ends with, and
// nowhere else.
func TestExclusiveMarker(t *testing.T) {
	fsys := fstest.MapFS{
		"m/001_crlf.sql":   {Data: []byte("-- why\r\n-- parley:exclusive\r\nDROP TABLE x;\r\n")},
		"m/002_plain.sql":  {Data: []byte("-- parley:exclusive\nDROP TABLE y;")},
		"m/003_quoted.sql": {Data: []byte("-- not -- parley:exclusive here\nCREATE TABLE z (a TEXT);")},
		"m/004_none.sql":   {Data: []byte("CREATE TABLE w (a TEXT);")},
	}
	ms, err := sqltx.LoadMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false, false}
	for i, m := range ms {
		if m.Exclusive != want[i] {
			t.Errorf("%s: Exclusive = %v, want %v", m.Name, m.Exclusive, want[i])
		}
	}
}
