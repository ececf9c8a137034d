package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestIdempotencyRepeat sends every mutating call twice with the same Idempotency-Key: the
// second answer is the first one, status and body byte for byte, and changes nothing.
func TestIdempotencyRepeat(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		calls := append([]endpoint{{"create session", "POST", "", map[string]any{"context": map[string]any{"a": 1}}, 201, nil}}, sessionEndpoints()...)
		for _, ep := range calls {
			t.Run(ep.name, func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				in.Send(sid, "before")
				path := sp(sid, ep.path)
				if ep.name == "create session" {
					path = "/sessions"
				}
				first := in.Call(ep.method, path, ep.body, "Idempotency-Key", "key-1").Expect(t, ep.status)
				for range 3 {
					var again *apptest.Response
					unchanged(t, srv, in, sid, func() {
						again = in.Call(ep.method, path, ep.body, "Idempotency-Key", "key-1")
					})
					if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
						t.Errorf("repeat: %d %s\nfirst: %d %s", again.Status, again.Body, first.Status, first.Body)
					}
				}
				// A body that is not JSON, with the key, gets its own error, not the stored answer
				// (calls without a body ignore it).
				if ep.body != nil {
					unchanged(t, srv, in, sid, func() {
						expectError(t, in.Call(ep.method, path, `{"input":`, "Idempotency-Key", "key-1"), http.StatusBadRequest, parley.EInvalid)
					})
				}
				// Without the key, or with another, the call runs again.
				if ep.name == "message" || ep.name == "create session" {
					n := rowCounts(t, srv, in.ID)
					in.Call(ep.method, path, ep.body, "Idempotency-Key", "key-2").Expect(t, ep.status)
					in.Call(ep.method, path, ep.body).Expect(t, ep.status)
					if m := rowCounts(t, srv, in.ID); m["messages"]+m["sessions"] != n["messages"]+n["sessions"]+2 {
						t.Errorf("rows before %v, after %v: want two more", n, m)
					}
				}
			})
		}
	})
}

// TestIdempotencyScope checks keys belong to an integration: the same key in another
// integration is a new request; in the same integration it is the first request again, even
// on another session or another endpoint.
func TestIdempotencyScope(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		a, bi := srv.NewIntegration(t, noSpec), srv.NewIntegration(t, noSpec)
		sa, sb := a.NewSession(), bi.NewSession()
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		ra := a.Call("POST", sp(sa, "/messages"), msg, "Idempotency-Key", "shared").Expect(t, http.StatusAccepted)
		rb := bi.Call("POST", sp(sb, "/messages"), msg, "Idempotency-Key", "shared").Expect(t, http.StatusAccepted)
		if ra.Str(t, "message_id") == rb.Str(t, "message_id") {
			t.Error("two integrations' requests with one key got one answer")
		}
		if len(history(t, a, sa)) != 1 || len(history(t, bi, sb)) != 1 {
			t.Error("each integration should hold its own message")
		}
		// Same integration, another session: the first answer again, and the second session
		// untouched.
		sa2 := a.NewSession()
		unchanged(t, srv, a, sa2, func() {
			r := a.Call("POST", sp(sa2, "/messages"), msg, "Idempotency-Key", "shared")
			if r.Status != ra.Status || !bytes.Equal(r.Body, ra.Body) {
				t.Errorf("same key, other session: %d %s", r.Status, r.Body)
			}
			r = a.Call("POST", sp(sa2, "/handover"), nil, "Idempotency-Key", "shared")
			if r.Status != ra.Status || !bytes.Equal(r.Body, ra.Body) {
				t.Errorf("same key, other endpoint: %d %s", r.Status, r.Body)
			}
		})
	})
}

// TestIdempotencyOnlySuccessIsStored checks a failed request does not use up its key: the
// same key with a correct request then runs.
func TestIdempotencyOnlySuccessIsStored(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		for i, bad := range []func(key string) *apptest.Response{
			func(key string) *apptest.Response {
				return in.Call("POST", sp(sid, "/messages"), map[string]any{"input": map[string]any{}}, "Idempotency-Key", key)
			},
			func(key string) *apptest.Response {
				return in.Call("POST", sp(parley.NewID(), "/messages"), msg, "Idempotency-Key", key)
			},
			func(key string) *apptest.Response {
				return in.Call("POST", sp(sid, "/messages"), map[string]any{"input": map[string]any{"attachments": []any{
					map[string]any{"type": "image", "mime_type": "image/png", "file_id": parley.NewID()}}}}, "Idempotency-Key", key)
			},
		} {
			key := fmt.Sprintf("k-%d", i)
			unchanged(t, srv, in, sid, func() {
				if r := bad(key); r.Status < 400 {
					t.Fatalf("bad request %d: %d %s", i, r.Status, r.Body)
				}
			})
			first := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", key).Expect(t, http.StatusAccepted)
			again := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", key).Expect(t, http.StatusAccepted)
			if !bytes.Equal(first.Body, again.Body) {
				t.Errorf("after a failure the key was not stored with the success: %s vs %s", first.Body, again.Body)
			}
		}
		if n := len(history(t, in, sid)); n != 3 {
			t.Errorf("history holds %d messages, want 3", n)
		}
	})
}

// TestIdempotencyAfterClose repeats a message after the session closed: the first answer
// comes back (the request was accepted), not a 404, and nothing changes.
func TestIdempotencyAfterClose(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		first := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "k").Expect(t, http.StatusAccepted)
		in.Call("POST", sp(sid, "/close"), nil).Expect(t, http.StatusOK)
		unchanged(t, srv, in, sid, func() {
			again := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "k")
			if again.Status != http.StatusAccepted || !bytes.Equal(again.Body, first.Body) {
				t.Errorf("repeat after close: %d %s", again.Status, again.Body)
			}
		})
		expectError(t, in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "k2"), http.StatusNotFound, parley.ESessionNotFound)
	})
}

// TestIdempotencyWindow moves a fake clock: a key is remembered for 24 hours, then used anew.
func TestIdempotencyWindow(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		// The session must outlive the window.
		keepAlive := func() {
			in.Call("PATCH", sp(sid, "/context"), map[string]any{"t": clk.Now().UnixMilli()}).Expect(t, http.StatusOK)
		}
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		first := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "daily").Expect(t, http.StatusAccepted)
		clk.Advance(12 * time.Hour)
		keepAlive()
		clk.Advance(12*time.Hour - time.Millisecond)
		keepAlive()
		if r := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "daily"); !bytes.Equal(r.Body, first.Body) {
			t.Errorf("1 ms inside the window: %s, want the first answer %s", r.Body, first.Body)
		}
		clk.Advance(2 * time.Millisecond)
		second := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "daily").Expect(t, http.StatusAccepted)
		if bytes.Equal(second.Body, first.Body) {
			t.Error("a key older than 24 h still replays")
		}
		if r := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "daily"); !bytes.Equal(r.Body, second.Body) {
			t.Errorf("the renewed key does not replay its new answer: %s", r.Body)
		}
		if n := len(history(t, in, sid)); n != 2 {
			t.Errorf("history holds %d messages, want 2", n)
		}
	})
}

// TestIdempotencyKeyLength checks the 255-byte limit of the key.
func TestIdempotencyKeyLength(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		unchanged(t, srv, in, sid, func() {
			expectError(t, in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", strings.Repeat("k", 256)), http.StatusBadRequest, parley.EInvalid)
		})
		in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", strings.Repeat("k", 255)).Expect(t, http.StatusAccepted)
	})
}

// TestIdempotencyKeyNotUTF8 checks a key that is not UTF-8 text is refused alike on both
// stores (PostgreSQL text cannot hold it), and a key of non-ASCII UTF-8 works.
func TestIdempotencyKeyNotUTF8(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		msg := map[string]any{"input": map[string]any{"text": "x"}}
		for _, key := range []string{"k\xff", "caf\xe9", "\xc0\xaf", "\xed\xa0\x80"} {
			unchanged(t, srv, in, sid, func() {
				expectError(t, in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", key), http.StatusBadRequest, parley.EInvalid)
			})
		}
		first := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "clé-✓").Expect(t, http.StatusAccepted)
		again := in.Call("POST", sp(sid, "/messages"), msg, "Idempotency-Key", "clé-✓").Expect(t, http.StatusAccepted)
		if !bytes.Equal(first.Body, again.Body) {
			t.Errorf("a UTF-8 key was not remembered: %s vs %s", first.Body, again.Body)
		}
	})
}

// TestIdempotencyConcurrent races 20 identical requests with one key: exactly one change
// happens and every caller gets its answer.
func TestIdempotencyConcurrent(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		for _, tc := range []struct {
			name   string
			path   func(in *apptest.Integration, sid string) string
			body   string
			status int
		}{
			{"message", func(_ *apptest.Integration, sid string) string { return sp(sid, "/messages") }, `{"input":{"text":"once"}}`, http.StatusAccepted},
			{"create session", func(*apptest.Integration, string) string { return "/sessions" }, `{}`, http.StatusCreated},
			{"handover", func(_ *apptest.Integration, sid string) string { return sp(sid, "/handover") }, ``, http.StatusOK},
		} {
			// One race at a time: on PostgreSQL each waiting request holds a connection of a
			// server other test suites share.
			t.Run(tc.name, func(t *testing.T) {
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				in.Send(sid, "before the handover")
				before := rowCounts(t, srv, in.ID)
				url := srv.URL + "/v1/custom/" + in.ID + tc.path(in, sid)
				const n = 20
				if b == apptest.Postgres {
					testenv.WaitPostgresHeadroom(t, n+10) // each waiting request holds a connection
				}
				type answer struct {
					status int
					body   []byte
					err    error
				}
				answers := make([]answer, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						req, err := http.NewRequest("POST", url, strings.NewReader(tc.body))
						if err != nil {
							answers[i].err = err
							return
						}
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "apikey "+in.Key)
						req.Header.Set("Idempotency-Key", "race")
						resp, err := srv.Client.Do(req)
						if err != nil {
							answers[i].err = err
							return
						}
						defer resp.Body.Close()
						answers[i].status = resp.StatusCode
						answers[i].body, answers[i].err = io.ReadAll(resp.Body)
					})
				}
				close(start)
				wg.Wait()
				for i, a := range answers {
					if a.err != nil || a.status != tc.status || !bytes.Equal(a.body, answers[0].body) {
						t.Errorf("caller %d: %d %s %v; caller 0: %s", i, a.status, a.body, a.err, answers[0].body)
					}
				}
				after := rowCounts(t, srv, in.ID)
				want := map[string]int{"messages": 0, "sessions": 0, "events": 0}
				switch tc.name {
				case "message":
					want["messages"] = 1
				case "create session":
					want["sessions"] = 1
				case "handover":
					want["events"] = 1 // message:delivered, once
				}
				if after["messages"]-before["messages"] != want["messages"] || after["sessions"]-before["sessions"] != want["sessions"] ||
					after["outbox"]-before["outbox"] != want["events"] || after["idempotency_keys"]-before["idempotency_keys"] != 1 {
					t.Errorf("rows before %v, after %v", before, after)
				}
			})
		}
	})
}
