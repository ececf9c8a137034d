package sqltx_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/store/sqlite"
	"github.com/parleyhq/parley/internal/store/sqltx"
)

// TestJobQueriesUseIndexes holds the queries that find waiting brain jobs to SQLite plans that
// read only what waits: no scan of the messages table or of one of its indexes, which would
// read every message ever stored (the brain worker runs one every two seconds).
func TestJobQueriesUseIndexes(t *testing.T) {
	checkPlans(t, sqltx.JobQueries(3), nil)
}

// TestMessageQueriesUseIndexes holds the reads of a session's messages to messages_session,
// searched by the session's number (migration 7), not to a scan.
func TestMessageQueriesUseIndexes(t *testing.T) {
	checkPlans(t, sqltx.MessageQueries(), func(step string) bool {
		return strings.HasPrefix(step, "SEARCH messages USING INDEX messages_session (session_num=?")
	})
}

// TestSessionQueriesUseIndexes holds the reads of a session, which every request on a session
// not in the writer's cache runs, to index searches: its last message is found through
// messages_session, never by a scan of the session's messages.
func TestSessionQueriesUseIndexes(t *testing.T) {
	checkPlans(t, sqltx.SessionQueries(), func(step string) bool {
		return strings.Contains(step, "USING COVERING INDEX messages_session (session_num=?)")
	})
}

// checkPlans fails for each query whose SQLite plan scans, or, when uses is not nil, has no step
// uses accepts.
func checkPlans(t *testing.T, queries []string, uses func(step string) bool) {
	t.Helper()
	for q, plan := range plans(t, queries) {
		scans := slices.ContainsFunc(plan, func(step string) bool { return strings.HasPrefix(step, "SCAN") })
		if scans || uses != nil && !slices.ContainsFunc(plan, uses) {
			t.Errorf("%s\nplan:\n%s", q, strings.Join(plan, "\n"))
		}
	}
}

// plans returns SQLite's query plan of each query, on the newest schema, a step a line.
func plans(t *testing.T, queries []string) map[string][]string {
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
	all := map[string][]string{}
	for _, q := range queries {
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
		all[q] = plan
	}
	return all
}
