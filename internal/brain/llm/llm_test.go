package llm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
)

// fakeLLM is a small OpenAI-compatible chat-completions server on loopback: the one fake of these
// tests, since no model runs here. It checks what every call must be (the path, the method, JSON
// with a model and messages), keeps each request, and answers with the script of the test.
type fakeLLM struct {
	*httptest.Server
	t      *testing.T
	answer func(w http.ResponseWriter, r *http.Request, body map[string]any)

	mu    sync.Mutex
	calls []call
}

// call is one request the fake received.
type call struct {
	Auth string
	Body map[string]any
}

func newFake(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body map[string]any)) *fakeLLM {
	t.Helper()
	f := &fakeLLM{t: t, answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLLM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		f.t.Errorf("fake: %s %s, want POST /v1/chat/completions", r.Method, r.URL.Path)
		http.Error(w, `{"error":{"message":"not found"}}`, http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("fake: Content-Type %q", ct)
	}
	data, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		f.t.Errorf("fake: body is not JSON: %v", err)
	}
	if _, ok := body["model"].(string); !ok {
		f.t.Errorf("fake: no model in %s", data)
	}
	if _, ok := body["messages"].([]any); !ok {
		f.t.Errorf("fake: no messages in %s", data)
	}
	f.mu.Lock()
	f.calls = append(f.calls, call{Auth: r.Header.Get("Authorization"), Body: body})
	f.mu.Unlock()
	f.answer(w, r, body)
}

// Calls returns the requests received so far.
func (f *fakeLLM) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// Last returns the only request, failing the test unless there was exactly one.
func (f *fakeLLM) Last() call {
	f.t.Helper()
	c := f.Calls()
	if len(c) != 1 {
		f.t.Fatalf("fake got %d calls, want 1", len(c))
	}
	return c[0]
}

// Config is a configuration pointing at the fake.
func (f *fakeLLM) Config() Config {
	return Config{BaseURL: f.URL + "/v1", Model: "test-model"}
}

// says answers a chat completion whose message is the given JSON object.
func says(message string) func(w http.ResponseWriter, r *http.Request, body map[string]any) {
	return answers(http.StatusOK, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":`+message+`,"finish_reason":"stop"}]}`)
}

// answers answers a status and a body.
func answers(status int, body string) func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func newBrain(t *testing.T, cfg Config) *Brain {
	t.Helper()
	b, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func userMsg(id, text string) *parley.Message {
	return &parley.Message{ID: id, Author: parley.AuthorUser, Text: text}
}

// messagesOf returns the role and content of each message of a request body.
func messagesOf(t *testing.T, body map[string]any) (roles, contents []string) {
	t.Helper()
	for _, m := range body["messages"].([]any) {
		m := m.(map[string]any)
		role, _ := m["role"].(string)
		content, ok := m["content"].(string)
		if !ok {
			t.Errorf("message %v: content is not a string", m)
		}
		roles = append(roles, role)
		contents = append(contents, content)
	}
	return roles, contents
}

func textOf(t *testing.T, r *brain.Reply) string {
	t.Helper()
	if len(r.Responses) != 1 || r.Responses[0].Type != brain.TypeText {
		t.Fatalf("responses = %+v, want one text", r.Responses)
	}
	return r.Responses[0].Text
}

func TestReplyPlainAnswer(t *testing.T) {
	t.Parallel()
	f := newFake(t, says(`{"role":"assistant","content":"  Hello Ada! Your order ships today.\n"}`))
	cfg := f.Config()
	cfg.APIKey = "sk-test-123"
	temp := 0.2
	cfg.Temperature = &temp
	cfg.MaxTokens = 300
	b := newBrain(t, cfg)

	msg := userMsg("m1", "Where is my order?")
	r, err := b.Reply(t.Context(), &brain.Request{
		Message: msg,
		Context: map[string]any{"user": map[string]any{"display_name": "Ada", "email": "ada@example.net"}, "order_id": "A-17"},
		History: func(ctx context.Context, limit int) ([]*parley.Message, error) {
			if limit != DefaultMaxHistory {
				t.Errorf("History limit = %d, want %d", limit, DefaultMaxHistory)
			}
			return []*parley.Message{msg}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(t, r); got != "Hello Ada! Your order ships today." {
		t.Errorf("text = %q", got)
	}
	if r.HandsOver() || r.Resolve || r.Context != nil {
		t.Errorf("reply = %+v, want a plain answer", r)
	}

	c := f.Last()
	if c.Auth != "Bearer sk-test-123" {
		t.Errorf("Authorization = %q", c.Auth)
	}
	if c.Body["model"] != "test-model" || c.Body["temperature"] != 0.2 || c.Body["max_tokens"] != 300.0 {
		t.Errorf("model, temperature, max_tokens = %v, %v, %v", c.Body["model"], c.Body["temperature"], c.Body["max_tokens"])
	}
	roles, contents := messagesOf(t, c.Body)
	if want := []string{"system", "system", "user"}; strings.Join(roles, ",") != strings.Join(want, ",") {
		t.Fatalf("roles = %v, want %v", roles, want)
	}
	if contents[0] != DefaultSystemPrompt {
		t.Errorf("system prompt = %q", contents[0])
	}
	// The context message names the user and carries the context as JSON.
	if !strings.Contains(contents[1], `The user's name is "Ada".`) {
		t.Errorf("context message does not name the user: %q", contents[1])
	}
	js := contents[1][strings.Index(contents[1], "{"):]
	var got map[string]any
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("context JSON %q: %v", js, err)
	}
	if got["order_id"] != "A-17" || got["user"].(map[string]any)["email"] != "ada@example.net" {
		t.Errorf("context = %v", got)
	}
	if contents[2] != "Where is my order?" {
		t.Errorf("user message = %q", contents[2])
	}

	// The one tool: handover_to_human with a reason.
	tools, _ := c.Body["tools"].([]any)
	if len(tools) != 1 {
		t.Fatalf("tools = %v, want one", c.Body["tools"])
	}
	tool := tools[0].(map[string]any)
	fn := tool["function"].(map[string]any)
	params := fn["parameters"].(map[string]any)
	reason := params["properties"].(map[string]any)["reason"].(map[string]any)
	if tool["type"] != "function" || fn["name"] != "handover_to_human" || params["type"] != "object" || reason["type"] != "string" {
		t.Errorf("tool = %v", tool)
	}
}

func TestReplyDefaultsAndOptions(t *testing.T) {
	t.Parallel()
	f := newFake(t, says(`{"role":"assistant","content":[{"type":"text","text":"Hi"},{"type":"text","text":" there"}]}`))
	cfg := f.Config()
	cfg.SystemPrompt = "You sell bikes."
	b := newBrain(t, cfg)
	// No History, no context: the system prompt and the message alone.
	r, err := b.Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hello")})
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(t, r); got != "Hi there" {
		t.Errorf("text = %q", got)
	}
	c := f.Last()
	if c.Auth != "" {
		t.Errorf("Authorization = %q, want none", c.Auth)
	}
	for _, k := range []string{"temperature", "max_tokens"} {
		if _, ok := c.Body[k]; ok {
			t.Errorf("%s sent though not configured", k)
		}
	}
	roles, contents := messagesOf(t, c.Body)
	if strings.Join(roles, ",") != "system,user" || contents[0] != "You sell bikes." || contents[1] != "hello" {
		t.Errorf("messages = %v %q", roles, contents)
	}
}

func TestReplyHistory(t *testing.T) {
	t.Parallel()
	f := newFake(t, says(`{"role":"assistant","content":"Sure."}`))
	cfg := f.Config()
	cfg.MaxHistory = 8
	b := newBrain(t, cfg)

	current := &parley.Message{ID: "m8", Author: parley.AuthorUser, Text: "and this one",
		Attachments: []parley.Attachment{{Type: "image", MimeType: "image/png", URL: "https://files.example/a.png"}}}
	hist := []*parley.Message{
		{ID: "m1", Author: parley.AuthorBrain, Responses: json.RawMessage(`[{"type":"text","text":"Welcome!","options":[{"label":"Orders","text":"orders"},{"label":"Returns","text":"returns"}]},{"type":"image","url":"https://cdn.example/logo.png"}]`)},
		{ID: "m2", Author: parley.AuthorUser, Text: "I want to return a bike"},
		{ID: "m3", Author: parley.AuthorUser, Text: "it is broken"},
		{ID: "m4", Author: parley.AuthorBrain, Responses: json.RawMessage(`[{"type":"handover"}]`)}, // says nothing: left out
		{ID: "m5", Author: parley.AuthorAgent, Agent: &parley.AgentRef{ID: "a1", Name: "Ann"}, Text: "Hi, Ann here."},
		{ID: "m6", Author: parley.AuthorExternal, Text: "I see your order."},
		{ID: "m7", Author: parley.AuthorUser, Attachments: []parley.Attachment{{Type: "file", MimeType: "application/pdf", URL: "https://files.example/r.pdf", Filename: "r.pdf"}}},
		current,
	}
	var gotLimit int
	r, err := b.Reply(t.Context(), &brain.Request{Message: current,
		History: func(ctx context.Context, limit int) ([]*parley.Message, error) {
			gotLimit = limit
			return hist, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	textOf(t, r)
	if gotLimit != 8 {
		t.Errorf("History limit = %d, want max_history 8", gotLimit)
	}
	roles, contents := messagesOf(t, f.Last().Body)
	want := []struct{ role, content string }{
		{"system", DefaultSystemPrompt},
		{"assistant", "Welcome!\n[options: Orders | Returns]\n[image: https://cdn.example/logo.png]"},
		{"user", "I want to return a bike\n\nit is broken"},
		{"assistant", "Hi, Ann here.\n\nI see your order."},
		{"user", "[file: https://files.example/r.pdf]\n\nand this one\n[image: https://files.example/a.png]"},
	}
	if len(roles) != len(want) {
		t.Fatalf("roles = %v, want %d messages", roles, len(want))
	}
	for i, w := range want {
		if roles[i] != w.role || contents[i] != w.content {
			t.Errorf("message %d = %s %q, want %s %q", i, roles[i], contents[i], w.role, w.content)
		}
	}
}

func TestReplyHistoryEdges(t *testing.T) {
	t.Parallel()
	f := newFake(t, says(`{"role":"assistant","content":"ok"}`))
	cfg := f.Config()
	cfg.MaxHistory = 2
	b := newBrain(t, cfg)
	current := userMsg("m9", "now")

	t.Run("current message missing from the history is added, nil skipped", func(t *testing.T) {
		history := func(context.Context, int) ([]*parley.Message, error) {
			return []*parley.Message{nil, {ID: "m1", Author: parley.AuthorBrain, Text: "earlier"}}, nil
		}
		_, contents := call1(t, b, f, &brain.Request{Message: current, History: history})
		if got := contents[len(contents)-1]; got != "now" {
			t.Errorf("last message = %q, want the current one", got)
		}
	})
	t.Run("a history longer than max_history is cut", func(t *testing.T) {
		history := func(context.Context, int) ([]*parley.Message, error) {
			return []*parley.Message{userMsg("m1", "one"), {ID: "m2", Author: parley.AuthorBrain, Text: "two"}, userMsg("m3", "three"), current}, nil
		}
		roles, contents := call1(t, b, f, &brain.Request{Message: current, History: history})
		if strings.Join(roles, ",") != "system,user" || contents[1] != "three\n\nnow" {
			t.Errorf("messages = %v %q", roles, contents)
		}
	})
	t.Run("a history error is an error", func(t *testing.T) {
		history := func(context.Context, int) ([]*parley.Message, error) { return nil, errors.New("db down") }
		n := len(f.Calls())
		_, err := b.Reply(t.Context(), &brain.Request{Message: current, History: history})
		if err == nil || !strings.Contains(err.Error(), "db down") {
			t.Errorf("err = %v", err)
		}
		if len(f.Calls()) != n {
			t.Error("the model was called without its history")
		}
	})
	t.Run("long earlier messages are cut, the current one is not", func(t *testing.T) {
		long := strings.Repeat("é", 10<<10)
		cur := userMsg("m10", long)
		history := func(context.Context, int) ([]*parley.Message, error) {
			return []*parley.Message{{ID: "m1", Author: parley.AuthorBrain, Text: long}, cur}, nil
		}
		_, contents := call1(t, b, f, &brain.Request{Message: cur, History: history})
		if len(contents[1]) > maxEarlierBytes || !strings.HasSuffix(contents[1], "…") {
			t.Errorf("earlier message: %d bytes", len(contents[1]))
		}
		if contents[2] != long {
			t.Errorf("current message: %d bytes, want %d", len(contents[2]), len(long))
		}
	})
}

// call1 makes one Reply and returns the roles and contents of the request it made.
func call1(t *testing.T, b *Brain, f *fakeLLM, req *brain.Request) (roles, contents []string) {
	t.Helper()
	n := len(f.Calls())
	if _, err := b.Reply(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != n+1 {
		t.Fatalf("%d calls, want 1", len(calls)-n)
	}
	return messagesOf(t, calls[n].Body)
}

func TestReplyContextCap(t *testing.T) {
	t.Parallel()
	big := map[string]any{}
	for i := range 200 {
		big[strings.Repeat("k", 3)+string(rune('a'+i%26))+strings.Repeat("x", i)] = strings.Repeat("v", 100)
	}
	ctx := map[string]any{
		"user":    map[string]any{"display_name": "Zoë 👩‍💻", "language": "el", "notes": strings.Repeat("n", 10<<10)},
		"aaa":     big,
		"zzz":     "last",
		"huge":    strings.Repeat("h", 8<<10),
		"numbers": []any{json.Number("12345678901234567890")},
	}
	msg := contextMessage(ctx)
	js := msg[strings.Index(msg, "{") : strings.LastIndex(msg, "}")+1]
	if len(js) > maxContextBytes {
		t.Errorf("context JSON is %d bytes, cap %d", len(js), maxContextBytes)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("context JSON: %v", err)
	}
	user, _ := got["user"].(map[string]any)
	if user["display_name"] != "Zoë 👩‍💻" || user["language"] != "el" || user["notes"] != nil {
		t.Errorf("user = %v, want display_name and language kept, notes dropped", user)
	}
	if got["zzz"] != "last" || got["huge"] != nil {
		t.Errorf("context = %v", got)
	}
	if !strings.HasPrefix(msg, "The user's name is \"Zoë 👩‍💻\".\n") {
		t.Errorf("context message does not start with the user's name: %.80q", msg)
	}
	if !strings.Contains(msg, "left out") {
		t.Error("no note that fields were left out")
	}
	if contextMessage(nil) != "" || contextMessage(map[string]any{}) != "" {
		t.Error("an empty context makes a message")
	}
}

func TestReplyHandoverByTool(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, message, want string
	}{
		{"tool call, no text", `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"handover_to_human","arguments":"{\"reason\":\"refund dispute\"}"}}]}`, DefaultHandoverText},
		{"tool call with text", `{"role":"assistant","content":"I'll get a colleague.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"handover_to_human","arguments":"{}"}}]}`, "I'll get a colleague."},
		{"among other calls", `{"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"lookup","arguments":"{}"}},{"type":"function","function":{"name":"handover_to_human","arguments":"{}"}}]}`, DefaultHandoverText},
		{"legacy function_call", `{"role":"assistant","content":null,"function_call":{"name":"handover_to_human","arguments":"{\"reason\":\"asked\"}"}}`, DefaultHandoverText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, says(tc.message))
			r, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "this is taking forever, my refund is wrong")})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Handover || textOf(t, r) != tc.want {
				t.Errorf("reply = %+v, want a handover saying %q", r, tc.want)
			}
		})
	}
}

func TestReplyHandoverByKeywords(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		t.Error("the model was called for a plain request for a person")
		w.WriteHeader(http.StatusInternalServerError)
	})
	b := newBrain(t, f.Config())
	for _, text := range []string{"I want to talk to a human", "agent please", "Quiero hablar con un agente", "Je veux parler à un conseiller"} {
		history := func(context.Context, int) ([]*parley.Message, error) {
			t.Error("the history was read for a plain request for a person")
			return nil, nil
		}
		r, err := b.Reply(t.Context(), &brain.Request{Message: userMsg("m1", text), History: history})
		if err != nil {
			t.Fatal(err)
		}
		if !r.HandsOver() || textOf(t, r) != DefaultHandoverText {
			t.Errorf("%q: reply = %+v, want a handover", text, r)
		}
	}
}

func TestAsksForHuman(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"human", true},
		{"Agent!", true},
		{"HUMAN PLEASE", true},
		{"can I get an agent", true},
		{"I want to talk to a real person", true},
		{"Let me speak with someone", true},
		{"please connect me to an agent", true},
		{"put me through to a human, this bot is useless", true},
		{"talk to someone", true},
		{"is there a live agent available today?", true},
		{"quiero hablar con un agente", true},
		{"¿Puedo hablar con alguien?", true},
		{"operador", true},
		{"Quero falar com um atendente", true},
		{"je veux parler à quelqu'un", true},
		{"Ich möchte mit einem Menschen sprechen", true},
		{"Mitarbeiter bitte", true},
		{"vorrei parlare con un operatore", true},
		{"Θέλω να μιλήσω με έναν άνθρωπο", true},

		{"", false},
		{"hello", false},
		{"Where is my order?", false},
		{"are you a human?", false},
		{"Is this a real agent or a bot", false},
		{"I don't want to talk to a human", false},
		{"no agent please, just tell me the price", false},
		{"my agent id is 55", false},
		{"My travel agent booked the wrong flight for me", false},
		{"I speak Spanish, can someone help me with my order?", false},
		{"how do I transfer money to someone", false},
		{"the human resources department sent me a form about my benefits", false},
		{strings.Repeat("talk to a human ", 40), false}, // long: the model reads it
	} {
		if got := asksForHuman(tc.text); got != tc.want {
			t.Errorf("asksForHuman(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func TestAPIKeyFromEnv(t *testing.T) { // not parallel: t.Setenv
	f := newFake(t, says(`{"role":"assistant","content":"ok"}`))
	cfg := f.Config()
	cfg.APIKeyEnv = "PARLEY_LLM_TEST_KEY"

	t.Setenv("PARLEY_LLM_TEST_KEY", "sk-from-env")
	b := newBrain(t, cfg)
	t.Setenv("PARLEY_LLM_TEST_KEY", "changed") // read at New, not at each call
	if _, err := b.Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")}); err != nil {
		t.Fatal(err)
	}
	if got := f.Last().Auth; got != "Bearer sk-from-env" {
		t.Errorf("Authorization = %q", got)
	}

	t.Setenv("PARLEY_LLM_TEST_KEY", "")
	if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "PARLEY_LLM_TEST_KEY") {
		t.Errorf("New with the variable unset: err = %v", err)
	}
}

func TestReplyErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // in the error
	}{
		{"401 with an OpenAI error", 401, `{"error":{"message":"Incorrect API key provided: sk-te***23.","type":"invalid_request_error","code":"invalid_api_key"}}`, "answered 401: Incorrect API key provided"},
		{"404 with an Ollama error", 404, `{"error":"model \"llama9\" not found, try pulling it first"}`, `answered 404: model "llama9" not found`},
		{"422 with a FastAPI error", 422, `{"detail":"bad field"}`, "answered 422: bad field"},
		{"500 with an HTML page", 500, "<html>\n<body>\tInternal\nServer Error</body></html>", "answered 500: <html> <body> Internal Server Error</body></html>"},
		{"502 with nothing", 502, "", "answered 502: (empty body)"},
		{"invalid JSON", 200, `{"choices":[`, "invalid JSON"},
		{"not an object", 200, `"hello"`, "invalid JSON"},
		{"no choices", 200, `{"choices":[]}`, "no choices"},
		{"200 with an error", 200, `{"error":{"message":"upstream overloaded"}}`, "upstream overloaded"},
		{"empty content", 200, `{"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"length"}]}`, `no text (finish_reason "length")`},
		{"only another tool", 200, `{"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"lookup"}}]}}]}`, "no text"},
		{"content of another kind", 200, `{"choices":[{"message":{"content":42}}]}`, "neither text nor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, answers(tc.status, tc.body))
			r, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
			if err == nil {
				t.Fatalf("reply = %+v, want an error", r)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}

	t.Run("a long provider message is clipped", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, answers(400, `{"error":{"message":"`+strings.Repeat("x", 5000)+`"}}`))
		_, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
		if err == nil || len(err.Error()) > 400 {
			t.Errorf("err = %d bytes, want a clipped message", len(err.Error()))
		}
	})
	t.Run("the key is never in an error", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, answers(401, `{"error":{"message":"no"}}`))
		cfg := f.Config()
		cfg.APIKey = "sk-secret-value"
		_, err := newBrain(t, cfg).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
		if err == nil || strings.Contains(err.Error(), "sk-secret-value") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, answers(200, "{}"))
		cfg := f.Config()
		f.Close()
		if _, err := newBrain(t, cfg).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")}); err == nil {
			t.Error("want an error")
		}
	})
	t.Run("no message", func(t *testing.T) {
		t.Parallel()
		f := newFake(t, answers(200, "{}"))
		if _, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{}); err == nil {
			t.Error("want an error")
		}
	})
}

func TestReplyTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		select { // slower than the timeout: answers only when the caller gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	cfg := f.Config()
	cfg.TimeoutMS = 50
	b := newBrain(t, cfg)
	_, err := b.Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
	if err == nil || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("err = %v, want a timeout", err)
	}

	// The caller's own context ending is its error, not our timeout.
	cfg.TimeoutMS = 0
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for len(f.Calls()) < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = newBrain(t, cfg).Reply(ctx, &brain.Request{Message: userMsg("m1", "hi")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestReplyOversize(t *testing.T) {
	t.Parallel()
	huge := `{"choices":[{"message":{"role":"assistant","content":"` + strings.Repeat("a", MaxAnswerBytes) + `"}}]}`
	f := newFake(t, answers(200, huge))
	_, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
	if err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("err = %v, want oversize", err)
	}

	// Just under the cap is an answer, cut to what a message may hold.
	fits := `{"choices":[{"message":{"content":"` + strings.Repeat("b", MaxAnswerBytes-100) + `"}}]}`
	f = newFake(t, answers(200, fits))
	r, err := newBrain(t, f.Config()).Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(textOf(t, r)); n > parley.MaxTextBytes {
		t.Errorf("text is %d bytes, want at most %d", n, parley.MaxTextBytes)
	}
}

func TestReplyWithoutTools(t *testing.T) {
	t.Parallel()
	// Ollama's answer for a model without tool calling; vLLM's is alike.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if _, ok := body["tools"]; ok {
			answers(400, `{"error":{"message":"registry.ollama.ai/library/gemma3:4b does not support tools","type":"api_error","param":null,"code":null}}`)(w, r, body)
			return
		}
		says(`{"role":"assistant","content":"Hello without tools"}`)(w, r, body)
	})
	b := newBrain(t, f.Config())
	for range 2 {
		r, err := b.Reply(t.Context(), &brain.Request{Message: userMsg("m1", "hi")})
		if err != nil {
			t.Fatal(err)
		}
		if got := textOf(t, r); got != "Hello without tools" {
			t.Errorf("text = %q", got)
		}
	}
	// The first reply tried with tools and again without; the second went without at once.
	calls := f.Calls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for i, want := range []bool{true, false, false} {
		if _, ok := calls[i].Body["tools"]; ok != want {
			t.Errorf("call %d has tools: %v, want %v", i, ok, want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	ok := Config{BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini"}
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // "" = valid; else in the error
	}{
		{"minimal", func(c *Config) {}, ""},
		{"ollama over http", func(c *Config) { c.BaseURL = "http://127.0.0.1:11434/v1/" }, ""},
		{"everything", func(c *Config) {
			c.APIKey, c.SystemPrompt, c.MaxHistory, c.Temperature, c.MaxTokens, c.TimeoutMS = "sk-abc", "Be kind.", 200, f(2), 4096, 600000
		}, ""},
		{"key from env", func(c *Config) { c.APIKeyEnv = "OPENAI_API_KEY" }, ""},
		{"temperature 0", func(c *Config) { c.Temperature = f(0) }, ""},
		{"no base_url", func(c *Config) { c.BaseURL = "" }, "base_url is required"},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://example.com/v1" }, "http or https"},
		{"no host", func(c *Config) { c.BaseURL = "https:///v1" }, "http or https"},
		{"not a URL", func(c *Config) { c.BaseURL = "api.openai.com" }, "http or https"},
		{"credentials", func(c *Config) { c.BaseURL = "https://u:p@example.com/v1" }, "credentials"},
		{"fragment", func(c *Config) { c.BaseURL = "https://example.com/v1#x" }, "fragment"},
		{"no model", func(c *Config) { c.Model = " " }, "model is required"},
		{"long model", func(c *Config) { c.Model = strings.Repeat("m", 300) }, "model is longer"},
		{"two keys", func(c *Config) { c.APIKey, c.APIKeyEnv = "a", "B" }, "not both"},
		{"key with a newline", func(c *Config) { c.APIKey = "sk\nX-Evil: 1" }, "api_key must not"},
		{"bad env name", func(c *Config) { c.APIKeyEnv = "1KEY" }, "api_key_env must be"},
		{"env name with a dash", func(c *Config) { c.APIKeyEnv = "MY-KEY" }, "api_key_env must be"},
		{"long prompt", func(c *Config) { c.SystemPrompt = strings.Repeat("p", 33<<10) }, "system_prompt"},
		{"negative history", func(c *Config) { c.MaxHistory = -1 }, "max_history"},
		{"huge history", func(c *Config) { c.MaxHistory = 201 }, "max_history"},
		{"negative temperature", func(c *Config) { c.Temperature = f(-0.1) }, "temperature"},
		{"hot temperature", func(c *Config) { c.Temperature = f(2.5) }, "temperature"},
		{"negative max_tokens", func(c *Config) { c.MaxTokens = -1 }, "max_tokens"},
		{"negative timeout", func(c *Config) { c.TimeoutMS = -1 }, "timeout_ms"},
		{"long timeout", func(c *Config) { c.TimeoutMS = 600001 }, "timeout_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tc.edit(&c)
			err := c.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check = %v, want invalid: %q", err, tc.want)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	var c Config
	err := json.Unmarshal([]byte(`{"base_url":"http://127.0.0.1:11434/v1","model":"llama3.2","api_key_env":"K","system_prompt":"p","max_history":5,"temperature":0,"max_tokens":9,"timeout_ms":1000}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "http://127.0.0.1:11434/v1" || c.Model != "llama3.2" || c.APIKeyEnv != "K" || c.SystemPrompt != "p" ||
		c.MaxHistory != 5 || c.Temperature == nil || *c.Temperature != 0 || c.MaxTokens != 9 || c.TimeoutMS != 1000 {
		t.Errorf("config = %+v", c)
	}
}

func TestNewEndpoint(t *testing.T) {
	t.Parallel()
	for base, want := range map[string]string{
		"https://api.openai.com/v1":             "https://api.openai.com/v1/chat/completions",
		"http://127.0.0.1:11434/v1/":            "http://127.0.0.1:11434/v1/chat/completions",
		"https://gw.example/openai?tenant=acme": "https://gw.example/openai/chat/completions?tenant=acme",
	} {
		b, err := New(Config{BaseURL: base, Model: "m"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if b.endpoint != want {
			t.Errorf("endpoint of %s = %s, want %s", base, b.endpoint, want)
		}
	}
}
