package parley

import (
	"encoding/json"
	"time"
)

// Message authors.
const (
	AuthorUser     = "user"     // the end user, through the inbound API
	AuthorBrain    = "brain"    // the integration's brain
	AuthorAgent    = "agent"    // a human agent in parley's console
	AuthorExternal = "external" // the integrator's own human agent (messages/agent)
)

// Message is one message of a session, from any author.
type Message struct {
	Seq            int64 // order within the deployment; a session's messages ascend
	ID             string
	SessionID      string
	ConversationID string
	Author         string
	Agent          *AgentRef // for agent and external messages
	Text           string
	Attachments    []Attachment
	Responses      json.RawMessage // the brain's responses (SPEC §6), for brain messages
	CreatedAt      time.Time
	// DeliveredAt and ReadAt are receipts: by the end user for brain and agent messages, by the
	// human desk for user messages. Zero when not yet.
	DeliveredAt time.Time
	ReadAt      time.Time
}

// AgentRef names a human agent in messages and events.
type AgentRef struct {
	ID     string `json:"agent_id"`
	Name   string `json:"agent_name"`
	Avatar string `json:"agent_avatar,omitempty"`
}

// Attachment kinds.
var AttachmentTypes = []string{"image", "video", "audio", "file"}

// Attachment is a file sent with a message: a URL, or a file uploaded to the session.
type Attachment struct {
	Type     string `json:"type"`
	MimeType string `json:"mime_type"`
	URL      string `json:"url,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
	Title    string `json:"title,omitempty"`
}

// Receipt kinds.
const (
	ReceiptDelivered = "delivered"
	ReceiptRead      = "read"
)
