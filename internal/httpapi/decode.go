package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strings"

	"github.com/parleyhq/parley"
)

// ReadBody reads a request body of at most limit bytes. A larger body is payload-too-large and
// is not read further than the limit; one that does not arrive within bodyTimeout (Observe) is
// invalid.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, parley.Errorf(parley.ETooLarge, "body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		// The connection closes after the answer: net/http would otherwise read on for the
		// rest of the body before it answers.
		w.Header().Set("Connection", "close")
		return nil, parley.Errorf(parley.EInvalid, "the body did not arrive within %v", bodyTimeout)
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, parley.Errorf(parley.ETooLarge, "body is larger than %d bytes", limit)
	}
	if err != nil {
		return nil, parley.Errorf(parley.EInvalid, "reading body: %v", err)
	}
	return b, nil
}

// CheckJSONContentType refuses a body that does not say it is JSON (in UTF-8).
func CheckJSONContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return parley.Errorf(parley.EInvalid, "Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return parley.Errorf(parley.EInvalid, "Content-Type charset must be utf-8")
	}
	return nil
}

// DecodeJSON reads a JSON object body into dst, strictly: JSON content type, within the size
// limit, valid UTF-8, nested at most parley.MaxJSONDepth, no unknown fields, no trailing
// data, and every field of the type dst declares. Numbers in free-form (any) fields stay
// json.Number. Every failure is an *parley.Error naming what was wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := CheckJSONContentType(r); err != nil {
		return err
	}
	b, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	return Unmarshal(b, dst)
}

// Unmarshal is DecodeJSON's decoding, for bytes already read (and for fuzzing).
func Unmarshal(b []byte, dst any) error {
	if err := parley.CheckJSON(b); err != nil {
		return err
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return parley.Errorf(parley.EInvalid, "body is empty; a JSON object is required")
	}
	if trimmed[0] != '{' {
		return parley.Errorf(parley.EInvalid, "body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return parley.Errorf(parley.EInvalid, "body holds data after the JSON object")
	}
	// encoding/json matches keys to fields ignoring case, so DisallowUnknownFields lets
	// "Input" and "TEXT" through, and {"text":"a","Text":"b"} means "b" to parley but "a" to
	// anything that checked the body on the way. Keys must be the fields' names exactly.
	// Every field name is lower-case ASCII, so a body whose keys are all plain lower-case
	// ASCII cannot hold such a key: the common case skips the second decode.
	if plainKeys(b) {
		return nil
	}
	var generic any
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return decodeError(err)
	}
	return exactKeys(generic, reflect.TypeOf(dst), "")
}

// exactKeys checks every object key of v, a decoded body, is exactly the JSON name of a field
// of t, the type it was decoded into, down to the free-form parts (maps, any, raw JSON).
// plainKeys reports whether every object key in b (valid JSON) is free of upper-case letters,
// non-ASCII bytes and escapes: such keys equal a lower-case field name only exactly, never by
// encoding/json's case folding.
func plainKeys(b []byte) bool {
	inString, escaped, suspicious := false, false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			if c == '"' {
				inString, suspicious = true, false
			}
			continue
		}
		switch {
		case escaped:
			escaped = false
		case c == '\\':
			escaped, suspicious = true, true
		case c == '"':
			inString = false
			if !suspicious {
				continue
			}
			// The string is a key when a ':' follows it.
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && b[j] == ':' {
				return false
			}
		case c >= 'A' && c <= 'Z', c >= 0x80:
			suspicious = true
		}
	}
	return true
}

func exactKeys(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, _ := v.(map[string]any)
		for k, fv := range obj {
			f, ok := fieldByJSONName(t, k)
			if !ok {
				return parley.Errorf(parley.EInvalid, "unknown field %q", path+k)
			}
			if err := exactKeys(fv, f.Type, path+k+"."); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, _ := v.([]any)
		for _, e := range arr {
			if err := exactKeys(e, t.Elem(), path); err != nil {
				return err
			}
		}
	}
	return nil
}

// fieldByJSONName returns the field of struct type t that encoding/json names name.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Tag.Get("json") == "" {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// decodeError turns encoding/json's errors into messages an integrator can act on.
func decodeError(err error) error {
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := e.Field
		if field == "" {
			return parley.Errorf(parley.EInvalid, "body must be a JSON object")
		}
		return parley.Errorf(parley.EInvalid, "field %s must be %s, not %s", field, jsonKind(e.Type.Kind().String()), e.Value)
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok || errors.Is(err, io.ErrUnexpectedEOF) {
		return parley.Errorf(parley.EInvalid, "body is not valid JSON")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return parley.Errorf(parley.EInvalid, "unknown field %s", f)
	}
	return parley.Errorf(parley.EInvalid, "body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return fmt.Sprintf("of type %s", goKind)
}
