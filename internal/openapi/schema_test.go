package openapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/openapi"
)

// document is the OpenAPI document, decoded, with what the tests ask of it.
type document struct {
	root map[string]any
}

func loadDocument(t testing.TB) *document {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(openapi.Document, &root); err != nil {
		t.Fatalf("openapi.json is not a JSON object: %v", err)
	}
	return &document{root: root}
}

// pointer resolves a local reference ("#/components/schemas/Session").
func (d *document) pointer(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("%q is not a reference inside the document", ref)
	}
	var v any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q: %q is not inside an object", ref, tok)
		}
		if v, ok = m[tok]; !ok {
			return nil, fmt.Errorf("%q: no %q", ref, tok)
		}
	}
	return v, nil
}

// deref follows an object's $ref, if it has one (responses, parameters).
func (d *document) deref(t testing.TB, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			break
		}
		target, err := d.pointer(ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = target.(map[string]any)
	}
	return m
}

// methods are the operation keys of a path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operation is one operation of the document: an API route or a webhook.
type operation struct {
	Method, Path string // Path is the webhook's name for a webhook
	Webhook      bool
	Op           map[string]any
	Item         map[string]any // the path item, for its shared parameters
}

func (d *document) operations() []operation {
	var out []operation
	for _, section := range []string{"paths", "webhooks"} {
		items, _ := d.root[section].(map[string]any)
		for path, v := range items {
			item, _ := v.(map[string]any)
			for _, m := range methods {
				if op, ok := item[m].(map[string]any); ok {
					out = append(out, operation{Method: strings.ToUpper(m), Path: path, Webhook: section == "webhooks", Op: op, Item: item})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return out
}

// route returns the documented route that a concrete path (no query) is an instance of.
func (d *document) route(method, path string) (operation, bool) {
	segs := strings.Split(path, "/")
	var best operation
	bestParams := -1
	for _, op := range d.operations() {
		if op.Webhook || op.Method != method {
			continue
		}
		tsegs := strings.Split(op.Path, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		params, ok := 0, true
		for i, ts := range tsegs {
			switch {
			case strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") && segs[i] != "":
				params++
			case ts != segs[i]:
				ok = false
			}
		}
		if ok && (bestParams < 0 || params < bestParams) {
			best, bestParams = op, params
		}
	}
	return best, bestParams >= 0
}

// response returns the documented response of op for a status: the exact code, else its
// class (2XX), else default.
func (d *document) response(t testing.TB, op operation, status int) (map[string]any, bool) {
	t.Helper()
	responses, _ := op.Op["responses"].(map[string]any)
	for _, k := range []string{strconv.Itoa(status), strconv.Itoa(status/100) + "XX", "default"} {
		if r, ok := responses[k]; ok {
			return d.deref(t, r), true
		}
	}
	return nil, false
}

// validate checks v, a decoded JSON value, against schema: the subset of JSON Schema 2020-12
// the document uses ($ref, allOf, anyOf, oneOf, type, const, enum, required, properties,
// additionalProperties: false, items, pattern, minimum, maxProperties). It returns what is
// wrong, each with where.
func (d *document) validate(schema any, v any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return nil // true, or a schema this checker does not read
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.pointer(ref)
		if err != nil {
			return []string{at + ": " + err.Error()}
		}
		errs = append(errs, d.validate(target, v, at)...)
	}
	for _, sub := range list(s["allOf"]) {
		errs = append(errs, d.validate(sub, v, at)...)
	}
	if subs := list(s["anyOf"]); len(subs) > 0 {
		matched := false
		for _, sub := range subs {
			if len(d.validate(sub, v, at)) == 0 {
				matched = true
				break
			}
		}
		if !matched {
			fail("matches none of anyOf (first: %v)", d.validate(subs[0], v, at))
		}
	}
	if subs := list(s["oneOf"]); len(subs) > 0 {
		n := 0
		for _, sub := range subs {
			if len(d.validate(sub, v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf's %d schemas, want exactly 1: %s", n, len(subs), compact(v))
		}
	}
	if typ, ok := s["type"]; ok {
		want := list(typ)
		if len(want) == 0 {
			want = []any{typ}
		}
		if !slices.ContainsFunc(want, func(w any) bool { return hasType(v, w.(string)) }) {
			fail("is %s, want type %v", compact(v), typ)
			return errs
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, v) {
		fail("is %s, want %s", compact(v), compact(c))
	}
	if e, ok := s["enum"]; ok && !slices.ContainsFunc(list(e), func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("is %s, not one of %s", compact(v), compact(e))
	}
	switch v := v.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			fail("%v is below the minimum %v", v, m)
		}
	case map[string]any:
		for _, r := range list(s["required"]) {
			if _, ok := v[r.(string)]; !ok {
				fail("lacks the required field %q", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, fv := range v {
			if ps, ok := props[k]; ok {
				errs = append(errs, d.validate(ps, fv, at+"."+k)...)
			} else if s["additionalProperties"] == false {
				fail("has the field %q, which the schema does not allow", k)
			}
		}
		if m, ok := s["maxProperties"].(float64); ok && float64(len(v)) > m {
			fail("has %d fields, at most %v allowed", len(v), m)
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range v {
				errs = append(errs, d.validate(items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return errs
}

func list(v any) []any { l, _ := v.([]any); return l }

func hasType(v any, typ string) bool {
	switch v := v.(type) {
	case nil:
		return typ == "null"
	case bool:
		return typ == "boolean"
	case string:
		return typ == "string"
	case float64:
		return typ == "number" || typ == "integer" && v == math.Trunc(v)
	case []any:
		return typ == "array"
	case map[string]any:
		return typ == "object"
	}
	return false
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// orderedKeys returns the keys of a JSON object in the order they are written.
func orderedKeys(raw []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return nil, err
	}
	return keys, nil
}

// rawAt returns the raw JSON at a path of object keys in the document, order preserved.
func rawAt(t testing.TB, keys ...string) json.RawMessage {
	t.Helper()
	raw := json.RawMessage(openapi.Document)
	for _, k := range keys {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%v: %v", keys, err)
		}
		var ok bool
		if raw, ok = m[k]; !ok {
			t.Fatalf("the document has no %v", keys)
		}
	}
	return raw
}

// TestValidator: the checker the other tests trust finds what it should.
func TestValidator(t *testing.T) {
	d := loadDocument(t)
	ok := map[string]any{"request_id": "550e8400-e29b-41d4-a716-446655440000"}
	if errs := d.validate(map[string]any{"$ref": "#/components/schemas/RequestOnly"}, ok, "body"); len(errs) > 0 {
		t.Errorf("a valid body: %v", errs)
	}
	for name, c := range map[string]struct {
		ref string
		v   any
	}{
		"missing field":  {"RequestOnly", map[string]any{}},
		"not a UUID":     {"RequestOnly", map[string]any{"request_id": "x"}},
		"wrong type":     {"ReceiptsUpdated", map[string]any{"request_id": ok["request_id"], "updated": "1"}},
		"not an integer": {"ReceiptsUpdated", map[string]any{"request_id": ok["request_id"], "updated": 1.5}},
		"not in enum":    {"EventType", "message:other"},
		"unknown field":  {"TypingRequest", map[string]any{"action": "start", "other": 1}},
		"wrong const":    {"EventSessionClosed", map[string]any{"event_type": "session:closed", "reason": "other"}},
		"oneOf none":     {"BrainResponse", map[string]any{"type": "text"}},
		"null not ok":    {"Message", map[string]any{"id": nil}},
	} {
		if errs := d.validate(map[string]any{"$ref": "#/components/schemas/" + c.ref}, c.v, "body"); len(errs) == 0 {
			t.Errorf("%s: %s passed as a %s", name, compact(c.v), c.ref)
		}
	}
}
