package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// TestReceipts checks messages/read and messages/delivered: they count only the brain's and
// agents' messages of the session that had no such receipt yet, by ID or up to a timestamp;
// unknown IDs are ignored; read implies delivered; and they send no webhook.
func TestReceipts(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		step := func() time.Time { clk.Advance(time.Second); return clk.Now() }

		step()
		user := in.Send(sid, "question")
		brain1 := insertReply(t, srv, sid, parley.AuthorBrain, step())
		brain2 := insertReply(t, srv, sid, parley.AuthorBrain, step())
		agent := insertReply(t, srv, sid, parley.AuthorAgent, step())
		t3 := clk.Now()
		brain3 := insertReply(t, srv, sid, parley.AuthorBrain, step())
		step()
		external := in.Call("POST", sp(sid, "/messages/agent"), agentMsg).Expect(t, http.StatusAccepted).Str(t, "message_id")
		other := in.NewSession()
		otherBrain := insertReply(t, srv, other, parley.AuthorBrain, clk.Now())
		evs := len(events(t, srv, in.ID))

		receipt := func(kind string, body map[string]any) int {
			t.Helper()
			r := in.Call("POST", sp(sid, "/messages/"+kind), body)
			return int(expectBody(t, r, http.StatusOK, "updated")["updated"].(float64))
		}
		stamps := func(id string) (delivered, read any) {
			t.Helper()
			for _, m := range history(t, in, sid) {
				if m["id"] == id {
					return m["delivered_at"], m["read_at"]
				}
			}
			t.Fatalf("message %s is not in the history", id)
			return nil, nil
		}

		for _, tc := range []struct {
			name string
			kind string
			body map[string]any
			want int
		}{
			{"read one brain message", "read", map[string]any{"message_ids": []string{brain1}}, 1},
			{"read it again", "read", map[string]any{"message_ids": []string{brain1}}, 0},
			{"delivered after read", "delivered", map[string]any{"message_ids": []string{brain1}}, 0},
			{"user, external and unknown IDs are not counted", "delivered", map[string]any{"message_ids": []string{user, external, parley.NewID()}}, 0},
			{"another session's message is not counted", "read", map[string]any{"message_ids": []string{otherBrain}}, 0},
			{"upper-case and repeated IDs count once", "delivered", map[string]any{"message_ids": []string{strings.ToUpper(brain2), brain2}}, 1},
			{"delivered up to a timestamp", "delivered", map[string]any{"timestamp": t3.UnixMilli()}, 1}, // agent; brain1, brain2 already
			{"read by IDs and timestamp together", "read", map[string]any{"message_ids": []string{brain3}, "timestamp": t3.UnixMilli()}, 3},
			{"everything is read now", "read", map[string]any{"timestamp": clk.Now().UnixMilli()}, 0},
		} {
			// Sequential: each step depends on the ones before.
			if got := receipt(tc.kind, tc.body); got != tc.want {
				t.Errorf("%s: updated = %d, want %d", tc.name, got, tc.want)
			}
		}

		for _, id := range []string{brain1, brain2, agent, brain3} {
			if d, r := stamps(id); d == nil || r == nil {
				t.Errorf("message %s: delivered_at %v, read_at %v", id, d, r)
			}
		}
		if d, r := stamps(external); d != nil || r != nil {
			t.Errorf("the external agent's message got receipts: %v %v", d, r)
		}
		if d, r := stamps(user); d != nil || r != nil {
			t.Errorf("the user's own message got receipts: %v %v", d, r)
		}
		for _, m := range history(t, in, other) {
			if m["delivered_at"] != nil || m["read_at"] != nil {
				t.Errorf("a receipt reached another session's message: %v", m)
			}
		}
		if n := len(events(t, srv, in.ID)); n != evs {
			t.Errorf("receipts wrote %d outbox events; they send no webhook", n-evs)
		}
	})
}

// TestReceiptsTimes checks the time a receipt records is the server's, not the caller's.
func TestReceiptsTimes(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv, clk := startFake(t, b)
		in := srv.NewIntegration(t, noSpec)
		sid := in.NewSession()
		reply := insertReply(t, srv, sid, parley.AuthorBrain, clk.Now())
		clk.Advance(time.Minute)
		in.Call("POST", sp(sid, "/messages/read"), map[string]any{"message_ids": []string{reply}}).Expect(t, http.StatusOK)
		for _, m := range history(t, in, sid) {
			want := float64(clk.Now().UnixMilli())
			if m["read_at"] != want || m["delivered_at"] != want {
				t.Errorf("receipt stamps = %v, %v; want %v", m["delivered_at"], m["read_at"], want)
			}
		}
	})
}
