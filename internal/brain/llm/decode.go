package llm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
)

// completion is the part of a chat completion parley reads. Servers differ in the rest.
type completion struct {
	Choices []struct {
		Message struct {
			// Content is a string, null beside a tool call, or (some servers) a list of parts.
			Content   json.RawMessage `json:"content"`
			Refusal   string          `json:"refusal"`
			ToolCalls []struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			} `json:"tool_calls"`
			// FunctionCall is the legacy form of a tool call, still answered by some servers.
			FunctionCall *struct {
				Name string `json:"name"`
			} `json:"function_call"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	// Error: some proxies answer 200 with an error body.
	Error json.RawMessage `json:"error"`
}

// decode turns a chat completion into a reply: a call of the handover tool hands over (with what
// the model said, or DefaultHandoverText); otherwise the first choice's text is the one text
// response. An answer without either is an error, never an empty message to the user.
func decode(data []byte) (*brain.Reply, error) {
	var c completion
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errors.New("the answer is not a chat completion (invalid JSON)")
	}
	if len(c.Choices) == 0 {
		if msg := errorMessage(c.Error); msg != "" {
			return nil, fmt.Errorf("the answer is an error: %s", clip(msg))
		}
		return nil, errors.New("the answer has no choices")
	}
	m := c.Choices[0].Message
	text, err := contentText(m.Content)
	if err != nil {
		return nil, err
	}
	text = clean(text)
	if text == "" {
		text = clean(m.Refusal) // a refusal is written for the user to read
	}
	handsOver := m.FunctionCall != nil && strings.TrimSpace(m.FunctionCall.Name) == handoverToolName
	for _, tc := range m.ToolCalls {
		handsOver = handsOver || strings.TrimSpace(tc.Function.Name) == handoverToolName
	}
	switch {
	case handsOver:
		return handover(text), nil
	case text != "":
		return &brain.Reply{Responses: []brain.Response{brain.Text(text)}}, nil
	}
	return nil, fmt.Errorf("the answer holds no text (finish_reason %q)", clip(c.Choices[0].FinishReason))
}

// contentText reads message.content: a string, null, or a list of parts whose texts are joined.
func contentText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return "", errors.New("message.content is neither text nor a list of parts")
	}
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// clean makes a model's text fit to send: a reasoning model's leading <think>…</think> block is
// dropped (the user gets the answer, not the deliberation), control characters other than line
// breaks and tabs are removed (U+0000 cannot even be stored in PostgreSQL text), and the text is
// capped at what parley accepts in a message.
func clean(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "<think>"); ok {
		if _, after, ok := strings.Cut(rest, "</think>"); ok {
			s = strings.TrimSpace(after)
		}
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return truncate(strings.TrimSpace(s), parley.MaxTextBytes)
}

// providerError is what a non-2xx answer says, for our error: the error message of the OpenAI
// shape ({"error": {"message"}}), of Ollama's and vLLM's ({"error": "..."}, {"message"}), or
// FastAPI's ({"detail"}); else the body itself, on one line and clipped.
func providerError(data []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(data, &e) == nil {
		for _, msg := range []string{errorMessage(e.Error), e.Message, errorMessage(e.Detail)} {
			if strings.TrimSpace(msg) != "" {
				return clip(msg)
			}
		}
	}
	if msg := clip(string(data)); msg != "" {
		return msg
	}
	return "(empty body)"
}

// errorMessage reads an error field that is a string or an object with a message.
func errorMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Message
	}
	return ""
}

// clip puts a provider's text on one line and cuts it to maxErrorMessage bytes, so an error page
// cannot flood a log line.
func clip(s string) string {
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	return truncate(s, maxErrorMessage)
}
