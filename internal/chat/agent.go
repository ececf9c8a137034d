package chat

import (
	"encoding/json"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// The operations of parley's own human agents (SPEC §4). An agent names a conversation by its
// ID; it must be of an integration the agent may work in, or it does not exist for them. Acting
// on it (anything but reading) needs it to be its session's current conversation, open, in an
// active session. Who holds a conversation is decided under the session's lock, so of two
// agents joining at once exactly one gets it and the other a conflict naming the winner.

// Typing actions (message:compose).
const (
	TypingStart = "start"
	TypingStop  = "stop"
)

// SignalTyping is the kind of the signal an agent's typing sends the other agents' consoles.
const SignalTyping = "typing"

// Typing is the data of a typing signal.
type Typing struct {
	Agent  *parley.AgentRef `json:"agent"`
	Action string           `json:"action"`
}

// Join gives the conversation to agent a (conversation:member_join): from the queue, from the
// brain (which stops answering it) or from the integrator's own agent. A conversation another
// agent holds is a conflict; one a already holds stays as it is.
func (e *Engine) Join(tx store.Tx, a *parley.Agent, conversationID string) error {
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return err
	}
	joined, err := join(tx, in, s, a, now)
	if err != nil || !joined {
		return err
	}
	return tx.UpdateSession(s)
}

// join assigns s's current conversation to a and tells the integrator: first which user
// messages the desk has now received (when it comes from the brain or the integrator's agent),
// then who joined. It reports false, changing nothing, when a already holds it.
func join(tx store.Tx, in *parley.Integration, s *parley.Session, a *parley.Agent, now time.Time) (bool, error) {
	c := s.Conversation
	if c.HandledBy == parley.HandledByAgent {
		if c.AssigneeID == a.ID {
			return false, nil
		}
		return false, taken(tx, c)
	}
	c.HandledBy, c.AssigneeID, c.UpdatedAt = parley.HandledByAgent, a.ID, now
	if err := tx.UpdateConversation(c); err != nil {
		return false, err
	}
	if err := deliverToDesk(tx, in, s, now); err != nil {
		return false, err
	}
	return true, emit(tx, in, s, parley.EventMemberJoin, now, parley.EventFields{Agent: a.Ref()})
}

// taken is the conflict of acting on a conversation another agent holds.
func taken(tx store.Tx, c *parley.Conversation) error {
	holder, err := agentRef(tx, c.AssigneeID)
	if err != nil {
		return err
	}
	return parley.Errorf(parley.EConflict, "%s has already joined this conversation", holder.Name)
}

// agentRef names the agent with the ID, even one whose row is gone.
func agentRef(tx store.ReadTx, id string) (*parley.AgentRef, error) {
	a, err := tx.Agent(id)
	if parley.IsCode(err, parley.ENotFound) {
		return &parley.AgentRef{ID: id, Name: "another agent"}, nil
	}
	if err != nil {
		return nil, err
	}
	return a.Ref(), nil
}

// Leave gives the conversation back to the queue (conversation:member_leave). Only the agent who
// holds it may leave it.
func (e *Engine) Leave(tx store.Tx, a *parley.Agent, conversationID string) error {
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return err
	}
	c := s.Conversation
	if c.HandledBy != parley.HandledByAgent || c.AssigneeID != a.ID {
		return parley.Errorf(parley.EConflict, "you have not joined this conversation, so you cannot leave it")
	}
	c.HandledBy, c.AssigneeID, c.UpdatedAt = parley.HandledByQueue, "", now
	if err := tx.UpdateConversation(c); err != nil {
		return err
	}
	if err := emit(tx, in, s, parley.EventMemberLeave, now, parley.EventFields{Agent: a.Ref()}); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// Transfer gives the conversation to another agent: the agent who held it leaves
// (conversation:member_leave), then the new one joins (conversation:member_join). Any agent who
// may see the conversation may transfer it, to an agent who may work in its integration: it is
// how a conversation changes hands deliberately (Join never takes one from another agent).
func (e *Engine) Transfer(tx store.Tx, a *parley.Agent, conversationID, toAgentID string) error {
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return err
	}
	to, err := tx.Agent(toAgentID)
	if parley.IsCode(err, parley.ENotFound) {
		return parley.Errorf(parley.EInvalid, "agent_id: no such agent")
	}
	if err != nil {
		return err
	}
	if !to.CanAccess(in.ID) {
		return parley.Errorf(parley.EInvalid, "agent_id: %s does not work in this conversation's integration", to.Name)
	}
	c := s.Conversation
	if c.HandledBy == parley.HandledByAgent {
		if c.AssigneeID == to.ID {
			return nil
		}
		from, err := agentRef(tx, c.AssigneeID)
		if err != nil {
			return err
		}
		if err := emit(tx, in, s, parley.EventMemberLeave, now, parley.EventFields{Agent: from}); err != nil {
			return err
		}
		c.HandledBy, c.AssigneeID = parley.HandledByQueue, ""
	}
	if _, err := join(tx, in, s, to, now); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// Resolve resolves the conversation (conversation:closed, closed_by agent). Resolving one that
// is already resolved changes nothing.
func (e *Engine) Resolve(tx store.Tx, a *parley.Agent, conversationID string) error {
	now := e.Now()
	s, in, err := e.locate(tx, a, conversationID)
	if err != nil {
		return err
	}
	if s.ConversationID != conversationID || s.Conversation.Status == parley.ConversationResolved {
		return nil
	}
	if !s.ActiveAt(now) {
		return errSessionEnded
	}
	return resolve(tx, in, s, ClosedBy{By: "agent", Agent: a.Ref()}, now)
}

// AgentMessage is a message an agent writes.
type AgentMessage struct {
	Text        string
	Attachments []parley.Attachment
}

// PostAgentMessage records an agent's message and sends it to the integrator (message:send).
// An agent who writes in a conversation nobody holds joins it first; one another agent holds
// is a conflict. The caller has checked the content (parley.CheckMessage).
func (e *Engine) PostAgentMessage(tx store.Tx, a *parley.Agent, conversationID string, msg AgentMessage) (*parley.Message, error) {
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(tx, s, msg.Attachments, now); err != nil {
		return nil, err
	}
	if _, err := join(tx, in, s, a, now); err != nil {
		return nil, err
	}
	m := &parley.Message{ID: parley.NewID(), SessionID: s.ID, ConversationID: s.ConversationID, Author: parley.AuthorAgent,
		Agent: a.Ref(), Text: msg.Text, Attachments: msg.Attachments, CreatedAt: now}
	if err := tx.InsertMessage(m); err != nil {
		return nil, err
	}
	atts, err := e.OutboundAttachments(tx, m.Attachments)
	if err != nil {
		return nil, err
	}
	f := parley.EventFields{MessageID: m.ID, Agent: m.Agent, Output: &parley.Output{Responses: responses(m.Text, atts)}}
	if err := emit(tx, in, s, parley.EventAgentSend, now, f); err != nil {
		return nil, err
	}
	return m, tx.UpdateSession(s)
}

// response is one response of an agent's message, in the shapes of SPEC §6.
type response struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
	URL  string `json:"url,omitempty"`
	Name string `json:"name,omitempty"`
}

// responses renders an agent's message as output.responses: its text, then one media response
// per attachment (audio has no name in SPEC §6).
func responses(text string, atts []parley.Attachment) json.RawMessage {
	out := make([]response, 0, 1+len(atts))
	if text != "" {
		out = append(out, response{Type: "text", Text: text})
	}
	for _, a := range atts {
		r := response{Type: a.Type, URL: a.URL}
		if a.Type != "audio" {
			r.Name = a.Filename
			if r.Name == "" {
				r.Name = a.Title
			}
		}
		out = append(out, r)
	}
	b, err := parley.Marshal(out)
	if err != nil {
		panic("chat: encoding responses: " + err.Error()) // plain strings cannot fail to encode
	}
	return b
}

// OutboundAttachments returns attachments as a receiver can fetch them: uploaded files get a
// fresh download URL (the files package's resolver, set with ResolveFilesWith), attachments
// given by url go as they are. Every payload that carries a stored message's attachments out
// (webhooks, the console, the brain) goes through here.
func (e *Engine) OutboundAttachments(tx store.ReadTx, atts []parley.Attachment) ([]parley.Attachment, error) {
	if e.resolve == nil {
		return atts, nil
	}
	return e.resolve(tx, atts)
}

// SetTyping tells the integrator the agent started or stopped typing (message:compose), and the
// other agents' consoles with a signal. Only the agent who holds the conversation types in it;
// from anyone else it is ignored.
func (e *Engine) SetTyping(tx store.Tx, a *parley.Agent, conversationID, action string) error {
	if action != TypingStart && action != TypingStop {
		return parley.Errorf(parley.EInvalid, "action must be start or stop")
	}
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return err
	}
	if c := s.Conversation; c.HandledBy != parley.HandledByAgent || c.AssigneeID != a.ID {
		return nil
	}
	data, err := parley.Marshal(Typing{Agent: a.Ref(), Action: action})
	if err != nil {
		return err
	}
	tx.Signal(store.Signal{SessionID: s.ID, ConversationID: s.ConversationID, Kind: SignalTyping, Data: string(data)})
	if err := emit(tx, in, s, parley.EventCompose, now, parley.EventFields{Agent: a.Ref(), Action: action}); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// MarkRead records that the agent read the user messages of the conversation's session
// (message:read, with the IDs of those not read before) and returns them. Only the agent who
// holds the conversation reads for the desk: for anyone else, looking is not reading.
func (e *Engine) MarkRead(tx store.Tx, a *parley.Agent, conversationID string) ([]string, error) {
	now := e.Now()
	s, in, err := e.acting(tx, a, conversationID, now)
	if err != nil {
		return nil, err
	}
	if c := s.Conversation; c.HandledBy != parley.HandledByAgent || c.AssigneeID != a.ID {
		return nil, nil
	}
	ids, err := tx.MarkMessages(s.ID, parley.ReceiptRead, []string{parley.AuthorUser}, nil, now, now)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	if err := emit(tx, in, s, parley.EventRead, now, parley.EventFields{Agent: a.Ref(), MessageIDs: ids}); err != nil {
		return nil, err
	}
	return ids, tx.UpdateSession(s)
}

var errSessionEnded = parley.Errorf(parley.EConflict, "the session has ended")

// locate locks the session of a conversation agent a may see and returns it with its
// integration. A conversation of an integration a may not work in is as missing as one that
// does not exist, so nothing tells an agent what other integrations hold.
func (e *Engine) locate(tx store.Tx, a *parley.Agent, conversationID string) (*parley.Session, *parley.Integration, error) {
	c, err := tx.Conversation(conversationID)
	if parley.IsCode(err, parley.ENotFound) || (err == nil && !a.CanAccess(c.IntegrationID)) {
		return nil, nil, parley.Errorf(parley.ENotFound, "conversation not found")
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := tx.LockSession(c.SessionID)
	if err != nil {
		return nil, nil, err
	}
	in, err := tx.Integration(s.IntegrationID)
	return s, in, err
}

// AgentSession returns the session of a conversation agent a may act in now: current, open,
// in an active session. Files an agent uploads for a conversation belong to it.
func (e *Engine) AgentSession(tx store.Tx, a *parley.Agent, conversationID string) (*parley.Session, error) {
	s, _, err := e.acting(tx, a, conversationID, e.Now())
	return s, err
}

// acting is locate for an action: the conversation must be its session's current one, open, in
// an active session.
func (e *Engine) acting(tx store.Tx, a *parley.Agent, conversationID string, now time.Time) (*parley.Session, *parley.Integration, error) {
	s, in, err := e.locate(tx, a, conversationID)
	switch {
	case err != nil:
		return nil, nil, err
	case !s.ActiveAt(now):
		return nil, nil, errSessionEnded
	case s.ConversationID != conversationID || s.Conversation.Status != parley.ConversationOpen:
		return nil, nil, parley.Errorf(parley.EConflict, "the conversation is resolved")
	}
	return s, in, nil
}
