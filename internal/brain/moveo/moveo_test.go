package moveo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/moveo"
	"github.com/parleyhq/parley/webhook"
)

const token = "s3cret-token"

// received is one request the test webhook got.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// hook is a real webhook on loopback: it records what it receives and answers with answer.
type hook struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []received
}

func newHook(t *testing.T, answer http.HandlerFunc) *hook {
	t.Helper()
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, received{r.Method, r.URL.Path, r.Header.Clone(), body})
		h.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

func (h *hook) endpoint() moveo.Endpoint {
	return moveo.Endpoint{URL: h.srv.URL + "/hook", Token: token, BrainID: "brain-1", Timeout: 5 * time.Second}
}

// answering answers every request with status and body.
func answering(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestCallRequest(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(200, `{"responses":[{"type":"text","texts":["hello"]}]}`))
	vars := map[string]any{
		"user":   map[string]any{"language": "el", "display_name": "Zoë <3"},
		"orders": json.Number("12345678901234567890"),
		"tags":   []any{"vip"},
	}
	ep := h.endpoint()
	for range 2 {
		a, err := moveo.Call(t.Context(), h.srv.Client(), ep, "sess-1", vars, "where's my order?")
		if err != nil {
			t.Fatal(err)
		}
		if want := []brain.Response{brain.Text("hello")}; !reflect.DeepEqual(a.Responses, want) {
			t.Errorf("responses = %#v, want %#v", a.Responses, want)
		}
	}

	got := h.requests()
	if len(got) != 2 {
		t.Fatalf("the webhook got %d requests, want 2", len(got))
	}
	wantBody := `{"channel":"custom","session_id":"sess-1","brain_id":"brain-1","lang":"el",` +
		`"context":{"orders":12345678901234567890,"tags":["vip"],"user":{"display_name":"Zoë <3","language":"el"}},` +
		`"input":{"text":"where's my order?"}}`
	for i, r := range got {
		if r.Method != http.MethodPost || r.Path != "/hook" {
			t.Errorf("request %d: %s %s, want POST /hook", i, r.Method, r.Path)
		}
		if string(r.Body) != wantBody {
			t.Errorf("request %d body:\n got %s\nwant %s", i, r.Body, wantBody)
		}
		if !webhook.Verify(token, r.Body, r.Header.Get(webhook.SignatureHeader)) {
			t.Errorf("request %d: signature %q does not verify", i, r.Header.Get(webhook.SignatureHeader))
		}
		if sig := r.Header.Get(webhook.SignatureHeader); sig != strings.ToLower(sig) {
			t.Errorf("request %d: signature %q is not lowercase hex", i, sig)
		}
		for k, want := range map[string]string{
			"Content-Type":          "application/json",
			"User-Agent":            "parley-brain/1",
			webhook.SessionIDHeader: "sess-1",
		} {
			if v := r.Header.Get(k); v != want {
				t.Errorf("request %d: %s = %q, want %q", i, k, v, want)
			}
		}
		if _, ok := parley.ParseID(r.Header.Get(webhook.RequestIDHeader)); !ok {
			t.Errorf("request %d: %s = %q, want a UUID", i, webhook.RequestIDHeader, r.Header.Get(webhook.RequestIDHeader))
		}
	}
	if got[0].Header.Get(webhook.RequestIDHeader) == got[1].Header.Get(webhook.RequestIDHeader) {
		t.Error("two calls sent the same request ID")
	}
}

func TestCallUnsigned(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(200, `{}`))
	ep := h.endpoint()
	ep.Token = ""
	if _, err := moveo.Call(t.Context(), nil, ep, "s", nil, "hi"); err != nil {
		t.Fatal(err)
	}
	r := h.requests()[0]
	if v, ok := r.Header[webhook.SignatureHeader]; ok {
		t.Errorf("an endpoint without a token sent %s: %q", webhook.SignatureHeader, v)
	}
	// No context is sent as an empty object, never null.
	want := `{"channel":"custom","session_id":"s","brain_id":"brain-1","lang":"en","context":{},"input":{"text":"hi"}}`
	if string(r.Body) != want {
		t.Errorf("body:\n got %s\nwant %s", r.Body, want)
	}
}

func TestCallLang(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(200, `{}`))
	tests := []struct {
		name    string
		vars    map[string]any
		epLang  string
		wantArg string
	}{
		{"from the context", map[string]any{"user": map[string]any{"language": "pt"}}, "de", "pt"},
		{"not a string", map[string]any{"user": map[string]any{"language": 7}}, "de", "de"},
		{"empty", map[string]any{"user": map[string]any{"language": ""}}, "de", "de"},
		{"user not an object", map[string]any{"user": "x"}, "de", "de"},
		{"no context", nil, "de", "de"},
		{"default", nil, "", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := h.endpoint()
			ep.Lang = tt.epLang
			ep.BrainID = tt.name // to find this subtest's request
			if _, err := moveo.Call(t.Context(), nil, ep, "s", tt.vars, "hi"); err != nil {
				t.Fatal(err)
			}
			for _, r := range h.requests() {
				var body struct {
					BrainID string `json:"brain_id"`
					Lang    string `json:"lang"`
				}
				if err := json.Unmarshal(r.Body, &body); err != nil {
					t.Fatal(err)
				}
				if body.BrainID == tt.name && body.Lang != tt.wantArg {
					t.Errorf("lang = %q, want %q", body.Lang, tt.wantArg)
				}
			}
		})
	}
}

func TestCallAnswer(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(200, `{
		"output": {"order_status": "shipped", "count": 3, "user": {"display_name": "Ana"}, "stale": null},
		"responses": [
			{"type": "text", "texts": ["Your order has shipped."]},
			{"type": "handover"}
		]
	}`))
	a, err := moveo.Call(t.Context(), nil, h.endpoint(), "s", nil, "status?")
	if err != nil {
		t.Fatal(err)
	}
	wantOut := map[string]any{
		"order_status": "shipped",
		"count":        json.Number("3"),
		"user":         map[string]any{"display_name": "Ana"},
		"stale":        nil,
	}
	if !reflect.DeepEqual(a.Output, wantOut) {
		t.Errorf("output = %#v, want %#v", a.Output, wantOut)
	}
	if !a.Handover {
		t.Error("a handover action did not set Handover")
	}
	if want := []brain.Response{brain.Text("Your order has shipped."), {Type: brain.TypeHandover}}; !reflect.DeepEqual(a.Responses, want) {
		t.Errorf("responses = %#v, want %#v", a.Responses, want)
	}

	// The caller merges the output: values replace, objects merge, null removes.
	ctx := map[string]any{
		"order_status": "pending",
		"stale":        true,
		"user":         map[string]any{"user_id": "u1", "display_name": "?"},
	}
	parley.MergeContext(ctx, a.Output)
	wantCtx := `{"count":3,"order_status":"shipped","user":{"display_name":"Ana","user_id":"u1"}}`
	if got := string(parley.EncodeObject(ctx)); got != wantCtx {
		t.Errorf("merged context = %s, want %s", got, wantCtx)
	}
}

func TestCallNoContent(t *testing.T) {
	t.Parallel()
	h := newHook(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	a, err := moveo.Call(t.Context(), nil, h.endpoint(), "s", nil, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if a.Output != nil || a.Responses != nil || a.Handover {
		t.Errorf("204 answered %#v, want an empty answer", a)
	}
}

func TestCallAnswerAtTheLimit(t *testing.T) {
	t.Parallel()
	body := `{"responses":[{"type":"text","text":"ok"}]}`
	body += strings.Repeat(" ", moveo.MaxAnswerBytes-len(body))
	h := newHook(t, answering(200, body))
	a, err := moveo.Call(t.Context(), nil, h.endpoint(), "s", nil, "hi")
	if err != nil {
		t.Fatalf("an answer of exactly MaxAnswerBytes: %v", err)
	}
	if len(a.Responses) != 1 {
		t.Errorf("responses = %#v", a.Responses)
	}
}

func TestCallErrors(t *testing.T) {
	t.Parallel()

	// A redirect target that must never be reached.
	var followed sync.Mutex
	reached := 0
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Lock()
		reached++
		followed.Unlock()
		io.WriteString(w, `{"responses":[{"type":"text","text":"redirected"}]}`)
	}))
	t.Cleanup(target.Close)

	// A closed server: connection refused.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name    string
		handler http.HandlerFunc
		url     string // instead of the hook's
		timeout time.Duration
		want    string // in the error
	}{
		{name: "500", handler: answering(500, `{"responses":[]}`), want: "status 500"},
		{name: "404", handler: answering(404, ``), want: "status 404"},
		{name: "redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
		}, want: "status 307"},
		{name: "oversize", handler: answering(200, `{"output":{"x":"`+strings.Repeat("a", moveo.MaxAnswerBytes)+`"}}`), want: "longer than"},
		{name: "endless", handler: func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for range 64 { // 4 MiB, more than any answer may be
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, want: "longer than"},
		{name: "invalid JSON", handler: answering(200, `{"responses":[`), want: "not a JSON object"},
		{name: "empty body", handler: answering(200, ``), want: "not a JSON object"},
		{name: "HTML", handler: answering(200, `<html>Bad gateway</html>`), want: "not a JSON object"},
		{name: "array", handler: answering(200, `[{"type":"text","text":"x"}]`), want: "not a JSON object"},
		{name: "trailing data", handler: answering(200, `{}{}`), want: "not a JSON object"},
		{name: "invalid UTF-8", handler: answering(200, "{\"responses\":[{\"type\":\"text\",\"text\":\"\xff\"}]}"), want: "UTF-8"},
		{name: "too deep", handler: answering(200, `{"output":{"x":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)+`}}`), want: "deeper"},
		{name: "output not an object", handler: answering(200, `{"output":"x"}`), want: "output must be an object"},
		{name: "output with a wrong type", handler: answering(200, `{"output":{"user":"x"}}`), want: "context.user must be an object"},
		{name: "responses not an array", handler: answering(200, `{"responses":{"type":"text","text":"x"}}`), want: "responses must be an array"},
		{name: "timeout", timeout: 100 * time.Millisecond, handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, want: "no answer within 100ms"},
		{name: "slow body", timeout: 300 * time.Millisecond, handler: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"responses":[`)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, want: "within 300ms"},
		{name: "connection refused", url: closedURL, want: "refused"},
		{name: "not http", url: "ftp://example.com/hook", want: "http or https"},
		{name: "no URL", url: " ", want: "webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			handler := tt.handler
			if handler == nil {
				handler = answering(200, `{}`)
			}
			h := newHook(t, handler)
			ep := h.endpoint()
			if tt.url != "" {
				ep.URL = tt.url
			}
			if tt.timeout != 0 {
				ep.Timeout = tt.timeout
			}
			a, err := moveo.Call(t.Context(), h.srv.Client(), ep, "s", nil, "hi")
			if err == nil {
				t.Fatalf("no error; answer %#v", a)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error %q holds the token", err)
			}
		})
	}
	t.Cleanup(func() {
		followed.Lock()
		defer followed.Unlock()
		if reached != 0 {
			t.Errorf("a redirect was followed %d times", reached)
		}
	})
}

func TestCallTimeoutIsDeadlineExceeded(t *testing.T) {
	t.Parallel()
	h := newHook(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ep := h.endpoint()
	ep.Timeout = 50 * time.Millisecond
	_, err := moveo.Call(t.Context(), nil, ep, "s", nil, "hi")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one that is context.DeadlineExceeded", err)
	}
}

func TestCallCanceled(t *testing.T) {
	t.Parallel()
	h := newHook(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := moveo.Call(ctx, nil, h.endpoint(), "s", nil, "hi")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want one that is context.Canceled", err)
	}
}

func TestCallKeepsTheCallersClient(t *testing.T) {
	t.Parallel()
	h := newHook(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	client := h.srv.Client()
	if _, err := moveo.Call(t.Context(), client, h.endpoint(), "s", nil, "hi"); err == nil {
		t.Fatal("a redirect was not an error")
	}
	if client.CheckRedirect != nil {
		t.Error("Call changed the caller's client")
	}
}

func TestBotReply(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(200, `{
		"output": {"last_intent": "greeting"},
		"responses": [
			{"type": "text", "texts": ["Hi Ana!"], "options": [{"label": "Orders", "text": "my orders"}]},
			{"type": "handover"}
		]
	}`))
	bot := &moveo.Bot{Endpoint: moveo.Endpoint{URL: h.srv.URL, Token: token}}
	integ := &parley.Integration{ID: "0190a5b2-0000-7000-8000-000000000001"}
	vars := map[string]any{"user": map[string]any{"language": "es", "display_name": "Ana"}}

	reply, err := bot.Reply(t.Context(), &brain.Request{
		Integration: integ,
		SessionID:   "sess-9",
		Context:     vars,
		Message:     &parley.Message{Author: parley.AuthorUser, Text: "hola"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &brain.Reply{
		Responses: []brain.Response{
			{Type: brain.TypeText, Text: "Hi Ana!", Options: []brain.Option{{Label: "Orders", Text: "my orders"}}},
			{Type: brain.TypeHandover},
		},
		Context:  map[string]any{"last_intent": "greeting"},
		Handover: true,
	}
	if !reflect.DeepEqual(reply, want) {
		t.Errorf("reply = %#v\nwant %#v", reply, want)
	}

	// With attachments, and a brain ID of its own.
	bot.Endpoint.BrainID = "my-bot"
	_, err = bot.Reply(t.Context(), &brain.Request{
		Integration: integ,
		SessionID:   "sess-9",
		Context:     vars,
		Message: &parley.Message{Author: parley.AuthorUser, Attachments: []parley.Attachment{
			{Type: "image", MimeType: "image/png", URL: "https://files.example.com/a.png", Filename: "a.png"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}

	got := h.requests()
	wantBodies := []string{
		`{"channel":"custom","session_id":"sess-9","brain_id":"0190a5b2-0000-7000-8000-000000000001","lang":"es",` +
			`"context":{"user":{"display_name":"Ana","language":"es"}},"input":{"text":"hola"}}`,
		`{"channel":"custom","session_id":"sess-9","brain_id":"my-bot","lang":"es",` +
			`"context":{"user":{"display_name":"Ana","language":"es"}},"input":{"text":"",` +
			`"attachments":[{"type":"image","mime_type":"image/png","url":"https://files.example.com/a.png","filename":"a.png"}]}}`,
	}
	if len(got) != len(wantBodies) {
		t.Fatalf("the bot got %d requests, want %d", len(got), len(wantBodies))
	}
	for i, r := range got {
		if string(r.Body) != wantBodies[i] {
			t.Errorf("request %d body:\n got %s\nwant %s", i, r.Body, wantBodies[i])
		}
		if !webhook.Verify(token, r.Body, r.Header.Get(webhook.SignatureHeader)) {
			t.Errorf("request %d: signature does not verify", i)
		}
		if r.Header.Get(webhook.SessionIDHeader) != "sess-9" {
			t.Errorf("request %d: session header %q", i, r.Header.Get(webhook.SessionIDHeader))
		}
	}
	if vars["last_intent"] != nil {
		t.Error("Reply changed the request's context")
	}
}

func TestBotReplyErrors(t *testing.T) {
	t.Parallel()
	h := newHook(t, answering(502, `bad gateway`))
	bot := &moveo.Bot{Endpoint: moveo.Endpoint{URL: h.srv.URL}}
	if _, err := bot.Reply(t.Context(), &brain.Request{SessionID: "s", Message: &parley.Message{Text: "x"}}); err == nil {
		t.Error("a 502 was not an error")
	}
	if _, err := bot.Reply(t.Context(), &brain.Request{SessionID: "s"}); err == nil {
		t.Error("a request without a message was not an error")
	}
}

// The bot is a brain.
var _ brain.Brain = (*moveo.Bot)(nil)
