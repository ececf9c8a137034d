package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
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
			// The fast path that skips the exact-key check must agree with the check.
			var generic any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			if err := dec.Decode(&generic); err != nil {
				t.Fatalf("%s: accepted %q that does not decode: %v", name, b, err)
			}
			if err := exactKeys(generic, reflect.TypeOf(v), ""); err != nil {
				t.Fatalf("%s: accepted %q although a key is not a field's exact name: %v", name, b, err)
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

// Keys that match a field only by encoding/json's case folding are refused, also those that
// fold through Unicode (ſ is s, K is k) or hide behind escapes.
func TestKeysMustMatchExactly(t *testing.T) {
	for _, body := range []string{
		`{"Input":{"text":"a"}}`,
		`{"input":{"TEXT":"a"}}`,
		`{"input":{"text":"a","Text":"b"}}`,
		`{"input":{"ſext":"a"}}`,
		"{\"input\":{\"te\u212At\":\"a\"}}",
		`{"inp\u0055t":{"text":"a"}}`,
	} {
		var req messageRequest
		if err := Unmarshal([]byte(body), &req); !parley.IsCode(err, parley.EInvalid) {
			t.Errorf("%s: accepted (%v)", body, err)
		}
	}
	var req messageRequest
	if err := Unmarshal([]byte(`{"inp\u0075t":{"text":"a"},"context":{"Order":{"ID":1}}}`), &req); err != nil || req.Input.Text != "a" {
		t.Errorf("escaped but exact keys and free-form context keys must pass: %v", err)
	}
}
