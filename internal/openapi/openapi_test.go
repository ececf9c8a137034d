package openapi_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/openapi"
)

// TestDocumentIsWellFormed: the document is an OpenAPI 3.1 document whose references all
// resolve, whose operations have unique IDs and answers, whose path parameters match its paths,
// and whose webhooks are exactly parley's event types.
func TestDocumentIsWellFormed(t *testing.T) {
	if !json.Valid(openapi.Document) {
		t.Fatal("openapi.json is not valid JSON")
	}
	d := loadDocument(t)
	if v, _ := d.root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi is %q, want 3.1.x", v)
	}

	// Every $ref, anywhere, names something in the document.
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := d.pointer(ref); err != nil {
					t.Errorf("%s: %v", at, err)
				}
			}
			for k, e := range v {
				walk(e, at+"/"+k)
			}
		case []any:
			for _, e := range v {
				walk(e, at+"/[]")
			}
		}
	}
	walk(d.root, "#")

	ids := map[string]string{}
	param := regexp.MustCompile(`\{([^}]+)\}`)
	for _, op := range d.operations() {
		where := op.Method + " " + op.Path
		id, _ := op.Op["operationId"].(string)
		switch {
		case id == "":
			t.Errorf("%s has no operationId", where)
		case ids[id] != "":
			t.Errorf("operationId %q is used by %s and %s", id, ids[id], where)
		}
		ids[id] = where
		if responses, _ := op.Op["responses"].(map[string]any); len(responses) == 0 {
			t.Errorf("%s documents no responses", where)
		}
		if op.Webhook {
			continue
		}
		// The path's {params} and the parameters "in": "path" are the same set.
		var declared []string
		for _, p := range append(list(op.Item["parameters"]), list(op.Op["parameters"])...) {
			if p := d.deref(t, p); p["in"] == "path" {
				if p["required"] != true {
					t.Errorf("%s: path parameter %v is not required", where, p["name"])
				}
				declared = append(declared, p["name"].(string))
			}
		}
		var inPath []string
		for _, m := range param.FindAllStringSubmatch(op.Path, -1) {
			inPath = append(inPath, m[1])
		}
		slices.Sort(declared)
		slices.Sort(inPath)
		if !slices.Equal(declared, inPath) {
			t.Errorf("%s declares path parameters %v, the path has %v", where, declared, inPath)
		}
	}

	var webhooks []string
	for name := range d.root["webhooks"].(map[string]any) {
		webhooks = append(webhooks, name)
	}
	want := slices.Sorted(slices.Values(parley.EventTypes))
	if slices.Sort(webhooks); !slices.Equal(webhooks, want) {
		t.Errorf("webhooks %v, want parley's event types %v", webhooks, want)
	}
	var enum []string
	for _, e := range list(d.deref(t, map[string]any{"$ref": "#/components/schemas/EventType"})["enum"]) {
		enum = append(enum, e.(string))
	}
	if slices.Sort(enum); !slices.Equal(enum, want) {
		t.Errorf("schema EventType lists %v, want %v", enum, want)
	}
	codes := []string{parley.EInvalid, parley.EUnauthorized, parley.ESessionNotFound, parley.EFileNotFound,
		parley.EMethodNotAllowed, parley.ETooLarge, parley.ERateLimited, parley.EInternal, parley.ENotImplemented,
		parley.ENotFound, parley.EConflict, parley.EForbidden}
	errorCodes := list(d.deref(t, map[string]any{"$ref": "#/components/schemas/ErrorCode"})["enum"])
	for _, c := range codes {
		if !slices.Contains(errorCodes, any(c)) {
			t.Errorf("schema ErrorCode lacks %q", c)
		}
	}
}

// TestRoutesMatchDocument: every route the server registers is documented with the same method
// and path, and every documented route is one the server serves (not 404 or 405). The console's
// pages and assets under /console are the one part left out: they are HTML, not API.
func TestRoutesMatchDocument(t *testing.T) {
	d := loadDocument(t)
	srv := apptest.Start(t, apptest.Options{})

	served := map[string]bool{}
	for _, r := range srv.Main.Router.Routes() {
		if r.Path == "/console" || strings.HasPrefix(r.Path, "/console/") {
			continue
		}
		if r.Method == "" {
			t.Errorf("%s is mounted for every method: document its operations and register them with Handle", r.Path)
			continue
		}
		served[r.Method+" "+r.Path] = true
	}
	documented := map[string]bool{}
	for _, op := range d.operations() {
		if !op.Webhook {
			documented[op.Method+" "+op.Path] = true
		}
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("the server serves %s, which openapi.json does not document", r)
		}
	}
	for _, op := range d.operations() {
		if op.Webhook {
			continue
		}
		route := op.Method + " " + op.Path
		if !served[route] {
			t.Errorf("openapi.json documents %s, which the server does not register", route)
			continue
		}
		// Without credentials, every API route answers before it looks anything up (401, or
		// 403 for a file URL without a signature), so the router's own 404 not-found and 405
		// are the only way to get those codes here.
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(op.Path, func(string) string { return parley.NewID() })
		r := srv.Do(t, op.Method, path, nil)
		var body struct {
			Code string `json:"error_code"`
		}
		json.Unmarshal(r.Body, &body)
		if r.Status == http.StatusMethodNotAllowed || (r.Status == http.StatusNotFound && body.Code == parley.ENotFound) {
			t.Errorf("%s (as %s %s) answers %d %s: not a route of the server", route, op.Method, path, r.Status, r.Body)
		}
	}

	r := srv.Do(t, "GET", "/openapi.json", nil).Expect(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/openapi.json Content-Type %q, want application/json", ct)
	}
	if string(r.Body) != string(openapi.Document) {
		t.Error("/openapi.json does not serve the embedded document")
	}
}
