// Package apptest boots a whole parley (the same app.Main that `parley serve` runs) for tests:
// on a loopback port, with a fresh SQLite file or a fresh PostgreSQL schema, and gives them
// integrations whose webhooks go to real receivers on loopback that check every signature.
//
// It is imported only by tests.
package apptest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testenv"
)

// Backend names a store.
type Backend string

// The backends every end-to-end test runs on.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends runs fn as a parallel subtest on each backend. PostgreSQL subtests skip (or fail,
// under PARLEY_TEST_STRICT) when no PostgreSQL is reachable.
func Backends(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range []Backend{SQLite, Postgres} {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// Options shape a server.
type Options struct {
	Backend Backend
	// DatabaseURL reuses a database (several servers on one PostgreSQL schema); empty makes a
	// fresh one.
	DatabaseURL string
	Clock       clock.Clock // nil: the real clock
	// NoBrain runs the server without its brain worker: user messages leave their brain jobs
	// in the database, for tests of the API's own writes.
	NoBrain   bool
	Configure func(*config.Config)
}

// AdminToken is the admin token of every test server.
const AdminToken = "test-admin-token"

// Server is a running parley.
type Server struct {
	Main   *app.Main
	URL    string
	Admin  *admin.Service
	Client *http.Client
}

// Start boots a server and stops it when the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.AdminToken = AdminToken
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.DatabaseMaxConns = 6 // many test servers share one PostgreSQL
	cfg.DatabaseURL = opt.DatabaseURL
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = NewDatabase(t, opt.Backend)
	}
	cfg.Files.Dir = filepath.Join(t.TempDir(), "files")
	if opt.NoBrain {
		cfg.BrainInFlight = 0
	}
	if opt.Configure != nil {
		opt.Configure(&cfg)
	}
	m := &app.Main{Config: cfg, Log: Logger(t), Clock: opt.Clock}
	if err := m.Run(t.Context()); err != nil {
		t.Fatalf("starting parley: %v", err)
	}
	s := &Server{Main: m, URL: m.URL(), Admin: m.Admin, Client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		// Spare connections the client dialed but never used look like new connections to
		// the server, and Shutdown waits seconds for those: close them first.
		s.Client.CloseIdleConnections()
		if err := m.Close(); err != nil {
			t.Errorf("stopping parley: %v", err)
		}
	})
	return s
}

// NewDatabase returns the URL of a new, empty database of the backend.
func NewDatabase(t testing.TB, b Backend) string {
	t.Helper()
	switch b {
	case Postgres:
		return testenv.PostgresSchema(t)
	case SQLite, "":
		return "sqlite://" + filepath.Join(t.TempDir(), "parley.db")
	}
	t.Fatalf("unknown backend %q", b)
	return ""
}

// Logger returns a logger that writes to the test log at warn level, or debug with
// PARLEY_TEST_LOG=debug.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PARLEY_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Integration is an integration of a test server with its API key and webhook receiver.
type Integration struct {
	ID       string
	Key      string
	DeskID   string
	Receiver *Receiver // nil when the test gave its own webhook_url
	srv      *Server
	t        testing.TB
}

// NewIntegration creates an integration. Unless spec names a webhook_url, its webhooks go to a
// new Receiver with a secret.
func (s *Server) NewIntegration(t testing.TB, spec admin.IntegrationSpec) *Integration {
	t.Helper()
	var rcv *Receiver
	if spec.WebhookURL == nil {
		rcv = NewReceiver(t, "secret-"+t.Name())
		spec.WebhookURL = &rcv.URL
		spec.WebhookSecret = &rcv.Secret
	}
	in, key, err := s.Admin.CreateIntegration(t.Context(), spec)
	if err != nil {
		t.Fatalf("create integration: %v", err)
	}
	return &Integration{ID: in.ID, Key: key, DeskID: in.DeskID, Receiver: rcv, srv: s, t: t}
}

// On returns the integration as seen through another server sharing its database (another
// node of a deployment).
func (in *Integration) On(s *Server) *Integration {
	c := *in
	c.srv = s
	return &c
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as an object.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Str returns a string field of the body.
func (r *Response) Str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.JSON(t)[key].(string)
	return s
}

// Expect fails the test unless the status is want.
func (r *Response) Expect(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, r.Body)
	}
	return r
}

// ExpectError fails the test unless the answer is status with the error code.
func (r *Response) ExpectError(t testing.TB, status int, code string) *Response {
	t.Helper()
	r.Expect(t, status)
	if got := r.Str(t, "error_code"); got != code {
		t.Fatalf("error_code %q, want %q; body: %s", got, code, r.Body)
	}
	return r
}

// Do sends a request to the server. body may be nil, a string or []byte (sent as is), or
// anything else (sent as JSON). headers are name, value pairs; a JSON Content-Type is set when
// there is a body and no Content-Type is given.
func (s *Server) Do(t testing.TB, method, path string, body any, headers ...string) *Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Call sends an inbound API request for the integration with its key. path is relative to
// /v1/custom/{integration_id}.
func (in *Integration) Call(method, path string, body any, headers ...string) *Response {
	in.t.Helper()
	return in.srv.Do(in.t, method, "/v1/custom/"+in.ID+path, body, append([]string{"Authorization", "apikey " + in.Key}, headers...)...)
}

// NewSession creates a session and returns its ID.
func (in *Integration) NewSession() string {
	in.t.Helper()
	return in.Call("POST", "/sessions", map[string]any{}).Expect(in.t, http.StatusCreated).Str(in.t, "session_id")
}

// Send posts a user message and returns its ID.
func (in *Integration) Send(sessionID, text string) string {
	in.t.Helper()
	return in.Call("POST", "/sessions/"+sessionID+"/messages", map[string]any{"input": map[string]any{"text": text}}).
		Expect(in.t, http.StatusAccepted).Str(in.t, "message_id")
}
