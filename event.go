package parley

import (
	"encoding/json"
	"time"
)

// Webhook event types (SPEC §3).
const (
	EventBrainSend            = "message:brain_send"
	EventAgentSend            = "message:send"
	EventCompose              = "message:compose"
	EventRead                 = "message:read"
	EventDelivered            = "message:delivered"
	EventMemberJoin           = "conversation:member_join"
	EventMemberLeave          = "conversation:member_leave"
	EventConversationClosed   = "conversation:closed"
	EventConversationReopened = "conversation:reopened"
	EventSessionClosed        = "session:closed"
	EventSessionExpired       = "session:expired"
)

// EventTypes lists every event type, the names subscribed_events may hold.
var EventTypes = []string{
	EventBrainSend, EventAgentSend, EventCompose, EventRead, EventDelivered,
	EventMemberJoin, EventMemberLeave, EventConversationClosed, EventConversationReopened,
	EventSessionClosed, EventSessionExpired,
}

// Delivery states of an outbox event.
const (
	DeliveryPending = "pending"
	DeliveryDone    = "delivered"
	DeliveryFailed  = "failed"
)

// Event is one webhook event in the outbox: the exact bytes that are signed and sent, and the
// state of their delivery.
type Event struct {
	Seq           int64 // order of commit within the deployment
	ID            string
	IntegrationID string
	SessionID     string
	SessionSeq    int64 // 1, 2, 3, ... within the session: the order of delivery
	Partition     int
	Type          string
	Body          []byte
	CreatedAt     time.Time

	State         string
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	FinishedAt    time.Time // delivered or failed
	AttemptLog    []Attempt
}

// Attempt is the record of one delivery attempt.
type Attempt struct {
	At         int64  `json:"at"` // Unix ms
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// EventFields are the fields of an event beyond the base ones; each type uses some (SPEC §3).
type EventFields struct {
	MessageID  string    `json:"message_id,omitempty"`
	Agent      *AgentRef `json:"agent,omitempty"`
	Output     *Output   `json:"output,omitempty"`
	Action     string    `json:"action,omitempty"`
	MessageIDs []string  `json:"message_ids,omitempty"`
	Status     string    `json:"status,omitempty"`
	ClosedBy   string    `json:"closed_by,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// Output carries the responses of a brain or agent message.
type Output struct {
	Responses json.RawMessage `json:"responses"`
}

// eventFieldsSize is about how many bytes f takes in a body, so the body is allocated once.
func eventFieldsSize(f *EventFields) int {
	n := 40 * len(f.MessageIDs)
	if f.Output != nil {
		n += len(f.Output.Responses)
	}
	return n
}

// eventBody is the wire shape: the base fields in the documented order, then the event's own.
type eventBody struct {
	EventType         string          `json:"event_type"`
	RequestID         string          `json:"request_id"`
	SessionID         string          `json:"session_id"`
	ExternalSessionID string          `json:"external_session_id,omitempty"`
	IntegrationID     string          `json:"integration_id"`
	DeskID            string          `json:"desk_id"`
	Context           json.RawMessage `json:"context"`
	Timestamp         int64           `json:"timestamp"`
	EventFields
}

// NewEvent makes the next event of a session: it numbers it in the session's sequence and
// renders the body with the session's context as it is now. The caller stores the event in the
// same transaction as the change that caused it, and the session with its new EventSeq.
func NewEvent(in *Integration, s *Session, eventType string, at time.Time, f EventFields) *Event {
	s.EventSeq++
	e := &Event{
		ID:            NewRandomID(),
		IntegrationID: in.ID,
		SessionID:     s.ID,
		SessionSeq:    s.EventSeq,
		Partition:     s.Partition,
		Type:          eventType,
		CreatedAt:     at,
		State:         DeliveryPending,
		NextAttemptAt: at,
	}
	body := &eventBody{
		EventType:         eventType,
		RequestID:         e.ID,
		SessionID:         s.ID,
		ExternalSessionID: s.ExternalSessionID,
		IntegrationID:     in.ID,
		DeskID:            in.DeskID,
		Context:           s.Context,
		Timestamp:         at.UnixMilli(),
		EventFields:       f,
	}
	// Every field is a plain value or JSON parley produced itself (valid and compact), which
	// appendEventBody relies on.
	e.Body = appendEventBody(make([]byte, 0, 384+len(s.Context)+eventFieldsSize(&f)), body)
	return e
}
