package llm

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
)

// FuzzDecode feeds the decoder of the endpoint's answers — untrusted bytes from a server parley
// does not control — with anything. Whatever it gets, it must not panic, and what it accepts
// must be something fit to send a user: one non-empty text, valid UTF-8, no control characters
// but line breaks and tabs, within a message's size. The error summary of a failed call must
// stay one short line. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}`,
		`{"choices":[{"message":{"content":null,"tool_calls":[{"type":"function","function":{"name":"handover_to_human","arguments":"{\"reason\":\"x\"}"}}]}}]}`,
		`{"choices":[{"message":{"content":"<think>hmm</think>\n\nHi \u0000there"}}]}`,
		`{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"image_url"}]}}]}`,
		`{"error":{"message":"overloaded"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if msg := providerError(data); len(msg) > maxErrorMessage || strings.ContainsFunc(msg, unicode.IsControl) {
			t.Errorf("providerError = %q", msg)
		}
		r, err := decode(data)
		if err != nil {
			if r != nil {
				t.Errorf("decode returned a reply and an error")
			}
			return
		}
		if len(r.Responses) != 1 || r.Responses[0].Type != brain.TypeText {
			t.Fatalf("responses = %+v, want one text", r.Responses)
		}
		text := r.Responses[0].Text
		switch {
		case text == "":
			t.Error("empty text")
		case !utf8.ValidString(text):
			t.Errorf("text is not UTF-8: %q", text)
		case len(text) > parley.MaxTextBytes:
			t.Errorf("text is %d bytes", len(text))
		case strings.ContainsFunc(text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
			t.Errorf("text holds control characters: %q", text)
		}
		if r.Resolve || r.Context != nil {
			t.Errorf("reply = %+v: an answer must not resolve or set context", r)
		}
	})
}
