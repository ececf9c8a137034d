package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
	"github.com/parleyhq/parley/internal/brain/llm"
)

// Brain kinds (SPEC §6).
const (
	KindDialog = "dialog" // the built-in dialog engine; the default
	KindHTTP   = "http"   // the operator's own bot, spoken to with Moveo's dialog webhook protocol
	KindLLM    = "llm"    // an OpenAI-compatible chat-completions endpoint
)

// Config is an integration's brain configuration: the JSON object stored as its "brain". The
// empty object is the bundled demo dialog.
type Config struct {
	Kind string `json:"kind,omitempty"` // dialog (default), http or llm

	File string `json:"file,omitempty"` // dialog: the dialog file on the server; empty = the demo

	URL     string `json:"url,omitempty"`      // http: the bot's endpoint
	Token   string `json:"token,omitempty"`    // http: signs each request (X-Moveo-Signature)
	BrainID string `json:"brain_id,omitempty"` // http: sent as brain_id (default: the integration's ID)
	Lang    string `json:"lang,omitempty"`     // http: sent as lang when the context has no user.language

	LLM *llm.Config `json:"llm,omitempty"` // llm

	// TimeoutMS bounds one reply (default 10 s; llm 30 s). Past it the fallback is sent.
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// Fallback is sent when the brain fails or times out (default: DefaultFallback).
	Fallback []brain.Response `json:"fallback,omitempty"`
}

// DefaultFallback is the reply of a brain that failed, unless the integration names its own.
var DefaultFallback = []brain.Response{
	brain.Text("Sorry, I could not answer that just now. Please try again in a moment."),
}

// ParseConfig decodes and validates a brain configuration, without reading its dialog file.
// Unknown keys are refused, so a typo does not silently leave an integration on the demo
// dialog.
func ParseConfig(raw json.RawMessage) (*Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		raw = json.RawMessage(`{}`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, parley.Errorf(parley.EInvalid, "brain: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := c.check(); err != nil {
		return nil, parley.Errorf(parley.EInvalid, "brain: %s", err)
	}
	return &c, nil
}

func (c *Config) check() error {
	if c.Kind == "" {
		c.Kind = KindDialog
	}
	if c.TimeoutMS < 0 || c.TimeoutMS > 600_000 {
		return fmt.Errorf("timeout_ms must be between 0 and 600000")
	}
	switch c.Kind {
	case KindDialog:
		if c.URL != "" || c.Token != "" || c.LLM != nil {
			return fmt.Errorf("a dialog brain takes file, not url, token or llm")
		}
		if c.File != "" && !filepath.IsAbs(c.File) {
			return fmt.Errorf("file must be an absolute path on the server")
		}
	case KindHTTP:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("an http brain needs url, an absolute http(s) URL")
		}
		if c.File != "" || c.LLM != nil {
			return fmt.Errorf("an http brain takes url and token, not file or llm")
		}
	case KindLLM:
		if c.LLM == nil {
			return fmt.Errorf("an llm brain needs llm: {base_url, model, ...}")
		}
		if c.File != "" || c.URL != "" {
			return fmt.Errorf("an llm brain takes llm, not file or url")
		}
		if err := c.LLM.Check(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("kind must be dialog, http or llm, not %q", c.Kind)
	}
	for i, r := range c.Fallback {
		if r.Type == "" {
			return fmt.Errorf("fallback[%d] has no type", i)
		}
	}
	return nil
}

// Timeout is how long one reply may take.
func (c *Config) Timeout() time.Duration {
	switch {
	case c.TimeoutMS > 0:
		return time.Duration(c.TimeoutMS) * time.Millisecond
	case c.Kind == KindLLM:
		return 30 * time.Second
	}
	return 10 * time.Second
}

// CheckConfig validates a brain configuration and loads its dialog file when it names one: the
// admin API and the CLI refuse what the worker could not run.
func CheckConfig(raw json.RawMessage) error {
	c, err := ParseConfig(raw)
	if err == nil && c.File != "" {
		if _, err := dialog.LoadFile(c.File); err != nil {
			return parley.Errorf(parley.EInvalid, "brain: %s", err)
		}
	}
	return err
}

// FromFlag turns the CLI's --brain value into a configuration: a JSON object as is, or a
// shorthand: "dialog" (the demo), "dialog:FILE", "http:URL", "llm:FILE" (a JSON file of the
// llm settings) or "llm:{...}".
func FromFlag(s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		return json.RawMessage(s), nil
	}
	kind, arg, _ := strings.Cut(s, ":")
	var c Config
	switch kind {
	case KindDialog:
		c.Kind = KindDialog
		if arg != "" {
			// The server reads the file: a path relative to where the CLI ran would mean
			// something else to it.
			abs, err := filepath.Abs(arg)
			if err != nil {
				return nil, err
			}
			c.File = abs
		}
	case KindHTTP:
		c.Kind, c.URL = KindHTTP, arg
	case KindLLM:
		c.Kind = KindLLM
		b := []byte(arg)
		if !strings.HasPrefix(arg, "{") {
			var err error
			if b, err = os.ReadFile(arg); err != nil {
				return nil, fmt.Errorf("brain: %w", err)
			}
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.LLM); err != nil {
			return nil, fmt.Errorf("brain: llm settings: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
	default:
		return nil, fmt.Errorf("brain must be dialog[:FILE], http:URL, llm:CONFIG or a JSON object, not %q", s)
	}
	return parley.Marshal(c)
}
