package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// Request bodies of the inbound API (SPEC §2). Unknown fields are refused.
type (
	createSessionRequest struct {
		ExternalSessionID string         `json:"external_session_id"`
		ChannelUserID     string         `json:"channel_user_id"`
		Context           map[string]any `json:"context"`
	}
	messageRequest struct {
		Input   *messageInput  `json:"input"`
		Context map[string]any `json:"context"`
	}
	agentMessageRequest struct {
		Input *messageInput    `json:"input"`
		Agent *parley.AgentRef `json:"agent"`
	}
	messageInput struct {
		Text        string              `json:"text"`
		Attachments []parley.Attachment `json:"attachments"`
	}
	receiptsRequest struct {
		MessageIDs []string `json:"message_ids"`
		Timestamp  *int64   `json:"timestamp"`
	}
)

// Response bodies.
type (
	requestOnly struct {
		RequestID string `json:"request_id"`
	}
	sessionCreated struct {
		RequestID string          `json:"request_id"`
		SessionID string          `json:"session_id"`
		Context   json.RawMessage `json:"context"`
	}
	contextUpdated struct {
		RequestID string          `json:"request_id"`
		Context   json.RawMessage `json:"context"`
	}
	messageAccepted struct {
		RequestID string `json:"request_id"`
		MessageID string `json:"message_id"`
	}
	receiptsUpdated struct {
		RequestID string `json:"request_id"`
		Updated   int    `json:"updated"`
	}
	sessionFound struct {
		RequestID string      `json:"request_id"`
		Session   SessionView `json:"session"`
	}
	messagePage struct {
		RequestID string         `json:"request_id"`
		Messages  []*MessageView `json:"messages"`
		Next      *string        `json:"next"`
	}
)

// maxIDLength bounds identifiers integrators choose (external_session_id, channel_user_id).
const maxIDLength = 255

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	var req createSessionRequest
	// The body is optional: every field is.
	if r.ContentLength != 0 {
		b, err := ReadBody(w, r, s.cfg.BodyLimit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(bytes.TrimSpace(b)) > 0 {
			if err := CheckJSONContentType(r); err != nil {
				s.fail(w, r, err)
				return
			}
			if err := Unmarshal(b, &req); err != nil {
				s.fail(w, r, err)
				return
			}
		}
	}
	if len(req.ExternalSessionID) > maxIDLength || len(req.ChannelUserID) > maxIDLength {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "external_session_id and channel_user_id are at most %d bytes", maxIDLength))
		return
	}
	if err := parley.ValidateContext(req.Context); err != nil {
		s.fail(w, r, err)
		return
	}
	rid := RequestID(r.Context())
	s.exec(w, r, in, http.StatusCreated, func(tx store.Tx) (any, error) {
		sess, err := s.chat.CreateSession(tx, in, chat.NewSession{
			ExternalSessionID: req.ExternalSessionID, ChannelUserID: req.ChannelUserID, Context: req.Context})
		if err != nil {
			return nil, err
		}
		return sessionCreated{RequestID: rid, SessionID: sess.ID, Context: sess.Context}, nil
	})
}

func (s *Server) updateContext(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := CheckJSONContentType(r); err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := ReadBody(w, r, s.cfg.BodyLimit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	patch, err := parley.DecodeObject(b)
	if err == nil {
		err = parley.ValidateContext(patch)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rid := RequestID(r.Context())
	s.exec(w, r, in, http.StatusOK, func(tx store.Tx) (any, error) {
		ctx, err := s.chat.UpdateContext(tx, in, sid, patch)
		if err != nil {
			return nil, err
		}
		return contextUpdated{RequestID: rid, Context: ctx}, nil
	})
}

// simple runs an operation that takes no body and answers {request_id}.
func (s *Server) simple(op func(tx store.Tx, in *parley.Integration, sid string) error) inboundHandler {
	return func(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
		sid, err := sessionID(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rid := RequestID(r.Context())
		s.exec(w, r, in, http.StatusOK, func(tx store.Tx) (any, error) {
			return requestOnly{RequestID: rid}, op(tx, in, sid)
		})
	}
}

func (s *Server) closeSession(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	s.simple(func(tx store.Tx, in *parley.Integration, sid string) error {
		return s.chat.CloseSession(tx, in, sid)
	})(w, r, in)
}

func (s *Server) closeConversation(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	s.simple(func(tx store.Tx, in *parley.Integration, sid string) error {
		return s.chat.CloseConversation(tx, in, sid, chat.ClosedBy{By: "api"})
	})(w, r, in)
}

func (s *Server) reopenConversation(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	s.simple(func(tx store.Tx, in *parley.Integration, sid string) error {
		return s.chat.ReopenConversation(tx, in, sid)
	})(w, r, in)
}

func (s *Server) handover(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	s.simple(func(tx store.Tx, in *parley.Integration, sid string) error {
		return s.chat.Handover(tx, in, sid)
	})(w, r, in)
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req messageRequest
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Input == nil {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "input is required"))
		return
	}
	if err := parley.CheckMessage(req.Input.Text, req.Input.Attachments); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := parley.ValidateContext(req.Context); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Context) == 0 {
		req.Context = nil // nothing to merge
	}
	rid := RequestID(r.Context())
	s.exec(w, r, in, http.StatusAccepted, func(tx store.Tx) (any, error) {
		m, err := s.chat.PostUserMessage(tx, in, sid, chat.UserMessage{
			Text: req.Input.Text, Attachments: req.Input.Attachments, Context: req.Context})
		if err != nil {
			return nil, err
		}
		return messageAccepted{RequestID: rid, MessageID: m.ID}, nil
	})
}

func (s *Server) postAgentMessage(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req agentMessageRequest
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case req.Input == nil:
		err = parley.Errorf(parley.EInvalid, "input is required")
	case req.Agent == nil:
		err = parley.Errorf(parley.EInvalid, "agent is required")
	default:
		err = parley.CheckMessage(req.Input.Text, req.Input.Attachments)
		if err == nil {
			err = parley.CheckAgent(req.Agent)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rid := RequestID(r.Context())
	s.exec(w, r, in, http.StatusAccepted, func(tx store.Tx) (any, error) {
		m, err := s.chat.PostExternalAgentMessage(tx, in, sid, chat.ExternalAgentMessage{
			Text: req.Input.Text, Attachments: req.Input.Attachments, Agent: *req.Agent})
		if err != nil {
			return nil, err
		}
		return messageAccepted{RequestID: rid, MessageID: m.ID}, nil
	})
}

// maxReceiptIDs bounds one receipts call.
const maxReceiptIDs = 1000

func (s *Server) markReceipts(kind string) inboundHandler {
	return func(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
		sid, err := sessionID(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var req receiptsRequest
		if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		var rc chat.Receipts
		switch {
		case len(req.MessageIDs) == 0 && req.Timestamp == nil:
			err = parley.Errorf(parley.EInvalid, "give message_ids or timestamp")
		case len(req.MessageIDs) > maxReceiptIDs:
			err = parley.Errorf(parley.EInvalid, "message_ids holds more than %d IDs", maxReceiptIDs)
		case req.Timestamp != nil && *req.Timestamp <= 0:
			err = parley.Errorf(parley.EInvalid, "timestamp must be a positive Unix time in milliseconds")
		}
		for _, id := range req.MessageIDs {
			norm, ok := parley.ParseID(id)
			if !ok && err == nil {
				err = parley.Errorf(parley.EInvalid, "message_ids: %q is not a UUID", id)
			}
			rc.MessageIDs = append(rc.MessageIDs, norm)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if req.Timestamp != nil {
			rc.Until = time.UnixMilli(*req.Timestamp)
		}
		rid := RequestID(r.Context())
		s.exec(w, r, in, http.StatusOK, func(tx store.Tx) (any, error) {
			n, err := s.chat.MarkReceipts(tx, in, sid, kind, rc)
			if err != nil {
				return nil, err
			}
			return receiptsUpdated{RequestID: rid, Updated: n}, nil
		})
	}
}

// SessionView is a session as the read extension shows it.
type SessionView struct {
	ID                string           `json:"id"`
	ExternalSessionID string           `json:"external_session_id"`
	Status            string           `json:"status"`
	Context           json.RawMessage  `json:"context"`
	CreatedAt         int64            `json:"created_at"`
	ExpiresAt         int64            `json:"expires_at"`
	EndedAt           *int64           `json:"ended_at"`
	Conversation      ConversationView `json:"conversation"`
}

// ConversationView is the current conversation of a session.
type ConversationView struct {
	ID        string  `json:"id"`
	Status    string  `json:"status"`
	HandledBy string  `json:"handled_by"`
	Assignee  *string `json:"assignee"`
}

// NewSessionView returns how s is shown at now.
func NewSessionView(s *parley.Session, now time.Time) SessionView {
	v := SessionView{ID: s.ID, ExternalSessionID: s.ExternalSessionID, Status: s.StatusAt(now), Context: s.Context,
		CreatedAt: s.CreatedAt.UnixMilli(), ExpiresAt: s.ExpiresAt.UnixMilli(), EndedAt: optMS(s.EndedAt),
		Conversation: ConversationView{ID: s.Conversation.ID, Status: s.Conversation.Status, HandledBy: s.Conversation.HandledBy}}
	if s.Conversation.AssigneeID != "" {
		v.Conversation.Assignee = &s.Conversation.AssigneeID
	}
	return v
}

// MessageView is a message as the history shows it.
type MessageView struct {
	ID             string              `json:"id"`
	ConversationID string              `json:"conversation_id"`
	Author         string              `json:"author"`
	Agent          *parley.AgentRef    `json:"agent,omitempty"`
	Text           string              `json:"text,omitempty"`
	Attachments    []parley.Attachment `json:"attachments,omitempty"`
	Responses      json.RawMessage     `json:"responses,omitempty"`
	CreatedAt      int64               `json:"created_at"`
	DeliveredAt    *int64              `json:"delivered_at"`
	ReadAt         *int64              `json:"read_at"`
}

// NewMessageView returns how m is shown.
func NewMessageView(m *parley.Message) *MessageView {
	return &MessageView{ID: m.ID, ConversationID: m.ConversationID, Author: m.Author, Agent: m.Agent, Text: m.Text,
		Attachments: m.Attachments, Responses: m.Responses, CreatedAt: m.CreatedAt.UnixMilli(),
		DeliveredAt: optMS(m.DeliveredAt), ReadAt: optMS(m.ReadAt)}
}

func optMS(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// readableSession returns a session of the integration, whatever its status: the read
// extensions show closed and expired sessions too.
func readableSession(tx store.ReadTx, in *parley.Integration, sid string) (*parley.Session, error) {
	sess, err := tx.Session(sid)
	if parley.IsCode(err, parley.ENotFound) || (err == nil && sess.IntegrationID != in.ID) {
		return nil, parley.Errorf(parley.ESessionNotFound, "session not found")
	}
	return sess, err
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		sess, err := readableSession(tx, in, sid)
		if err != nil {
			return nil, err
		}
		return sessionFound{RequestID: RequestID(r.Context()), Session: NewSessionView(sess, s.chat.Now())}, nil
	})
}

// Paging of the message history.
const (
	defaultPage = 50
	maxPage     = 200
)

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
	sid, err := sessionID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := ParsePage(r.URL.Query(), defaultPage, maxPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		if _, err := readableSession(tx, in, sid); err != nil {
			return nil, err
		}
		msgs, next, err := History(tx, s.chat, sid, p)
		if err != nil {
			return nil, err
		}
		return messagePage{RequestID: RequestID(r.Context()), Messages: msgs, Next: next}, nil
	})
}
