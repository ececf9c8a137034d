package parley

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// Limits on JSON from outside.
const (
	MaxJSONDepth    = 32        // objects and arrays nested deeper are refused before decoding
	MaxContextBytes = 256 << 10 // a session's whole context, encoded
)

// CheckJSON refuses input that encoding/json would accept but parley must not: invalid UTF-8
// (which the decoder silently turns into U+FFFD), the character U+0000 (which PostgreSQL text
// cannot hold, so SQLite and PostgreSQL deployments would disagree) and nesting deeper than
// MaxJSONDepth (which costs stack and time on every later decode). It is one pass over the
// bytes and does not check the rest of the grammar; the decoder does.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return Errorf(EInvalid, "body is not valid UTF-8")
	}
	depth, inString, escaped := 0, false, false
	for i, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
				if c == 'u' && bytes.HasPrefix(b[i+1:], []byte("0000")) {
					return Errorf(EInvalid, "strings must not contain the character U+0000")
				}
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxJSONDepth {
				return Errorf(EInvalid, "JSON is nested deeper than %d levels", MaxJSONDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// DecodeObject decodes a JSON object, keeping numbers exact (json.Number), so a context
// round-trips without turning 12345678901234567890 into a float.
func DecodeObject(b []byte) (map[string]any, error) {
	if err := CheckJSON(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, Errorf(EInvalid, "body is not valid JSON")
	}
	// Token, not More: More reports false before a stray ']' or '}', which would let
	// `{"a":1}}` through.
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(EInvalid, "body holds data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, Errorf(EInvalid, "body must be a JSON object")
	}
	return m, nil
}

// Marshal encodes v as JSON like json.Marshal, but leaves <, > and & as they are: what parley
// writes (webhook bodies, API answers) is read by programs, and users' "<3" stays readable.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EncodeObject encodes a context. Keys come out sorted, so equal contexts are equal bytes.
func EncodeObject(m map[string]any) []byte {
	b, err := Marshal(m)
	if err != nil {
		// A map decoded from JSON, or built from strings and numbers, always encodes.
		panic("parley: encoding context: " + err.Error())
	}
	return b
}

// MergeContext merges patch into dst (SPEC §2, Context): objects merge key by key, recursively;
// arrays and scalars replace; a null removes the key. Objects taken from patch are copied
// without their nulls, so the result never holds a null that meant "remove".
func MergeContext(dst, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(dst, k)
		case map[string]any:
			d, ok := dst[k].(map[string]any)
			if !ok {
				d = make(map[string]any, len(v))
				dst[k] = d
			}
			MergeContext(d, v)
		default:
			dst[k] = v
		}
	}
}

// The fields of the context the documentation gives a type; everything else is free-form.
var (
	contextObjects    = []string{"user", "channels", "global"}
	userStringFields  = []string{"user_id", "display_name", "avatar", "external_id", "contact_id", "email", "phone", "language", "timezone", "gender", "address", "browser", "platform", "device", "ip", "custom_psid"}
	locationStrings   = []string{"city", "country", "region"}
	locationNumbers   = []string{"latitude", "longitude"}
	globalBoolFields  = []string{"disclaimer_accepted", "visitor_form_completed"}
	globalStringField = []string{"client_url", "ref"}
)

// ValidateContext checks the documented fields of a context or a context patch have the
// documented types. A null is always allowed: in a patch it removes the field.
func ValidateContext(c map[string]any) error {
	for _, k := range contextObjects {
		if !isObjectOrNull(c[k]) {
			return Errorf(EInvalid, "context.%s must be an object", k)
		}
	}
	if err := stringArray(c["tags"], "context.tags"); err != nil {
		return err
	}
	if user, _ := c["user"].(map[string]any); user != nil {
		if err := typed(user, "context.user", userStringFields, isString, "a string"); err != nil {
			return err
		}
		if err := stringArray(user["locales"], "context.user.locales"); err != nil {
			return err
		}
		if !isObjectOrNull(user["location"]) {
			return Errorf(EInvalid, "context.user.location must be an object")
		}
		if loc, _ := user["location"].(map[string]any); loc != nil {
			if err := typed(loc, "context.user.location", locationStrings, isString, "a string"); err != nil {
				return err
			}
			if err := typed(loc, "context.user.location", locationNumbers, isNumber, "a number"); err != nil {
				return err
			}
		}
	}
	if global, _ := c["global"].(map[string]any); global != nil {
		if err := typed(global, "context.global", globalBoolFields, isBool, "a boolean"); err != nil {
			return err
		}
		if err := typed(global, "context.global", globalStringField, isString, "a string"); err != nil {
			return err
		}
	}
	return nil
}

func typed(m map[string]any, path string, fields []string, ok func(any) bool, what string) error {
	for _, f := range fields {
		if v, present := m[f]; present && v != nil && !ok(v) {
			return Errorf(EInvalid, "%s.%s must be %s", path, f, what)
		}
	}
	return nil
}

func stringArray(v any, path string) error {
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		return Errorf(EInvalid, "%s must be an array of strings", path)
	}
	for _, e := range a {
		if !isString(e) {
			return Errorf(EInvalid, "%s must be an array of strings", path)
		}
	}
	return nil
}

func isObjectOrNull(v any) bool { _, ok := v.(map[string]any); return ok || v == nil }
func isString(v any) bool       { _, ok := v.(string); return ok }
func isBool(v any) bool         { _, ok := v.(bool); return ok }
func isNumber(v any) bool {
	switch v.(type) {
	case json.Number, float64:
		return true
	}
	return false
}

// NewSessionContext builds the context of a new session from the one the caller gave (which may
// be nil): user.user_id is set to a new ID unless given, user.custom_psid to channelUserID and
// channels.custom.external_session_id to externalSessionID when those are given.
func NewSessionContext(given map[string]any, channelUserID, externalSessionID string) map[string]any {
	c := make(map[string]any, len(given)+2)
	MergeContext(c, given) // drops nulls: a new context has nothing to remove
	user := childObject(c, "user")
	if id, _ := user["user_id"].(string); id == "" {
		user["user_id"] = NewID()
	}
	if channelUserID != "" {
		user["custom_psid"] = channelUserID
	}
	if externalSessionID != "" {
		childObject(childObject(c, "channels"), "custom")["external_session_id"] = externalSessionID
	}
	return c
}

// childObject returns m[key] as an object, replacing whatever else was there.
func childObject(m map[string]any, key string) map[string]any {
	if c, ok := m[key].(map[string]any); ok {
		return c
	}
	c := map[string]any{}
	m[key] = c
	return c
}

// Lookup returns the value at a dotted path of a context ("user.display_name").
func Lookup(c map[string]any, path string) (any, bool) {
	var cur any = c
	for {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		key, rest, more := cutDot(path)
		cur, ok = m[key]
		if !ok {
			return nil, false
		}
		if !more {
			return cur, true
		}
		path = rest
	}
}

func cutDot(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
