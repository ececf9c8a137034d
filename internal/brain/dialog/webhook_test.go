package dialog_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
	"github.com/parleyhq/parley/webhook"
)

// hookRequest is the body of a dialog webhook call (SPEC §6).
type hookRequest struct {
	Channel   string         `json:"channel"`
	SessionID string         `json:"session_id"`
	BrainID   string         `json:"brain_id"`
	Lang      string         `json:"lang"`
	Context   map[string]any `json:"context"`
	Input     struct {
		Text string `json:"text"`
	} `json:"input"`
}

// hookServer is a dialog webhook on loopback that checks every call's signature.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	got  []hookRequest
	bad  int // calls with a wrong signature
	path []string
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /order", func(w http.ResponseWriter, r *http.Request) {
		body, ok := webhook.ReadVerified(r, "s3cret", 1<<20)
		if !ok {
			h.mu.Lock()
			h.bad++
			h.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req hookRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.got = append(h.got, req)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"output":{"order":{"status":"shipped","id":42},"old":null,"sys-unknown_counter":99},
			"responses":[{"type":"text","texts":["Order 42 has shipped."]}]}`))
	})
	mux.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server watches the connection and sees the caller give up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("POST /broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	})
	mux.HandleFunc("POST /handover", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"responses":[{"type":"text","texts":["Connecting you."]},{"type":"handover"}]}`))
	})
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

// loadHooks loads testdata/webhook.yaml pointed at the server, with its token replaced by
// token.
func loadHooks(t *testing.T, h *hookServer, token string) *dialog.Dialog {
	src := strings.ReplaceAll(string(readFile(t, "testdata/webhook.yaml")), "$URL", h.URL)
	src = strings.ReplaceAll(src, "s3cret", token)
	d, err := dialog.Load("webhook.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d.HTTP = h.Client()
	return d
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	h := newHookServer(t)
	d := loadHooks(t, h, "s3cret")
	if got, want := d.Summary(), "6 dialogs, 5 webhooks"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	ctx := `{"user":{"display_name":"Ann","language":"pt"},"old":1}`
	tests := []struct {
		name, say, want string
	}{
		{"output and responses join the reply", "my order #42?", `{"responses":[` + text("Let me look.") + `,` + text("Order 42 has shipped.") + `,` +
			text("Status: shipped") + `],"context":{"asked":true,"order":{"status":"shipped","id":42},"old":null}}`},
		{"timeout: the fallback answers, and can go to another dialog", "slow", texts("too slow", "a human")},
		{"error: the fallback answers", "broken", texts("broken")},
		{"handover", "agent", `{"responses":[` + text("Connecting you.") + `,{"type":"handover"}],"handover":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			converse(t, d, ctx, []turn{{tt.say, false, tt.want}})
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}

	t.Run("no fallback: the reply fails", func(t *testing.T) {
		t.Parallel()
		if _, err := newSession(t, d, ctx).send("nofallback", false); err == nil || !strings.Contains(err.Error(), "500") {
			t.Errorf("got %v, want the webhook's error", err)
		}
	})

	t.Run("the request", func(t *testing.T) {
		s := newSession(t, d, ctx)
		s.say("order 7", false)
		h.mu.Lock()
		defer h.mu.Unlock()
		var req *hookRequest
		for i := range h.got {
			if h.got[i].SessionID == s.id {
				req = &h.got[i]
			}
		}
		if req == nil {
			t.Fatal("the webhook saw no call of the session")
		}
		if req.Channel != "custom" || req.BrainID != "orders" || req.Lang != "pt" || req.Input.Text != "order 7" {
			t.Errorf("request %+v", *req)
		}
		// The context as the steps before the webhook left it.
		want := canonical(t, `{"user":{"display_name":"Ann","language":"pt"},"old":1,"asked":true}`)
		if got := string(parley.EncodeObject(req.Context)); got != want {
			t.Errorf("context sent %s, want %s", got, want)
		}
	})

	t.Run("a canceled request fails rather than falls back", func(t *testing.T) {
		t.Parallel()
		c, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.Reply(c, &brain.Request{SessionID: "s", Context: map[string]any{}, Message: &parley.Message{Text: "broken"}})
		if err == nil {
			t.Error("no error")
		}
	})
}

func TestWebhookWrongToken(t *testing.T) {
	t.Parallel()
	h := newHookServer(t)
	d := loadHooks(t, h, "not-the-secret")
	converse(t, d, "", []turn{{"order", false, `{"responses":[` + text("Let me look.") + `,` + text("Sorry, I can't see orders right now.") + `,` +
		text("Status: unknown") + `],"context":{"asked":true}}`}})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bad != 1 {
		t.Errorf("the webhook refused %d calls, want 1", h.bad)
	}
}
