package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// agent is an agent of a test server, calling the agent API with its token.
type agent struct {
	ID       string
	Name     string
	Email    string
	Password string
	Token    string
	srv      *apptest.Server
	t        testing.TB
}

// newAgent creates an agent with a password and a token; integrations limit it.
func newAgent(t testing.TB, srv *apptest.Server, name string, integrations ...string) *agent {
	t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"
	v, err := srv.Admin.CreateAgent(t.Context(), admin.AgentSpec{Email: email, Name: name, Password: "password-of-" + name,
		Token: true, Integrations: integrations})
	if err != nil {
		t.Fatalf("create agent %s: %v", name, err)
	}
	return &agent{ID: v.ID, Name: name, Email: email, Password: "password-of-" + name, Token: v.Token, srv: srv, t: t}
}

// on returns the same agent calling another server (another process of the deployment).
func (a *agent) on(srv *apptest.Server) *agent {
	b := *a
	b.srv = srv
	return &b
}

// call sends an agent API request; path is relative to /agent/v1.
func (a *agent) call(method, path string, body any) *apptest.Response {
	a.t.Helper()
	return a.srv.Do(a.t, method, "/agent/v1"+path, body, "Authorization", "Bearer "+a.Token)
}

// queue returns the conversations of a view.
func (a *agent) list(view string) []map[string]any {
	a.t.Helper()
	var out []map[string]any
	for _, c := range a.call("GET", "/conversations?view="+view, nil).Expect(a.t, http.StatusOK).JSON(a.t)["conversations"].([]any) {
		out = append(out, c.(map[string]any))
	}
	return out
}

// conversationOf returns the current conversation ID of a session, as the inbound API says.
func conversationOf(t testing.TB, in *apptest.Integration, sid string) map[string]any {
	t.Helper()
	return in.Call("GET", "/sessions/"+sid, nil).Expect(t, http.StatusOK).JSON(t)["session"].(map[string]any)["conversation"].(map[string]any)
}

// handedOver opens a session whose user wrote and asked for a human, and returns the session
// and its conversation.
func handedOver(t testing.TB, in *apptest.Integration, name, text string) (sid, cid string) {
	t.Helper()
	sid = in.Call("POST", "/sessions", map[string]any{"context": map[string]any{
		"user": map[string]any{"display_name": name, "email": strings.ToLower(strings.Fields(name)[0]) + "@example.net"}}}).
		Expect(t, http.StatusCreated).Str(t, "session_id")
	in.Send(sid, text)
	brainAnswered(t, in, sid)
	in.Call("POST", "/sessions/"+sid+"/handover", nil).Expect(t, http.StatusOK)
	return sid, conversationOf(t, in, sid)["id"].(string)
}

// event is one event of a live stream.
type event struct {
	Type string
	Data map[string]any
	At   time.Time
}

// stream is an open live stream of an agent.
type stream struct {
	t      testing.TB
	mu     sync.Mutex
	events []event
	poke   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// openStream connects to the agent's live stream and returns once it is ready.
func (a *agent) openStream() *stream {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", a.srv.URL+"/agent/v1/stream", nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		a.t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		a.t.Fatalf("stream: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &stream{t: a.t, poke: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go s.read(resp)
	a.t.Cleanup(s.close)
	s.wait("ready", eventWait, func(e event) bool { return e.Type == "ready" })
	return s
}

func (s *stream) close() {
	s.cancel()
	<-s.done
}

func (s *stream) read(resp *http.Response) {
	defer close(s.done)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var typ, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if typ != "" {
				e := event{Type: typ, At: time.Now()}
				json.Unmarshal([]byte(data), &e.Data)
				s.mu.Lock()
				s.events = append(s.events, e)
				s.mu.Unlock()
				select {
				case s.poke <- struct{}{}:
				default:
				}
			}
			typ, data = "", ""
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// eventWait is how long a test waits for an event it expects. Events arrive in milliseconds; the
// margin is for a machine busy with other test binaries, where a second was once not enough.
const eventWait = 10 * time.Second

// wait returns the first event since the stream opened that matches, or fails the test.
func (s *stream) wait(what string, timeout time.Duration, match func(event) bool) event {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		i := slices.IndexFunc(s.events, match)
		var e event
		if i >= 0 {
			e = s.events[i]
		}
		n := len(s.events)
		s.mu.Unlock()
		if i >= 0 {
			return e
		}
		select {
		case <-s.poke:
		case <-deadline:
			s.t.Fatalf("stream: waited %v for %s; got %d events: %v", timeout, what, n, s.types())
		}
	}
}

// none fails the test if any event so far matches.
func (s *stream) none(what string, match func(event) bool) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.events, match); i >= 0 {
		s.t.Errorf("stream: got %s: %v", what, s.events[i])
	}
}

func (s *stream) types() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Type)
	}
	return out
}

// conversationEvent matches a conversation event of id in which cond holds.
func conversationEvent(id string, cond func(c map[string]any) bool) func(event) bool {
	return func(e event) bool {
		return e.Type == "conversation" && e.Data["id"] == id && (cond == nil || cond(e.Data))
	}
}

// messageEvent matches a message event of the message id in which cond holds.
func messageEvent(id string, cond func(m map[string]any) bool) func(event) bool {
	return func(e event) bool {
		if e.Type != "message" {
			return false
		}
		m, _ := e.Data["message"].(map[string]any)
		return m != nil && m["id"] == id && (cond == nil || cond(m))
	}
}

// sessionEvents waits until the receiver has n events of the session and returns them in order.
// brainAnswered waits until the brain has answered the session's user message, so what the
// test does next does not race the brain's reply.
func brainAnswered(t testing.TB, in *apptest.Integration, sid string) {
	t.Helper()
	if in.Receiver == nil {
		return
	}
	in.Receiver.Wait(10*time.Second, "the brain's reply", func(ds []*apptest.Delivery) bool {
		return slices.ContainsFunc(ds, func(d *apptest.Delivery) bool {
			return d.SessionID() == sid && d.Type() == parley.EventBrainSend
		})
	})
}

// sessionEvents waits for n webhooks of a session besides the brain's replies (the brain's
// own tests cover those) and returns them.
func sessionEvents(t testing.TB, in *apptest.Integration, sid string, n int) []*apptest.Delivery {
	t.Helper()
	var out []*apptest.Delivery
	in.Receiver.Wait(10*time.Second, "events of the session", func(ds []*apptest.Delivery) bool {
		out = out[:0]
		for _, d := range ds {
			if d.SessionID() == sid && d.Type() != parley.EventBrainSend {
				out = append(out, d)
			}
		}
		return len(out) >= n
	})
	return out
}

func types(ds []*apptest.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Type())
	}
	return out
}

func ptr[T any](v T) *T { return &v }
