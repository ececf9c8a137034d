package webhook_test

import (
	"fmt"
	"net/http"

	"github.com/parleyhq/parley/webhook"
)

// A receiver checks the signature over the raw body before it trusts the event, and dedupes on
// the event's request_id (X-Moveo-Request-Id), which stays the same on every retry.
func ExampleReadVerified() {
	secret := "my-webhook-secret"
	http.HandleFunc("/parley-events", func(w http.ResponseWriter, r *http.Request) {
		body, ok := webhook.ReadVerified(r, secret, 1<<20)
		if !ok {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		_ = body // parse the event, dedupe on r.Header.Get(webhook.RequestIDHeader)
		w.WriteHeader(http.StatusNoContent)
	})
}

func ExampleSign() {
	// The same value as: printf %s BODY | openssl dgst -sha256 -hmac secret
	fmt.Println(webhook.Sign("secret", []byte(`{"event_type":"session:closed"}`)))
	fmt.Println(webhook.Verify("secret", []byte(`{"event_type":"session:closed"}`), webhook.Sign("secret", []byte(`{"event_type":"session:closed"}`))))
	// Output:
	// ef6d71eec79418699b854f086eb7d1c0689a9635c94c40bf02dae7005c60f1e9
	// true
}
