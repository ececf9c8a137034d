package sqltx_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/store/sqlite"
	"github.com/parleyhq/parley/internal/store/sqltx"
)

// TestJobQueriesUseIndexes holds the queries that find waiting brain jobs to SQLite plans that
// read only what waits: no scan of the messages table or of one of its indexes, which would
// read every message ever stored (the brain worker runs one every two seconds).
func TestJobQueriesUseIndexes(t *testing.T) {
	ms, err := sqlite.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqltx.Migrate(t.Context(), db, &sqltx.Dialect{Name: "sqlite"}, ms, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range sqltx.JobQueries(3) {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = 1
		}
		rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") {
				t.Errorf("%s\nplan:\n%s", q, strings.Join(plan, "\n"))
				break
			}
		}
	}
}
