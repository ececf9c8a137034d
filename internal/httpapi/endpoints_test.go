package httpapi_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// endpoint is one inbound call on a session, with a body that is valid for it.
type endpoint struct {
	name   string
	method string
	path   string // after /sessions/{sid}
	body   any
	status int      // on success
	keys   []string // of the success body, besides request_id
}

// sessionEndpoints are the calls on an existing session (SPEC §2), files aside.
func sessionEndpoints() []endpoint {
	return []endpoint{
		{"context", "PATCH", "/context", map[string]any{"plan": "gold"}, 200, []string{"context"}},
		{"message", "POST", "/messages", map[string]any{"input": map[string]any{"text": "hi"}}, 202, []string{"message_id"}},
		{"agent message", "POST", "/messages/agent", map[string]any{"input": map[string]any{"text": "hi"}, "agent": map[string]any{"agent_id": "ext-7"}}, 202, []string{"message_id"}},
		{"read", "POST", "/messages/read", map[string]any{"timestamp": epoch.UnixMilli()}, 200, []string{"updated"}},
		{"delivered", "POST", "/messages/delivered", map[string]any{"message_ids": []string{parley.NewID()}}, 200, []string{"updated"}},
		{"conversation close", "POST", "/conversation/close", nil, 200, nil},
		{"conversation reopen", "POST", "/conversation/reopen", nil, 200, nil},
		{"handover", "POST", "/handover", nil, 200, nil},
		{"close", "POST", "/close", nil, 200, nil},
	}
}

// readEndpoints are the read extensions.
func readEndpoints() []endpoint {
	return []endpoint{
		{"get session", "GET", "", nil, 200, []string{"session"}},
		{"history", "GET", "/messages", nil, 200, []string{"messages", "next"}},
	}
}

// TestEndpointsSucceed calls every inbound endpoint once on a fresh session and checks the
// status and the exact keys of the body, with a request_id equal to X-Request-Id.
func TestEndpointsSucceed(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		t.Run("create session", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			seen := map[string]bool{}
			for _, body := range []any{nil, "", map[string]any{}, map[string]any{"external_session_id": "e", "channel_user_id": "u", "context": map[string]any{"x": 1}}} {
				r := in.Call("POST", "/sessions", body)
				got := expectBody(t, r, http.StatusCreated, "session_id", "context")
				if rid := got["request_id"].(string); seen[rid] {
					t.Errorf("request_id %s answered twice", rid)
				}
				seen[got["request_id"].(string)] = true
				if _, ok := parley.ParseID(got["session_id"].(string)); !ok {
					t.Errorf("session_id %v is not a UUID", got["session_id"])
				}
				user := got["context"].(map[string]any)["user"].(map[string]any)
				if _, ok := parley.ParseID(user["user_id"].(string)); !ok {
					t.Errorf("context.user.user_id %v is not a UUID", user["user_id"])
				}
			}
		})
		for _, ep := range append(sessionEndpoints(), readEndpoints()...) {
			t.Run(ep.name, func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				expectBody(t, in.Call(ep.method, sp(sid, ep.path), ep.body), ep.status, ep.keys...)
			})
		}
		t.Run("files", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			expectBody(t, in.Call("POST", sp(sid, "/files/upload-url"), map[string]any{"filename": "a.png", "content_type": "image/png"}),
				http.StatusOK, "upload_url", "file_id") // expectBody adds request_id
			expectError(t, in.Call("POST", sp(sid, "/files/download-url"), map[string]any{"file_id": parley.NewID()}),
				http.StatusNotFound, parley.EFileNotFound)
		})
	})
}

// TestEndpointsRefuseSessions checks the 404 row of the error table on every call: a session
// that does not exist, a malformed ID, another integration's session and an ended one. The
// mutating calls refuse all four; the read extensions still show the ended session.
func TestEndpointsRefuseSessions(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		type target struct {
			name string
			sid  func(t *testing.T, in *apptest.Integration) string
			// readable: the read extensions answer 200 for it
			readable bool
		}
		targets := []target{
			{"unknown", func(*testing.T, *apptest.Integration) string { return parley.NewID() }, false},
			{"malformed", func(*testing.T, *apptest.Integration) string { return "not-a-uuid" }, false},
			{"braced", func(*testing.T, *apptest.Integration) string { return "{" + parley.NewID() + "}" }, false},
			{"too long", func(*testing.T, *apptest.Integration) string { return parley.NewID() + "0" }, false},
			{"other integration", func(t *testing.T, _ *apptest.Integration) string {
				return srv.NewIntegration(t, noSpec).NewSession()
			}, false},
			{"closed", func(t *testing.T, in *apptest.Integration) string {
				sid := in.NewSession()
				in.Call("POST", sp(sid, "/close"), nil).Expect(t, http.StatusOK)
				return sid
			}, true},
		}
		for _, tg := range targets {
			for _, ep := range append(sessionEndpoints(), readEndpoints()...) {
				t.Run(tg.name+"/"+ep.name, func(t *testing.T) {
					t.Parallel()
					in := srv.NewIntegration(t, noSpec)
					sid := tg.sid(t, in)
					if ep.method == "GET" && tg.readable {
						expectBody(t, in.Call(ep.method, sp(sid, ep.path), ep.body), http.StatusOK, ep.keys...)
						return
					}
					var r *apptest.Response
					// Nothing of the caller's integration may change, nor of the session's.
					unchanged(t, srv, in, "", func() {
						r = in.Call(ep.method, sp(sid, ep.path), ep.body)
					})
					expectError(t, r, http.StatusNotFound, parley.ESessionNotFound)
				})
			}
		}
	})
}

// TestAnotherIntegrationsSessionIsUntouched uses A's key, on A's path, with B's session: every
// call is 404 session-not-found and B's session, history and outbox stay as they were.
func TestAnotherIntegrationsSessionIsUntouched(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		a := srv.NewIntegration(t, noSpec)
		bi := srv.NewIntegration(t, noSpec)
		sid := bi.NewSession()
		bi.Send(sid, "B's message")
		unchanged(t, srv, bi, sid, func() {
			for _, ep := range append(sessionEndpoints(), readEndpoints()...) {
				r := a.Call(ep.method, sp(sid, ep.path), ep.body)
				expectError(t, r, http.StatusNotFound, parley.ESessionNotFound)
			}
		})
	})
}

// TestMethodNotAllowed checks 405 on known paths, in the error shape with an Allow header.
func TestMethodNotAllowed(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		base := "/v1/custom/" + in.ID + "/sessions"
		for _, tc := range []struct {
			method, path, allow string
		}{
			{"GET", base, "POST"},
			{"DELETE", base, "POST"},
			{"POST", base + "/" + sid, "GET, HEAD"},
			{"DELETE", base + "/" + sid, "GET, HEAD"},
			{"GET", base + "/" + sid + "/context", "PATCH"},
			{"POST", base + "/" + sid + "/context", "PATCH"},
			{"PUT", base + "/" + sid + "/context", "PATCH"},
			{"GET", base + "/" + sid + "/close", "POST"},
			{"PATCH", base + "/" + sid + "/messages", "GET, HEAD, POST"},
			{"GET", base + "/" + sid + "/messages/agent", "POST"},
			{"GET", base + "/" + sid + "/messages/read", "POST"},
			{"PUT", base + "/" + sid + "/messages/delivered", "POST"},
			{"GET", base + "/" + sid + "/conversation/close", "POST"},
			{"DELETE", base + "/" + sid + "/conversation/reopen", "POST"},
			{"GET", base + "/" + sid + "/handover", "POST"},
			{"GET", base + "/" + sid + "/files/upload-url", "POST"},
			{"GET", base + "/" + sid + "/files/download-url", "POST"},
			{"DELETE", "/admin/v1/integrations", "GET, HEAD, POST"},
			{"POST", "/healthz", "GET, HEAD"},
		} {
			t.Run(tc.method+" "+strings.ReplaceAll(tc.path, "/", "_"), func(t *testing.T) {
				t.Parallel()
				r := srv.Do(t, tc.method, tc.path, nil, "Authorization", "apikey "+in.Key)
				expectError(t, r, http.StatusMethodNotAllowed, parley.EMethodNotAllowed)
				if !sameMethods(r.Header.Get("Allow"), tc.allow) {
					t.Errorf("Allow = %q, want %q", r.Header.Get("Allow"), tc.allow)
				}
			})
		}
	})
}

// sameMethods compares two Allow lists regardless of order.
func sameMethods(a, b string) bool {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, p := range strings.Split(s, ",") {
			m[strings.TrimSpace(p)] = true
		}
		return m
	}
	x, y := set(a), set(b)
	if len(x) != len(y) {
		return false
	}
	for k := range x {
		if !y[k] {
			return false
		}
	}
	return true
}

// TestUnknownPath checks that paths parley does not know answer 404 in the error shape.
func TestUnknownPath(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		for _, p := range []string{
			"/", "/nope", "/v1", "/v1/custom", "/v1/custom/" + in.ID,
			"/v1/custom/" + in.ID + "/sessions/" + sid + "/nope",
			"/v1/custom/" + in.ID + "/sessions/" + sid + "/messages/nope",
			"/v1/custom/" + in.ID + "/sessions/" + sid + "/conversation",
			"/v2/custom/" + in.ID + "/sessions",
		} {
			r := srv.Do(t, "POST", p, map[string]any{}, "Authorization", "apikey "+in.Key)
			expectError(t, r, http.StatusNotFound, parley.ENotFound)
		}
	})
}

// TestPayloadTooLarge sends bodies over the 1 MiB default limit to every call that takes one:
// 413 payload-too-large, with or without a Content-Length, and nothing changed. A body of
// exactly the limit is read (and refused for what it says, not for its size).
func TestPayloadTooLarge(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		// A valid JSON object of exactly n bytes.
		object := func(n int) string {
			head, tail := `{"input":{"text":"`, `"}}`
			return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
		}
		for _, ep := range []endpoint{
			{name: "create session", method: "POST", path: ""},
			{name: "context", method: "PATCH", path: "/context"},
			{name: "message", method: "POST", path: "/messages"},
			{name: "agent message", method: "POST", path: "/messages/agent"},
			{name: "read", method: "POST", path: "/messages/read"},
			{name: "delivered", method: "POST", path: "/messages/delivered"},
		} {
			for _, chunked := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/chunked=%v", ep.name, chunked), func(t *testing.T) {
					t.Parallel()
					in := srv.NewIntegration(t, noSpec)
					sid := in.NewSession()
					path := sp(sid, ep.path)
					if ep.name == "create session" {
						path = "/sessions"
					}
					for _, size := range []int{1<<20 + 1, 2 << 20} {
						var r *apptest.Response
						unchanged(t, srv, in, sid, func() {
							r = send(t, srv, in, ep.method, path, object(size), chunked)
						})
						expectError(t, r, http.StatusRequestEntityTooLarge, parley.ETooLarge)
					}
					// Exactly the limit is not too large: it is refused for its content (text
					// over 64 KiB, unknown fields, a context over 256 KiB), with 400.
					var r *apptest.Response
					unchanged(t, srv, in, sid, func() {
						r = send(t, srv, in, ep.method, path, object(1<<20), chunked)
					})
					expectError(t, r, http.StatusBadRequest, parley.EInvalid)
				})
			}
		}
	})
}

// TestHistoryPaging pages through a session's history with every page size and checks the
// cursor: oldest first, no message twice, none missing, next null on the last page.
func TestHistoryPaging(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		var want []string
		for i := range 7 {
			want = append(want, in.Send(sid, fmt.Sprintf("message %d", i)))
		}
		want = append(want, in.Call("POST", sp(sid, "/messages/agent"), map[string]any{
			"input": map[string]any{"text": "from the desk"}, "agent": map[string]any{"agent_id": "a"}}).
			Expect(t, http.StatusAccepted).Str(t, "message_id"))
		for limit := 1; limit <= 9; limit++ {
			var got []string
			after, pages := "", 0
			for {
				q := fmt.Sprintf("?limit=%d", limit)
				if after != "" {
					q += "&after=" + after
				}
				body := expectBody(t, in.Call("GET", sp(sid, "/messages"+q), nil), http.StatusOK, "messages", "next")
				pages++
				msgs := body["messages"].([]any)
				if len(msgs) > limit {
					t.Fatalf("limit %d: page of %d", limit, len(msgs))
				}
				for _, m := range msgs {
					got = append(got, m.(map[string]any)["id"].(string))
				}
				if body["next"] == nil {
					break
				}
				after = body["next"].(string)
				if after != got[len(got)-1] {
					t.Fatalf("next %s is not the last message of the page", after)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("limit %d: history %v, want %v", limit, got, want)
			}
			if wantPages := (len(want) + limit - 1) / limit; pages != wantPages && pages != wantPages+1 {
				t.Errorf("limit %d: %d pages for %d messages", limit, pages, len(want))
			}
		}
		// The default page holds everything here; the shape of each message.
		msgs := expectBody(t, in.Call("GET", sp(sid, "/messages"), nil), http.StatusOK, "messages", "next")["messages"].([]any)
		first := msgs[0].(map[string]any)
		if first["author"] != "user" || first["text"] != "message 0" || first["conversation_id"] == "" || first["created_at"] == nil {
			t.Errorf("first message = %v", first)
		}
		last := msgs[len(msgs)-1].(map[string]any)
		if last["author"] != "external" || last["agent"].(map[string]any)["agent_id"] != "a" {
			t.Errorf("last message = %v", last)
		}
		// An empty history is an empty list, not null.
		empty := in.NewSession()
		if r := in.Call("GET", sp(empty, "/messages"), nil).Expect(t, http.StatusOK); !strings.Contains(string(r.Body), `"messages":[]`) || !strings.Contains(string(r.Body), `"next":null`) {
			t.Errorf("empty history: %s", r.Body)
		}
		// Bad cursors and limits.
		other := in.NewSession()
		otherMsg := in.Send(other, "elsewhere")
		for _, q := range []string{"?limit=0", "?limit=-1", "?limit=201", "?limit=x", "?limit=1.5",
			"?after=nope", "?after=" + parley.NewID(), "?after=" + otherMsg} {
			expectError(t, in.Call("GET", sp(sid, "/messages"+q), nil), http.StatusBadRequest, parley.EInvalid)
		}
		expectBody(t, in.Call("GET", sp(sid, "/messages?limit=200"), nil), http.StatusOK, "messages", "next")
	})
}

// TestInternalError breaks the database under a running server: the call answers 500
// internal-server-error whose message names the request_id (the X-Request-Id) and nothing of
// the cause.
func TestInternalError(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		url := srv.Main.Config.DatabaseURL
		driver, dsn, drop := "pgx", url, "DROP TABLE messages CASCADE"
		if path, ok := sqlite.PathFromURL(url); ok {
			driver, dsn, drop = "sqlite3", "file:"+path+"?_busy_timeout=10000", "DROP TABLE messages"
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), drop); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*apptest.Response{
			in.Call("POST", sp(sid, "/messages"), map[string]any{"input": map[string]any{"text": "hi"}}),
			in.Call("GET", sp(sid, "/messages"), nil),
		} {
			expectError(t, r, http.StatusInternalServerError, parley.EInternal)
			msg := r.Str(t, "error_message")
			if msg != "internal error; request_id "+r.Header.Get("X-Request-Id") {
				t.Errorf("error_message = %q, X-Request-Id %s", msg, r.Header.Get("X-Request-Id"))
			}
			for _, leak := range []string{"messages", "table", "relation", "sql", "store"} {
				if strings.Contains(strings.ToLower(string(r.Body)), leak) {
					t.Errorf("the 500 shows internals (%q): %s", leak, r.Body)
				}
			}
		}
	})
}
