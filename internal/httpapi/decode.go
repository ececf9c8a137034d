package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/parleyhq/parley"
)

// ReadBody reads a request body of at most limit bytes. A larger body is payload-too-large and
// is not read further than the limit.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, parley.Errorf(parley.ETooLarge, "body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
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
	return nil
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
