// Package brain is what answers users in brain-handled conversations (SPEC §6): the Brain
// interface every kind implements, what a brain is asked (Request) and what it answers (Reply),
// and the response types of a message:brain_send.
//
// The kinds live in subpackages: dialog (the built-in dialog engine and the default), moveo
// (Moveo's dialog webhook protocol, also used as the "http" brain) and llm (an
// OpenAI-compatible chat-completions endpoint). Package brain/worker runs them.
//
// A Brain does I/O (a webhook, a model) and may be slow; it never touches the database. The
// worker commits what it answers, with the message, the event and any handover or resolve, in
// one transaction.
package brain

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/parleyhq/parley"
)

// Brain answers one user message. Reply may be called for many sessions at once, never twice at
// once for one session. An error (or a context that ends) makes the worker send the configured
// fallback reply instead, so a user is never left without an answer.
type Brain interface {
	Reply(ctx context.Context, req *Request) (*Reply, error)
}

// Immediate is implemented by brains that may answer without any I/O, from memory, in
// microseconds (a dialog that calls no webhook). When Immediate says so, the worker asks such a
// brain inside the transaction that commits its answer: the session is read where the writer
// already holds it, and no read transaction is spent per message. Reply must then not call
// Request.History, nor block.
type Immediate interface {
	Immediate() bool
}

// Request is what a brain is asked: the user's message and where it was said.
type Request struct {
	Integration       *parley.Integration
	SessionID         string
	ExternalSessionID string
	ConversationID    string
	// Context is the session's context as the message found it, decoded. A brain may read it and
	// must not change it: changes go in Reply.Context.
	Context map[string]any
	// Message is the user's message, its attachments resolved to URLs a brain can fetch.
	Message *parley.Message
	// ConversationStart is set on the first user message of a conversation.
	ConversationStart bool
	// History returns up to limit of the session's latest messages (this one included), oldest
	// first. Only brains that need it (llm) call it: it reads the database.
	History func(ctx context.Context, limit int) ([]*parley.Message, error)
}

// Reply is a brain's answer. The worker commits it in one transaction: Context is merged into
// the session's context (deep merge, arrays replace, null deletes) before the brain's message
// and its message:brain_send are written, so the event carries the new context; then Handover
// or Resolve are applied.
type Reply struct {
	Responses []Response
	Context   map[string]any
	// Handover puts the conversation in the human queue; the brain stops answering it. A
	// "handover" response among Responses implies it.
	Handover bool
	// Resolve resolves the conversation (conversation:closed with closed_by "brain"). The next
	// user message starts a new, brain-handled conversation.
	Resolve bool
}

// HandsOver reports whether the reply hands the conversation to humans.
func (r *Reply) HandsOver() bool {
	if r.Handover {
		return true
	}
	for _, x := range r.Responses {
		if x.Type == TypeHandover {
			return true
		}
	}
	return false
}

// Response types (SPEC §6).
const (
	TypeText     = "text"
	TypeImage    = "image"
	TypeVideo    = "video"
	TypeAudio    = "audio"
	TypeFile     = "file"
	TypeCarousel = "carousel"
	TypeWebview  = "webview"
	TypeHandover = "handover"
	TypePause    = "pause"
)

// Response is one response of a brain message, as message:brain_send carries it in
// output.responses. Only the fields of its Type are written (MarshalJSON).
type Response struct {
	Type string `json:"type"`

	Text    string   `json:"text,omitempty"`    // text
	Options []Option `json:"options,omitempty"` // text: quick replies

	URL    string `json:"url,omitempty"`    // image, video, file, audio, webview
	Name   string `json:"name,omitempty"`   // image, video, file, webview
	Size   int64  `json:"size,omitempty"`   // image, video, file: bytes
	Label  string `json:"label,omitempty"`  // webview: the button that opens it
	Height string `json:"height,omitempty"` // webview: e.g. "tall", "full" or "50%"

	Cards []Card `json:"cards,omitempty"` // carousel

	Duration   int  `json:"duration,omitempty"`    // pause: milliseconds
	ShowTyping bool `json:"show_typing,omitempty"` // pause
}

// Option is a quick reply: the user sees Label, and picking it sends Text.
type Option struct {
	Label string `json:"label"`
	Text  string `json:"text"`
}

// Card is one card of a carousel.
type Card struct {
	Title         string   `json:"title"`
	Subtitle      string   `json:"subtitle,omitempty"`
	Media         *Media   `json:"media,omitempty"`
	DefaultAction *Button  `json:"default_action,omitempty"`
	Buttons       []Button `json:"buttons,omitempty"`
}

// Media is a card's picture or video.
type Media struct {
	Type string `json:"type"` // image or video
	URL  string `json:"url"`
}

// Button types of a carousel card.
const (
	ButtonURL      = "url"
	ButtonPostback = "postback"
	ButtonPhone    = "phone"
	ButtonWebview  = "webview"
)

// Button is a carousel card's button: it opens URL (url, webview), sends Value as the user's
// message (postback) or calls Value (phone).
type Button struct {
	Type  string `json:"type"`
	Label string `json:"label,omitempty"`
	URL   string `json:"url,omitempty"`
	Value string `json:"value,omitempty"`
}

// typed is the response as its type shows it: the fields of that type and no others, so a
// pause always says show_typing and a text never carries a stray url. It defines a response's
// JSON; appendJSON writes the common types by hand, byte for byte the same.
func (r Response) typed() any {
	switch r.Type {
	case TypeText:
		return struct {
			Type    string   `json:"type"`
			Text    string   `json:"text"`
			Options []Option `json:"options,omitempty"`
		}{r.Type, r.Text, r.Options}
	case TypeImage, TypeVideo, TypeFile:
		return struct {
			Type string `json:"type"`
			URL  string `json:"url"`
			Name string `json:"name,omitempty"`
			Size int64  `json:"size,omitempty"`
		}{r.Type, r.URL, r.Name, r.Size}
	case TypeAudio:
		return struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		}{r.Type, r.URL}
	case TypeCarousel:
		return struct {
			Type  string `json:"type"`
			Cards []Card `json:"cards"`
		}{r.Type, r.Cards}
	case TypeWebview:
		return struct {
			Type   string `json:"type"`
			URL    string `json:"url"`
			Name   string `json:"name"`
			Label  string `json:"label"`
			Height string `json:"height,omitempty"`
		}{r.Type, r.URL, r.Name, r.Label, r.Height}
	case TypePause:
		return struct {
			Type       string `json:"type"`
			Duration   int    `json:"duration"`
			ShowTyping bool   `json:"show_typing"`
		}{r.Type, r.Duration, r.ShowTyping}
	default: // handover, and anything a brain made up: the type alone
		return struct {
			Type string `json:"type"`
		}{r.Type}
	}
}

// MarshalJSON writes the fields of the response's type and no others (see typed).
func (r Response) MarshalJSON() ([]byte, error) { return r.appendJSON(nil) }

// appendJSON appends the response as parley.Marshal(r.typed()) writes it. Every type but quick
// replies and carousels is written by hand: a dialog's responses are encoded inside the SQLite
// writer, where encoding/json was a tenth of the writer's time per answer.
func (r Response) appendJSON(dst []byte) ([]byte, error) {
	if r.Type == TypeCarousel || (r.Type == TypeText && len(r.Options) > 0) {
		b, err := parley.Marshal(r.typed())
		return append(dst, b...), err
	}
	str := parley.AppendJSONString
	dst = append(dst, `{"type":`...)
	dst = str(dst, r.Type)
	switch r.Type {
	case TypeText:
		dst = append(dst, `,"text":`...)
		dst = str(dst, r.Text)
	case TypeImage, TypeVideo, TypeFile:
		dst = append(dst, `,"url":`...)
		dst = str(dst, r.URL)
		if r.Name != "" {
			dst = append(dst, `,"name":`...)
			dst = str(dst, r.Name)
		}
		if r.Size != 0 {
			dst = append(dst, `,"size":`...)
			dst = strconv.AppendInt(dst, r.Size, 10)
		}
	case TypeAudio:
		dst = append(dst, `,"url":`...)
		dst = str(dst, r.URL)
	case TypeWebview:
		for _, kv := range [...]struct{ key, value string }{{`,"url":`, r.URL}, {`,"name":`, r.Name}, {`,"label":`, r.Label}} {
			dst = append(dst, kv.key...)
			dst = str(dst, kv.value)
		}
		if r.Height != "" {
			dst = append(dst, `,"height":`...)
			dst = str(dst, r.Height)
		}
	case TypePause:
		dst = append(dst, `,"duration":`...)
		dst = strconv.AppendInt(dst, int64(r.Duration), 10)
		dst = append(dst, `,"show_typing":`...)
		dst = strconv.AppendBool(dst, r.ShowTyping)
	}
	return append(dst, '}'), nil
}

// EncodeResponses renders responses as output.responses carries them.
func EncodeResponses(rs []Response) json.RawMessage {
	if rs == nil {
		rs = []Response{}
	}
	// As parley.Marshal(rs) writes it, without encoding/json going over every response again.
	b := make([]byte, 1, 64*len(rs)+2)
	b[0] = '['
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = r.appendJSON(b); err != nil {
			panic("brain: encoding responses: " + err.Error()) // plain values cannot fail to encode
		}
	}
	return append(b, ']')
}

// Text is a text response.
func Text(s string) Response { return Response{Type: TypeText, Text: s} }
