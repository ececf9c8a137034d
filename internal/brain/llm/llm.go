// Package llm is the "llm" brain (SPEC §6): it answers users with an OpenAI-compatible
// chat-completions endpoint — OpenAI itself, or a local server such as Ollama or vLLM. Each user
// message becomes one call carrying a system prompt, the session's context and the latest
// messages of the session; the model's answer becomes one text response, or a handover when the
// model calls the handover_to_human tool or the user plainly asks for a person.
//
// It must never act on what the model writes beyond showing it: the model's text sets no
// context, resolves nothing and runs nothing, and only the one tool it is offered does anything.
// Like every brain it never touches the database (the history comes through Request.History),
// and it never logs messages or keys: its errors name the endpoint's host, never the key.
package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
)

// Config is an integration's "llm" brain configuration, as its brain JSON holds it.
type Config struct {
	BaseURL      string   `json:"base_url"` // e.g. https://api.openai.com/v1 ; POST {BaseURL}/chat/completions
	Model        string   `json:"model"`
	APIKey       string   `json:"api_key,omitempty"`       // sent as Authorization: Bearer; empty = none
	APIKeyEnv    string   `json:"api_key_env,omitempty"`   // or the name of an environment variable holding it (read at New)
	SystemPrompt string   `json:"system_prompt,omitempty"` // default: DefaultSystemPrompt
	MaxHistory   int      `json:"max_history,omitempty"`   // messages of history sent (default 20)
	Temperature  *float64 `json:"temperature,omitempty"`   // nil = the provider's default
	MaxTokens    int      `json:"max_tokens,omitempty"`    // 0 = the provider's default
	TimeoutMS    int      `json:"timeout_ms,omitempty"`    // per call (default 30000)
}

// Defaults and limits.
const (
	DefaultMaxHistory = 20
	DefaultTimeout    = 30 * time.Second

	// DefaultSystemPrompt is the system prompt when the configuration gives none.
	DefaultSystemPrompt = "You are a friendly, helpful customer-support assistant chatting with a user " +
		"through a website or app chat. Answer briefly and plainly, in the language the user writes in. " +
		"Use only what this conversation and the context you are given tell you; when you do not know " +
		"something, say so instead of guessing, and never make up prices, policies or order details. " +
		"If the user asks for a human, or you cannot help them, call the handover_to_human tool with a " +
		"short reason."

	// DefaultHandoverText is what the user reads when the conversation is handed to humans and the
	// model said nothing itself.
	DefaultHandoverText = "Let me connect you with a member of our team."

	// MaxAnswerBytes caps the endpoint's answer: a chat completion is a few KiB, so anything past
	// this is a misbehaving server, not an answer.
	MaxAnswerBytes = 1 << 20

	maxHistoryLimit  = 200
	maxTimeoutMS     = 10 * 60 * 1000
	maxMaxTokens     = 1 << 20
	maxSystemPrompt  = 32 << 10
	maxModelBytes    = 256
	maxErrorMessage  = 300     // bytes of a provider's error message kept in our error
	maxContextBytes  = 4 << 10 // the session context as sent to the model
	maxEarlierBytes  = 8 << 10 // one earlier message of the history as sent to the model
	handoverToolName = "handover_to_human"
)

// Check validates the configuration. Its errors name the field as the brain configuration
// holds it (llm.base_url); the caller marks them invalid.
func (c Config) Check() error {
	if c.BaseURL == "" {
		return errors.New("llm.base_url is required, e.g. https://api.openai.com/v1")
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("llm.base_url must be an http or https URL")
	case u.User != nil:
		return errors.New("llm.base_url must not hold credentials: use api_key or api_key_env")
	case u.Fragment != "":
		return errors.New("llm.base_url must not have a #fragment")
	}
	switch {
	case strings.TrimSpace(c.Model) == "":
		return errors.New("llm.model is required")
	case len(c.Model) > maxModelBytes:
		return fmt.Errorf("llm.model is longer than %d bytes", maxModelBytes)
	case c.APIKey != "" && c.APIKeyEnv != "":
		return errors.New("llm.api_key and llm.api_key_env: give one, not both")
	case !headerSafe(c.APIKey):
		return errors.New("llm.api_key must not contain spaces or control characters")
	case c.APIKeyEnv != "" && !envName(c.APIKeyEnv):
		return errors.New("llm.api_key_env must be the name of an environment variable, such as OPENAI_API_KEY")
	case len(c.SystemPrompt) > maxSystemPrompt:
		return fmt.Errorf("llm.system_prompt is longer than %d bytes", maxSystemPrompt)
	case c.MaxHistory < 0 || c.MaxHistory > maxHistoryLimit:
		return fmt.Errorf("llm.max_history must be between 1 and %d (0 = %d)", maxHistoryLimit, DefaultMaxHistory)
	case c.Temperature != nil && (math.IsNaN(*c.Temperature) || *c.Temperature < 0 || *c.Temperature > 2):
		return errors.New("llm.temperature must be between 0 and 2")
	case c.MaxTokens < 0 || c.MaxTokens > maxMaxTokens:
		return fmt.Errorf("llm.max_tokens must be between 1 and %d (0 = the provider's default)", maxMaxTokens)
	case c.TimeoutMS < 0 || c.TimeoutMS > maxTimeoutMS:
		return fmt.Errorf("llm.timeout_ms must be between 1 and %d (0 = %d)", maxTimeoutMS, DefaultTimeout.Milliseconds())
	}
	return nil
}

// headerSafe reports whether s can travel in an HTTP header value as a bearer token.
func headerSafe(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r > unicode.MaxASCII {
			return false
		}
	}
	return true
}

// envName reports whether s is a portable environment variable name.
func envName(s string) bool {
	for i, r := range s {
		if r != '_' && !('A' <= r && r <= 'Z') && !('a' <= r && r <= 'z') && (i == 0 || !('0' <= r && r <= '9')) {
			return false
		}
	}
	return s != "" && len(s) <= 255
}

// Brain answers with a chat-completions endpoint. It is safe for concurrent use.
type Brain struct {
	cfg      Config // defaults filled in
	endpoint string // {BaseURL}/chat/completions
	host     string // names the endpoint in errors
	key      string
	timeout  time.Duration
	client   *http.Client

	// noTools is set once the endpoint refused the tool definition (Ollama answers 400 "does not
	// support tools" for models without tool calling; vLLM does without its tool parser). Calls
	// then go without it, and handover relies on the user's words alone.
	noTools atomic.Bool
}

var _ brain.Brain = (*Brain)(nil)

// New returns the brain of a checked configuration, reading the API key from the environment
// when api_key_env names it. client nil is a default client; the timeout comes from cfg.
func New(cfg Config, client *http.Client) (*Brain, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	key := cfg.APIKey
	if cfg.APIKeyEnv != "" {
		key = strings.TrimSpace(os.Getenv(cfg.APIKeyEnv))
		if key == "" {
			return nil, fmt.Errorf("llm.api_key_env names %s, which is not set", cfg.APIKeyEnv)
		}
		if !headerSafe(key) {
			return nil, fmt.Errorf("llm: the API key in %s contains spaces or control characters", cfg.APIKeyEnv)
		}
	}
	u, _ := url.Parse(cfg.BaseURL) // Check parsed it
	endpoint := u.JoinPath("chat", "completions")
	if cfg.SystemPrompt == "" {
		cfg.SystemPrompt = DefaultSystemPrompt
	}
	if cfg.MaxHistory == 0 {
		cfg.MaxHistory = DefaultMaxHistory
	}
	timeout := DefaultTimeout
	if cfg.TimeoutMS > 0 {
		timeout = time.Duration(cfg.TimeoutMS) * time.Millisecond
	}
	if client == nil {
		// No Timeout here: each call has its own deadline from the configuration.
		client = &http.Client{}
	}
	return &Brain{cfg: cfg, endpoint: endpoint.String(), host: u.Host, key: key, timeout: timeout, client: client}, nil
}

// Reply answers the user's message. A user who plainly asks for a person is handed over without
// calling the model (see asksForHuman); otherwise the model answers, or hands over through its
// tool. Any failure is an error, and the worker sends the fallback reply.
func (b *Brain) Reply(ctx context.Context, req *brain.Request) (*brain.Reply, error) {
	if req == nil || req.Message == nil {
		return nil, errors.New("llm: the request has no message")
	}
	if asksForHuman(req.Message.Text) {
		return handover(""), nil
	}
	msgs, err := b.messages(ctx, req)
	if err != nil {
		return nil, err
	}
	return b.complete(ctx, msgs)
}

// handover is the reply that hands the conversation to humans, saying text, or the default.
func handover(text string) *brain.Reply {
	if text == "" {
		text = DefaultHandoverText
	}
	return &brain.Reply{Responses: []brain.Response{brain.Text(text)}, Handover: true}
}

// request is the body of a chat-completions call.
type request struct {
	Model       string    `json:"model"`
	Messages    []message `json:"messages"`
	Tools       []tool    `json:"tools,omitempty"`
	Temperature *float64  `json:"temperature,omitempty"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type tool struct {
	Type     string       `json:"type"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Parameters  map[string]any `json:"parameters"`
}

// handoverTool is the one tool the model is offered.
var handoverTool = tool{Type: "function", Function: toolFunction{
	Name: handoverToolName,
	Description: "Hand the conversation over to a human member of the support team. Use it when the " +
		"user asks for a person, or when you cannot help them.",
	Parameters: map[string]any{
		"type": "object",
		"properties": map[string]any{
			"reason": map[string]any{"type": "string", "description": "Why the conversation needs a human, in a few words."},
		},
		"required": []string{"reason"},
	},
}}

// complete calls the endpoint with msgs and decodes its answer.
func (b *Brain) complete(ctx context.Context, msgs []message) (*brain.Reply, error) {
	body := request{Model: b.cfg.Model, Messages: msgs, Temperature: b.cfg.Temperature, MaxTokens: b.cfg.MaxTokens}
	withTools := !b.noTools.Load()
	if withTools {
		body.Tools = []tool{handoverTool}
	}
	status, data, err := b.post(ctx, body)
	if err != nil {
		return nil, err
	}
	if status == http.StatusBadRequest && withTools && strings.Contains(strings.ToLower(providerError(data)), "tool") {
		b.noTools.Store(true)
		body.Tools = nil
		if status, data, err = b.post(ctx, body); err != nil {
			return nil, err
		}
	}
	if status < 200 || status > 299 {
		return nil, fmt.Errorf("llm: %s answered %d: %s", b.host, status, providerError(data))
	}
	if len(data) > MaxAnswerBytes {
		return nil, fmt.Errorf("llm: %s answered more than %d bytes", b.host, MaxAnswerBytes)
	}
	r, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("llm: %s: %w", b.host, err)
	}
	return r, nil
}

// post makes one call, bounded by the configured timeout, and returns the status and up to
// MaxAnswerBytes+1 bytes of the body (one more, so an oversize answer shows).
func (b *Brain) post(ctx context.Context, body request) (int, []byte, error) {
	payload, err := parley.Marshal(body)
	if err != nil {
		return 0, nil, fmt.Errorf("llm: encoding the request: %w", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, b.endpoint, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, fmt.Errorf("llm: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "parley")
	if b.key != "" {
		req.Header.Set("Authorization", "Bearer "+b.key)
	}
	resp, err := b.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		var data []byte
		data, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
		if err == nil {
			return resp.StatusCode, data, nil
		}
	}
	if ctx.Err() == nil && errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return 0, nil, fmt.Errorf("llm: %s gave no answer within %s", b.host, b.timeout)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err // the URL it names is the endpoint, with any query; the host says enough
	}
	return 0, nil, fmt.Errorf("llm: calling %s: %w", b.host, err)
}
