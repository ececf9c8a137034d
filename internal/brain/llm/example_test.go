package llm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/llm"
)

// An integration's brain configuration names the endpoint and the model; Reply asks the model.
// Here a stand-in server plays the endpoint (Ollama's would be http://127.0.0.1:11434/v1).
func ExampleNew() {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"Hello Ada! How can I help?"}}]}`)
	}))
	defer endpoint.Close()

	var cfg llm.Config
	conf := `{"base_url": "` + endpoint.URL + `/v1", "model": "llama3.2", "max_history": 10}`
	if err := json.Unmarshal([]byte(conf), &cfg); err != nil {
		panic(err)
	}
	b, err := llm.New(cfg, nil)
	if err != nil {
		panic(err)
	}
	reply, err := b.Reply(context.Background(), &brain.Request{
		Context: map[string]any{"user": map[string]any{"display_name": "Ada"}},
		Message: &parley.Message{ID: "m1", Author: parley.AuthorUser, Text: "Hi!"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(reply.Responses[0].Text, reply.Handover)

	// A plain request for a person hands over at once, without asking the model.
	reply, _ = b.Reply(context.Background(), &brain.Request{
		Message: &parley.Message{ID: "m2", Author: parley.AuthorUser, Text: "Can I talk to a real person?"},
	})
	fmt.Println(reply.Responses[0].Text, reply.Handover)
	// Output:
	// Hello Ada! How can I help? false
	// Let me connect you with a member of our team. true
}
