package parley

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
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

// Limits on a message from outside.
const (
	MaxTextBytes   = 64 << 10
	MaxAttachments = 20
	maxFieldBytes  = 2048
)

// CheckMessage validates the content of a message from outside: it must hold text or
// attachments, and every attachment must be well-formed (SPEC §2, Attachments). Whether a
// file_id names a finished upload of the session is checked with the store, not here.
func CheckMessage(text string, atts []Attachment) error {
	if text == "" && len(atts) == 0 {
		return Errorf(EInvalid, "message is empty: give input.text or input.attachments")
	}
	if len(text) > MaxTextBytes {
		return Errorf(EInvalid, "input.text is longer than %d bytes", MaxTextBytes)
	}
	if len(atts) > MaxAttachments {
		return Errorf(EInvalid, "input.attachments holds more than %d attachments", MaxAttachments)
	}
	for i := range atts {
		if err := atts[i].check(); err != nil {
			return Errorf(EInvalid, "input.attachments[%d]: %s", i, ErrorMessage(err))
		}
	}
	return nil
}

func (a *Attachment) check() error {
	switch {
	case !slices.Contains(AttachmentTypes, a.Type):
		return Errorf(EInvalid, "type must be one of %s", strings.Join(AttachmentTypes, ", "))
	case !validMIME(a.MimeType):
		return Errorf(EInvalid, "mime_type must be a media type such as image/png")
	case (a.URL == "") == (a.FileID == ""):
		return Errorf(EInvalid, "give exactly one of url and file_id")
	case len(a.Filename) > 255 || len(a.Title) > maxFieldBytes:
		return Errorf(EInvalid, "filename or title is too long")
	}
	if a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(a.URL) > maxFieldBytes {
			return Errorf(EInvalid, "url must be an http or https URL")
		}
	}
	if a.FileID != "" {
		id, ok := ParseID(a.FileID)
		if !ok {
			return Errorf(EInvalid, "file_id must be a UUID")
		}
		a.FileID = id
	}
	return nil
}

// validMIME reports whether s looks like type/subtype with no parameters or spaces.
func validMIME(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == ';' || c == ',' {
			return false
		}
	}
	return true
}

// CheckAgent validates an agent reference from outside.
func CheckAgent(a *AgentRef) error {
	switch {
	case a.ID == "":
		return Errorf(EInvalid, "agent.agent_id is required")
	case len(a.ID) > 255 || len(a.Name) > 255 || len(a.Avatar) > maxFieldBytes:
		return Errorf(EInvalid, "agent fields are too long")
	}
	return nil
}
