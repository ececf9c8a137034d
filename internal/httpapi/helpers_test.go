package httpapi_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // raw row counts on PostgreSQL
	_ "github.com/mattn/go-sqlite3"    // raw row counts on SQLite

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// epoch is where fake clocks start: a fixed instant with millisecond precision, so timestamps
// in bodies can be predicted exactly.
var epoch = time.UnixMilli(1_780_000_000_000)

// startFake boots a server whose clock moves only when the test says so.
func startFake(t *testing.T, b apptest.Backend) (*apptest.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	return apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Clock: clk}), clk
}

// ptr returns a pointer to v, for the optional fields of admin.IntegrationSpec.
func ptr[T any](v T) *T { return &v }

// path of a session's sub-resource, relative to /v1/custom/{integration_id}.
func sp(sid, rest string) string { return "/sessions/" + sid + rest }

// events returns the outbox events of an integration, oldest first, whatever their delivery
// state.
func events(t testing.TB, srv *apptest.Server, integrationID string) []*parley.Event {
	t.Helper()
	var evs []*parley.Event
	err := srv.Main.DB.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		evs, err = tx.Events(store.EventFilter{IntegrationID: integrationID, Limit: 10_000})
		return err
	})
	if err != nil {
		t.Fatalf("reading the outbox: %v", err)
	}
	slices.Reverse(evs)
	return evs
}

// eventTypes returns the types of evs, in order.
func eventTypes(evs []*parley.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// jobs returns the brain jobs recorded for a session.
func jobs(t testing.TB, srv *apptest.Server, sid string) []*parley.BrainJob {
	t.Helper()
	var js []*parley.BrainJob
	err := srv.Main.DB.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		js, err = tx.PendingJobs(sid)
		return err
	})
	if err != nil {
		t.Fatalf("reading brain jobs: %v", err)
	}
	return js
}

// jobMessages returns the message IDs of a session's brain jobs, in order.
func jobMessages(t testing.TB, srv *apptest.Server, sid string) []string {
	t.Helper()
	var ids []string
	for _, j := range jobs(t, srv, sid) {
		ids = append(ids, j.MessageID)
	}
	return ids
}

// history returns the whole message history of a session through the read extension,
// following the cursor.
func history(t testing.TB, in *apptest.Integration, sid string) []map[string]any {
	t.Helper()
	var all []map[string]any
	after := ""
	for range 1000 {
		q := "?limit=200"
		if after != "" {
			q += "&after=" + after
		}
		var page struct {
			Messages []map[string]any `json:"messages"`
			Next     *string          `json:"next"`
		}
		r := in.Call("GET", sp(sid, "/messages"+q), nil).Expect(t, http.StatusOK)
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatalf("history page: %v\n%s", err, r.Body)
		}
		all = append(all, page.Messages...)
		if page.Next == nil {
			return all
		}
		after = *page.Next
	}
	t.Fatal("history: the cursor never ends")
	return nil
}

// historyIDs returns the IDs of a session's messages, oldest first.
func historyIDs(t testing.TB, in *apptest.Integration, sid string) []string {
	t.Helper()
	var ids []string
	for _, m := range history(t, in, sid) {
		ids = append(ids, m["id"].(string))
	}
	return ids
}

// session returns the session object of GET /sessions/{sid}.
func session(t testing.TB, in *apptest.Integration, sid string) map[string]any {
	t.Helper()
	return in.Call("GET", sp(sid, ""), nil).Expect(t, http.StatusOK).JSON(t)["session"].(map[string]any)
}

// conv is the current conversation of a session as GET shows it.
type conv struct {
	ID, Status, HandledBy string
}

func conversation(t testing.TB, in *apptest.Integration, sid string) conv {
	t.Helper()
	c := session(t, in, sid)["conversation"].(map[string]any)
	return conv{ID: c["id"].(string), Status: c["status"].(string), HandledBy: c["handled_by"].(string)}
}

// rawDBs holds one connection pool per database URL for rowCounts. Pools are not closed: their
// idle connection closes itself a second after the last use, so a server's database (a
// PostgreSQL schema, a SQLite file) can be dropped when its test ends.
var rawDBs sync.Map // database URL -> *sql.DB

// rawDB returns a pool on the database of srv, to read what no API shows.
func rawDB(t testing.TB, srv *apptest.Server) (*sql.DB, string) {
	t.Helper()
	url := srv.Main.Config.DatabaseURL
	driver, dsn, ph := "pgx", url, "$1"
	if path, ok := sqlite.PathFromURL(url); ok {
		driver, dsn, ph = "sqlite3", "file:"+path+"?_query_only=true", "?"
	}
	if db, ok := rawDBs.Load(url); ok {
		return db.(*sql.DB), ph
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	// One connection: the PostgreSQL server is shared (max_connections) and counts are quick.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(time.Second)
	if prev, loaded := rawDBs.LoadOrStore(url, db); loaded {
		db.Close()
		db = prev.(*sql.DB)
	}
	return db, ph
}

// rowCounts counts an integration's rows in every table a request can write, straight from
// the database: "nothing changed" must hold for rows no API shows (a half-made session, a
// stray brain job or idempotency record).
func rowCounts(t testing.TB, srv *apptest.Server, integrationID string) map[string]int {
	t.Helper()
	db, ph := rawDB(t, srv)
	bySession := "session_id IN (SELECT id FROM sessions WHERE integration_id = " + ph + ")"
	byIntegration := "integration_id = " + ph
	counts := map[string]int{}
	for table, where := range map[string]string{
		"sessions": byIntegration, "conversations": byIntegration, "messages": bySession,
		"outbox": byIntegration, "idempotency_keys": byIntegration,
		// Brain jobs live in their messages' rows.
		"messages AS jobs": "job_seq > 0 AND " + bySession,
	} {
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table+" WHERE "+where, integrationID).Scan(&n); err != nil {
			t.Fatalf("counting %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}

// snapshot is everything a request could change for an integration and one of its sessions
// (sid may be ""): the session as GET shows it, its history, the integration's outbox, the
// session's brain jobs and the row counts. Two equal snapshots mean nothing changed.
func snapshot(t testing.TB, srv *apptest.Server, in *apptest.Integration, sid string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "rows: %v\n", rowCounts(t, srv, in.ID))
	for _, e := range events(t, srv, in.ID) {
		fmt.Fprintf(&b, "event %d %s %s\n", e.SessionSeq, e.Type, e.Body)
	}
	if sid != "" {
		s := session(t, in, sid)
		j, _ := json.Marshal(s)
		fmt.Fprintf(&b, "session: %s\n", j)
		h, _ := json.Marshal(history(t, in, sid))
		fmt.Fprintf(&b, "history: %s\n", h)
		fmt.Fprintf(&b, "jobs: %v\n", jobMessages(t, srv, sid))
	}
	return b.String()
}

// unchanged runs do and fails the test if it changed anything snapshot sees.
func unchanged(t testing.TB, srv *apptest.Server, in *apptest.Integration, sid string, do func()) {
	t.Helper()
	before := snapshot(t, srv, in, sid)
	do()
	if after := snapshot(t, srv, in, sid); after != before {
		t.Errorf("the request changed state:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// expectBody checks a success answer: status, Content-Type, exactly the keys named, and a
// request_id that is a fresh UUID equal to the X-Request-Id header.
func expectBody(t testing.TB, r *apptest.Response, status int, keys ...string) map[string]any {
	t.Helper()
	r.Expect(t, status)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	body := r.JSON(t)
	var got []string
	for k := range body {
		got = append(got, k)
	}
	want := append([]string{"request_id"}, keys...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("body keys = %v, want %v; body: %s", got, want, r.Body)
	}
	rid, _ := body["request_id"].(string)
	if _, ok := parley.ParseID(rid); !ok {
		t.Errorf("request_id %q is not a UUID", rid)
	}
	if h := r.Header.Get("X-Request-Id"); h != rid {
		t.Errorf("X-Request-Id %q != request_id %q", h, rid)
	}
	return body
}

// expectError checks an error answer: status, the one error shape (exactly error_code and a
// non-empty error_message), JSON Content-Type and an X-Request-Id.
func expectError(t testing.TB, r *apptest.Response, status int, code string) {
	t.Helper()
	r.ExpectError(t, status, code)
	body := r.JSON(t)
	if len(body) != 2 || body["error_message"] == "" || body["error_message"] == nil {
		t.Errorf("error body is not {error_code, error_message}: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if _, ok := parley.ParseID(r.Header.Get("X-Request-Id")); !ok {
		t.Errorf("X-Request-Id = %q", r.Header.Get("X-Request-Id"))
	}
}

// insertReply stores a message by the brain or a console agent straight through the store:
// neither writes messages through this API yet, and receipts are about their messages.
func insertReply(t testing.TB, srv *apptest.Server, sid, author string, at time.Time) string {
	t.Helper()
	m := &parley.Message{ID: parley.NewID(), SessionID: sid, Author: author, Text: "reply", CreatedAt: at.Truncate(time.Millisecond)}
	if author == parley.AuthorAgent {
		m.Agent = &parley.AgentRef{ID: "agent-1", Name: "Ada"}
	}
	err := srv.Main.DB.Update(t.Context(), func(tx store.Tx) error {
		s, err := tx.Session(sid)
		if err != nil {
			return err
		}
		m.ConversationID = s.ConversationID
		return tx.InsertMessage(m)
	})
	if err != nil {
		t.Fatalf("inserting a %s message: %v", author, err)
	}
	return m.ID
}

// noSpec is the default integration.
var noSpec = admin.IntegrationSpec{}

// nested returns a JSON value of depth n: n-1 objects around an empty object.
func nested(n int) string {
	return strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1)
}

// send makes an inbound call with a raw body, with a Content-Length or (chunked) without one.
// headers are name, value pairs (a value of "-" removes the header); the Content-Type is JSON
// unless they say otherwise.
func send(t testing.TB, srv *apptest.Server, in *apptest.Integration, method, path, body string, chunked bool, headers ...string) *apptest.Response {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: the request goes out chunked
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+"/v1/custom/"+in.ID+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "apikey "+in.Key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "-" {
			req.Header.Del(headers[i]) // "-" leaves the header out
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// jsonEqual reports whether a and b are the same JSON value.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return false
	}
	var x, y any
	if json.Unmarshal(ja, &x) != nil || json.Unmarshal(jb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// decodeJSON decodes b into v or fails the test.
func decodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
