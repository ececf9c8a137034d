package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveBuilds()
	os.Exit(code)
}

const adminToken = "crash-test-admin-token"

// server is a parley process with an integration and its sessions.
type server struct {
	*testenv.Process
	client *http.Client
}

// serve starts parley on the SQLite file at db.
func serve(t *testing.T, db string) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real parley processes; skipped with -short")
	}
	p := testenv.StartProcess(t, testenv.BuildParley(t),
		[]string{"serve", "--database-url", "sqlite://" + db, "--log-level", "warn", "--shutdown-timeout", "20s"},
		"PARLEY_ADMIN_TOKEN="+adminToken)
	return &server{Process: p, client: &http.Client{Timeout: 10 * time.Second}}
}

// do makes a request and returns the status and body, or an error if no answer came.
func (s *server) do(method, path, auth string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must makes a request that must answer want and returns the decoded body.
func (s *server) must(t *testing.T, want int, method, path, auth string, body any) map[string]any {
	t.Helper()
	status, b, err := s.do(method, path, auth, body)
	if err != nil || status != want {
		t.Fatalf("%s %s: %d %s %v; want %d", method, path, status, b, err, want)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return m
}

// integration is what a test needs to call the inbound API.
type integration struct {
	id, auth string
}

func (s *server) newIntegration(t *testing.T) integration {
	t.Helper()
	in := s.must(t, http.StatusCreated, "POST", "/admin/v1/integrations", "Bearer "+adminToken,
		map[string]any{"webhook_url": "http://127.0.0.1:9/hook"})
	return integration{id: in["id"].(string), auth: "apikey " + in["api_key"].(string)}
}

func (s *server) newSession(t *testing.T, in integration) string {
	t.Helper()
	return s.must(t, http.StatusCreated, "POST", "/v1/custom/"+in.id+"/sessions", in.auth, map[string]any{})["session_id"].(string)
}

// history returns a session's messages, id -> text.
func (s *server) history(t *testing.T, in integration, sid string) map[string]string {
	t.Helper()
	got := map[string]string{}
	after := ""
	for {
		path := "/v1/custom/" + in.id + "/sessions/" + sid + "/messages?limit=200"
		if after != "" {
			path += "&after=" + after
		}
		page := s.must(t, http.StatusOK, "GET", path, in.auth, nil)
		for _, m := range page["messages"].([]any) {
			m := m.(map[string]any)
			id := m["id"].(string)
			if _, dup := got[id]; dup {
				t.Fatalf("message %s twice in the history", id)
			}
			got[id], _ = m["text"].(string)
		}
		next, _ := page["next"].(string)
		if next == "" {
			return got
		}
		after = next
	}
}

// accepted is a message the server answered 202 for.
type accepted struct {
	session, id, text string
}

// load posts messages from workers goroutines to the sessions until stop is closed, and
// returns every message that got a 202. Requests that get no answer (the server died under
// them) are not counted: the client cannot know whether they were accepted.
func (s *server) load(in integration, sessions []string, workers int, stop <-chan struct{}, count *atomic.Int64) func() []accepted {
	var mu sync.Mutex
	var got []accepted
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sid := sessions[(w+i)%len(sessions)]
				text := fmt.Sprintf("worker %d message %d", w, i)
				status, b, err := s.do("POST", "/v1/custom/"+in.id+"/sessions/"+sid+"/messages", in.auth,
					map[string]any{"input": map[string]any{"text": text}})
				if err != nil {
					time.Sleep(5 * time.Millisecond) // the server is gone or going
					continue
				}
				if status != http.StatusAccepted {
					continue
				}
				var body struct {
					MessageID string `json:"message_id"`
				}
				if json.Unmarshal(b, &body) != nil || body.MessageID == "" {
					continue
				}
				mu.Lock()
				got = append(got, accepted{sid, body.MessageID, text})
				mu.Unlock()
				count.Add(1)
			}
		})
	}
	return func() []accepted {
		wg.Wait()
		return got
	}
}

// checkKept fails the test unless every accepted message is in its session's history with
// its text.
func checkKept(t *testing.T, s *server, in integration, sessions []string, acc []accepted) {
	t.Helper()
	hist := map[string]map[string]string{}
	for _, sid := range sessions {
		hist[sid] = s.history(t, in, sid)
	}
	lost := 0
	for _, a := range acc {
		text, ok := hist[a.session][a.id]
		if !ok || text != a.text {
			lost++
			if lost <= 10 {
				t.Errorf("message %s (%q) got 202 but is not in the history (found %q)", a.id, a.text, text)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d accepted messages lost", lost, len(acc))
	}
	t.Logf("all %d accepted messages kept", len(acc))
}

// TestKill9KeepsAcceptedMessages kills parley with SIGKILL in the middle of a load of
// concurrent messages, twice, restarting it on the same SQLite file each time: every message
// that got its 202 is in the history afterwards.
func TestKill9KeepsAcceptedMessages(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	s := serve(t, db)
	in := s.newIntegration(t)
	sessions := []string{s.newSession(t, in), s.newSession(t, in), s.newSession(t, in), s.newSession(t, in)}
	var all []accepted
	for round := range 2 {
		var count atomic.Int64
		stop := make(chan struct{})
		wait := s.load(in, sessions, 16, stop, &count)
		// Kill once a good number were accepted, with requests still in flight.
		deadline := time.Now().Add(60 * time.Second)
		for count.Load() < 300 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		s.Kill9()
		close(stop)
		acc := wait()
		if len(acc) == 0 {
			t.Fatalf("round %d: no message was accepted before the kill", round)
		}
		all = append(all, acc...)
		t.Logf("round %d: killed after %d accepted messages", round, len(acc))
		s = serve(t, db)
		checkKept(t, s, in, sessions, all)
	}
	// The restarted server still takes messages.
	s.must(t, http.StatusAccepted, "POST", "/v1/custom/"+in.id+"/sessions/"+sessions[0]+"/messages", in.auth,
		map[string]any{"input": map[string]any{"text": "after the crashes"}})
}

// TestSIGTERMFinishesInFlightRequests asks parley to stop while a request is half sent: the
// server stops accepting connections, still answers that request 202, exits with status 0,
// and the message is there after a restart. Under a load of messages, every 202 is kept.
func TestSIGTERMFinishesInFlightRequests(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	s := serve(t, db)
	in := s.newIntegration(t)
	sid := s.newSession(t, in)

	// A request whose body arrives in two parts, the second after SIGTERM.
	body := `{"input":{"text":"in flight during shutdown"}}`
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", s.URL+"/v1/custom/"+in.id+"/sessions/"+sid+"/messages", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", in.auth)
	type result struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := s.client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, b, err}
	}()
	if _, err := pw.Write([]byte(body[:10])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start reading it (it is in flight either way)

	// Under load at the same time: these must all be kept too.
	sessions := []string{s.newSession(t, in), s.newSession(t, in)}
	var count atomic.Int64
	stop := make(chan struct{})
	wait := s.load(in, sessions, 8, stop, &count)
	for count.Load() < 50 {
		time.Sleep(5 * time.Millisecond)
	}

	s.Terminate()
	// The listener closes first: wait until new connections are refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("parley still accepts connections 10 s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if _, err := pw.Write([]byte(body[10:])); err != nil {
		t.Fatalf("finishing the in-flight body: %v", err)
	}
	pw.Close()
	r := <-done
	if r.err != nil || r.status != http.StatusAccepted {
		t.Fatalf("in-flight request: %d %s %v; want 202", r.status, r.body, r.err)
	}
	var msg struct {
		MessageID string `json:"message_id"`
	}
	json.Unmarshal(r.body, &msg)
	if err := s.Wait(30 * time.Second); err != nil {
		t.Fatalf("parley exited with %v after SIGTERM\n%s", err, s.Logs())
	}
	acc := wait()
	if logs := s.Logs(); strings.Contains(logs, "panic") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("shutdown logged errors:\n%s", logs)
	}

	s = serve(t, db)
	if text, ok := s.history(t, in, sid)[msg.MessageID]; !ok || text != "in flight during shutdown" {
		t.Errorf("the in-flight message %s is not in the history", msg.MessageID)
	}
	checkKept(t, s, in, sessions, acc)
}
