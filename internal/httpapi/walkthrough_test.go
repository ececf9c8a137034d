package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/store"
)

// TestWalkthrough follows the seed document's examples end to end, as an integrator would.
func TestWalkthrough(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})

		r := in.Call("POST", "/sessions", map[string]any{
			"external_session_id": "order-12345",
			"channel_user_id":     "user-67890",
			"context": map[string]any{
				"user":     map[string]any{"display_name": "John Doe", "email": "john.doe@example.com"},
				"tags":     []string{"vip"},
				"order_id": "ORD-12345",
			},
		}).Expect(t, http.StatusCreated)
		body := r.JSON(t)
		sid := body["session_id"].(string)
		ctx := body["context"].(map[string]any)
		user := ctx["user"].(map[string]any)
		if user["custom_psid"] != "user-67890" || user["user_id"] == "" || ctx["order_id"] != "ORD-12345" {
			t.Errorf("context = %v", ctx)
		}
		if ctx["channels"].(map[string]any)["custom"].(map[string]any)["external_session_id"] != "order-12345" {
			t.Errorf("channels = %v", ctx["channels"])
		}
		if r.Header.Get("X-Request-Id") != body["request_id"] {
			t.Errorf("X-Request-Id %q != request_id %q", r.Header.Get("X-Request-Id"), body["request_id"])
		}

		ctx = in.Call("PATCH", "/sessions/"+sid+"/context", map[string]any{
			"user": map[string]any{"email": "john.updated@example.com"}, "tags": []string{"verified-user"}, "order_id": nil,
		}).Expect(t, http.StatusOK).JSON(t)["context"].(map[string]any)
		user = ctx["user"].(map[string]any)
		if user["email"] != "john.updated@example.com" || user["display_name"] != "John Doe" || ctx["order_id"] != nil {
			t.Errorf("merged context = %v", ctx)
		}

		in.Send(sid, "hello")
		in.Call("POST", "/sessions/"+sid+"/conversation/close", nil).Expect(t, http.StatusOK)
		in.Call("POST", "/sessions/"+sid+"/conversation/reopen", nil).Expect(t, http.StatusOK)
		in.Call("POST", "/sessions/"+sid+"/handover", nil).Expect(t, http.StatusOK)
		in.Call("POST", "/sessions/"+sid+"/close", nil).Expect(t, http.StatusOK)
		in.Call("POST", "/sessions/"+sid+"/close", nil).ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)

		got := in.Call("GET", "/sessions/"+sid, nil).Expect(t, http.StatusOK).JSON(t)["session"].(map[string]any)
		if got["status"] != "closed" {
			t.Errorf("status = %v", got["status"])
		}

		var events []*parley.Event
		srv.Main.DB.View(t.Context(), func(tx store.ReadTx) error {
			var err error
			events, err = tx.Events(store.EventFilter{IntegrationID: in.ID})
			return err
		})
		var types []string
		for i := len(events) - 1; i >= 0; i-- {
			types = append(types, events[i].Type)
		}
		want := []string{parley.EventConversationClosed, parley.EventConversationReopened, parley.EventDelivered, parley.EventSessionClosed}
		if len(types) != len(want) {
			t.Fatalf("outbox = %v, want %v", types, want)
		}
		for i := range want {
			if types[i] != want[i] {
				t.Fatalf("outbox = %v, want %v", types, want)
			}
		}
	})
}
