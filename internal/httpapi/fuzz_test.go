package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
)

// requestTypes makes a fresh value of every request body type the API decodes.
var requestTypes = map[string]func() any{
	"create session":  func() any { return new(createSessionRequest) },
	"message":         func() any { return new(messageRequest) },
	"agent message":   func() any { return new(agentMessageRequest) },
	"receipts":        func() any { return new(receiptsRequest) },
	"integration":     func() any { return new(admin.IntegrationSpec) },
	"message input":   func() any { return new(messageInput) },
	"attachment":      func() any { return new(parley.Attachment) },
	"agent reference": func() any { return new(parley.AgentRef) },
}

// FuzzUnmarshal decodes arbitrary bytes into every request body type. Unmarshal must never
// panic; it fails only with invalid-payload; what it accepts is a valid JSON object, and the
// value it produced encodes to JSON that it accepts again as the same value.
//
// Seeds are in testdata/fuzz/FuzzUnmarshal; run with go test -fuzz=FuzzUnmarshal.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"input":{"text":"hi"},"context":{"user":{"email":"a@b.c"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, fresh := range requestTypes {
			v := fresh()
			if err := Unmarshal(b, v); err != nil {
				if !parley.IsCode(err, parley.EInvalid) {
					t.Fatalf("%s: error %v is not invalid-payload", name, err)
				}
				continue
			}
			if !json.Valid(b) || bytes.TrimLeft(b, " \t\r\n")[0] != '{' {
				t.Fatalf("%s: accepted %q, which is not a JSON object", name, b)
			}
			enc, err := parley.Marshal(v)
			if err != nil {
				t.Fatalf("%s: the decoded value does not encode: %v", name, err)
			}
			again := fresh()
			if err := Unmarshal(enc, again); err != nil {
				t.Fatalf("%s: its own encoding %s is refused: %v (input %q)", name, enc, err, b)
			}
			enc2, err := parley.Marshal(again)
			if err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("%s: encoding is not stable:\n%s\n%s", name, enc, enc2)
			}
		}
	})
}
