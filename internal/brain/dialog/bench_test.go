package dialog_test

import (
	"context"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
)

// BenchmarkDemoReply measures the demo dialog answering a mix of messages: a conversation
// start, a quick reply with a carousel and a question, the answer to it, a regex with a
// rotating text, and a miss. One op is one message; the worker's own costs (merging and
// storing the context) are not in it.
func BenchmarkDemoReply(b *testing.B) {
	d := dialog.Demo()
	ann := func() map[string]any {
		return map[string]any{"user": map[string]any{"user_id": parley.NewID(), "display_name": "Ann"}, "tags": []any{"new"}}
	}
	pending := ann()
	pending[dialog.KeyPending] = map[string]any{"dialog": "plans", "step": 3, "store": "plan"}
	reqs := []*brain.Request{
		{Context: ann(), Message: &parley.Message{Text: "Hello!"}, ConversationStart: true},
		{Context: ann(), Message: &parley.Message{Text: "See our plans"}},
		{Context: pending, Message: &parley.Message{Text: "Pro"}},
		{Context: ann(), Message: &parley.Message{Text: "What are your opening hours?"}},
		{Context: ann(), Message: &parley.Message{Text: "I would like to know something unrelated"}},
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := d.Reply(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
