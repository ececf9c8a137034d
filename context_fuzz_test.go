package parley_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley"
)

// FuzzMergeContext merges arbitrary JSON objects and checks the properties of SPEC §2's merge:
// a null in the patch removes its key and never survives; every value of the patch that is not
// an object lands exactly where the patch put it; objects merge key by key and keys the patch
// does not name keep their values; merging the same patch again changes nothing; the result is
// never larger than the two inputs together; the patch itself is left alone. Validating and
// building a session context from any object must not panic either.
//
// Seeds are in testdata/fuzz/FuzzMergeContext; run with go test -fuzz=FuzzMergeContext.
func FuzzMergeContext(f *testing.F) {
	f.Add([]byte(`{"user":{"name":"a","location":{"city":"x"}},"tags":["a"]}`), []byte(`{"user":{"location":{"city":null}},"tags":["b"]}`))
	f.Fuzz(func(t *testing.T, dstJSON, patchJSON []byte) {
		dst, err1 := parley.DecodeObject(dstJSON)
		patch, err2 := parley.DecodeObject(patchJSON)
		if err1 != nil || err2 != nil {
			return
		}
		parley.ValidateContext(patch) // must not panic, whatever it says
		sc := parley.NewSessionContext(patch, "cu", "ext")
		if user, _ := sc["user"].(map[string]any); user == nil || user["custom_psid"] != "cu" || !isString(user["user_id"]) ||
			sc["channels"].(map[string]any)["custom"].(map[string]any)["external_session_id"] != "ext" || hasNull(sc) {
			t.Fatalf("NewSessionContext(%s) = %v", patchJSON, sc)
		}

		orig := mustDecode(t, dstJSON)
		dstSize, patchSize := len(parley.EncodeObject(dst)), len(parley.EncodeObject(patch))
		parley.MergeContext(dst, patch)
		checkMerge(t, dst, orig, patch, "")
		if !hasNull(orig) && hasNull(dst) {
			t.Fatalf("a null survived the merge: %s", parley.EncodeObject(dst))
		}
		if !reflect.DeepEqual(patch, mustDecode(t, patchJSON)) {
			t.Fatalf("the merge changed the patch")
		}
		merged := parley.EncodeObject(dst)
		if len(merged) > dstSize+patchSize {
			t.Fatalf("merged context is %d bytes from %d + %d", len(merged), dstSize, patchSize)
		}
		again := mustDecode(t, merged)
		parley.MergeContext(again, patch)
		if !reflect.DeepEqual(again, mustDecode(t, merged)) {
			t.Fatalf("merging twice differs from merging once:\n%s\n%s", parley.EncodeObject(again), merged)
		}
		// Into nothing, a patch is itself without its nulls.
		empty := map[string]any{}
		parley.MergeContext(empty, patch)
		if !reflect.DeepEqual(empty, withoutNulls(patch)) {
			t.Fatalf("merge into {} = %s", parley.EncodeObject(empty))
		}
	})
}

// checkMerge checks merged against the object it came from (orig, nil when there was none
// or it was not an object) and the patch, at path.
func checkMerge(t *testing.T, merged, orig, patch map[string]any, path string) {
	t.Helper()
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			if _, ok := merged[k]; ok {
				t.Fatalf("%s%s: a null in the patch did not remove the key", path, k)
			}
		case map[string]any:
			m, ok := merged[k].(map[string]any)
			if !ok {
				t.Fatalf("%s%s: an object in the patch gave %T", path, k, merged[k])
			}
			o, _ := orig[k].(map[string]any)
			checkMerge(t, m, o, pv, path+k+".")
		default:
			if !reflect.DeepEqual(merged[k], pv) {
				t.Fatalf("%s%s = %v, the patch said %v", path, k, merged[k], pv)
			}
		}
	}
	for k, mv := range merged {
		if _, inPatch := patch[k]; inPatch {
			continue
		}
		ov, inOrig := orig[k]
		if !inOrig {
			t.Fatalf("%s%s appeared from nowhere", path, k)
		}
		if !reflect.DeepEqual(mv, ov) {
			t.Fatalf("%s%s changed though the patch did not name it", path, k)
		}
	}
	for k := range orig {
		if _, inPatch := patch[k]; !inPatch {
			if _, ok := merged[k]; !ok {
				t.Fatalf("%s%s disappeared though the patch did not name it", path, k)
			}
		}
	}
}

// FuzzDecodeObject holds parley's JSON checks to encoding/json: on input encoding/json finds
// valid, CheckJSON refuses exactly invalid UTF-8, U+0000 and nesting deeper than
// MaxJSONDepth, and DecodeObject returns the same value encoding/json does for an object; it
// accepts nothing encoding/json refuses; errors are always invalid-payload; and what it decodes
// encodes and decodes back to itself.
//
// Seeds are in testdata/fuzz/FuzzDecodeObject; run with go test -fuzz=FuzzDecodeObject.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c"}],"n":12345678901234567890}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parley.DecodeObject(b)
		checkErr := parley.CheckJSON(b)
		if err != nil && !parley.IsCode(err, parley.EInvalid) {
			t.Fatalf("DecodeObject error %v is not invalid-payload", err)
		}
		if checkErr != nil && !parley.IsCode(checkErr, parley.EInvalid) {
			t.Fatalf("CheckJSON error %v is not invalid-payload", checkErr)
		}
		if !json.Valid(b) {
			if err == nil {
				t.Fatalf("DecodeObject accepted %q, which encoding/json refuses", b)
			}
			return
		}
		ref := mustDecodeAny(t, b)
		acceptable := utf8.Valid(b) && !hasNUL(ref) && depth(ref) <= parley.MaxJSONDepth
		if (checkErr == nil) != acceptable {
			t.Fatalf("CheckJSON(%q) = %v; UTF-8 %v, U+0000 %v, depth %d", b, checkErr, utf8.Valid(b), hasNUL(ref), depth(ref))
		}
		refObj, isObject := ref.(map[string]any)
		if (err == nil) != (acceptable && isObject) {
			t.Fatalf("DecodeObject(%q) = %v; acceptable %v, object %v", b, err, acceptable, isObject)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(got, refObj) {
			t.Fatalf("DecodeObject(%q) = %v, encoding/json says %v", b, got, refObj)
		}
		enc := parley.EncodeObject(got)
		back, err := parley.DecodeObject(enc)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("EncodeObject gave %s, which decodes to %v, %v", enc, back, err)
		}
	})
}

// mustDecode decodes a JSON object the way DecodeObject does (numbers kept exact).
func mustDecode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	m, ok := mustDecodeAny(t, b).(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object", b)
	}
	return m
}

func mustDecodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
	return v
}

func isString(v any) bool { _, ok := v.(string); return ok }

// hasNull reports whether an object has a member that is null, at any depth of objects.
// Nulls inside arrays are data: arrays are replaced whole, so they land as they were.
func hasNull(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, e := range m {
		if e == nil || hasNull(e) {
			return true
		}
	}
	return false
}

// withoutNulls returns an object with the nulls of its objects (not of arrays) removed.
func withoutNulls(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			out[k] = withoutNulls(v)
		default:
			out[k] = v
		}
	}
	return out
}

// hasNUL reports whether a JSON value holds U+0000 in a key or a string.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// depth returns how deeply objects and arrays nest in a JSON value: 0 for a scalar.
func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}
