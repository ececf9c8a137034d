package apptest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/webhook"
)

// Receiver is a webhook endpoint on loopback, as an integrator would run one. It checks every
// signature with the documented algorithm, keeps every delivery (retries included), and answers
// as its Script says (200 by default).
type Receiver struct {
	URL    string
	Secret string
	srv    *http.Server
	t      testing.TB

	mu         sync.Mutex
	deliveries []*Delivery
	changed    chan struct{} // closed and replaced on every delivery
	script     func(d *Delivery) Reply
}

// Delivery is one request the receiver got.
type Delivery struct {
	At          time.Time
	Header      http.Header
	Body        []byte
	SignatureOK bool
	Event       map[string]any // the body decoded
	Attempt     int            // X-Parley-Attempt
}

// Type returns the event type.
func (d *Delivery) Type() string { s, _ := d.Event["event_type"].(string); return s }

// RequestID returns the event's request_id.
func (d *Delivery) RequestID() string { s, _ := d.Event["request_id"].(string); return s }

// SessionID returns the event's session_id.
func (d *Delivery) SessionID() string { s, _ := d.Event["session_id"].(string); return s }

// Reply is how the receiver answers one delivery.
type Reply struct {
	Status     int           // 0 = 200
	Delay      time.Duration // wait before answering (to provoke timeouts)
	RetryAfter string        // a Retry-After header
	Hijack     bool          // close the connection without answering
}

// NewReceiver starts a receiver whose events are signed with secret ("" = unsigned).
func NewReceiver(t testing.TB, secret string) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{URL: "http://" + ln.Addr().String() + "/hook", Secret: secret, t: t, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve)}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// Script sets how the receiver answers from now on.
func (r *Receiver) Script(fn func(d *Delivery) Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = fn
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := &Delivery{At: time.Now(), Header: req.Header.Clone(), Body: body}
	if r.Secret == "" {
		d.SignatureOK = req.Header.Get(webhook.SignatureHeader) == ""
	} else {
		d.SignatureOK = webhook.Verify(r.Secret, body, req.Header.Get(webhook.SignatureHeader))
	}
	json.Unmarshal(body, &d.Event)
	d.Attempt, _ = strconv.Atoi(req.Header.Get(webhook.AttemptHeader))
	// Recorded on arrival, before the script runs: a script may hold the answer back.
	r.mu.Lock()
	script := r.script
	r.deliveries = append(r.deliveries, d)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	reply := Reply{}
	if script != nil {
		reply = script(d)
	}
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-req.Context().Done():
			return
		}
	}
	if reply.Hijack {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	if reply.Status == 0 {
		reply.Status = http.StatusOK
	}
	w.WriteHeader(reply.Status)
}

// Deliveries returns every delivery so far, retries included, in arrival order.
func (r *Receiver) Deliveries() []*Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Delivery(nil), r.deliveries...)
}

// Wait waits until cond holds for the deliveries so far, or fails the test after timeout. cond
// is checked on every delivery and every 50 ms (it may look at more than the deliveries).
func (r *Receiver) Wait(timeout time.Duration, what string, cond func([]*Delivery) bool) []*Delivery {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ds := append([]*Delivery(nil), r.deliveries...)
		changed := r.changed
		r.mu.Unlock()
		if cond(ds) {
			return ds
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("receiver: waited %v for %s; got %d deliveries", timeout, what, len(ds))
			return nil
		}
	}
}

// WaitN waits for at least n deliveries.
func (r *Receiver) WaitN(n int, timeout time.Duration) []*Delivery {
	r.t.Helper()
	return r.Wait(timeout, strconv.Itoa(n)+" deliveries", func(ds []*Delivery) bool { return len(ds) >= n })
}

// WaitType waits for a delivery of the event type and returns the first.
func (r *Receiver) WaitType(eventType string, timeout time.Duration) *Delivery {
	r.t.Helper()
	var found *Delivery
	r.Wait(timeout, "a "+eventType+" event", func(ds []*Delivery) bool {
		for _, d := range ds {
			if d.Type() == eventType {
				found = d
				return true
			}
		}
		return false
	})
	return found
}
