package parley

import "time"

// Session statuses.
const (
	SessionActive  = "active"
	SessionClosed  = "closed"
	SessionExpired = "expired"
)

// Conversation statuses and who handles an open conversation (SPEC §2, Lifecycle).
const (
	ConversationOpen     = "open"
	ConversationResolved = "resolved"

	HandledByBrain    = "brain"    // the integration's brain answers
	HandledByQueue    = "queue"    // waiting for a human agent
	HandledByAgent    = "agent"    // a human agent of parley's console has it
	HandledByExternal = "external" // the integrator's own human agent wrote in it
)

// Session is one end user's stay on a channel. It holds a context and a sequence of
// conversations, of which the last is the current one.
type Session struct {
	ID                string
	IntegrationID     string
	ExternalSessionID string
	Status            string
	Context           []byte // a JSON object
	ConversationID    string // the current conversation
	Partition         int
	// Num is the store's own number for the session, which its messages carry instead of the
	// 36-character ID (a smaller index: see migration 7). The store sets it; nothing else uses it.
	Num int64
	// EventSeq and JobSeq number the session's outbox events and brain jobs 1, 2, 3, ... so the
	// process delivering them can tell when it has missed one.
	EventSeq       int64
	JobSeq         int64
	CreatedAt      time.Time
	LastActivityAt time.Time
	ExpiresAt      time.Time
	EndedAt        time.Time // when it was closed or expired; zero while active

	Conversation *Conversation // the current conversation, loaded with the session
}

// ActiveAt reports whether the session still accepts calls at now: not closed, not expired, and
// not past its deadline even if the expiry sweep has not reached it yet.
func (s *Session) ActiveAt(now time.Time) bool {
	return s.Status == SessionActive && now.Before(s.ExpiresAt)
}

// StatusAt returns the status a caller sees at now.
func (s *Session) StatusAt(now time.Time) string {
	if s.Status == SessionActive && !now.Before(s.ExpiresAt) {
		return SessionExpired
	}
	return s.Status
}

// Conversation is one thread of a session, from its first message until it is resolved.
type Conversation struct {
	ID            string
	SessionID     string
	IntegrationID string
	Status        string
	HandledBy     string
	AssigneeID    string // the agent who has it, when HandledBy is agent
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ResolvedAt    time.Time
}

// WithHumans reports whether people, not the brain, answer the conversation.
func (c *Conversation) WithHumans() bool {
	return c.HandledBy == HandledByQueue || c.HandledBy == HandledByAgent || c.HandledBy == HandledByExternal
}

// BrainJob is a user message waiting for the brain's reply. It is written in the same
// transaction as the message, so no message is ever left unanswered by a crash.
type BrainJob struct {
	Seq            int64
	IntegrationID  string
	SessionID      string
	SessionSeq     int64
	Partition      int
	ConversationID string
	MessageID      string
	// ConversationStart is set when the message opened its conversation (the brain greets).
	ConversationStart bool
	CreatedAt         time.Time
	// Message is the job's message as it was stored, when this process stored it and it is
	// small (a few KiB): the worker then need not read it back. It is not stored; nil when the
	// job was read from the database or heard of from another process. Messages never change
	// once stored.
	Message *Message
}
