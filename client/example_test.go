package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/parleyhq/parley/client"
)

// A front end opens a session for a visitor, sends what they type, and hands over to a person
// when they ask for one. Replies arrive at the integration's webhook.
func Example() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "INTEGRATION_ID", "API_KEY")
	s, err := c.CreateSession(ctx, client.NewSession{
		ExternalSessionID: "order-12345",
		Context:           map[string]any{"user": map[string]any{"display_name": "John Doe"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Send(ctx, s.SessionID, client.Message{Text: "Where is my order?"}, nil); err != nil {
		log.Fatal(err)
	}
	if err := c.Handover(ctx, s.SessionID); client.IsCode(err, "session-not-found") {
		fmt.Println("the session expired; open a new one")
	}
}
