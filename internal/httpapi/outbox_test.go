package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/store"
)

// TestOutboxPayloads drives one session through every event the inbound API causes and
// checks each outbox row is byte for byte the body SPEC §3 describes: the base fields in
// their order, the session's context at that moment, the fake clock's time, then the event's
// own fields.
func TestOutboxPayloads(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		in := srv.NewIntegration(t, admin.IntegrationSpec{DeskID: ptr("desk-7")})
		sid := in.Call("POST", "/sessions", map[string]any{"external_session_id": "ext-9", "channel_user_id": "cu-1",
			"context": map[string]any{"note": "<3 & >", "tags": []string{"vip"}}}).Expect(t, http.StatusCreated).Str(t, "session_id")

		// rawContext returns the session's context as the API shows it, in bytes.
		rawContext := func() []byte {
			var body struct {
				Session struct {
					Context json.RawMessage `json:"context"`
				} `json:"session"`
			}
			decodeJSON(t, in.Call("GET", sp(sid, ""), nil).Expect(t, http.StatusOK).Body, &body)
			return body.Session.Context
		}
		type want struct {
			typ     string
			context []byte
			at      time.Time
			own     string // the event's own fields, as they follow the base ones
		}
		var wants []want
		tick := func() { clk.Advance(1500 * time.Millisecond) }

		tick()
		in.Call("PATCH", sp(sid, "/context"), map[string]any{"step": 1}).Expect(t, http.StatusOK)
		tick()
		in.Call("POST", sp(sid, "/conversation/close"), nil).Expect(t, http.StatusOK)
		wants = append(wants, want{parley.EventConversationClosed, rawContext(), clk.Now(), `"status":"closed","closed_by":"api"`})

		tick()
		in.Call("PATCH", sp(sid, "/context"), map[string]any{"step": 2, "user": map[string]any{"display_name": "Zoë"}}).Expect(t, http.StatusOK)
		tick()
		in.Call("POST", sp(sid, "/conversation/reopen"), nil).Expect(t, http.StatusOK)
		wants = append(wants, want{parley.EventConversationReopened, rawContext(), clk.Now(), `"status":"open"`})

		tick()
		m1 := in.Send(sid, "one")
		tick()
		in.Call("POST", sp(sid, "/handover"), nil).Expect(t, http.StatusOK)
		wants = append(wants, want{parley.EventDelivered, rawContext(), clk.Now(), `"message_ids":["` + m1 + `"]`})

		tick()
		m2 := in.Call("POST", sp(sid, "/messages"), map[string]any{"input": map[string]any{"text": "two"},
			"context": map[string]any{"step": 3, "tags": nil}}).Expect(t, http.StatusAccepted).Str(t, "message_id")
		wants = append(wants, want{parley.EventDelivered, rawContext(), clk.Now(), `"message_ids":["` + m2 + `"]`})

		tick()
		in.Call("POST", sp(sid, "/close"), nil).Expect(t, http.StatusOK)
		wants = append(wants, want{parley.EventSessionClosed, rawContext(), clk.Now(), `"reason":"api"`})

		evs := events(t, srv, in.ID)
		if len(evs) != len(wants) {
			t.Fatalf("outbox = %v, want %d events", eventTypes(evs), len(wants))
		}
		seen := map[string]bool{}
		for i, w := range wants {
			e := evs[i]
			body := fmt.Sprintf(`{"event_type":%q,"request_id":%q,"session_id":%q,"external_session_id":"ext-9",`+
				`"integration_id":%q,"desk_id":"desk-7","context":%s,"timestamp":%d,%s}`,
				w.typ, e.ID, sid, in.ID, w.context, w.at.UnixMilli(), w.own)
			if string(e.Body) != body {
				t.Errorf("event %d body:\n got %s\nwant %s", i+1, e.Body, body)
			}
			if e.Type != w.typ || e.SessionID != sid || e.IntegrationID != in.ID || e.SessionSeq != int64(i+1) ||
				!e.CreatedAt.Equal(w.at) || e.Partition != parley.PartitionOf(sid) {
				t.Errorf("event %d row: type %s session %s seq %d created %v partition %d", i+1, e.Type, e.SessionID, e.SessionSeq, e.CreatedAt, e.Partition)
			}
			if _, ok := parley.ParseID(e.ID); !ok || seen[e.ID] {
				t.Errorf("event %d request_id %q is not a fresh UUID", i+1, e.ID)
			}
			seen[e.ID] = true
		}
		// The context is the one of the moment: "<3 & >" stays as it is (no HTML escaping),
		// the patch of step 3 is in the last events and not in the first.
		if !bytes.Contains(evs[0].Body, []byte(`"note":"<3 & >"`)) || !bytes.Contains(evs[0].Body, []byte(`"step":1`)) {
			t.Errorf("first event's context: %s", evs[0].Body)
		}
		if bytes.Contains(evs[3].Body, []byte(`"tags"`)) || !bytes.Contains(evs[1].Body, []byte(`"tags":["vip"]`)) {
			t.Errorf("tags should be in event 2 and removed by event 4:\n%s\n%s", evs[1].Body, evs[3].Body)
		}
	})
}

// TestOutboxBaseFields checks the order of the base fields on a session without an
// external_session_id: the key is left out, not empty.
func TestOutboxBaseFields(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		in.Send(sid, "a")
		for _, op := range []string{"/conversation/close", "/conversation/reopen", "/handover", "/close"} {
			in.Call("POST", sp(sid, op), nil).Expect(t, http.StatusOK)
		}
		base := []string{"event_type", "request_id", "session_id", "integration_id", "desk_id", "context", "timestamp"}
		own := map[string][]string{
			parley.EventConversationClosed:   {"status", "closed_by"},
			parley.EventConversationReopened: {"status"},
			parley.EventDelivered:            {"message_ids"},
			parley.EventSessionClosed:        {"reason"},
		}
		evs := events(t, srv, in.ID)
		if got := eventTypes(evs); !slices.Equal(got, []string{parley.EventConversationClosed, parley.EventConversationReopened, parley.EventDelivered, parley.EventSessionClosed}) {
			t.Fatalf("outbox = %v", got)
		}
		for _, e := range evs {
			if got, want := topLevelKeys(t, e.Body), append(slices.Clone(base), own[e.Type]...); !slices.Equal(got, want) {
				t.Errorf("%s keys = %v, want %v", e.Type, got, want)
			}
			var body map[string]any
			decodeJSON(t, e.Body, &body)
			if body["desk_id"] != in.DeskID || body["integration_id"] != in.ID || body["session_id"] != sid || body["request_id"] != e.ID {
				t.Errorf("%s base fields = %v", e.Type, body)
			}
			if _, ok := body["context"].(map[string]any)["user"].(map[string]any)["user_id"].(string); !ok {
				t.Errorf("%s context = %v", e.Type, body["context"])
			}
		}
	})
}

// topLevelKeys returns the keys of a JSON object in the order they are written.
func topLevelKeys(t testing.TB, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("data after the object: %s", b)
	}
	return keys
}

// TestOutboxSequencePerSession interleaves the events of several sessions: each session's
// session_seq runs 1, 2, 3, ... in the order its events happened.
func TestOutboxSequencePerSession(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sids := []string{in.NewSession(), in.NewSession(), in.NewSession()}
		for _, op := range []string{"/conversation/close", "/conversation/reopen", "/conversation/close", "/handover", "/close"} {
			for _, sid := range sids {
				in.Call("POST", sp(sid, op), nil).Expect(t, http.StatusOK)
			}
		}
		bySession := map[string][]*parley.Event{}
		for _, e := range events(t, srv, in.ID) {
			bySession[e.SessionID] = append(bySession[e.SessionID], e)
		}
		for _, sid := range sids {
			evs := bySession[sid]
			want := []string{parley.EventConversationClosed, parley.EventConversationReopened, parley.EventConversationClosed, parley.EventSessionClosed}
			if got := eventTypes(evs); !slices.Equal(got, want) {
				t.Errorf("session %s events = %v, want %v", sid, got, want)
			}
			for i, e := range evs {
				if e.SessionSeq != int64(i+1) {
					t.Errorf("session %s event %d has session_seq %d", sid, i+1, e.SessionSeq)
				}
			}
		}
	})
}

// TestOutboxSubscribedEvents checks that events not in subscribed_events are never written,
// and that the session's sequence counts only the written ones.
func TestOutboxSubscribedEvents(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		for _, tc := range []struct {
			subscribed []string
			want       []string
		}{
			{[]string{parley.EventConversationReopened, parley.EventSessionClosed}, []string{parley.EventConversationReopened, parley.EventSessionClosed}},
			{[]string{parley.EventDelivered}, []string{parley.EventDelivered, parley.EventDelivered}},
			{[]string{parley.EventBrainSend}, nil},
			{nil, []string{parley.EventConversationClosed, parley.EventConversationReopened, parley.EventDelivered, parley.EventDelivered, parley.EventSessionClosed}},
		} {
			t.Run(fmt.Sprint(tc.subscribed), func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, admin.IntegrationSpec{SubscribedEvents: ptr(tc.subscribed)})
				sid := in.NewSession()
				in.Send(sid, "a")
				for _, op := range []string{"/conversation/close", "/conversation/reopen", "/handover"} {
					in.Call("POST", sp(sid, op), nil).Expect(t, http.StatusOK)
				}
				in.Send(sid, "b")
				in.Call("POST", sp(sid, "/close"), nil).Expect(t, http.StatusOK)
				evs := events(t, srv, in.ID)
				if got := eventTypes(evs); !slices.Equal(got, tc.want) {
					t.Errorf("outbox = %v, want %v", got, tc.want)
				}
				for i, e := range evs {
					if e.SessionSeq != int64(i+1) {
						t.Errorf("event %d has session_seq %d", i+1, e.SessionSeq)
					}
				}
			})
		}
	})
}

// TestOutboxQuietCalls checks the calls that send no webhook write nothing to the outbox.
func TestOutboxQuietCalls(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		sid := in.Call("POST", "/sessions", map[string]any{"external_session_id": "e"}).Expect(t, http.StatusCreated).Str(t, "session_id")
		in.Call("PATCH", sp(sid, "/context"), map[string]any{"a": 1}).Expect(t, http.StatusOK)
		in.Send(sid, "to the brain")
		in.Call("POST", sp(sid, "/conversation/reopen"), nil).Expect(t, http.StatusOK) // open: no-op
		in.Call("POST", sp(sid, "/messages/read"), map[string]any{"timestamp": time.Now().UnixMilli()}).Expect(t, http.StatusOK)
		in.Call("POST", sp(sid, "/messages/delivered"), map[string]any{"timestamp": time.Now().UnixMilli()}).Expect(t, http.StatusOK)
		in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted)
		in.Send(sid, "to the external agent")
		in.Call("POST", sp(sid, "/handover"), nil).Expect(t, http.StatusOK) // with humans: no-op
		in.Call("GET", sp(sid, ""), nil).Expect(t, http.StatusOK)
		in.Call("GET", sp(sid, "/messages"), nil).Expect(t, http.StatusOK)
		if evs := events(t, srv, in.ID); len(evs) != 0 {
			t.Errorf("outbox = %v, want nothing", eventTypes(evs))
		}
	})
}

// TestOutboxExpiry runs the engine's expiry on a session past its deadline (the sweep that
// calls it is a background service): session:expired at the deadline, with the conversation
// resolved silently, and the session then refuses every call.
func TestOutboxExpiry(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		in := srv.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: ptr(60)})
		sid := in.NewSession()
		in.Send(sid, "hello")
		deadline := clk.Now().Add(time.Minute)
		expire := func() {
			t.Helper()
			if err := srv.Main.DB.Update(t.Context(), func(tx store.Tx) error { return srv.Main.Chat.Expire(tx, sid) }); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(59 * time.Second)
		expire() // not due: no-op
		if evs := events(t, srv, in.ID); len(evs) != 0 {
			t.Fatalf("expiry before the deadline wrote %v", eventTypes(evs))
		}
		clk.Advance(5 * time.Second)
		expire()
		expire() // already expired: no-op
		evs := events(t, srv, in.ID)
		if got := eventTypes(evs); !slices.Equal(got, []string{parley.EventSessionExpired}) {
			t.Fatalf("outbox = %v", got)
		}
		if got := topLevelKeys(t, evs[0].Body); !slices.Equal(got, []string{"event_type", "request_id", "session_id", "integration_id", "desk_id", "context", "timestamp"}) {
			t.Errorf("session:expired keys = %v", got)
		}
		var body map[string]any
		decodeJSON(t, evs[0].Body, &body)
		if body["timestamp"] != float64(deadline.UnixMilli()) {
			t.Errorf("timestamp %v, want the deadline %d", body["timestamp"], deadline.UnixMilli())
		}
		s := session(t, in, sid)
		if s["status"] != "expired" || s["ended_at"] != float64(deadline.UnixMilli()) || s["conversation"].(map[string]any)["status"] != "resolved" {
			t.Errorf("session = %v", s)
		}
	})
}
