package parley

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/jsontest"
)

// TestEventBodyAsMarshal holds appendEventBody to Marshal, which was the encoder of event bodies
// before it and remains the definition of their bytes.
func TestEventBodyAsMarshal(t *testing.T) {
	ctx := EncodeObject(map[string]any{"user": map[string]any{"display_name": "Zoë <3", "n": 1.5}, "tags": []any{"a", nil}})
	responses, err := Marshal([]map[string]any{{"type": "text", "text": "hi \u2028 there & <you>"}})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []eventBody
	for _, s := range jsontest.OddStrings {
		bodies = append(bodies,
			eventBody{EventType: s, RequestID: s, SessionID: s, ExternalSessionID: s, IntegrationID: s, DeskID: s,
				Context: ctx, Timestamp: -1, EventFields: EventFields{MessageID: s, Agent: &AgentRef{ID: s, Name: s, Avatar: s},
					Output: &Output{Responses: responses}, Action: s, MessageIDs: []string{s, s}, Status: s, ClosedBy: s, Reason: s}},
			eventBody{EventType: EventDelivered, Context: ctx, Timestamp: 1 << 62,
				EventFields: EventFields{MessageIDs: []string{s}, Agent: &AgentRef{Name: s}}},
		)
	}
	bodies = append(bodies,
		eventBody{}, // nothing: the context is null
		eventBody{EventFields: EventFields{Output: &Output{}, MessageIDs: []string{}}}, // no responses; no IDs
	)
	for _, b := range bodies {
		checkEventBody(t, &b)
	}
}

// FuzzEventBody holds appendEventBody to Marshal for any strings, context and responses.
//
// Seeds are in testdata/fuzz/FuzzEventBody; run with go test -fuzz=FuzzEventBody.
func FuzzEventBody(f *testing.F) {
	for _, s := range jsontest.OddStrings {
		f.Add(s, "x", `{"user":{"name":"`+s+`"}}`, `[{"type":"text","text":"`+s+`"}]`, int64(1700000000000), uint8(0xff))
	}
	f.Fuzz(func(t *testing.T, s1, s2, contextJSON, responsesJSON string, ts int64, present uint8) {
		b := eventBody{EventType: s1, RequestID: s2, SessionID: s1 + s2, IntegrationID: s2, DeskID: s1, Timestamp: ts}
		if ctx, err := DecodeObject([]byte(contextJSON)); err == nil {
			b.Context = EncodeObject(ctx) // as parley stores contexts
		}
		on := func(bit uint8) bool { return present&(1<<bit) != 0 }
		if on(0) {
			b.ExternalSessionID = s2
		}
		if on(1) {
			b.MessageID = s1
		}
		if on(2) {
			b.Agent = &AgentRef{ID: s2, Name: s1}
			if on(3) {
				b.Agent.Avatar = s1 + s2
			}
		}
		if on(4) {
			b.Output = &Output{}
			var v any
			if json.Unmarshal([]byte(responsesJSON), &v) == nil {
				raw, err := Marshal(v) // as parley encodes responses
				if err != nil {
					t.Fatal(err)
				}
				b.Output.Responses = raw
			}
		}
		if on(5) {
			b.MessageIDs = strings.Split(s1, ",")
		}
		if on(6) {
			b.Action, b.Status = s2, s1
		}
		if on(7) {
			b.ClosedBy, b.Reason = s1, s2
		}
		checkEventBody(t, &b)
	})
}

func checkEventBody(t *testing.T, b *eventBody) {
	t.Helper()
	want, err := Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEventBody(nil, b); !bytes.Equal(got, want) {
		t.Fatalf("appendEventBody:\n got %s\nwant %s", got, want)
	}
}

// BenchmarkEventBody compares the two encoders on a brain reply's body.
func BenchmarkEventBody(b *testing.B) {
	ctx := EncodeObject(map[string]any{"user": map[string]any{"display_name": "Zoë", "user_id": "u1"},
		"channels": map[string]any{"custom": map[string]any{"external_session_id": "ext-1"}}, "tags": []any{"vip"}})
	responses, _ := Marshal([]map[string]any{{"type": "text", "text": "Here is the team"},
		{"type": "image", "url": "https://example.com/team.jpg", "name": "team.jpg"}})
	body := &eventBody{EventType: EventBrainSend, RequestID: NewRandomID(), SessionID: NewID(), IntegrationID: NewID(),
		DeskID: NewID(), Context: ctx, Timestamp: 1700000000000,
		EventFields: EventFields{MessageID: NewID(), Output: &Output{Responses: responses}}}
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := Marshal(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			appendEventBody(make([]byte, 0, 384+len(ctx)+len(responses)), body)
		}
	})
}
