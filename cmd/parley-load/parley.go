package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to make and drop schemas

	"github.com/parleyhq/parley/internal/loadtest"
)

// defaultPostgresURL is the database the tests use too (internal/testenv).
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// buildParley builds the parley command into dir, from the module the working directory is in.
func buildParley(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "parley")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/parleyhq/parley/cmd/parley")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build parley (run from the repository, or give --parley-bin): %v\n%s", err, out)
	}
	return bin, nil
}

// database is a fresh, empty database for one run.
type database struct {
	URL     string
	Label   string // "sqlite" or "postgres"
	cleanup func() error
}

// newDatabase makes a database of kind: a file in dir, or a new schema in the PostgreSQL
// database at pgURL.
func newDatabase(ctx context.Context, kind, pgURL, dir string) (*database, error) {
	switch kind {
	case "sqlite":
		return &database{URL: "sqlite://" + filepath.Join(dir, "parley.db"), Label: kind, cleanup: func() error { return nil }}, nil
	case "postgres":
		u, err := url.Parse(pgURL)
		if err != nil {
			return nil, fmt.Errorf("postgres-url: %w", err)
		}
		if err := loadtest.CheckLoopback(net.JoinHostPort(u.Hostname(), cmp.Or(u.Port(), "5432"))); err != nil {
			return nil, fmt.Errorf("postgres-url: %w", err)
		}
		db, err := sql.Open("pgx", pgURL)
		if err != nil {
			return nil, err
		}
		schema := "parley_load_" + randomHex(6)
		if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("postgres: create schema: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return &database{URL: u.String(), Label: kind, cleanup: func() error {
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`)
			return err
		}}, nil
	}
	return nil, fmt.Errorf("--db must be sqlite or postgres, not %q", kind)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// parleyServer is parley serve running as a separate process.
type parleyServer struct {
	proc      *loadtest.Process
	URL       string
	PprofAddr string // loopback address of /debug/pprof, or ""
	cmd       loadtest.Command
}

// startParley starts parley serve on loopback with the database and an admin token, and any
// further flags of serve.
func startParley(bin, dbURL, adminToken, logPath string, pprof bool, flags ...string) (*parleyServer, error) {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--admin-token", adminToken,
		"--log-format", "json", "--log-level", "info", "--shutdown-timeout", "10s"}
	args = append(args, flags...)
	s := &parleyServer{}
	if pprof {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		s.PprofAddr = addr
		args = append(args, "--pprof-addr", addr)
	}
	s.cmd = loadtest.Command{Name: "parley", Path: bin, Args: args, Env: parleyEnv(), Log: logPath,
		Ready: loadtest.LogAddr("parley is serving")}
	return s, s.start()
}

func (s *parleyServer) start() error {
	p, err := loadtest.Start(s.cmd)
	if err != nil {
		return err
	}
	s.proc, s.URL = p, "http://"+p.Addr
	return nil
}

// restart starts parley again after it stopped or was killed, on the same database.
func (s *parleyServer) restart() error { return s.start() }

// parleyEnv is the harness's environment without PARLEY_* settings: a run measures the
// defaults, whatever the shell it was started from has set.
func parleyEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeLoopbackAddr returns a loopback port nothing listens on now. (Another process could take
// it before parley does; on a test machine that is rare enough.)
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// api calls parley's APIs while the harness sets up and checks a run; these calls are not
// measured.
type api struct {
	client *http.Client
	base   string
	auth   string // the Authorization header
}

// call sends a JSON request and decodes a JSON answer into out, failing unless the status is want.
func (a *api) call(ctx context.Context, method, path string, in, out any, want int) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.auth)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	o, b := loadtest.Do(a.client, req)
	if o.Err != nil {
		return fmt.Errorf("%s %s: %w", method, path, o.Err)
	}
	if o.Status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, o.Status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// integration is the integration a run posts to.
type integration struct {
	ID, Key string
}

// createIntegration creates an integration through the admin API. Its webhooks go to a sink on
// loopback that checks their signatures.
func createIntegration(ctx context.Context, client *http.Client, base, adminToken, webhookURL, secret string, extra map[string]any) (*integration, error) {
	adm := &api{client: client, base: base, auth: "Bearer " + adminToken}
	var v struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	spec := map[string]any{"name": "parley-load", "webhook_url": webhookURL, "webhook_secret": secret}
	for k, v := range extra {
		spec[k] = v
	}
	if err := adm.call(ctx, "POST", "/admin/v1/integrations", spec, &v, http.StatusCreated); err != nil {
		return nil, err
	}
	if v.ID == "" || v.APIKey == "" {
		return nil, errors.New("the admin API answered an integration without id or api_key")
	}
	return &integration{ID: v.ID, Key: v.APIKey}, nil
}

// history returns the IDs of every message of the sessions, reading each session's history
// page by page, with conns requests at a time.
func history(ctx context.Context, client *http.Client, base string, in *integration, sessions []string, conns int) (map[string]bool, error) {
	a := &api{client: client, base: base + "/v1/custom/" + in.ID, auth: "apikey " + in.Key}
	type page struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
		Next *string `json:"next"`
	}
	found := make([][]string, len(sessions))
	errc := make(chan error, conns)
	next := make(chan int)
	for range conns {
		go func() {
			for i := range next {
				path := "/sessions/" + sessions[i] + "/messages?limit=200"
				for {
					var p page
					if err := a.call(ctx, "GET", path, nil, &p, http.StatusOK); err != nil {
						errc <- err
						for range next {
						}
						return
					}
					for _, m := range p.Messages {
						found[i] = append(found[i], m.ID)
					}
					if p.Next == nil {
						break
					}
					path = "/sessions/" + sessions[i] + "/messages?limit=200&after=" + *p.Next
				}
			}
			errc <- nil
		}()
	}
	for i := range sessions {
		next <- i
	}
	close(next)
	var errs []error
	for range conns {
		errs = append(errs, <-errc)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, f := range found {
		for _, id := range f {
			ids[id] = true
		}
	}
	return ids, nil
}

// scratch makes a scenario's working directory (logs, SQLite files, the parley binary) and
// returns how to remove it, unless keep asks to leave it for a look.
func scratch(keep bool, logf func(string, ...any)) (string, func(), error) {
	dir, err := os.MkdirTemp("", "parley-load-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if keep {
			logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

// makeRunDir makes the directory of run i of n under dir.
func makeRunDir(dir string, i, n int, logf func(string, ...any)) (string, error) {
	if n > 1 {
		logf("run %d of %d", i+1, n)
	}
	d := filepath.Join(dir, fmt.Sprintf("run-%d", i+1))
	return d, os.Mkdir(d, 0o755)
}

// printJSON writes a scenario's report for scripts.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
