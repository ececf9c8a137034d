package dialog_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
)

// load loads testdata/name or fails the test.
func load(t testing.TB, name string) *dialog.Dialog {
	t.Helper()
	d, err := dialog.LoadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return d
}

// session is a conversation with a dialog as the worker holds it: the context is the one the
// last reply left, stored and read back as JSON.
type session struct {
	t   testing.TB
	d   *dialog.Dialog
	ctx map[string]any
	id  string
}

func newSession(t testing.TB, d *dialog.Dialog, context string) *session {
	t.Helper()
	s := &session{t: t, d: d, ctx: map[string]any{}, id: parley.NewID()}
	if context != "" {
		c, err := parley.DecodeObject([]byte(context))
		if err != nil {
			t.Fatalf("test context %s: %v", context, err)
		}
		s.ctx = c
	}
	return s
}

// say sends a user message; start marks the first message of a conversation. It returns the
// reply and keeps the context it changed.
func (s *session) say(text string, start bool, atts ...parley.Attachment) *brain.Reply {
	s.t.Helper()
	r, err := s.send(text, start, atts...)
	if err != nil {
		s.t.Fatalf("say %q: %v", text, err)
	}
	return r
}

func (s *session) send(text string, start bool, atts ...parley.Attachment) (*brain.Reply, error) {
	before := string(parley.EncodeObject(s.ctx))
	r, err := s.d.Reply(context.Background(), &brain.Request{
		SessionID:         s.id,
		Context:           s.ctx,
		Message:           &parley.Message{Author: parley.AuthorUser, Text: text, Attachments: atts},
		ConversationStart: start,
	})
	if after := string(parley.EncodeObject(s.ctx)); after != before {
		s.t.Fatalf("say %q: the brain changed the request's context:\nbefore %s\nafter  %s", text, before, after)
	}
	if err != nil {
		return nil, err
	}
	parley.MergeContext(s.ctx, r.Context)
	c, err := parley.DecodeObject(parley.EncodeObject(s.ctx))
	if err != nil {
		s.t.Fatal(err)
	}
	s.ctx = c
	return r, nil
}

// replyJSON writes a reply as the tests spell what they want: the responses as
// message:brain_send carries them, and the context patch, handover and resolve when set.
func replyJSON(t testing.TB, r *brain.Reply) string {
	t.Helper()
	m := map[string]any{"responses": json.RawMessage(brain.EncodeResponses(r.Responses))}
	if r.Context != nil {
		m["context"] = r.Context
	}
	if r.Handover {
		m["handover"] = true
	}
	if r.Resolve {
		m["resolve"] = true
	}
	return canonical(t, string(parley.EncodeObject(m)))
}

// canonical re-encodes a JSON object with sorted keys.
func canonical(t testing.TB, s string) string {
	t.Helper()
	m, err := parley.DecodeObject([]byte(s))
	if err != nil {
		t.Fatalf("bad JSON in test %s: %v", s, err)
	}
	return string(parley.EncodeObject(m))
}

// turn is one message of a conversation and the reply it must get.
type turn struct {
	say   string
	start bool
	want  string
}

// converse plays turns and checks every reply exactly.
func converse(t *testing.T, d *dialog.Dialog, context string, turns []turn) *session {
	t.Helper()
	s := newSession(t, d, context)
	for i, tr := range turns {
		got := replyJSON(t, s.say(tr.say, tr.start))
		if want := canonical(t, tr.want); got != want {
			t.Errorf("turn %d, say %q:\n got %s\nwant %s", i+1, tr.say, got, want)
		}
	}
	return s
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
