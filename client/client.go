// Package client is a Go client of parley's inbound API, the Moveo-compatible "Custom
// integration" channel API: sessions, messages, receipts, conversations, handover and files.
// The same code talks to Moveo by changing only the base URL.
//
//	c := client.New("http://127.0.0.1:8080", integrationID, apiKey)
//	s, err := c.CreateSession(ctx, client.NewSession{ExternalSessionID: "order-12345"})
//	_, err = c.Send(ctx, s.SessionID, client.Message{Text: "Hello"})
//
// Every call returns a *client.Error for an answer in the API's error shape, so callers can
// tell a 404 session-not-found from a 429 rate-limited.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// Client calls the inbound API of one integration.
type Client struct {
	base        string
	integration string
	key         string
	http        *http.Client
}

// Option changes a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with h.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client of the integration's API at baseURL (e.g. "https://chat.example.com").
func New(baseURL, integrationID, apiKey string, opts ...Option) *Client {
	c := &Client{base: strings.TrimSuffix(baseURL, "/"), integration: integrationID, key: apiKey,
		http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Error is an answer in the API's error shape.
type Error struct {
	Status     int    // the HTTP status
	Code       string `json:"error_code"` // e.g. "session-not-found"
	Message    string `json:"error_message"`
	RequestID  string // from X-Request-Id
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("parley: %d %s: %s (request %s)", e.Status, e.Code, e.Message, e.RequestID)
}

// IsCode reports whether err is an *Error with the given error_code.
func IsCode(err error, code string) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == code
}

// CallOption changes one call.
type CallOption func(*http.Request)

// IdempotencyKey makes a POST safe to repeat: a key the integration used in the last 24 hours
// gets the first answer again, and nothing changes.
func IdempotencyKey(key string) CallOption {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// do sends a request and decodes a successful answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any, opts []CallOption) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/v1/custom/"+c.integration+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "apikey "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e.Code, e.Message = "http-"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// NewSession opens a session. Every field is optional.
type NewSession struct {
	ExternalSessionID string         `json:"external_session_id,omitempty"`
	ChannelUserID     string         `json:"channel_user_id,omitempty"`
	Context           map[string]any `json:"context,omitempty"`
}

// Session is a created session.
type Session struct {
	RequestID string          `json:"request_id"`
	SessionID string          `json:"session_id"`
	Context   json.RawMessage `json:"context"`
}

// CreateSession opens a session.
func (c *Client) CreateSession(ctx context.Context, s NewSession, opts ...CallOption) (*Session, error) {
	var out Session
	return &out, c.do(ctx, "POST", "/sessions", s, &out, opts)
}

// UpdateContext merges patch into the session's context (objects merge, arrays and values
// replace, nil removes) and returns the whole context.
func (c *Client) UpdateContext(ctx context.Context, sessionID string, patch map[string]any, opts ...CallOption) (json.RawMessage, error) {
	var out struct {
		Context json.RawMessage `json:"context"`
	}
	return out.Context, c.do(ctx, "PATCH", "/sessions/"+url.PathEscape(sessionID)+"/context", patch, &out, opts)
}

// CloseSession ends a session.
func (c *Client) CloseSession(ctx context.Context, sessionID string, opts ...CallOption) error {
	return c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/close", nil, nil, opts)
}

// Message is what a user (or an integrator's agent) sends: text, attachments or both.
type Message struct {
	Text        string              `json:"text,omitempty"`
	Attachments []parley.Attachment `json:"attachments,omitempty"`
}

// Send posts a user message, merging context (when not nil) into the session's first. It
// returns the message's ID.
func (c *Client) Send(ctx context.Context, sessionID string, m Message, context map[string]any, opts ...CallOption) (string, error) {
	in := struct {
		Input   Message        `json:"input"`
		Context map[string]any `json:"context,omitempty"`
	}{m, context}
	var out struct {
		MessageID string `json:"message_id"`
	}
	return out.MessageID, c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/messages", in, &out, opts)
}

// SendAsAgent records a message written by the integrator's own human agent; the brain stops
// answering the conversation until it is resolved.
func (c *Client) SendAsAgent(ctx context.Context, sessionID string, m Message, agent parley.AgentRef, opts ...CallOption) (string, error) {
	in := struct {
		Input Message         `json:"input"`
		Agent parley.AgentRef `json:"agent"`
	}{m, agent}
	var out struct {
		MessageID string `json:"message_id"`
	}
	return out.MessageID, c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/messages/agent", in, &out, opts)
}

// Receipts names the messages a user received or read: by ID, or all up to a time.
type Receipts struct {
	MessageIDs []string
	Until      time.Time
}

func (r Receipts) body() any {
	b := struct {
		MessageIDs []string `json:"message_ids,omitempty"`
		Timestamp  int64    `json:"timestamp,omitempty"`
	}{MessageIDs: r.MessageIDs}
	if !r.Until.IsZero() {
		b.Timestamp = r.Until.UnixMilli()
	}
	return b
}

// MarkRead records that the user read brain and agent messages; it returns how many changed.
func (c *Client) MarkRead(ctx context.Context, sessionID string, r Receipts, opts ...CallOption) (int, error) {
	return c.receipts(ctx, sessionID, "read", r, opts)
}

// MarkDelivered records that brain and agent messages reached the user.
func (c *Client) MarkDelivered(ctx context.Context, sessionID string, r Receipts, opts ...CallOption) (int, error) {
	return c.receipts(ctx, sessionID, "delivered", r, opts)
}

func (c *Client) receipts(ctx context.Context, sessionID, kind string, r Receipts, opts []CallOption) (int, error) {
	var out struct {
		Updated int `json:"updated"`
	}
	return out.Updated, c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/messages/"+kind, r.body(), &out, opts)
}

// CloseConversation resolves the current conversation.
func (c *Client) CloseConversation(ctx context.Context, sessionID string, opts ...CallOption) error {
	return c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/conversation/close", nil, nil, opts)
}

// ReopenConversation reopens the current conversation if it is resolved.
func (c *Client) ReopenConversation(ctx context.Context, sessionID string, opts ...CallOption) error {
	return c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/conversation/reopen", nil, nil, opts)
}

// Handover hands the conversation to the human agents' queue.
func (c *Client) Handover(ctx context.Context, sessionID string, opts ...CallOption) error {
	return c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/handover", nil, nil, opts)
}

// Upload asks for an upload URL and PUTs r (a file of the given type) to it. It returns the
// file's ID, to name in a message's attachments.
func (c *Client) Upload(ctx context.Context, sessionID, filename, contentType string, r io.Reader) (string, error) {
	var out struct {
		UploadURL string `json:"upload_url"`
		FileID    string `json:"file_id"`
	}
	in := map[string]string{"filename": filename, "content_type": contentType}
	if err := c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/files/upload-url", in, &out, nil); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, "PUT", out.UploadURL, r)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
		if json.Unmarshal(b, e) != nil || e.Code == "" {
			e.Code, e.Message = "http-"+strconv.Itoa(resp.StatusCode), strings.TrimSpace(string(b))
		}
		return "", e
	}
	return out.FileID, nil
}

// DownloadURL returns a URL the file of the session can be fetched from, for a while.
func (c *Client) DownloadURL(ctx context.Context, sessionID, fileID string) (string, error) {
	var out struct {
		DownloadURL string `json:"download_url"`
	}
	return out.DownloadURL, c.do(ctx, "POST", "/sessions/"+url.PathEscape(sessionID)+"/files/download-url",
		map[string]string{"file_id": fileID}, &out, nil)
}

// SessionInfo is a session as the read extension shows it.
type SessionInfo struct {
	ID                string          `json:"id"`
	ExternalSessionID string          `json:"external_session_id"`
	Status            string          `json:"status"` // active, closed or expired
	Context           json.RawMessage `json:"context"`
	CreatedAt         int64           `json:"created_at"` // Unix ms
	ExpiresAt         int64           `json:"expires_at"`
	EndedAt           *int64          `json:"ended_at"`
	Conversation      struct {
		ID        string  `json:"id"`
		Status    string  `json:"status"`     // open or resolved
		HandledBy string  `json:"handled_by"` // brain, queue, agent or external
		Assignee  *string `json:"assignee"`
	} `json:"conversation"`
}

// GetSession reads a session, also after it was closed or expired.
func (c *Client) GetSession(ctx context.Context, sessionID string) (*SessionInfo, error) {
	var out struct {
		Session SessionInfo `json:"session"`
	}
	return &out.Session, c.do(ctx, "GET", "/sessions/"+url.PathEscape(sessionID), nil, &out, nil)
}

// HistoryMessage is a message of a session's history.
type HistoryMessage struct {
	ID             string              `json:"id"`
	ConversationID string              `json:"conversation_id"`
	Author         string              `json:"author"` // user, brain, agent or external
	Agent          *parley.AgentRef    `json:"agent,omitempty"`
	Text           string              `json:"text,omitempty"`
	Attachments    []parley.Attachment `json:"attachments,omitempty"`
	Responses      json.RawMessage     `json:"responses,omitempty"`
	CreatedAt      int64               `json:"created_at"`
	DeliveredAt    *int64              `json:"delivered_at"`
	ReadAt         *int64              `json:"read_at"`
}

// History yields a session's messages, oldest first, reading pages as it goes. Stop ranging
// to stop reading; an error ends the sequence.
func (c *Client) History(ctx context.Context, sessionID string) iter.Seq2[*HistoryMessage, error] {
	return func(yield func(*HistoryMessage, error) bool) {
		after := ""
		for {
			path := "/sessions/" + url.PathEscape(sessionID) + "/messages?limit=200"
			if after != "" {
				path += "&after=" + url.QueryEscape(after)
			}
			var page struct {
				Messages []*HistoryMessage `json:"messages"`
				Next     *string           `json:"next"`
			}
			if err := c.do(ctx, "GET", path, nil, &page, nil); err != nil {
				yield(nil, err)
				return
			}
			for _, m := range page.Messages {
				if !yield(m, nil) {
					return
				}
			}
			if page.Next == nil {
				return
			}
			after = *page.Next
		}
	}
}
