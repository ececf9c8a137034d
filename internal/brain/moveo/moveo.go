// Package moveo speaks Moveo's dialog webhook protocol (SPEC §6): parley posts the user's input
// and the context, signed; the webhook answers context changes and responses in Moveo's action
// shapes, which become parley's responses. The dialog engine calls it for its webhook action;
// Bot uses it as the "http" brain, where every user message goes to the operator's own bot.
//
// The webhook is someone else's program: its answer is untrusted input. This package must never
// panic, follow a redirect, wait past its timeout or read past MaxAnswerBytes because of what a
// webhook does, and it never logs: every failure is an error for the caller, who then sends its
// fallback.
package moveo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/webhook"
)

// Endpoint is a dialog webhook, or a bot that speaks its protocol.
type Endpoint struct {
	URL     string
	Token   string        // the HMAC key of X-Moveo-Signature; no signature when empty
	Timeout time.Duration // per call; 0 = DefaultTimeout
	BrainID string        // sent as brain_id
	Lang    string        // sent as lang; "" = "en"
}

// DefaultTimeout bounds a call when the endpoint names none.
const DefaultTimeout = 10 * time.Second

// MaxAnswerBytes bounds the body of an answer; a longer one is an error, not a truncated answer.
const MaxAnswerBytes = 1 << 20

// UserAgent is sent with every call, so a webhook can tell parley from Moveo in its logs.
const UserAgent = "parley-brain/1"

// Answer is a webhook's answer, converted.
type Answer struct {
	Output    map[string]any // merged into the session's context
	Responses []brain.Response
	Handover  bool // a handover action was among the responses
}

// Input is the input of a call. Attachments are parley's extension of Moveo's protocol: they are
// sent only when there are any, so a text message is exactly what Moveo would send.
type Input struct {
	Text        string              `json:"text"`
	Attachments []parley.Attachment `json:"attachments,omitempty"`
}

// request is the body of a call. The field order is the protocol's: a webhook that signs or
// logs bodies sees the bytes Moveo would send.
type request struct {
	Channel   string         `json:"channel"`
	SessionID string         `json:"session_id"`
	BrainID   string         `json:"brain_id"`
	Lang      string         `json:"lang"`
	Context   map[string]any `json:"context"`
	Input     Input          `json:"input"`
}

// Call posts the user's text and the context to the endpoint for the session and returns its
// converted answer. Any failure (transport, timeout, non-2xx, a body that is not the protocol's)
// is an error; the caller then uses its fallback.
func Call(ctx context.Context, client *http.Client, ep Endpoint, sessionID string, context map[string]any, text string) (*Answer, error) {
	return Post(ctx, client, ep, sessionID, context, Input{Text: text})
}

// Post is Call with a whole input, attachments included. The lang sent is the context's
// user.language when it is a non-empty string, else ep.Lang, else "en"; the endpoint is never
// asked to follow a redirect (a 3xx is an error), and a nil client means http.DefaultClient's
// transport.
func Post(ctx context.Context, client *http.Client, ep Endpoint, sessionID string, vars map[string]any, in Input) (*Answer, error) {
	where := describe(ep.URL)
	if vars == nil {
		vars = map[string]any{} // Moveo always sends an object
	}
	body, err := parley.Marshal(request{
		Channel:   "custom",
		SessionID: sessionID,
		BrainID:   ep.BrainID,
		Lang:      Lang(vars, ep.Lang),
		Context:   vars,
		Input:     in,
	})
	if err != nil {
		return nil, fmt.Errorf("moveo: %s: encoding the request: %w", where, err)
	}

	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("moveo: %s: %w", where, err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, fmt.Errorf("moveo: %s: the URL must be http or https", where)
	}
	requestID := parley.NewRandomID()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(webhook.RequestIDHeader, requestID)
	req.Header.Set(webhook.SessionIDHeader, sessionID)
	if ep.Token != "" {
		req.Header.Set(webhook.SignatureHeader, webhook.Sign(ep.Token, body))
	}
	where += " (request " + requestID + ")"

	resp, err := noRedirects(client).Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the whole URL, query and all
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, fmt.Errorf("moveo: %s: no answer within %v: %w", where, timeout, err)
		}
		return nil, fmt.Errorf("moveo: %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("moveo: %s: status %s", where, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("moveo: %s: no whole answer within %v: %w", where, timeout, err)
		}
		return nil, fmt.Errorf("moveo: %s: reading the answer: %w", where, err)
	}
	if len(b) > MaxAnswerBytes {
		return nil, fmt.Errorf("moveo: %s: the answer is longer than %d bytes", where, MaxAnswerBytes)
	}
	if resp.StatusCode == http.StatusNoContent {
		return &Answer{}, nil // nothing to say and nothing to change
	}
	a, err := Convert(b)
	if err != nil {
		return nil, fmt.Errorf("moveo: %s: %w", where, err)
	}
	return a, nil
}

// noRedirects returns a client like c (or the default one) that hands back a redirect as the
// answer instead of following it: a webhook must not be able to send parley's signed request,
// or parley itself, somewhere else.
func noRedirects(c *http.Client) *http.Client {
	var nc http.Client
	if c != nil {
		nc = *c
	}
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// describe names an endpoint in errors without its query or credentials, which may hold secrets.
func describe(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "webhook"
	}
	return "webhook " + u.Scheme + "://" + u.Host + u.EscapedPath()
}

// Lang returns the language a call says: the context's user.language when it is a non-empty
// string, else def, else "en".
func Lang(vars map[string]any, def string) string {
	if v, ok := parley.Lookup(vars, "user.language"); ok {
		if s, ok := v.(string); ok && s != "" {
			return s
		}
	}
	if def != "" {
		return def
	}
	return "en"
}

// Bot is the "http" brain: every user message goes to the operator's bot, and its answer is the
// reply.
type Bot struct {
	Endpoint Endpoint
	Client   *http.Client // nil = a default client
}

// Reply implements brain.Brain. The bot is asked as the integration's brain (brain_id is the
// integration's ID unless the Endpoint names one) with the message's text and, when it has any,
// its attachments.
func (b *Bot) Reply(ctx context.Context, req *brain.Request) (*brain.Reply, error) {
	if req.Message == nil {
		return nil, errors.New("moveo: no message to answer")
	}
	ep := b.Endpoint
	if ep.BrainID == "" && req.Integration != nil {
		ep.BrainID = req.Integration.ID
	}
	a, err := Post(ctx, b.Client, ep, req.SessionID, req.Context, Input{
		Text:        req.Message.Text,
		Attachments: req.Message.Attachments,
	})
	if err != nil {
		return nil, err
	}
	return &brain.Reply{Responses: a.Responses, Context: a.Output, Handover: a.Handover}, nil
}
