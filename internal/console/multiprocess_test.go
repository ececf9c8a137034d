package console_test

import (
	"net/http"
	"testing"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestStreamAcrossProcesses runs two parley processes on one PostgreSQL database: an agent
// connected to process A sees, live, what happens through process B (a handover, the user's
// messages, another agent joining and typing).
func TestStreamAcrossProcesses(t *testing.T) {
	t.Parallel()
	dbURL := testenv.PostgresSchema(t)
	a := apptest.Start(t, apptest.Options{Backend: apptest.Postgres, DatabaseURL: dbURL})
	b := apptest.Start(t, apptest.Options{Backend: apptest.Postgres, DatabaseURL: dbURL})
	in := a.NewIntegration(t, admin.IntegrationSpec{})
	ann, bob := newAgent(t, a, "Ann Lee"), newAgent(t, a, "Bob Stone")
	annOnA := ann.openStream()

	// The integrator talks to process B.
	viaB := func(method, path string, body any) *apptest.Response {
		return b.Do(t, method, "/v1/custom/"+in.ID+path, body, "Authorization", "apikey "+in.Key)
	}
	sid := viaB("POST", "/sessions", map[string]any{}).Expect(t, http.StatusCreated).Str(t, "session_id")
	viaB("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{"text": "hello"}}).Expect(t, http.StatusAccepted)
	viaB("POST", "/sessions/"+sid+"/handover", nil).Expect(t, http.StatusOK)
	cid := conversationOf(t, in, sid)["id"].(string)
	annOnA.wait("the handover made on B", eventWait, conversationEvent(cid, func(c map[string]any) bool { return c["handled_by"] == "queue" }))

	bobOnB := bob.on(b)
	bobOnB.call("POST", "/conversations/"+cid+"/join", nil).Expect(t, http.StatusOK)
	annOnA.wait("Bob's join on B", eventWait, conversationEvent(cid, func(c map[string]any) bool { return c["handled_by"] == "agent" }))
	bobOnB.call("POST", "/conversations/"+cid+"/typing", map[string]any{"action": "start"}).Expect(t, http.StatusNoContent)
	annOnA.wait("Bob typing on B", eventWait, func(e event) bool { return e.Type == "typing" && e.Data["conversation_id"] == cid })
	m := viaB("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{"text": "still there?"}}).
		Expect(t, http.StatusAccepted).Str(t, "message_id")
	e := annOnA.wait("the user's message on B", eventWait, messageEvent(m, nil))
	if e.Data["message"].(map[string]any)["text"] != "still there?" {
		t.Errorf("message event: %v", e.Data)
	}
}
