// Package chat is the lifecycle of sessions and conversations (SPEC §2) in one place. Every
// change to a session, its conversations or its messages, whoever asks for it (the inbound API,
// the brain, an agent, the expiry sweep), is one of the operations here. Each runs inside a
// store transaction the caller opens and writes the webhook events it causes into the outbox in
// that same transaction, so a change and its events commit together or not at all.
//
// It must never open, commit or roll back a transaction, and never do I/O besides the Tx: on
// SQLite an operation runs inside the single writer, where waiting would stall every request.
package chat

import (
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/store"
)

// Engine applies the lifecycle rules. It holds no state besides its clock and how to resolve
// uploaded files for outbound payloads.
type Engine struct {
	now     func() time.Time
	resolve Resolver
}

// Resolver turns stored attachments into ones a receiver can fetch (files.Service.Resolve).
type Resolver func(tx store.ReadTx, atts []parley.Attachment) ([]parley.Attachment, error)

// ResolveFilesWith sets how uploaded files in attachments become download URLs.
func (e *Engine) ResolveFilesWith(r Resolver) { e.resolve = r }

// New returns an Engine reading time from clock (time.Now in production, a fake in tests).
func New(clock func() time.Time) *Engine {
	if clock == nil {
		clock = time.Now
	}
	return &Engine{now: clock}
}

// Now returns the engine's current time, truncated to the millisecond precision stores keep.
func (e *Engine) Now() time.Time { return e.now().Truncate(time.Millisecond) }

// NewSession is a request to open a session.
type NewSession struct {
	ExternalSessionID string
	ChannelUserID     string
	Context           map[string]any // may be nil
}

// CreateSession opens a session with an open conversation handled by the brain.
func (e *Engine) CreateSession(tx store.Tx, in *parley.Integration, req NewSession) (*parley.Session, error) {
	now := e.Now()
	ctx := parley.EncodeObject(parley.NewSessionContext(req.Context, req.ChannelUserID, req.ExternalSessionID))
	if len(ctx) > parley.MaxContextBytes {
		return nil, parley.Errorf(parley.EInvalid, "context is larger than %d bytes", parley.MaxContextBytes)
	}
	s := &parley.Session{
		ID:                parley.NewID(),
		IntegrationID:     in.ID,
		ExternalSessionID: req.ExternalSessionID,
		Status:            parley.SessionActive,
		Context:           ctx,
		CreatedAt:         now,
	}
	s.Partition = parley.PartitionOf(s.ID)
	touch(s, in, now)
	c := newConversation(s, parley.HandledByBrain, now)
	if err := tx.CreateSession(s); err != nil {
		return nil, err
	}
	if err := tx.CreateConversation(c); err != nil {
		return nil, err
	}
	return s, nil
}

// UpdateContext merges patch into the session's context and returns the whole new context.
func (e *Engine) UpdateContext(tx store.Tx, in *parley.Integration, sessionID string, patch map[string]any) ([]byte, error) {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return nil, err
	}
	if err := mergeContext(tx, s, patch); err != nil {
		return nil, err
	}
	touch(s, in, now)
	return s.Context, tx.UpdateSession(s)
}

// CloseSession ends a session at the integrator's request.
func (e *Engine) CloseSession(tx store.Tx, in *parley.Integration, sessionID string) error {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return err
	}
	return end(tx, in, s, parley.SessionClosed, now, parley.EventSessionClosed, parley.EventFields{Reason: "api"})
}

// Expire ends a session whose deadline has passed, with the deadline as the time it happened.
// It is a no-op for a session that is no longer active or whose deadline moved.
func (e *Engine) Expire(tx store.Tx, sessionID string) error {
	now := e.Now()
	s, err := tx.LockSession(sessionID)
	if err != nil {
		return err
	}
	if s.Status != parley.SessionActive || now.Before(s.ExpiresAt) {
		return nil
	}
	in, err := tx.Integration(s.IntegrationID)
	if err != nil {
		return err
	}
	return end(tx, in, s, parley.SessionExpired, s.ExpiresAt, parley.EventSessionExpired, parley.EventFields{})
}

// end closes or expires a session. Its open conversation is resolved with it: nobody can answer
// a session that is over, and the console must stop offering it. Only the session's event is
// sent; it says all there is to say.
func end(tx store.Tx, in *parley.Integration, s *parley.Session, status string, at time.Time, event string, f parley.EventFields) error {
	s.Status, s.EndedAt = status, at
	if c := s.Conversation; c.Status == parley.ConversationOpen {
		c.Status, c.ResolvedAt, c.UpdatedAt = parley.ConversationResolved, at, at
		if err := tx.UpdateConversation(c); err != nil {
			return err
		}
	}
	if err := emit(tx, in, s, event, at, f); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// UserMessage is a message from the end user.
type UserMessage struct {
	Text        string
	Attachments []parley.Attachment
	Context     map[string]any // merged into the session's context before the message is handled
}

// PostUserMessage records a user message. In a brain-handled conversation it also records the
// work for the brain, in the same transaction; with humans it reaches the desk at once. After a
// resolved conversation, the message starts a new one, handled by the brain.
func (e *Engine) PostUserMessage(tx store.Tx, in *parley.Integration, sessionID string, msg UserMessage) (*parley.Message, error) {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(tx, s, msg.Attachments, now); err != nil {
		return nil, err
	}
	if msg.Context != nil {
		if err := mergeContext(tx, s, msg.Context); err != nil {
			return nil, err
		}
	}
	c := s.Conversation
	// A brain-handled conversation is opened by CreateSession or here, and only here does a
	// brain job follow; so the message opens its conversation when the conversation is new, or
	// when the session has had no brain job yet.
	start := s.JobSeq == 0
	if c.Status == parley.ConversationResolved {
		c = newConversation(s, parley.HandledByBrain, now)
		if err := tx.CreateConversation(c); err != nil {
			return nil, err
		}
		start = true
	}
	m := &parley.Message{ID: parley.NewID(), SessionID: s.ID, ConversationID: c.ID, Author: parley.AuthorUser,
		Text: msg.Text, Attachments: msg.Attachments, CreatedAt: now}
	toDesk := c.HandledBy == parley.HandledByQueue || c.HandledBy == parley.HandledByAgent
	if toDesk {
		m.DeliveredAt = now
	}
	if c.HandledBy == parley.HandledByBrain {
		// The message and the session as it leaves it, in one call: the store may keep the
		// session's new state in the message's row alone (the common case, and the hot one).
		s.JobSeq++
		touch(s, in, now)
		return m, tx.UpdateSessionWithMessage(s, m, &parley.BrainJob{IntegrationID: in.ID, SessionSeq: s.JobSeq,
			Partition: s.Partition, ConversationStart: start})
	}
	if err = tx.InsertMessage(m); err == nil && toDesk {
		err = emit(tx, in, s, parley.EventDelivered, now, parley.EventFields{MessageIDs: []string{m.ID}})
	}
	if err != nil {
		return nil, err
	}
	touch(s, in, now)
	return m, tx.UpdateSession(s)
}

// ExternalAgentMessage is a message written by the integrator's own human agent.
type ExternalAgentMessage struct {
	Text        string
	Attachments []parley.Attachment
	Agent       parley.AgentRef
}

// PostExternalAgentMessage records a message of the integrator's own agent. The conversation
// becomes "external": the brain stops answering it until it is resolved, and parley's console
// agents no longer hold it. No webhook: the integrator wrote it.
func (e *Engine) PostExternalAgentMessage(tx store.Tx, in *parley.Integration, sessionID string, msg ExternalAgentMessage) (*parley.Message, error) {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(tx, s, msg.Attachments, now); err != nil {
		return nil, err
	}
	c := s.Conversation
	switch {
	case c.Status == parley.ConversationResolved:
		c = newConversation(s, parley.HandledByExternal, now)
		err = tx.CreateConversation(c)
	case c.HandledBy != parley.HandledByExternal:
		c.HandledBy, c.AssigneeID, c.UpdatedAt = parley.HandledByExternal, "", now
		err = tx.UpdateConversation(c)
	}
	if err != nil {
		return nil, err
	}
	agent := msg.Agent
	m := &parley.Message{ID: parley.NewID(), SessionID: s.ID, ConversationID: c.ID, Author: parley.AuthorExternal,
		Agent: &agent, Text: msg.Text, Attachments: msg.Attachments, CreatedAt: now}
	if err := tx.InsertMessage(m); err != nil {
		return nil, err
	}
	touch(s, in, now)
	return m, tx.UpdateSession(s)
}

// Receipts names the messages an end user received or read: by ID, or all up to a time.
type Receipts struct {
	MessageIDs []string
	Until      time.Time
}

// MarkReceipts records the end user's receipts for brain and agent messages and returns how
// many messages changed. No webhook: the integrator sent them.
func (e *Engine) MarkReceipts(tx store.Tx, in *parley.Integration, sessionID, kind string, r Receipts) (int, error) {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return 0, err
	}
	changed, err := tx.MarkMessages(s.ID, kind, []string{parley.AuthorBrain, parley.AuthorAgent}, r.MessageIDs, r.Until, now)
	return len(changed), err
}

// ClosedBy says who resolved a conversation.
type ClosedBy struct {
	By    string           // "api", "agent" or "brain"
	Agent *parley.AgentRef // when an agent did
}

// CloseConversation resolves the current conversation. It is a no-op when it is resolved.
func (e *Engine) CloseConversation(tx store.Tx, in *parley.Integration, sessionID string, by ClosedBy) error {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return err
	}
	return resolve(tx, in, s, by, now)
}

func resolve(tx store.Tx, in *parley.Integration, s *parley.Session, by ClosedBy, now time.Time) error {
	c := s.Conversation
	if c.Status == parley.ConversationResolved {
		return nil
	}
	c.Status, c.ResolvedAt, c.UpdatedAt = parley.ConversationResolved, now, now
	if err := tx.UpdateConversation(c); err != nil {
		return err
	}
	f := parley.EventFields{Status: "closed", ClosedBy: by.By, Agent: by.Agent}
	if err := emit(tx, in, s, parley.EventConversationClosed, now, f); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// ReopenConversation reopens the current conversation if it is resolved; it goes back to
// whoever handled it. Reopening an open conversation is a no-op.
func (e *Engine) ReopenConversation(tx store.Tx, in *parley.Integration, sessionID string) error {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return err
	}
	c := s.Conversation
	if c.Status == parley.ConversationOpen {
		return nil
	}
	c.Status, c.ResolvedAt, c.UpdatedAt = parley.ConversationOpen, time.Time{}, now
	if err := tx.UpdateConversation(c); err != nil {
		return err
	}
	if err := emit(tx, in, s, parley.EventConversationReopened, now, parley.EventFields{Status: "open"}); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// Handover takes the conversation away from the brain and puts it in the human queue. After a
// resolved conversation a new one opens directly in the queue. A conversation already with
// humans stays as it is. It is inbound activity either way.
func (e *Engine) Handover(tx store.Tx, in *parley.Integration, sessionID string) error {
	now := e.Now()
	s, err := e.active(tx, in, sessionID, now)
	if err != nil {
		return err
	}
	touch(s, in, now)
	if err := handover(tx, in, s, now); err != nil {
		return err
	}
	return tx.UpdateSession(s)
}

// handover moves the current conversation to the queue and tells the integrator which user
// messages the desk has now received. The caller saves the session.
func handover(tx store.Tx, in *parley.Integration, s *parley.Session, now time.Time) error {
	c := s.Conversation
	switch {
	case c.Status == parley.ConversationResolved:
		// The desk receives the session now, with the user messages it has not seen (those the
		// brain had), as in a handover from an open brain conversation.
		c = newConversation(s, parley.HandledByQueue, now)
		if err := tx.CreateConversation(c); err != nil {
			return err
		}
		return deliverToDesk(tx, in, s, now)
	case c.HandledBy != parley.HandledByBrain:
		return nil
	}
	c.HandledBy, c.AssigneeID, c.UpdatedAt = parley.HandledByQueue, "", now
	if err := tx.UpdateConversation(c); err != nil {
		return err
	}
	return deliverToDesk(tx, in, s, now)
}

// deliverToDesk marks the session's user messages delivered to the human desk (agents see the
// whole history of a session) and emits message:delivered for those that were not yet.
func deliverToDesk(tx store.Tx, in *parley.Integration, s *parley.Session, now time.Time) error {
	ids, err := tx.MarkMessages(s.ID, parley.ReceiptDelivered, []string{parley.AuthorUser}, nil, now, now)
	if err != nil || len(ids) == 0 {
		return err
	}
	return emit(tx, in, s, parley.EventDelivered, now, parley.EventFields{MessageIDs: ids})
}

// active locks the session and checks the caller may act on it: it exists, it belongs to the
// integration and it is neither closed nor past its deadline. Every failure is the same
// session-not-found, so a caller cannot probe other integrations' sessions.
func (e *Engine) active(tx store.Tx, in *parley.Integration, sessionID string, now time.Time) (*parley.Session, error) {
	s, err := tx.LockSession(sessionID)
	return activeOnly(s, err, in, now)
}

// ActiveSession returns a session the integration may act on, by the same rule as every
// operation here, without locking it: for calls that change nothing of the session itself
// (file uploads and downloads). It is not activity: the session's deadline does not move.
func (e *Engine) ActiveSession(tx store.ReadTx, in *parley.Integration, sessionID string) (*parley.Session, error) {
	s, err := tx.Session(sessionID)
	return activeOnly(s, err, in, e.Now())
}

func activeOnly(s *parley.Session, err error, in *parley.Integration, now time.Time) (*parley.Session, error) {
	if parley.IsCode(err, parley.ENotFound) || (err == nil && (s.IntegrationID != in.ID || !s.ActiveAt(now))) {
		return nil, parley.Errorf(parley.ESessionNotFound, "session not found")
	}
	return s, err
}

// newConversation makes s's new current conversation; the caller stores it.
func newConversation(s *parley.Session, handledBy string, now time.Time) *parley.Conversation {
	c := &parley.Conversation{ID: parley.NewID(), SessionID: s.ID, IntegrationID: s.IntegrationID,
		Status: parley.ConversationOpen, HandledBy: handledBy, CreatedAt: now, UpdatedAt: now}
	s.ConversationID, s.Conversation = c.ID, c
	return c
}

// touch records inbound activity: the session expires session_timeout after it.
func touch(s *parley.Session, in *parley.Integration, now time.Time) {
	// Both only move forward: the store keeps them in the session's row and in its messages and
	// reads the larger (store.Tx.UpdateSessionWithMessage), so a value that went back would not
	// read back. A shorter session timeout takes effect once the current deadline has passed, and
	// a clock stepped back leaves the activity where it was.
	s.LastActivityAt = later(s.LastActivityAt, now)
	s.ExpiresAt = later(s.ExpiresAt, now.Add(time.Duration(in.SessionTimeout)*time.Second))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// mergeContext merges patch into the session's context and stores it.
func mergeContext(tx store.Tx, s *parley.Session, patch map[string]any) error {
	ctx, err := parley.DecodeObject(s.Context)
	if err != nil {
		return err
	}
	parley.MergeContext(ctx, patch)
	b := parley.EncodeObject(ctx)
	if len(b) > parley.MaxContextBytes {
		return parley.Errorf(parley.EInvalid, "context would be larger than %d bytes", parley.MaxContextBytes)
	}
	s.Context = b
	return tx.SetSessionContext(s.ID, b)
}

// emit writes an event into the outbox if the integration subscribes to it. The caller saves
// the session afterwards (its EventSeq moved).
func emit(tx store.Tx, in *parley.Integration, s *parley.Session, eventType string, at time.Time, f parley.EventFields) error {
	if !in.Subscribed(eventType) {
		return nil
	}
	return tx.InsertEvent(parley.NewEvent(in, s, eventType, at, f))
}

// checkFiles makes sure every file_id of a message names a finished upload of the session and
// records the message's reference to it, which keeps the file as long as the message (SPEC §2:
// otherwise invalid-payload). The rules live in package files.
func checkFiles(tx store.Tx, s *parley.Session, atts []parley.Attachment, now time.Time) error {
	return files.Use(tx, s.ID, atts, now)
}
