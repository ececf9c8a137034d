// Package openapi serves parley's OpenAPI 3.1 document (SPEC §5) at /openapi.json: the inbound,
// file, admin, agent and operational routes, and the webhooks parley sends. The document is one
// hand-written JSON file, embedded in the binary; its test holds it to the server's route table
// and checks live answers and webhooks against its schemas.
//
// It must never describe a route the server does not serve, nor leave one out.
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/httpapi"
)

// Document is the OpenAPI document, as served.
//
//go:embed openapi.json
var Document []byte

var etag = func() string {
	sum := sha256.Sum256(Document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// Register adds GET /openapi.json to rt.
func Register(rt *httpapi.Router) {
	rt.HandleFunc("GET", "/openapi.json", serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache") // revalidate: a new binary may serve a new document
	// Tools that read the document from a browser page on another origin (API explorers) may.
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(Document))
}
