package worker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/webhook"
)

// bot is the operator's own bot (or a dialog webhook) on loopback, speaking Moveo's protocol:
// it checks every request's signature and answers what its script says.
type bot struct {
	URL   string
	Token string
	t     *testing.T

	mu       sync.Mutex
	requests []botRequest
	script   func(r botRequest) botAnswer
}

type botRequest struct {
	Body        map[string]any
	SignatureOK bool
	Header      http.Header
}

func (r botRequest) Text() string {
	in, _ := r.Body["input"].(map[string]any)
	s, _ := in["text"].(string)
	return s
}

type botAnswer struct {
	Status int
	Delay  time.Duration
	Body   string // JSON
	Wait   chan struct{}
}

func newBot(t *testing.T, token string, script func(r botRequest) botAnswer) *bot {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bot{URL: "http://" + ln.Addr().String() + "/bot", Token: token, t: t, script: script}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r := botRequest{Header: req.Header.Clone(),
			SignatureOK: webhook.Verify(token, body, req.Header.Get("X-Moveo-Signature"))}
		json.Unmarshal(body, &r.Body)
		b.mu.Lock()
		b.requests = append(b.requests, r)
		script := b.script
		b.mu.Unlock()
		a := script(r)
		if a.Wait != nil {
			select {
			case <-a.Wait:
			case <-req.Context().Done():
				return
			}
		}
		if a.Delay > 0 {
			select {
			case <-time.After(a.Delay):
			case <-req.Context().Done():
				return
			}
		}
		if a.Status == 0 {
			a.Status = 200
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.Status)
		io.WriteString(w, a.Body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *bot) Requests() []botRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]botRequest(nil), b.requests...)
}

// echo answers every message with its own text.
func echo(r botRequest) botAnswer {
	return botAnswer{Body: fmt.Sprintf(`{"responses":[{"type":"text","texts":[%q]}]}`, "echo: "+r.Text())}
}

func brainConfig(t *testing.T, v map[string]any) *json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(b)
	return &raw
}

// responses returns the output.responses of a message:brain_send.
func responses(t *testing.T, d *apptest.Delivery) []map[string]any {
	t.Helper()
	out, _ := d.Event["output"].(map[string]any)
	rs, _ := out["responses"].([]any)
	var res []map[string]any
	for _, r := range rs {
		res = append(res, r.(map[string]any))
	}
	if d.Type() != "message:brain_send" || len(res) == 0 {
		t.Fatalf("want a message:brain_send with responses, got %s", d.Body)
	}
	return res
}

func ofType(ds []*apptest.Delivery, eventType, session string) []*apptest.Delivery {
	var out []*apptest.Delivery
	for _, d := range ds {
		if d.Type() == eventType && (session == "" || d.SessionID() == session) {
			out = append(out, d)
		}
	}
	return out
}

func waitBrainSends(t *testing.T, in *apptest.Integration, session string, n int) []*apptest.Delivery {
	t.Helper()
	ds := in.Receiver.Wait(10*time.Second, fmt.Sprintf("%d brain replies", n), func(ds []*apptest.Delivery) bool {
		return len(ofType(ds, "message:brain_send", session)) >= n
	})
	return ofType(ds, "message:brain_send", session)
}

// TestHTTPBrain: every user message goes to the operator's bot, signed, in Moveo's protocol;
// its answer (every action shape) comes back as one signed message:brain_send, its output is
// merged into the context, and a handover action silences the brain.
func TestHTTPBrain(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		b := newBot(t, "bot-token", func(r botRequest) botAnswer {
			switch r.Text() {
			case "everything":
				return botAnswer{Body: `{"output":{"plan":"gold","user":{"tier":2}},"responses":[
					{"type":"text","texts":["Here is everything"],"options":[{"label":"Yes","text":"yes"}]},
					{"type":"image","url":"https://example.com/a.png","name":"a.png","size":12},
					{"type":"video","url":"https://example.com/a.mp4"},
					{"type":"audio","url":"https://example.com/a.mp3"},
					{"type":"file","url":"https://example.com/a.pdf","name":"a.pdf"},
					{"type":"carousel","cards":[{"title":"Gold","subtitle":"best","media":{"type":"image","url":"https://example.com/g.png"},
						"buttons":[{"type":"url","label":"Open","url":"https://example.com"},{"type":"postback","label":"Pick","value":"gold"},
						{"type":"phone","label":"Call","value":"+100"},{"type":"webview","label":"View","url":"https://example.com/v"}]}]},
					{"type":"webview","url":"https://example.com/w","name":"Form","label":"Open form"},
					{"type":"pause","duration":500,"show_typing":true}]}`}
			case "human":
				return botAnswer{Body: `{"responses":[{"type":"text","texts":["Connecting you"]},{"type":"handover"}]}`}
			}
			return echo(r)
		})
		in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "http", "url": b.URL, "token": b.Token})})
		sid := in.NewSession()

		in.Send(sid, "everything")
		d := waitBrainSends(t, in, sid, 1)[0]
		if !d.SignatureOK {
			t.Fatal("message:brain_send not signed correctly")
		}
		rs := responses(t, d)
		var types []string
		for _, r := range rs {
			types = append(types, r["type"].(string))
		}
		if got := strings.Join(types, ","); got != "text,image,video,audio,file,carousel,webview,pause" {
			t.Fatalf("response types = %s", got)
		}
		if rs[0]["text"] != "Here is everything" || rs[7]["show_typing"] != true || rs[7]["duration"] != float64(500) {
			t.Fatalf("responses = %v", rs)
		}
		ctx := d.Event["context"].(map[string]any)
		if ctx["plan"] != "gold" || ctx["user"].(map[string]any)["tier"] != float64(2) {
			t.Fatalf("the bot's output is not in the event's context: %v", ctx)
		}

		reqs := b.Requests()
		if len(reqs) != 1 || !reqs[0].SignatureOK || reqs[0].Body["channel"] != "custom" || reqs[0].Body["session_id"] != sid ||
			reqs[0].Header.Get("X-Moveo-Session-Id") != sid || reqs[0].Header.Get("X-Moveo-Request-Id") == "" {
			t.Fatalf("bot requests = %+v", reqs)
		}

		// The history shows the brain's message with its responses.
		hist := in.Call("GET", "/sessions/"+sid+"/messages", nil).Expect(t, 200).JSON(t)
		msgs := hist["messages"].([]any)
		if len(msgs) != 2 || msgs[1].(map[string]any)["author"] != "brain" {
			t.Fatalf("history = %v", hist)
		}

		// A handover action hands over: the conversation goes to the queue, and the brain is
		// not asked again.
		in.Send(sid, "human")
		waitBrainSends(t, in, sid, 2)
		in.Receiver.WaitType("message:delivered", 10*time.Second)
		in.Send(sid, "are you there?")
		time.Sleep(300 * time.Millisecond)
		if n := len(b.Requests()); n != 2 {
			t.Fatalf("the bot was asked %d times; after a handover it must be silent", n)
		}
		s := in.Call("GET", "/sessions/"+sid, nil).Expect(t, 200).JSON(t)
		if conv := s["session"].(map[string]any)["conversation"].(map[string]any); conv["handled_by"] != "queue" {
			t.Fatalf("conversation = %v", conv)
		}
	})
}

// TestFallback: a brain that fails, times out or answers nothing gets the fallback reply sent,
// the configured one or the default, and the session goes on.
func TestFallback(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		b := newBot(t, "", func(r botRequest) botAnswer {
			switch r.Text() {
			case "fail":
				return botAnswer{Status: 500, Body: `{}`}
			case "slow":
				return botAnswer{Delay: 5 * time.Second, Body: `{"responses":[{"type":"text","texts":["too late"]}]}`}
			case "nothing":
				return botAnswer{Body: `{}`}
			case "garbage":
				return botAnswer{Body: `<html>`}
			}
			return echo(r)
		})
		custom := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "http", "url": b.URL,
			"timeout_ms": 300, "fallback": []any{map[string]any{"type": "text", "text": "We are having trouble"}}})})
		sid := custom.NewSession()
		for i, text := range []string{"fail", "slow", "nothing", "garbage", "fine"} {
			custom.Send(sid, text)
			d := waitBrainSends(t, custom, sid, i+1)[i]
			want := "We are having trouble"
			if text == "fine" {
				want = "echo: fine"
			}
			if got := responses(t, d)[0]["text"]; got != want {
				t.Fatalf("%s: reply %q, want %q", text, got, want)
			}
		}

		// Without a configured fallback the default one is sent; an endpoint that is not
		// there at all is a failure like any other.
		dead := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "http", "url": "http://127.0.0.1:1/bot"})})
		sid = dead.NewSession()
		dead.Send(sid, "hello?")
		if got := responses(t, waitBrainSends(t, dead, sid, 1)[0])[0]["text"]; !strings.HasPrefix(got.(string), "Sorry") {
			t.Fatalf("default fallback = %q", got)
		}
	})
}

// TestOrder: replies of a session come in the order of its messages even when the brain takes
// longer for some, and a slow session does not hold up another.
func TestOrder(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		release := make(chan struct{})
		b := newBot(t, "", func(r botRequest) botAnswer {
			a := echo(r)
			switch {
			case r.Text() == "stuck":
				a.Wait = release
			case strings.HasSuffix(r.Text(), "0"):
				a.Delay = 50 * time.Millisecond // every tenth message is slower
			}
			return a
		})
		in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "http", "url": b.URL})})
		stuck := in.NewSession()
		in.Send(stuck, "stuck")

		const sessions, perSession = 8, 15
		ids := make([]string, sessions)
		var wg sync.WaitGroup
		for i := range ids {
			ids[i] = in.NewSession()
			wg.Go(func() {
				for j := range perSession {
					in.Send(ids[i], fmt.Sprintf("m%d", j))
				}
			})
		}
		wg.Wait()
		for _, sid := range ids {
			ds := waitBrainSends(t, in, sid, perSession)
			for j, d := range ds {
				if got, want := responses(t, d)[0]["text"], fmt.Sprintf("echo: m%d", j); got != want {
					t.Fatalf("session %s reply %d = %q, want %q", sid, j, got, want)
				}
			}
		}
		if n := len(ofType(in.Receiver.Deliveries(), "message:brain_send", stuck)); n != 0 {
			t.Fatalf("the stuck session got %d replies before its brain answered", n)
		}
		close(release)
		waitBrainSends(t, in, stuck, 1)
	})
}

// TestAgentTakesOver: when the conversation is handed over while the brain is still thinking,
// its late answer is dropped: once people handle a conversation, the brain is silent.
func TestAgentTakesOver(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		release := make(chan struct{})
		b := newBot(t, "", func(r botRequest) botAnswer { a := echo(r); a.Wait = release; return a })
		in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "http", "url": b.URL})})
		sid := in.NewSession()
		in.Send(sid, "hello")
		deadline := time.Now().Add(10 * time.Second)
		for len(b.Requests()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		in.Call("POST", "/sessions/"+sid+"/handover", nil).Expect(t, 200)
		close(release)
		in.Receiver.WaitType("message:delivered", 10*time.Second)
		time.Sleep(500 * time.Millisecond)
		if n := len(ofType(in.Receiver.Deliveries(), "message:brain_send", sid)); n != 0 {
			t.Fatalf("%d brain replies after the handover", n)
		}
		hist := in.Call("GET", "/sessions/"+sid+"/messages", nil).Expect(t, 200).JSON(t)
		if n := len(hist["messages"].([]any)); n != 1 {
			t.Fatalf("history has %d messages, want the user's only", n)
		}
	})
}

// writeFile writes a dialog file, making sure its modification time moves even on a coarse
// file system clock.
func writeFile(t *testing.T, path, content string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// conversation returns the session's current conversation as the read extension shows it.
func conversation(t *testing.T, in *apptest.Integration, sid string) map[string]any {
	t.Helper()
	s := in.Call("GET", "/sessions/"+sid, nil).Expect(t, 200).JSON(t)
	return s["session"].(map[string]any)["conversation"].(map[string]any)
}

// TestDemoDialog walks the bundled demo dialog end to end, as `parley demo` suggests: the
// greeting with quick replies and the user's name, a carousel and a question whose answer is
// stored, tags, a resolve after which the next message opens a new conversation with the
// greeting, and a handover that silences the brain.
func TestDemoDialog(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		sid := in.Call("POST", "/sessions", map[string]any{"context": map[string]any{"user": map[string]any{"display_name": "Ada"}}}).
			Expect(t, 201).Str(t, "session_id")
		say := func(text string, n int) []map[string]any {
			t.Helper()
			in.Send(sid, text)
			d := waitBrainSends(t, in, sid, n)[n-1]
			if !d.SignatureOK {
				t.Fatalf("%q: the reply is not signed correctly", text)
			}
			return responses(t, d)
		}

		rs := say("hi", 1)
		if !strings.HasPrefix(rs[0]["text"].(string), "Hi Ada!") || len(rs[0]["options"].([]any)) != 3 {
			t.Fatalf("greeting = %v", rs)
		}
		rs = say("See our plans", 2)
		if len(rs) != 3 || rs[1]["type"] != "carousel" || rs[2]["type"] != "text" || len(rs[1]["cards"].([]any)) != 3 {
			t.Fatalf("plans = %v", rs)
		}
		rs = say("Pro", 3)
		if !strings.Contains(rs[0]["text"].(string), "Ada: Pro it is") {
			t.Fatalf("plan chosen = %v", rs)
		}
		d := waitBrainSends(t, in, sid, 3)[2]
		ctx := d.Event["context"].(map[string]any)
		if ctx["plan"] != "Pro" || fmt.Sprint(ctx["tags"]) != "[viewed-plans plan-Pro]" {
			t.Fatalf("context after choosing = plan %v, tags %v", ctx["plan"], ctx["tags"])
		}
		first := conversation(t, in, sid)["id"]

		say("bye", 4)
		closed := in.Receiver.WaitType("conversation:closed", 10*time.Second)
		if closed.Event["closed_by"] != "brain" {
			t.Fatalf("conversation:closed = %s", closed.Body)
		}
		// After the resolve the next message opens a new conversation, which the brain greets.
		rs = say("what can you do?", 5)
		if c := conversation(t, in, sid); c["id"] == first || c["handled_by"] != "brain" {
			t.Fatalf("after a resolve the conversation is %v", c)
		}
		if !strings.HasPrefix(rs[0]["text"].(string), "Hi Ada!") {
			t.Fatalf("a new conversation starts with the greeting, got %v", rs)
		}

		rs = say("I want a human", 6)
		if rs[len(rs)-1]["type"] != "handover" {
			t.Fatalf("handover reply = %v", rs)
		}
		if c := conversation(t, in, sid); c["handled_by"] != "queue" {
			t.Fatalf("after the handover the conversation is %v", c)
		}
		in.Send(sid, "hello?")
		time.Sleep(300 * time.Millisecond)
		if n := len(ofType(in.Receiver.Deliveries(), "message:brain_send", sid)); n != 6 {
			t.Fatalf("%d brain replies; the brain must be silent after the handover", n)
		}
	})
}

// TestUnknownCounter: three messages in a row the dialog does not understand hand over.
func TestUnknownCounter(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Backend: apptest.SQLite})
	in := srv.NewIntegration(t, admin.IntegrationSpec{})
	sid := in.NewSession()
	in.Send(sid, "hi")
	for i, text := range []string{"qwerty", "asdfgh", "zxcvbn"} {
		in.Send(sid, text)
		d := waitBrainSends(t, in, sid, i+2)[i+1]
		rs := responses(t, d)
		handover := rs[len(rs)-1]["type"] == "handover"
		if handover != (i == 2) {
			t.Fatalf("miss %d: %v", i+1, rs)
		}
		ctx := d.Event["context"].(map[string]any)
		if i < 2 && ctx["sys-unknown_counter"] != float64(i+1) {
			t.Fatalf("miss %d: sys-unknown_counter = %v", i+1, ctx["sys-unknown_counter"])
		}
	}
	if c := conversation(t, in, sid); c["handled_by"] != "queue" {
		t.Fatalf("after three misses the conversation is %v", c)
	}
}

// TestDialogFile: an integration's own dialog file, with a dialog webhook that must see
// Moveo's signed request; the file is re-read when it changes, and a broken edit is refused
// while the version before keeps serving.
func TestDialogFile(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		hook := newBot(t, "hook-token", func(r botRequest) botAnswer {
			return botAnswer{Body: `{"output":{"order":{"status":"shipped"}},"responses":[{"type":"text","texts":["Your order has shipped"]}]}`}
		})
		path := filepath.Join(t.TempDir(), "support.yaml")
		v1 := `dialogs:
  - name: order
    keywords: [order]
    steps:
      - webhook: {url: "` + hook.URL + `", token: hook-token, fallback: [{text: "Orders are down"}]}
      - text: "Status: {{order.status}}"
  - name: fallback
    on: no_match
    steps:
      - text: "v1"
`
		mod := time.Now().Add(-time.Hour)
		writeFile(t, path, v1, mod)
		in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "dialog", "file": path})})
		sid := in.NewSession()

		in.Send(sid, "where is my order?")
		rs := responses(t, waitBrainSends(t, in, sid, 1)[0])
		if len(rs) != 2 || rs[0]["text"] != "Your order has shipped" || rs[1]["text"] != "Status: shipped" {
			t.Fatalf("webhook reply = %v", rs)
		}
		reqs := hook.Requests()
		if len(reqs) != 1 || !reqs[0].SignatureOK || reqs[0].Body["channel"] != "custom" || reqs[0].Text() != "where is my order?" {
			t.Fatalf("dialog webhook requests = %+v", reqs)
		}

		// An edit is live within about a second.
		writeFile(t, path, strings.Replace(v1, `"v1"`, `"v2"`, 1), mod.Add(time.Minute))
		deadline := time.Now().Add(10 * time.Second)
		for n := 2; ; n++ {
			in.Send(sid, "something")
			if responses(t, waitBrainSends(t, in, sid, n)[n-1])[0]["text"] == "v2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the edited dialog file was not picked up")
			}
			time.Sleep(300 * time.Millisecond)
		}
		// A broken edit is refused: v2 keeps answering.
		writeFile(t, path, "dialogs:\n  - name: x\n    stepz: []\n", mod.Add(2*time.Minute))
		time.Sleep(1500 * time.Millisecond)
		n := len(ofType(in.Receiver.Deliveries(), "message:brain_send", sid)) + 1
		in.Send(sid, "something else")
		if got := responses(t, waitBrainSends(t, in, sid, n)[n-1])[0]["text"]; got != "v2" {
			t.Fatalf("after a broken edit the reply is %q, want the previous version's", got)
		}

		// The admin surface refuses a file that does not load, naming the line.
		_, err := srv.Admin.UpdateIntegration(t.Context(), in.ID, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "dialog", "file": path})})
		if err == nil || !strings.Contains(err.Error(), "support.yaml:3") {
			t.Fatalf("updating to a broken file: %v", err)
		}
	})
}

// TestLLMBrain: the llm brain through the whole server, against a small OpenAI-compatible
// server on loopback (no model runs here): the model's answer is the reply, with the history;
// a user asking for a human is handed over.
func TestLLMBrain(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Backend: apptest.SQLite})
	var mu sync.Mutex
	var calls []map[string]any
	model := newFakeModel(t, func(req map[string]any) string {
		mu.Lock()
		calls = append(calls, req)
		mu.Unlock()
		return `{"choices":[{"message":{"role":"assistant","content":"Hello from the model"}}]}`
	})
	in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "llm",
		"llm": map[string]any{"base_url": model, "model": "tiny", "api_key": "sk-test"}})})
	sid := in.NewSession()
	in.Send(sid, "hello")
	if got := responses(t, waitBrainSends(t, in, sid, 1)[0])[0]["text"]; got != "Hello from the model" {
		t.Fatalf("reply = %q", got)
	}
	in.Send(sid, "and again")
	waitBrainSends(t, in, sid, 2)
	mu.Lock()
	msgs := calls[1]["messages"].([]any)
	mu.Unlock()
	var roles []string
	for _, m := range msgs {
		roles = append(roles, m.(map[string]any)["role"].(string))
	}
	if got := strings.Join(roles, ","); !strings.HasSuffix(got, "user,assistant,user") {
		t.Fatalf("the second call's roles = %s, want the history", got)
	}

	in.Send(sid, "I want to talk to a human")
	rs := responses(t, waitBrainSends(t, in, sid, 3)[2])
	if rs[len(rs)-1]["type"] != "handover" {
		t.Fatalf("asking for a human: %v", rs)
	}
	if c := conversation(t, in, sid); c["handled_by"] != "queue" {
		t.Fatalf("conversation = %v", c)
	}
}

// newFakeModel serves POST /v1/chat/completions with what answer returns for each request.
func newFakeModel(t *testing.T, answer func(req map[string]any) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, `{"error":{"message":"bad path or key"}}`, http.StatusUnauthorized)
			return
		}
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer(req))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/v1"
}

// TestAnswersAfterResolve: a message the user sent while the brain was working out a resolve
// is still answered, in the conversation it was sent to; and an answer with no responses (a
// question as a dialog's last step) keeps what it stored.
func TestAnswersAfterResolve(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, backend apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: backend})
		release := make(chan struct{})
		hook := newBot(t, "", func(r botRequest) botAnswer {
			return botAnswer{Wait: release, Body: `{"responses":[{"type":"text","texts":["Goodbye"]}]}`}
		})
		path := filepath.Join(t.TempDir(), "bye.yaml")
		writeFile(t, path, `dialogs:
  - name: bye
    keywords: [bye]
    steps:
      - webhook: {url: "`+hook.URL+`", timeout_ms: 5000}
      - resolve
  - name: email
    keywords: [email]
    steps:
      - ask: What is your email?
        store: user.email
  - name: other
    on: no_match
    steps:
      - text: "Still here"
`, time.Now())
		in := srv.NewIntegration(t, admin.IntegrationSpec{Brain: brainConfig(t, map[string]any{"kind": "dialog", "file": path})})
		sid := in.NewSession()
		first := conversation(t, in, sid)["id"]
		in.Send(sid, "bye")
		for deadline := time.Now().Add(10 * time.Second); len(hook.Requests()) == 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the webhook was not called")
			}
		}
		in.Send(sid, "wait, one more thing")
		close(release)
		ds := waitBrainSends(t, in, sid, 2)
		if got := responses(t, ds[1])[0]["text"]; got != "Still here" {
			t.Fatalf("the message sent during the resolve got %q", got)
		}
		if c := conversation(t, in, sid); c["id"] != first || c["status"] != "open" {
			t.Fatalf("conversation after the late message: %v", c)
		}
		if n := len(ofType(in.Receiver.Deliveries(), "conversation:closed", sid)); n != 0 {
			t.Fatalf("%d conversation:closed; the user was still talking", n)
		}

		in.Send(sid, "email")
		waitBrainSends(t, in, sid, 3)
		in.Send(sid, "ada@example.com")
		d := waitBrainSends(t, in, sid, 4)[3]
		ctx := d.Event["context"].(map[string]any)
		if ctx["user"].(map[string]any)["email"] != "ada@example.com" || ctx["sys-pending"] != nil {
			t.Fatalf("after answering the last question: context %v", ctx)
		}
		if got := responses(t, d)[0]["text"].(string); !strings.HasPrefix(got, "Sorry") {
			t.Fatalf("an answer with nothing to say sends the fallback, got %q", got)
		}
	})
}
