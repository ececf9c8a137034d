package console_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// TestHandoverToAgents follows a conversation from the API's handover through two agents to its
// resolution, checking every webhook the integrator receives, in order, and what each agent's
// live stream shows.
func TestHandoverToAgents(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{Name: ptr("Acme")})
		ann, bob := newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Stone")
		annStream, bobStream := ann.openStream(), bob.openStream()

		// The user talks to the brain, then asks for a human: the conversation reaches every
		// agent's stream as waiting in the queue.
		sid := in.Call("POST", "/sessions", map[string]any{"context": map[string]any{
			"user": map[string]any{"display_name": "John Doe", "email": "john@example.com"}, "order_id": "ORD-1"}}).
			Expect(t, http.StatusCreated).Str(t, "session_id")
		m1 := in.Send(sid, "Where is my order?")
		brainAnswered(t, in, sid)
		in.Call("POST", "/sessions/"+sid+"/handover", nil).Expect(t, http.StatusOK)
		cid := conversationOf(t, in, sid)["id"].(string)
		queued := func(c map[string]any) bool { return c["handled_by"] == "queue" }
		for _, s := range []*stream{annStream, bobStream} {
			e := s.wait("the handed-over conversation", eventWait, conversationEvent(cid, queued))
			if u := e.Data["user"].(map[string]any); u["name"] != "John Doe" || e.Data["integration_name"] != "Acme" || e.Data["unread"] != 1.0 {
				t.Errorf("queued conversation event: %v", e.Data)
			}
		}
		if q := ann.list("queue"); len(q) != 1 || q[0]["id"] != cid {
			t.Fatalf("Ann's queue: %v", q)
		}

		// Opening the history is not joining, and marks nothing read.
		hist := ann.call("GET", "/conversations/"+cid+"/messages", nil).Expect(t, http.StatusOK).JSON(t)["messages"].([]any)
		if len(hist) != 2 || hist[0].(map[string]any)["id"] != m1 || hist[0].(map[string]any)["delivered_at"] == nil ||
			hist[1].(map[string]any)["author"] != "brain" {
			t.Fatalf("history: %v", hist)
		}
		detail := ann.call("GET", "/conversations/"+cid, nil).Expect(t, http.StatusOK).JSON(t)["conversation"].(map[string]any)
		if detail["handled_by"] != "queue" || detail["context"].(map[string]any)["order_id"] != "ORD-1" {
			t.Errorf("conversation: %v", detail)
		}
		if ids := ann.call("POST", "/conversations/"+cid+"/read", nil).Expect(t, http.StatusOK).JSON(t)["message_ids"]; len(ids.([]any)) != 0 {
			t.Errorf("reading an unjoined conversation marked %v read", ids)
		}

		// Ann joins; the user writes; Ann answers, types, reads.
		c := ann.call("POST", "/conversations/"+cid+"/join", nil).Expect(t, http.StatusOK).JSON(t)["conversation"].(map[string]any)
		if c["handled_by"] != "agent" || c["assignee"].(map[string]any)["agent_id"] != ann.ID {
			t.Errorf("after join: %v", c)
		}
		bobStream.wait("Ann's join", eventWait, conversationEvent(cid, func(c map[string]any) bool { return c["handled_by"] == "agent" }))
		m2 := in.Send(sid, "It was due yesterday")
		annStream.wait("the user's message", eventWait, messageEvent(m2, nil))
		sent := ann.call("POST", "/conversations/"+cid+"/messages", map[string]any{"input": map[string]any{"text": "Let me check, John."}}).
			Expect(t, http.StatusCreated).JSON(t)["message"].(map[string]any)
		bobStream.wait("Ann's message", eventWait, messageEvent(sent["id"].(string), nil))
		ann.call("POST", "/conversations/"+cid+"/typing", map[string]any{"action": "start"}).Expect(t, http.StatusNoContent)
		bobStream.wait("Ann typing", eventWait, func(e event) bool {
			return e.Type == "typing" && e.Data["conversation_id"] == cid && e.Data["action"] == "start" &&
				e.Data["agent"].(map[string]any)["agent_id"] == ann.ID
		})
		ann.call("POST", "/conversations/"+cid+"/typing", map[string]any{"action": "stop"}).Expect(t, http.StatusNoContent)
		read := ann.call("POST", "/conversations/"+cid+"/read", nil).Expect(t, http.StatusOK).JSON(t)["message_ids"].([]any)
		if len(read) != 2 {
			t.Errorf("read %v, want both user messages", read)
		}
		annStream.wait("the read receipt", eventWait, messageEvent(m2, func(m map[string]any) bool { return m["read_at"] != nil }))

		// The user's side receives the agent's message.
		in.Call("POST", "/sessions/"+sid+"/messages/read", map[string]any{"message_ids": []string{sent["id"].(string)}}).Expect(t, http.StatusOK)
		annStream.wait("the user's read receipt", eventWait, messageEvent(sent["id"].(string), func(m map[string]any) bool { return m["read_at"] != nil }))

		// Ann transfers to Bob, who resolves.
		ann.call("POST", "/conversations/"+cid+"/transfer", map[string]any{"agent_id": bob.ID}).Expect(t, http.StatusOK)
		if mine := bob.list("mine"); len(mine) != 1 || mine[0]["id"] != cid {
			t.Errorf("Bob's conversations after the transfer: %v", mine)
		}
		c = bob.call("POST", "/conversations/"+cid+"/resolve", nil).Expect(t, http.StatusOK).JSON(t)["conversation"].(map[string]any)
		if c["status"] != "resolved" {
			t.Errorf("after resolve: %v", c)
		}
		annStream.wait("the resolution", eventWait, conversationEvent(cid, func(c map[string]any) bool { return c["status"] == "resolved" }))
		bob.call("POST", "/conversations/"+cid+"/resolve", nil).Expect(t, http.StatusOK) // again: nothing happens
		bob.call("POST", "/conversations/"+cid+"/messages", map[string]any{"input": map[string]any{"text": "late"}}).
			ExpectError(t, http.StatusConflict, parley.EConflict)

		// The next user message starts a new conversation, with the brain.
		in.Send(sid, "Thanks, one more thing")
		next := conversationOf(t, in, sid)
		if next["id"] == cid || next["handled_by"] != "brain" || next["status"] != "open" {
			t.Errorf("after the next message: %v", next)
		}
		annStream.wait("the new conversation", eventWait, conversationEvent(next["id"].(string), func(c map[string]any) bool { return c["handled_by"] == "brain" }))

		ds := sessionEvents(t, in, sid, 10)
		want := []string{parley.EventDelivered, parley.EventMemberJoin, parley.EventDelivered, parley.EventAgentSend,
			parley.EventCompose, parley.EventCompose, parley.EventRead, parley.EventMemberLeave, parley.EventMemberJoin,
			parley.EventConversationClosed}
		if got := types(ds); !slices.Equal(got[:min(len(got), len(want))], want) || len(got) != len(want) {
			t.Fatalf("webhooks:\n got %v\nwant %v", got, want)
		}
		annRef := map[string]any{"agent_id": ann.ID, "agent_name": ann.Name}
		bobRef := map[string]any{"agent_id": bob.ID, "agent_name": bob.Name}
		checks := []map[string]any{
			{"message_ids": []any{m1}},
			{"agent": annRef},
			{"message_ids": []any{m2}},
			{"message_id": sent["id"], "agent": annRef, "output": map[string]any{"responses": []any{map[string]any{"type": "text", "text": "Let me check, John."}}}},
			{"agent": annRef, "action": "start"},
			{"agent": annRef, "action": "stop"},
			{"agent": annRef, "message_ids": []any{m1, m2}},
			{"agent": annRef},
			{"agent": bobRef},
			{"status": "closed", "closed_by": "agent", "agent": bobRef},
		}
		for i, d := range ds {
			if !d.SignatureOK {
				t.Errorf("event %d (%s): bad signature", i, d.Type())
			}
			for k, v := range checks[i] {
				if !jsonEqual(d.Event[k], v) {
					t.Errorf("event %d (%s): %s = %v, want %v", i, d.Type(), k, d.Event[k], v)
				}
			}
			if d.Event["context"].(map[string]any)["order_id"] != "ORD-1" {
				t.Errorf("event %d: context %v", i, d.Event["context"])
			}
		}
		// Only the agent's own events went out: nothing for the new brain conversation.
		time.Sleep(100 * time.Millisecond)
		if n := len(sessionEvents(t, in, sid, 0)); n != len(want) {
			t.Errorf("%d webhooks, want %d", n, len(want))
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestJoinRace has two agents join one conversation at the same moment, many times: exactly one
// gets it, the other a conflict naming the winner, and the integrator hears of one join.
func TestJoinRace(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		agents := []*agent{newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Stone")}
		const rounds = 20
		var sids []string
		for range rounds {
			sid, cid := handedOver(t, in, "Racing User", "hello")
			sids = append(sids, sid)
			statuses := make([]*apptest.Response, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, a := range agents {
				wg.Go(func() {
					<-start
					statuses[i] = a.call("POST", "/conversations/"+cid+"/join", nil)
				})
			}
			close(start)
			wg.Wait()
			won := slices.IndexFunc(statuses, func(r *apptest.Response) bool { return r.Status == http.StatusOK })
			lost := 1 - won
			if won < 0 || statuses[lost].Status != http.StatusConflict {
				t.Fatalf("join statuses %d and %d, want one 200 and one 409", statuses[0].Status, statuses[1].Status)
			}
			if msg := statuses[lost].Str(t, "error_message"); msg != agents[won].Name+" has already joined this conversation" {
				t.Errorf("the loser is told %q", msg)
			}
			if got := conversationOf(t, in, sid)["assignee"]; got != agents[won].ID {
				t.Errorf("assignee %v, want the winner %s", got, agents[won].ID)
			}
		}
		for _, sid := range sids {
			ds := sessionEvents(t, in, sid, 2)
			if got := types(ds); !slices.Equal(got, []string{parley.EventDelivered, parley.EventMemberJoin}) {
				t.Errorf("session %s: webhooks %v", sid, got)
			}
		}
	})
}

// TestSendJoinsFirst checks that an agent who writes in a conversation nobody holds joins it
// first, taking it from the brain if need be, and cannot write in one another agent holds.
func TestSendJoinsFirst(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		ann, bob := newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Stone")
		send := func(a *agent, cid string, input map[string]any) *apptest.Response {
			return a.call("POST", "/conversations/"+cid+"/messages", map[string]any{"input": input})
		}

		// From the queue.
		sid, cid := handedOver(t, in, "Queue User", "hi")
		msg := send(ann, cid, map[string]any{"text": "Hello!", "attachments": []map[string]any{
			{"type": "image", "mime_type": "image/png", "url": "https://cdn.example.com/a.png", "filename": "a.png"},
			{"type": "audio", "mime_type": "audio/mpeg", "url": "https://cdn.example.com/b.mp3", "filename": "b.mp3"},
		}}).Expect(t, http.StatusCreated).JSON(t)["message"].(map[string]any)
		ds := sessionEvents(t, in, sid, 3)
		if got := types(ds); !slices.Equal(got, []string{parley.EventDelivered, parley.EventMemberJoin, parley.EventAgentSend}) {
			t.Errorf("webhooks %v", got)
		}
		wantResponses := []any{
			map[string]any{"type": "text", "text": "Hello!"},
			map[string]any{"type": "image", "url": "https://cdn.example.com/a.png", "name": "a.png"},
			map[string]any{"type": "audio", "url": "https://cdn.example.com/b.mp3"},
		}
		if got := ds[2].Event["output"].(map[string]any)["responses"]; !jsonEqual(got, wantResponses) {
			t.Errorf("responses %v, want %v", got, wantResponses)
		}
		if len(msg["attachments"].([]any)) != 2 || msg["author"] != "agent" {
			t.Errorf("the message: %v", msg)
		}
		send(bob, cid, map[string]any{"text": "me too"}).ExpectError(t, http.StatusConflict, parley.EConflict)
		bob.call("POST", "/conversations/"+cid+"/join", nil).ExpectError(t, http.StatusConflict, parley.EConflict)
		bob.call("POST", "/conversations/"+cid+"/leave", nil).ExpectError(t, http.StatusConflict, parley.EConflict)

		// From the brain: the user's messages reach the desk, then the agent joins.
		sid = in.NewSession()
		m := in.Send(sid, "hello bot")
		cid = conversationOf(t, in, sid)["id"].(string)
		send(bob, cid, map[string]any{"text": "A human here."}).Expect(t, http.StatusCreated)
		ds = sessionEvents(t, in, sid, 3)
		if got := types(ds); !slices.Equal(got, []string{parley.EventDelivered, parley.EventMemberJoin, parley.EventAgentSend}) {
			t.Errorf("webhooks %v", got)
		}
		if !jsonEqual(ds[0].Event["message_ids"], []any{m}) {
			t.Errorf("delivered %v", ds[0].Event["message_ids"])
		}

		// From the integrator's own agent.
		sid = in.NewSession()
		in.Call("POST", "/sessions/"+sid+"/messages/agent", map[string]any{"input": map[string]any{"text": "I am external"},
			"agent": map[string]any{"agent_id": "ext-1", "agent_name": "Eve"}}).Expect(t, http.StatusAccepted)
		cid = conversationOf(t, in, sid)["id"].(string)
		ann.call("POST", "/conversations/"+cid+"/join", nil).Expect(t, http.StatusOK)
		if got := conversationOf(t, in, sid); got["handled_by"] != "agent" || got["assignee"] != ann.ID {
			t.Errorf("after joining an external conversation: %v", got)
		}

		// Bad input.
		send(ann, cid, map[string]any{}).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
		send(ann, cid, map[string]any{"text": "x", "attachments": []map[string]any{{"type": "image", "url": "javascript:alert(1)", "mime_type": "image/png"}}}).
			ExpectError(t, http.StatusBadRequest, parley.EInvalid)
		ann.call("POST", "/conversations/"+cid+"/typing", map[string]any{"action": "dance"}).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
		ann.call("POST", "/conversations/"+cid+"/transfer", map[string]any{"agent_id": parley.NewID()}).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	})
}

// TestLeaveAndTransfer checks leaving (back to the queue, by the holder only), transferring a
// queued conversation (the target joins, nobody leaves), and typing by an agent who does not
// hold the conversation (ignored).
func TestLeaveAndTransfer(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		ann, bob := newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Stone")
		sid, cid := handedOver(t, in, "John Doe", "hi")

		ann.call("POST", "/conversations/"+cid+"/transfer", map[string]any{"agent_id": bob.ID}).Expect(t, http.StatusOK)
		ann.call("POST", "/conversations/"+cid+"/typing", map[string]any{"action": "start"}).Expect(t, http.StatusNoContent)
		ann.call("POST", "/conversations/"+cid+"/leave", nil).ExpectError(t, http.StatusConflict, parley.EConflict)
		c := bob.call("POST", "/conversations/"+cid+"/leave", nil).Expect(t, http.StatusOK).JSON(t)["conversation"].(map[string]any)
		if c["handled_by"] != "queue" || c["assignee"] != nil {
			t.Errorf("after leaving: %v", c)
		}
		if q := ann.list("queue"); len(q) != 1 || q[0]["id"] != cid {
			t.Errorf("the queue after Bob left: %v", q)
		}
		// Resolving needs no holder.
		ann.call("POST", "/conversations/"+cid+"/resolve", nil).Expect(t, http.StatusOK)
		ds := sessionEvents(t, in, sid, 4)
		want := []string{parley.EventDelivered, parley.EventMemberJoin, parley.EventMemberLeave, parley.EventConversationClosed}
		if got := types(ds); !slices.Equal(got, want) {
			t.Fatalf("webhooks %v, want %v", got, want)
		}
		bobRef := map[string]any{"agent_id": bob.ID, "agent_name": bob.Name}
		if !jsonEqual(ds[1].Event["agent"], bobRef) || !jsonEqual(ds[2].Event["agent"], bobRef) {
			t.Errorf("join %v and leave %v should name Bob", ds[1].Event["agent"], ds[2].Event["agent"])
		}
		// Acting on a resolved conversation is a conflict; reading it still works.
		ann.call("POST", "/conversations/"+cid+"/join", nil).ExpectError(t, http.StatusConflict, parley.EConflict)
		ann.call("GET", "/conversations/"+cid+"/messages", nil).Expect(t, http.StatusOK)
		ann.call("GET", "/conversations/"+parley.NewID(), nil).ExpectError(t, http.StatusNotFound, parley.ENotFound)
		ann.call("GET", "/conversations/not-an-id", nil).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	})
}
