// Package webhook helps a receiver of parley's webhooks (and of Moveo's) check that an event
// came from the server that knows the integration's webhook secret and was not altered.
//
// A webhook request carries X-Moveo-Signature: the lowercase hex HMAC-SHA256 of the raw body,
// keyed with the webhook secret. Verify it over the exact bytes received, before parsing them.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
)

// Header names of a webhook request.
const (
	SignatureHeader = "X-Moveo-Signature"
	EventHeader     = "X-Moveo-Event"
	RequestIDHeader = "X-Moveo-Request-Id"
	SessionIDHeader = "X-Moveo-Session-Id"
	AttemptHeader   = "X-Parley-Attempt"
)

// Sign returns the signature of body: lowercase hex HMAC-SHA256 keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature is the signature of body under secret. It compares in
// constant time, and accepts upper-case hex too.
func Verify(secret string, body []byte, signature string) bool {
	got, err := hex.DecodeString(signature)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// ReadVerified reads the body of a webhook request (up to limit bytes) and checks its
// signature. It returns the body only if the signature is right.
func ReadVerified(r *http.Request, secret string, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		return nil, false
	}
	if !Verify(secret, body, r.Header.Get(SignatureHeader)) {
		return nil, false
	}
	return body, true
}
