package httpapi_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// agentMsg is a valid body of messages/agent.
var agentMsg = map[string]any{"input": map[string]any{"text": "from our desk"}, "agent": map[string]any{"agent_id": "ext-1", "agent_name": "Eve"}}

// TestLifecycle walks the conversation rules of SPEC §2 through the API, checking what GET
// session shows, the brain jobs and the outbox after each step.
func TestLifecycle(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		ok := func(t *testing.T, in *apptest.Integration, sid, op string) {
			t.Helper()
			in.Call("POST", sp(sid, op), nil).Expect(t, http.StatusOK)
		}
		expectConv := func(t *testing.T, in *apptest.Integration, sid string, want conv) conv {
			t.Helper()
			got := conversation(t, in, sid)
			if want.ID == "" {
				want.ID = got.ID
			}
			if got != want {
				t.Fatalf("conversation = %+v, want %+v", got, want)
			}
			return got
		}
		expectEvents := func(t *testing.T, in *apptest.Integration, want ...string) []*parley.Event {
			t.Helper()
			evs := events(t, srv, in.ID)
			if got := eventTypes(evs); !slices.Equal(got, want) {
				t.Fatalf("outbox = %v, want %v", got, want)
			}
			return evs
		}
		expectJobs := func(t *testing.T, sid string, want ...string) {
			t.Helper()
			if got := jobMessages(t, srv, sid); !slices.Equal(got, want) {
				t.Fatalf("brain jobs for messages %v, want %v", got, want)
			}
		}

		t.Run("a new session starts with an open brain conversation", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			s := session(t, in, sid)
			if s["id"] != sid || s["status"] != "active" || s["ended_at"] != nil {
				t.Errorf("session = %v", s)
			}
			if c := s["conversation"].(map[string]any); c["assignee"] != nil {
				t.Errorf("conversation = %v", c)
			}
			expectConv(t, in, sid, conv{Status: "open", HandledBy: "brain"})
			expectEvents(t, in)
			expectJobs(t, sid)
		})

		t.Run("resolve, then the next user message starts a new brain conversation", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			m1 := in.Send(sid, "first")
			c1 := expectConv(t, in, sid, conv{Status: "open", HandledBy: "brain"})
			expectJobs(t, sid, m1)
			ok(t, in, sid, "/conversation/close")
			expectConv(t, in, sid, conv{ID: c1.ID, Status: "resolved", HandledBy: "brain"})
			ok(t, in, sid, "/conversation/close") // already resolved: no-op, no second event
			expectEvents(t, in, parley.EventConversationClosed)
			m2 := in.Send(sid, "second")
			c2 := expectConv(t, in, sid, conv{Status: "open", HandledBy: "brain"})
			if c2.ID == c1.ID {
				t.Fatal("the message after a resolved conversation did not start a new one")
			}
			js := jobs(t, srv, sid)
			if len(js) != 2 || js[0].ConversationID != c1.ID || js[1].ConversationID != c2.ID || js[1].MessageID != m2 {
				t.Fatalf("brain jobs = %+v", js)
			}
			if js[0].SessionSeq != 1 || js[1].SessionSeq != 2 {
				t.Errorf("brain job session_seq = %d, %d", js[0].SessionSeq, js[1].SessionSeq)
			}
			h := history(t, in, sid)
			if len(h) != 2 || h[0]["conversation_id"] != c1.ID || h[1]["conversation_id"] != c2.ID {
				t.Errorf("history = %v", h)
			}
			expectEvents(t, in, parley.EventConversationClosed) // a new conversation is no event
		})

		for _, tc := range []struct {
			name      string
			setup     func(t *testing.T, in *apptest.Integration, sid string)
			handledBy string
		}{
			{"brain", func(*testing.T, *apptest.Integration, string) {}, "brain"},
			{"queue", func(t *testing.T, in *apptest.Integration, sid string) { ok(t, in, sid, "/handover") }, "queue"},
			{"external", func(t *testing.T, in *apptest.Integration, sid string) {
				in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted)
			}, "external"},
		} {
			t.Run("reopen goes back to "+tc.name, func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				tc.setup(t, in, sid)
				c := expectConv(t, in, sid, conv{Status: "open", HandledBy: tc.handledBy})
				ok(t, in, sid, "/conversation/reopen") // open: no-op
				before := len(events(t, srv, in.ID))
				ok(t, in, sid, "/conversation/close")
				expectConv(t, in, sid, conv{ID: c.ID, Status: "resolved", HandledBy: tc.handledBy})
				ok(t, in, sid, "/conversation/reopen")
				expectConv(t, in, sid, conv{ID: c.ID, Status: "open", HandledBy: tc.handledBy})
				ok(t, in, sid, "/conversation/reopen") // open again: no-op
				evs := events(t, srv, in.ID)[before:]
				if got := eventTypes(evs); !slices.Equal(got, []string{parley.EventConversationClosed, parley.EventConversationReopened}) {
					t.Errorf("events = %v", got)
				}
			})
		}

		t.Run("handover from brain puts the conversation in the queue and delivers to the desk", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			m1, m2 := in.Send(sid, "one"), in.Send(sid, "two")
			c := expectConv(t, in, sid, conv{Status: "open", HandledBy: "brain"})
			for _, m := range history(t, in, sid) {
				if m["delivered_at"] != nil {
					t.Errorf("a message to the brain is delivered to the desk: %v", m)
				}
			}
			ok(t, in, sid, "/handover")
			expectConv(t, in, sid, conv{ID: c.ID, Status: "open", HandledBy: "queue"})
			evs := expectEvents(t, in, parley.EventDelivered)
			if ids := messageIDs(t, evs[0]); !sameSet(ids, []string{m1, m2}) {
				t.Errorf("message:delivered message_ids = %v, want %v", ids, []string{m1, m2})
			}
			for _, m := range history(t, in, sid) {
				if m["delivered_at"] == nil {
					t.Errorf("after handover a user message is not delivered: %v", m)
				}
			}
			// A user message now goes to the desk: delivered at once, no brain job.
			m3 := in.Send(sid, "three")
			expectJobs(t, sid, m1, m2)
			evs = expectEvents(t, in, parley.EventDelivered, parley.EventDelivered)
			if ids := messageIDs(t, evs[1]); !slices.Equal(ids, []string{m3}) {
				t.Errorf("message:delivered message_ids = %v, want [%s]", ids, m3)
			}
			if h := history(t, in, sid); h[2]["delivered_at"] == nil {
				t.Errorf("a message into the queue is not delivered: %v", h[2])
			}
			// With humans already: handover is a no-op.
			ok(t, in, sid, "/handover")
			expectConv(t, in, sid, conv{ID: c.ID, Status: "open", HandledBy: "queue"})
			expectEvents(t, in, parley.EventDelivered, parley.EventDelivered)
		})

		t.Run("handover of a resolved conversation opens a new one in the queue", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			c1 := conversation(t, in, sid)
			m0 := in.Send(sid, "to the brain")
			ok(t, in, sid, "/conversation/close")
			ok(t, in, sid, "/handover")
			c2 := expectConv(t, in, sid, conv{Status: "open", HandledBy: "queue"})
			if c2.ID == c1.ID {
				t.Error("handover reopened the resolved conversation instead of starting a new one")
			}
			// The desk now has the session: the message the brain had is delivered to it, as in
			// a handover from an open brain conversation. No other event until an agent joins.
			evs := expectEvents(t, in, parley.EventConversationClosed, parley.EventDelivered)
			if ids := messageIDs(t, evs[1]); !slices.Equal(ids, []string{m0}) {
				t.Errorf("message_ids at the handover = %v, want [%s]", ids, m0)
			}
			m := in.Send(sid, "hello desk")
			expectJobs(t, sid, m0) // the desk's message is no job; m0's is dropped when the brain takes it
			evs = expectEvents(t, in, parley.EventConversationClosed, parley.EventDelivered, parley.EventDelivered)
			if ids := messageIDs(t, evs[2]); !slices.Equal(ids, []string{m}) {
				t.Errorf("message_ids = %v", ids)
			}
		})

		t.Run("handover of an external conversation is a no-op", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted)
			c := expectConv(t, in, sid, conv{Status: "open", HandledBy: "external"})
			ok(t, in, sid, "/handover")
			expectConv(t, in, sid, c)
			expectEvents(t, in)
		})

		for _, tc := range []struct {
			name  string
			setup func(t *testing.T, in *apptest.Integration, sid string)
			same  bool // the conversation stays the same one
		}{
			{"brain", func(*testing.T, *apptest.Integration, string) {}, true},
			{"queue", func(t *testing.T, in *apptest.Integration, sid string) { ok(t, in, sid, "/handover") }, true},
			{"resolved", func(t *testing.T, in *apptest.Integration, sid string) { ok(t, in, sid, "/conversation/close") }, false},
		} {
			t.Run("an agent message makes a "+tc.name+" conversation external", func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, noSpec)
				sid := in.NewSession()
				tc.setup(t, in, sid)
				before := conversation(t, in, sid)
				evs := len(events(t, srv, in.ID))
				mid := in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted).Str(t, "message_id")
				after := expectConv(t, in, sid, conv{Status: "open", HandledBy: "external"})
				if (after.ID == before.ID) != tc.same {
					t.Errorf("conversation %s -> %s; want same = %v", before.ID, after.ID, tc.same)
				}
				if n := len(events(t, srv, in.ID)); n != evs {
					t.Errorf("an agent message wrote %d events; it sends no webhook", n-evs)
				}
				h := history(t, in, sid)
				last := h[len(h)-1]
				agent := last["agent"].(map[string]any)
				if last["id"] != mid || last["author"] != "external" || last["text"] != "from our desk" ||
					agent["agent_id"] != "ext-1" || agent["agent_name"] != "Eve" || last["conversation_id"] != after.ID {
					t.Errorf("agent message in history = %v", last)
				}
				// The brain no longer sees the user's messages, nor does the desk get them.
				in.Send(sid, "are you human?")
				expectJobs(t, sid)
				if n := len(events(t, srv, in.ID)); n != evs {
					t.Errorf("a user message in an external conversation wrote %d events", n-evs)
				}
				expectConv(t, in, sid, after)
				// Resolving it hands the next conversation back to the brain.
				ok(t, in, sid, "/conversation/close")
				m := in.Send(sid, "new question")
				expectConv(t, in, sid, conv{Status: "open", HandledBy: "brain"})
				expectJobs(t, sid, m)
			})
		}

		t.Run("closing a session resolves its conversation with only session:closed", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			for _, resolvedFirst := range []bool{false, true} {
				sid := in.NewSession()
				in.Send(sid, "bye")
				c := conversation(t, in, sid)
				if resolvedFirst {
					ok(t, in, sid, "/conversation/close")
				}
				before := len(events(t, srv, in.ID))
				ok(t, in, sid, "/close")
				s := session(t, in, sid)
				if s["status"] != "closed" || s["ended_at"] == nil {
					t.Errorf("session = %v", s)
				}
				expectConv(t, in, sid, conv{ID: c.ID, Status: "resolved", HandledBy: "brain"})
				if got := eventTypes(events(t, srv, in.ID)[before:]); !slices.Equal(got, []string{parley.EventSessionClosed}) {
					t.Errorf("closing wrote %v", got)
				}
				if h := history(t, in, sid); len(h) != 1 {
					t.Errorf("history of a closed session = %v", h)
				}
			}
		})

		t.Run("context merges deeply, arrays replace, null deletes", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			r := in.Call("POST", "/sessions", map[string]any{"channel_user_id": "u-1", "external_session_id": "x-1",
				"context": map[string]any{
					"user":   map[string]any{"display_name": "Ann", "location": map[string]any{"city": "Oslo", "country": "NO"}},
					"tags":   []string{"a", "b"},
					"global": map[string]any{"ref": "ad", "disclaimer_accepted": true},
					"cart":   map[string]any{"items": 2, "total": 12.5},
					"big":    uint64(12345678901234567890),
				}}).Expect(t, http.StatusCreated).JSON(t)
			sid := r["session_id"].(string)
			userID := r["context"].(map[string]any)["user"].(map[string]any)["user_id"]
			got := in.Call("PATCH", sp(sid, "/context"), map[string]any{
				"user":   map[string]any{"location": map[string]any{"city": "Bergen", "region": nil}, "email": "ann@example.com"},
				"tags":   []string{"c"},
				"global": map[string]any{"ref": nil},
				"cart":   nil,
				"new":    map[string]any{"deep": map[string]any{"x": nil, "y": 1}},
			}).Expect(t, http.StatusOK).JSON(t)["context"]
			want := map[string]any{
				"user": map[string]any{"user_id": userID, "custom_psid": "u-1", "display_name": "Ann", "email": "ann@example.com",
					"location": map[string]any{"city": "Bergen", "country": "NO"}},
				"channels": map[string]any{"custom": map[string]any{"external_session_id": "x-1"}},
				"tags":     []any{"c"},
				"global":   map[string]any{"disclaimer_accepted": true},
				"new":      map[string]any{"deep": map[string]any{"y": float64(1)}},
				"big":      1.2345678901234567e19,
			}
			if !jsonEqual(got, want) {
				t.Errorf("merged context = %v\nwant %v", got, want)
			}
			// Big numbers stay exact, not floats.
			if raw := session(t, in, sid); !jsonEqual(raw["context"], want) {
				t.Errorf("GET context = %v", raw["context"])
			}
			body := string(in.Call("GET", sp(sid, ""), nil).Body)
			if !contains(body, `"big":12345678901234567890`) {
				t.Errorf("a big integer lost precision: %s", body)
			}
			// A message's context merges the same way, before the message is handled.
			in.Call("POST", sp(sid, "/messages"), map[string]any{"input": map[string]any{"text": "hi"},
				"context": map[string]any{"tags": nil, "user": map[string]any{"email": "new@example.com"}}}).Expect(t, http.StatusAccepted)
			c := session(t, in, sid)["context"].(map[string]any)
			if _, has := c["tags"]; has || c["user"].(map[string]any)["email"] != "new@example.com" || c["user"].(map[string]any)["display_name"] != "Ann" {
				t.Errorf("context after message = %v", c)
			}
			// An empty patch changes nothing and answers the whole context.
			before := session(t, in, sid)["context"]
			if got := in.Call("PATCH", sp(sid, "/context"), map[string]any{}).Expect(t, http.StatusOK).JSON(t)["context"]; !jsonEqual(got, before) {
				t.Errorf("empty patch answered %v, want %v", got, before)
			}
		})

		t.Run("user messages with attachments", func(t *testing.T) {
			t.Parallel()
			in := srv.NewIntegration(t, noSpec)
			sid := in.NewSession()
			att := map[string]any{"type": "image", "mime_type": "image/png", "url": "https://cdn.example.com/a.png", "filename": "a.png", "title": "A"}
			for _, input := range []map[string]any{
				{"text": "look", "attachments": []any{att}},
				{"attachments": []any{att, map[string]any{"type": "file", "mime_type": "application/pdf", "url": "http://example.com/b.pdf"}}},
			} {
				in.Call("POST", sp(sid, "/messages"), map[string]any{"input": input}).Expect(t, http.StatusAccepted)
			}
			h := history(t, in, sid)
			if len(h) != 2 || len(h[0]["attachments"].([]any)) != 1 || len(h[1]["attachments"].([]any)) != 2 || h[1]["text"] != nil {
				t.Fatalf("history = %v", h)
			}
			if !jsonEqual(h[0]["attachments"].([]any)[0], att) {
				t.Errorf("attachment = %v, want %v", h[0]["attachments"].([]any)[0], att)
			}
		})
	})
}

// TestExpiry moves a fake clock past session_timeout: activity (a message, an agent message,
// a context update, a handover) pushes the deadline; receipts, conversation close and reopen
// and reads do not. Past the deadline every mutating call is 404 and GET shows expired.
func TestExpiry(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		const timeout = 60 * time.Second
		in := srv.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: ptr(60)})
		expiresAt := func(sid string) time.Time {
			t.Helper()
			return time.UnixMilli(int64(session(t, in, sid)["expires_at"].(float64)))
		}

		for _, tc := range []struct {
			name     string
			do       func(sid string)
			activity bool
		}{
			{"message", func(sid string) { in.Send(sid, "hi") }, true},
			{"agent message", func(sid string) {
				in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted)
			}, true},
			{"context update", func(sid string) {
				in.Call("PATCH", sp(sid, "/context"), map[string]any{"a": 1}).Expect(t, http.StatusOK)
			}, true},
			{"handover", func(sid string) { in.Call("POST", sp(sid, "/handover"), nil).Expect(t, http.StatusOK) }, true},
			{"handover with humans already", func(sid string) {
				in.Call("POST", sp(sid, "/handover"), nil).Expect(t, http.StatusOK)
				clk.Advance(time.Second)
				in.Call("POST", sp(sid, "/handover"), nil).Expect(t, http.StatusOK)
			}, true},
			{"read receipt", func(sid string) {
				in.Call("POST", sp(sid, "/messages/read"), map[string]any{"timestamp": clk.Now().UnixMilli()}).Expect(t, http.StatusOK)
			}, false},
			{"delivered receipt", func(sid string) {
				in.Call("POST", sp(sid, "/messages/delivered"), map[string]any{"timestamp": clk.Now().UnixMilli()}).Expect(t, http.StatusOK)
			}, false},
			{"conversation close", func(sid string) {
				in.Call("POST", sp(sid, "/conversation/close"), nil).Expect(t, http.StatusOK)
			}, false},
			{"conversation close and reopen", func(sid string) {
				in.Call("POST", sp(sid, "/conversation/close"), nil).Expect(t, http.StatusOK)
				in.Call("POST", sp(sid, "/conversation/reopen"), nil).Expect(t, http.StatusOK)
			}, false},
			{"reads", func(sid string) {
				session(t, in, sid)
				history(t, in, sid)
			}, false},
		} {
			// Sequential: the clock is the server's.
			t.Run(tc.name, func(t *testing.T) {
				sid := in.NewSession()
				created := clk.Now()
				if got := expiresAt(sid); !got.Equal(created.Add(timeout)) {
					t.Fatalf("expires_at = %v, want created + 60 s = %v", got, created.Add(timeout))
				}
				clk.Advance(40 * time.Second)
				tc.do(sid)
				deadline := created.Add(timeout)
				if tc.activity {
					deadline = clk.Now().Add(timeout)
				}
				if got := expiresAt(sid); !got.Equal(deadline) {
					t.Fatalf("expires_at = %v, want %v", got, deadline)
				}
				// One millisecond before the deadline the session is active; at it, expired.
				clk.Advance(deadline.Sub(clk.Now()) - time.Millisecond)
				if s := session(t, in, sid); s["status"] != "active" {
					t.Fatalf("1 ms before the deadline: status %v", s["status"])
				}
				clk.Advance(time.Millisecond)
				s := session(t, in, sid)
				if s["status"] != "expired" {
					t.Fatalf("at the deadline: status %v", s["status"])
				}
				for _, ep := range sessionEndpoints() {
					expectError(t, in.Call(ep.method, sp(sid, ep.path), ep.body), http.StatusNotFound, parley.ESessionNotFound)
				}
				// Still readable.
				expectBody(t, in.Call("GET", sp(sid, "/messages"), nil), http.StatusOK, "messages", "next")
				clk.Advance(time.Second)
			})
		}
	})
}

// messageIDs returns the message_ids field of an event's body.
func messageIDs(t testing.TB, e *parley.Event) []string {
	t.Helper()
	var body struct {
		MessageIDs []string `json:"message_ids"`
	}
	decodeJSON(t, e.Body, &body)
	return body.MessageIDs
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
