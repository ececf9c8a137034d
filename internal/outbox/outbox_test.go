package outbox_test

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/store"
)

// fast is a retry schedule short enough for tests: five retries 10 ms apart.
var fast = &parley.DeliveryPolicy{RetryDelaysMS: []int{10, 10, 10, 10, 10}}

// closeConversation makes the integration emit one conversation:closed event and returns
// the session.
func closeConversation(t *testing.T, in *apptest.Integration) string {
	t.Helper()
	sid := in.NewSession()
	in.Call("POST", "/sessions/"+sid+"/conversation/close", nil).Expect(t, http.StatusOK)
	return sid
}

// deliveries returns the operator's view of an integration's outbox, through the admin API.
func deliveries(t *testing.T, srv *apptest.Server, integrationID string) []map[string]any {
	t.Helper()
	r := srv.Do(t, "GET", "/admin/v1/deliveries?integration_id="+integrationID, nil, "Authorization", "Bearer "+apptest.AdminToken)
	r.Expect(t, http.StatusOK)
	var out []map[string]any
	for _, d := range r.JSON(t)["deliveries"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

// waitState waits until the integration's only event reaches state and returns it.
func waitState(t *testing.T, srv *apptest.Server, integrationID, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds := deliveries(t, srv, integrationID)
		if len(ds) == 1 && ds[0]["status"] == state {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("event did not become %s: %v", state, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutcomes(t *testing.T) {
	type step = apptest.Reply
	cases := []struct {
		name     string
		replies  []step // answers to successive attempts; the last repeats
		policy   *parley.DeliveryPolicy
		state    string
		attempts int
		errText  string // in the last attempt's error
	}{
		{"2xx is delivered", []step{{Status: 204}}, fast, parley.DeliveryDone, 1, ""},
		{"5xx is retried", []step{{Status: 500}, {Status: 503}, {Status: 200}}, fast, parley.DeliveryDone, 3, ""},
		{"408 is retried", []step{{Status: 408}, {Status: 200}}, fast, parley.DeliveryDone, 2, ""},
		{"429 is retried", []step{{Status: 429}, {Status: 200}}, fast, parley.DeliveryDone, 2, ""},
		{"retries run out", []step{{Status: 500}}, fast, parley.DeliveryFailed, 6, "HTTP 500"},
		{"other 4xx fails at once", []step{{Status: 410}}, fast, parley.DeliveryFailed, 1, "not retried"},
		{"400 fails at once", []step{{Status: 400}}, fast, parley.DeliveryFailed, 1, "not retried"},
		{"3xx fails at once", []step{{Status: 302}}, fast, parley.DeliveryFailed, 1, "not retried"},
		{"timeout is retried", []step{{Delay: time.Second}, {Status: 200}},
			&parley.DeliveryPolicy{TimeoutMS: 100, RetryDelaysMS: []int{10}}, parley.DeliveryDone, 2, ""},
		{"timeouts run out", []step{{Delay: time.Second}},
			&parley.DeliveryPolicy{TimeoutMS: 100, RetryDelaysMS: []int{10}}, parley.DeliveryFailed, 2, "timed out"},
		{"closed connection is retried", []step{{Hijack: true}, {Status: 200}}, fast, parley.DeliveryDone, 2, ""},
		{"no retries configured", []step{{Status: 500}}, &parley.DeliveryPolicy{RetryDelaysMS: []int{}}, parley.DeliveryFailed, 1, "HTTP 500"},
	}
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				in := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: tc.policy})
				in.Receiver.Script(func(d *apptest.Delivery) apptest.Reply {
					return tc.replies[min(d.Attempt, len(tc.replies))-1]
				})
				sid := closeConversation(t, in)
				ev := waitState(t, srv, in.ID, tc.state)
				if got := int(ev["attempts"].(float64)); got != tc.attempts {
					t.Errorf("attempts = %d, want %d", got, tc.attempts)
				}
				log := ev["attempt_log"].([]any)
				if len(log) != tc.attempts {
					t.Fatalf("attempt log has %d entries, want %d", len(log), tc.attempts)
				}
				if last := log[len(log)-1].(map[string]any); !strings.Contains(str(last["error"]), tc.errText) {
					t.Errorf("last attempt %v, want error containing %q", last, tc.errText)
				}
				ds := in.Receiver.WaitN(tc.attempts, 5*time.Second)
				for i, d := range ds {
					if d.Attempt != i+1 || !d.SignatureOK || d.SessionID() != sid || d.RequestID() != ev["event_id"] ||
						!bytes.Equal(d.Body, ds[0].Body) {
						t.Errorf("attempt %d: X-Parley-Attempt %d, signature ok %v, request_id %s: every attempt must carry the same signed body",
							i+1, d.Attempt, d.SignatureOK, d.RequestID())
					}
				}
				time.Sleep(50 * time.Millisecond)
				if n := len(in.Receiver.Deliveries()); n != tc.attempts {
					t.Errorf("receiver got %d requests, want %d", n, tc.attempts)
				}
			})
		}
	})
}

func str(v any) string { s, _ := v.(string); return s }

// A redirect is an answer, not an instruction: its target never hears of the event.
func TestRedirectsAreNotFollowed(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	target := apptest.NewReceiver(t, "")
	in := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: fast})
	in.Receiver.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Status: 307} })
	// A 307 with a Location would be followed by a default Go client; the receiver's
	// handler sets none, so point it at the target explicitly.
	redirector := &http.Server{Handler: http.RedirectHandler(target.URL, http.StatusTemporaryRedirect)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go redirector.Serve(ln)
	t.Cleanup(func() { redirector.Close() })
	url := "http://" + ln.Addr().String() + "/hook"
	if _, err := srv.Admin.UpdateIntegration(t.Context(), in.ID, admin.IntegrationSpec{WebhookURL: &url}); err != nil {
		t.Fatal(err)
	}
	closeConversation(t, in)
	ev := waitState(t, srv, in.ID, parley.DeliveryFailed)
	if ev["attempts"].(float64) != 1 {
		t.Errorf("attempts = %v, want 1", ev["attempts"])
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(target.Deliveries()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

func TestUnsignedWithoutSecret(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	rcv := apptest.NewReceiver(t, "")
	in := srv.NewIntegration(t, admin.IntegrationSpec{WebhookURL: &rcv.URL})
	closeConversation(t, in)
	d := rcv.WaitN(1, 10*time.Second)[0]
	if _, ok := d.Header["X-Moveo-Signature"]; ok || !d.SignatureOK {
		t.Errorf("an integration without a secret must send no signature header; got %q", d.Header.Get("X-Moveo-Signature"))
	}
}

// TestRetrySchedule follows the default schedule on a fake clock: retries 250 ms, 500 ms,
// 1 s, 2 s and 2 s apart, and Retry-After honoured up to its cap.
func TestRetrySchedule(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		start := time.UnixMilli(1_800_000_000_000)
		clk := clock.NewFake(start)
		srv := apptest.Start(t, apptest.Options{Backend: b, Clock: clk})

		t.Run("default schedule", func(t *testing.T) {
			in := srv.NewIntegration(t, admin.IntegrationSpec{})
			in.Receiver.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Status: 500} })
			closeConversation(t, in)
			for i, wait := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second} {
				clk.Advance(wait)
				in.Receiver.WaitN(i+1, 10*time.Second)
				// The attempt is recorded before the next wait begins.
				waitAttempts(t, srv, in.ID, i+1)
			}
			ev := waitState(t, srv, in.ID, parley.DeliveryFailed)
			var at []int64
			for _, a := range ev["attempt_log"].([]any) {
				at = append(at, int64(a.(map[string]any)["at"].(float64))-start.UnixMilli())
			}
			want := []int64{0, 250, 750, 1750, 3750, 5750}
			if len(at) != len(want) {
				t.Fatalf("attempts at %v ms, want %v", at, want)
			}
			for i := range want {
				if at[i] != want[i] {
					t.Fatalf("attempts at %v ms, want %v", at, want)
				}
			}
		})
	})
}

func TestRetryAfter(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	srv := apptest.Start(t, apptest.Options{Clock: clk})
	in := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: &parley.DeliveryPolicy{MaxRetryAfterMS: 20_000}})
	replies := []apptest.Reply{{Status: 429, RetryAfter: "7"}, {Status: 503, RetryAfter: "3600"}, {Status: 200}}
	in.Receiver.Script(func(d *apptest.Delivery) apptest.Reply { return replies[d.Attempt-1] })
	closeConversation(t, in)
	in.Receiver.WaitN(1, 10*time.Second)
	waitAttempts(t, srv, in.ID, 1)
	clk.Advance(6 * time.Second) // before the 7 s the receiver asked for: nothing
	time.Sleep(100 * time.Millisecond)
	if n := len(in.Receiver.Deliveries()); n != 1 {
		t.Fatalf("retried after 6 s although Retry-After said 7: %d attempts", n)
	}
	clk.Advance(time.Second)
	in.Receiver.WaitN(2, 10*time.Second)
	waitAttempts(t, srv, in.ID, 2)
	clk.Advance(20 * time.Second) // the cap, not the hour asked for
	in.Receiver.WaitN(3, 10*time.Second)
	waitState(t, srv, in.ID, parley.DeliveryDone)
}

func waitAttempts(t *testing.T, srv *apptest.Server, integrationID string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := deliveries(t, srv, integrationID)
		if len(ds) == 1 && int(ds[0]["attempts"].(float64)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempt %d was not recorded: %v", n, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsOfAStoppedServerAreDeliveredAfterRestart: events committed while nobody can
// deliver them (the receiver is down and retries run out, or the server stops) are kept.
func TestDeliveredAfterRestart(t *testing.T) {
	url := apptest.NewDatabase(t, apptest.SQLite)
	srv := apptest.Start(t, apptest.Options{DatabaseURL: url})
	rcv := apptest.NewReceiver(t, "s")
	rcv.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Delay: 300 * time.Millisecond} })
	in := srv.NewIntegration(t, admin.IntegrationSpec{WebhookURL: &rcv.URL, WebhookSecret: &rcv.Secret})
	var sids []string
	for range 20 {
		sids = append(sids, closeConversation(t, in))
	}
	if err := srv.Main.Close(); err != nil {
		t.Fatal(err)
	}
	got := len(rcv.Deliveries())
	rcv.Script(nil)
	srv2 := apptest.Start(t, apptest.Options{DatabaseURL: url})
	ds := rcv.WaitN(20, 15*time.Second)
	seen := map[string]int{}
	for _, d := range ds {
		seen[d.SessionID()]++
	}
	for _, sid := range sids {
		if seen[sid] == 0 {
			t.Errorf("session %s: its event was never delivered", sid)
		}
	}
	// Graceful shutdown finished what was in flight: nothing it delivered is sent again.
	var pending int
	srv2.Main.DB.View(t.Context(), func(tx store.ReadTx) error {
		es, err := tx.Events(store.EventFilter{IntegrationID: in.ID, State: parley.DeliveryDone, Limit: 100})
		pending = 20 - len(es)
		return err
	})
	t.Logf("%d events were in flight or delivered before the shutdown; %d deliveries in all; %d not yet recorded", got, len(ds), pending)
	if len(ds) != 20 {
		t.Errorf("receiver got %d deliveries for 20 events: a graceful shutdown must not repeat what it delivered", len(ds))
	}
}
