package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func newAgent(name, email string, integrations ...string) *parley.Agent {
	return &parley.Agent{ID: parley.NewID(), Email: email, Name: name, PasswordHash: "$argon2id$x",
		Integrations: integrations, CreatedAt: now, UpdatedAt: now}
}

func createAgent(t *testing.T, s store.Store, name, email string, integrations ...string) *parley.Agent {
	t.Helper()
	a := newAgent(name, email, integrations...)
	update(t, s, func(tx store.Tx) error { return tx.CreateAgent(a) })
	return a
}

func testAgentRoundTrip(t *testing.T, h Harness) {
	s := h.Open(t)
	in1, in2 := createIntegration(t, s), createIntegration(t, s)
	zoe := createAgent(t, s, "Zoë Ünal", "zoe@example.com", in1.ID, in2.ID)
	ann := newAgent("Ann", "ann@example.com")
	ann.Avatar = "https://example.com/ann.png"
	ann.PasswordHash = ""
	update(t, s, func(tx store.Tx) error { return tx.CreateAgent(ann) })

	for _, want := range []*parley.Agent{zoe, ann} {
		equal(t, "Agent", read(t, s, func(tx store.ReadTx) (*parley.Agent, error) { return tx.Agent(want.ID) }), want)
		equal(t, "AgentByEmail", read(t, s, func(tx store.ReadTx) (*parley.Agent, error) { return tx.AgentByEmail(want.Email) }), want)
	}
	equal(t, "Agents", read(t, s, func(tx store.ReadTx) ([]*parley.Agent, error) { return tx.Agents() }), []*parley.Agent{ann, zoe})

	dup := newAgent("Other Ann", "ann@example.com")
	err := s.Update(t.Context(), func(tx store.Tx) error { return tx.CreateAgent(dup) })
	wantCode(t, "an email taken twice", err, parley.EConflict)

	for _, id := range []string{parley.NewID(), "not-a-uuid ✗"} {
		err := readErr(t, s, func(tx store.ReadTx) error { _, err := tx.Agent(id); return err })
		wantCode(t, "Agent("+id+")", err, parley.ENotFound)
	}
	err = readErr(t, s, func(tx store.ReadTx) error { _, err := tx.AgentByEmail("nobody@example.com"); return err })
	wantCode(t, "AgentByEmail of nobody", err, parley.ENotFound)
}

func testAgentTokens(t *testing.T, h Harness) {
	s := h.Open(t)
	ann := createAgent(t, s, "Ann", "ann@example.com")
	bob := createAgent(t, s, "Bob", "bob@example.com")
	plain1, k1 := parley.NewAgentToken(ann.ID, now)
	_, k2 := parley.NewAgentToken(ann.ID, now.Add(time.Second))
	_, k3 := parley.NewAgentToken(bob.ID, now)
	update(t, s, func(tx store.Tx) error {
		return firstErr(tx.CreateAgentToken(k1), tx.CreateAgentToken(k2), tx.CreateAgentToken(k3))
	})
	got := read(t, s, func(tx store.ReadTx) (*parley.Agent, error) { return tx.AgentByToken(parley.HashSecret(plain1)) })
	equal(t, "AgentByToken", got, ann)
	equal(t, "AgentTokens", read(t, s, func(tx store.ReadTx) ([]*parley.AgentToken, error) { return tx.AgentTokens(ann.ID) }),
		[]*parley.AgentToken{k1, k2})
	err := readErr(t, s, func(tx store.ReadTx) error { _, err := tx.AgentByToken(parley.HashSecret("prla_wrong")); return err })
	wantCode(t, "AgentByToken of an unknown token", err, parley.ENotFound)

	// Revoking: only the agent's own tokens, by their ID; anything else is not found and
	// removes nothing.
	update(t, s, func(tx store.Tx) error { return tx.DeleteAgentToken(ann.ID, k1.ID) })
	err = readErr(t, s, func(tx store.ReadTx) error { _, err := tx.AgentByToken(parley.HashSecret(plain1)); return err })
	wantCode(t, "AgentByToken of a revoked token", err, parley.ENotFound)
	for what, id := range map[string][2]string{
		"the token again":         {ann.ID, k1.ID},
		"another agent's token":   {ann.ID, k3.ID},
		"a token through another": {bob.ID, k2.ID},
		"an unknown token":        {ann.ID, parley.NewID()},
		"a malformed token ID":    {ann.ID, "prla_x"},
	} {
		err := s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteAgentToken(id[0], id[1]) })
		wantCode(t, "DeleteAgentToken of "+what, err, parley.ENotFound)
	}
	equal(t, "AgentTokens after one was revoked", read(t, s, func(tx store.ReadTx) ([]*parley.AgentToken, error) { return tx.AgentTokens(ann.ID) }),
		[]*parley.AgentToken{k2})
	equal(t, "the other agent's tokens", read(t, s, func(tx store.ReadTx) ([]*parley.AgentToken, error) { return tx.AgentTokens(bob.ID) }),
		[]*parley.AgentToken{k3})
}

func testAgentLogins(t *testing.T, h Harness) {
	s := h.Open(t)
	ann := createAgent(t, s, "Ann", "ann@example.com")
	plain, l := parley.NewAgentLogin(ann.ID, now, now.Add(time.Hour))
	_, old := parley.NewAgentLogin(ann.ID, now.Add(-2*time.Hour), now.Add(-time.Hour))
	update(t, s, func(tx store.Tx) error { return firstErr(tx.CreateAgentLogin(l), tx.CreateAgentLogin(old)) })
	hash := parley.HashSecret(plain)
	got := read(t, s, func(tx store.ReadTx) (*parley.Agent, error) { return tx.AgentByLogin(hash, now.Add(time.Minute)) })
	equal(t, "AgentByLogin", got, ann)
	for name, tc := range map[string]struct {
		hash []byte
		at   time.Time
	}{
		"at its expiry":  {hash, now.Add(time.Hour)},
		"an expired one": {old.Hash, now},
		"an unknown one": {parley.HashSecret("x"), now},
	} {
		err := readErr(t, s, func(tx store.ReadTx) error { _, err := tx.AgentByLogin(tc.hash, tc.at); return err })
		wantCode(t, "AgentByLogin of "+name, err, parley.ENotFound)
	}

	var n int
	update(t, s, func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteExpiredAgentLogins(now, 10)
		return err
	})
	if n != 1 {
		t.Errorf("DeleteExpiredAgentLogins deleted %d, want 1", n)
	}
	update(t, s, func(tx store.Tx) error { return firstErr(tx.DeleteAgentLogin(hash), tx.DeleteAgentLogin(hash)) })
	err := readErr(t, s, func(tx store.ReadTx) error { _, err := tx.AgentByLogin(hash, now); return err })
	wantCode(t, "AgentByLogin after DeleteAgentLogin", err, parley.ENotFound)
}

// testConversationList checks the console's inbox queries: which conversations each filter
// keeps, in which order, with their session's newest message, unread count and assignee.
func testConversationList(t *testing.T, h Harness) {
	s := h.Open(t)
	in1, in2 := createIntegration(t, s), createIntegration(t, s)
	ann := createAgent(t, s, "Ann", "ann@example.com")
	at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }

	// queued (in1, waiting since minute 1, two unread user messages), mine (in1, with Ann),
	// brain (in2), resolved (in2), and an old conversation of the queued session.
	queued, mine, brain, resolved := newSession(in1), newSession(in1), newSession(in2), newSession(in2)
	oldConv := queued.Conversation
	oldConv.Status, oldConv.ResolvedAt = parley.ConversationResolved, at(0)
	queuedConv := &parley.Conversation{ID: parley.NewID(), SessionID: queued.ID, IntegrationID: in1.ID,
		Status: parley.ConversationOpen, HandledBy: parley.HandledByQueue, CreatedAt: at(1), UpdatedAt: at(1)}
	mine.Conversation.HandledBy, mine.Conversation.AssigneeID, mine.Conversation.UpdatedAt = parley.HandledByAgent, ann.ID, at(2)
	brain.Conversation.UpdatedAt = at(3)
	resolved.Conversation.Status, resolved.Conversation.UpdatedAt = parley.ConversationResolved, at(4)
	resolved.ExternalSessionID = "ext-9"
	update(t, s, func(tx store.Tx) error {
		for _, sess := range []*parley.Session{queued, mine, brain, resolved} {
			if err := insertSession(tx, sess); err != nil {
				return err
			}
		}
		queued.ConversationID, queued.Conversation = queuedConv.ID, queuedConv
		return firstErr(tx.CreateConversation(queuedConv), tx.UpdateSession(queued))
	})
	old := newMessage(queued, parley.AuthorUser, "earlier", at(0))
	old.ConversationID = oldConv.ID
	u1, u2 := newMessage(queued, parley.AuthorUser, "help", at(1)), newMessage(queued, parley.AuthorUser, "anyone?", at(2))
	read1 := newMessage(mine, parley.AuthorUser, "hi", at(1))
	read1.ReadAt = at(2)
	reply := newMessage(mine, parley.AuthorAgent, "hello", at(3))
	reply.Agent = ann.Ref()
	update(t, s, func(tx store.Tx) error {
		return firstErr(tx.InsertMessage(old), tx.InsertMessage(u1), tx.InsertMessage(u2), tx.InsertMessage(read1), tx.InsertMessage(reply))
	})

	list := func(f store.ConversationFilter) []*store.ConversationSummary {
		t.Helper()
		return read(t, s, func(tx store.ReadTx) ([]*store.ConversationSummary, error) { return tx.ConversationList(f) })
	}
	convIDs := func(l []*store.ConversationSummary) []string {
		return ids(l, func(c *store.ConversationSummary) string { return c.Conversation.ID })
	}
	tests := []struct {
		name string
		f    store.ConversationFilter
		want []*parley.Conversation
	}{
		{"all open, newest first", store.ConversationFilter{}, []*parley.Conversation{brain.Conversation, mine.Conversation, queuedConv}},
		{"oldest first", store.ConversationFilter{OldestFirst: true}, []*parley.Conversation{queuedConv, mine.Conversation, brain.Conversation}},
		{"limit", store.ConversationFilter{Limit: 1}, []*parley.Conversation{brain.Conversation}},
		{"queue", store.ConversationFilter{HandledBy: parley.HandledByQueue}, []*parley.Conversation{queuedConv}},
		{"mine", store.ConversationFilter{HandledBy: parley.HandledByAgent, AssigneeID: ann.ID}, []*parley.Conversation{mine.Conversation}},
		{"someone else's", store.ConversationFilter{AssigneeID: parley.NewID()}, nil},
		{"one integration", store.ConversationFilter{IntegrationIDs: []string{in2.ID}}, []*parley.Conversation{brain.Conversation}},
		{"both integrations", store.ConversationFilter{IntegrationIDs: []string{in1.ID, in2.ID}, HandledBy: parley.HandledByBrain},
			[]*parley.Conversation{brain.Conversation}},
		{"by ID, resolved too", store.ConversationFilter{IDs: []string{resolved.ConversationID, oldConv.ID, queuedConv.ID}},
			[]*parley.Conversation{resolved.Conversation, queuedConv, oldConv}},
		{"by ID and integration", store.ConversationFilter{IDs: []string{resolved.ConversationID, queuedConv.ID}, IntegrationIDs: []string{in1.ID}},
			[]*parley.Conversation{queuedConv}},
	}
	for _, tc := range tests {
		got := list(tc.f)
		equal(t, tc.name, convIDs(got), ids(tc.want, func(c *parley.Conversation) string { return c.ID }))
	}

	byID := map[string]*store.ConversationSummary{}
	for _, sum := range list(store.ConversationFilter{IDs: []string{queuedConv.ID, oldConv.ID, mine.ConversationID, resolved.ConversationID}}) {
		byID[sum.Conversation.ID] = sum
	}
	q := byID[queuedConv.ID]
	equal(t, "queued conversation", q.Conversation, queuedConv)
	equal(t, "queued: newest message", q.Last, u2)
	if q.Unread != 2 || q.IntegrationName != in1.Name || q.SessionStatus != parley.SessionActive || q.Assignee != nil ||
		string(q.Context) != string(queued.Context) {
		t.Errorf("queued summary: %s", dump(q))
	}
	if o := byID[oldConv.ID]; o.Unread != 1 || o.Last.ID != u2.ID {
		t.Errorf("old conversation: unread %d (want 1), last %v (want the session's newest)", o.Unread, o.Last)
	}
	m := byID[mine.ConversationID]
	equal(t, "mine: assignee", m.Assignee, &parley.AgentRef{ID: ann.ID, Name: "Ann"})
	equal(t, "mine: newest message", m.Last, reply)
	if m.Unread != 0 {
		t.Errorf("mine: unread %d, want 0", m.Unread)
	}
	if r := byID[resolved.ConversationID]; r.Last != nil || r.ExternalSessionID != "ext-9" {
		t.Errorf("resolved summary: %s", dump(r))
	}

	counts := func(ins []string, agent string) store.ConversationCounts {
		return read(t, s, func(tx store.ReadTx) (store.ConversationCounts, error) { return tx.ConversationCounts(ins, agent) })
	}
	equal(t, "counts for Ann", counts(nil, ann.ID), store.ConversationCounts{Queue: 1, Mine: 1, Open: 3})
	equal(t, "counts for another agent", counts(nil, parley.NewID()), store.ConversationCounts{Queue: 1, Mine: 0, Open: 3})
	equal(t, "counts in in2", counts([]string{in2.ID}, ann.ID), store.ConversationCounts{Queue: 0, Mine: 0, Open: 1})

	recent := read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.RecentMessages(queued.ID, 2) })
	equal(t, "RecentMessages", ids(recent, messageID), []string{u1.ID, u2.ID})
	recent = read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.RecentMessages(queued.ID, 10) })
	equal(t, "RecentMessages of all", ids(recent, messageID), []string{old.ID, u1.ID, u2.ID})
}

// testSignals checks that a signal reaches the watchers with its commit, and never without it.
func testSignals(t *testing.T, h Harness) {
	f := setup(t, h)
	r := record(f.s)
	sig := store.Signal{SessionID: f.sess.ID, ConversationID: f.sess.ConversationID, Kind: "typing",
		Data: `{"agent":{"agent_id":"a","agent_name":"Zoë \"Z\""},"action":"start"}`}
	err := f.s.Update(t.Context(), func(tx store.Tx) error { tx.Signal(store.Signal{Kind: "lost"}); return errFail })
	if err != errFail {
		t.Fatalf("failing Update: %v", err)
	}
	update(t, f.s, func(tx store.Tx) error { tx.Signal(sig); return nil })
	equal(t, "changes seen", r.barrier(t, f.s), []*store.Change{{Signals: []store.Signal{sig}}})

	if h.OpenPair == nil {
		return
	}
	a, b := h.OpenPair(t)
	rb := record(b)
	waitListening(t, a, rb)
	update(t, a, func(tx store.Tx) error { tx.Signal(sig); return nil })
	cs := rb.waitFor(t, "the remote signal", func(cs []*store.Change) bool {
		return slices.ContainsFunc(cs, func(c *store.Change) bool { return len(c.Signals) > 0 })
	})
	i := slices.IndexFunc(cs, func(c *store.Change) bool { return len(c.Signals) > 0 })
	equal(t, "the remote signal", cs[i], &store.Change{Remote: true, Signals: []store.Signal{sig}})
}
