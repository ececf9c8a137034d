package outbox_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/cli"
	"github.com/parleyhq/parley/internal/config"
)

// emitEvents makes each session emit n events, alternately conversation:closed and
// conversation:reopened, all sessions at once.
func emitEvents(t *testing.T, in *apptest.Integration, sessions []string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, sid := range sessions {
		wg.Go(func() {
			for i := range n {
				op := "close"
				if i%2 == 1 {
					op = "reopen"
				}
				in.Call("POST", "/sessions/"+sid+"/conversation/"+op, nil).Expect(t, http.StatusOK)
			}
		})
	}
	wg.Wait()
}

// TestOrderUnderRandomFailures: many sessions at once, a receiver that fails a third of the
// attempts at random (errors, timeouts, closed connections): every event arrives, and no
// session's event is sent while an earlier one is still being retried.
func TestOrderUnderRandomFailures(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: &parley.DeliveryPolicy{
			TimeoutMS: 200, RetryDelaysMS: []int{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}}})
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(1, 2))
		in.Receiver.Script(func(d *apptest.Delivery) apptest.Reply {
			mu.Lock()
			defer mu.Unlock()
			if d.Attempt > 6 { // enough failures: let it through, so no event fails for good
				return apptest.Reply{}
			}
			switch rng.IntN(9) {
			case 0:
				return apptest.Reply{Status: 500}
			case 1:
				return apptest.Reply{Hijack: true}
			case 2:
				return apptest.Reply{Delay: 400 * time.Millisecond} // times out
			}
			return apptest.Reply{}
		})
		sessions := make([]string, 30)
		for i := range sessions {
			sessions[i] = in.NewSession()
		}
		const n = 12
		emitEvents(t, in, sessions, n)
		in.Receiver.Wait(60*time.Second, "every event delivered", func(ds []*apptest.Delivery) bool {
			return countDelivered(t, srv, in.ID) == len(sessions)*n
		})
		// Read the log again: the snapshot Wait checked was taken before the count, and events
		// delivered in between are in the log (each arrives before it is recorded delivered).
		checkOrderByAttempts(t, in.Receiver.Deliveries(), sessions, n)
	})
}

func countDelivered(t *testing.T, srv *apptest.Server, integrationID string) int {
	r := srv.Do(t, "GET", "/admin/v1/deliveries?status=delivered&limit=1000&integration_id="+integrationID, nil,
		"Authorization", "Bearer "+apptest.AdminToken)
	return len(r.JSON(t)["deliveries"].([]any))
}

// checkOrderByAttempts checks the receiver's log: per session, once an attempt of event k
// arrives, no attempt of an earlier event arrives later (the earlier one had succeeded), and
// the events alternate closed/reopened in the order they were made.
func checkOrderByAttempts(t *testing.T, ds []*apptest.Delivery, sessions []string, n int) {
	t.Helper()
	type ev struct{ rid, typ string }
	seq := map[string][]ev{} // session -> events in the order their first attempt arrived
	idx := map[string]int{}  // request_id -> position in its session
	for _, d := range ds {
		sid, rid := d.SessionID(), d.RequestID()
		pos, seen := idx[rid]
		if !seen {
			pos = len(seq[sid])
			idx[rid] = pos
			seq[sid] = append(seq[sid], ev{rid, d.Type()})
		}
		if pos != len(seq[sid])-1 {
			t.Fatalf("session %s: an attempt of event %d arrived after event %d had started", sid, pos, len(seq[sid])-1)
		}
	}
	for _, sid := range sessions {
		if len(seq[sid]) != n {
			t.Fatalf("session %s: %d events arrived, want %d", sid, len(seq[sid]), n)
		}
		for j, e := range seq[sid] {
			want := parley.EventConversationClosed
			if j%2 == 1 {
				want = parley.EventConversationReopened
			}
			if e.typ != want {
				t.Fatalf("session %s: event %d is %s, want %s", sid, j, e.typ, want)
			}
		}
	}
}

// TestReplay: events that failed for good are kept; the operator sends them again, through the
// admin API or the CLI, with the same body and request_id, in their order.
func TestReplay(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		url := apptest.NewDatabase(t, b)
		srv := apptest.Start(t, apptest.Options{DatabaseURL: url})
		in := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: fast})
		in.Receiver.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Status: 410} })
		sid := in.NewSession()
		emitEvents(t, in, []string{sid}, 4)
		other := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: fast})
		other.Receiver.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Status: 410} })
		closeConversation(t, other)

		waitFailed := func(in *apptest.Integration, n int) []map[string]any {
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := srv.Do(t, "GET", "/admin/v1/deliveries?status=failed&integration_id="+in.ID, nil, "Authorization", "Bearer "+apptest.AdminToken)
				ds := r.JSON(t)["deliveries"].([]any)
				if len(ds) == n {
					var out []map[string]any
					for _, d := range ds {
						out = append(out, d.(map[string]any))
					}
					return out
				}
				if time.Now().After(deadline) {
					t.Fatalf("want %d failed events, have %d", n, len(ds))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		failed := waitFailed(in, 4)
		waitFailed(other, 1)
		first := in.Receiver.Deliveries()
		in.Receiver.Script(nil) // the receiver is fixed

		// One event, through the admin API.
		one := failed[len(failed)-1]["event_id"].(string) // the oldest
		r := srv.Do(t, "POST", "/admin/v1/integrations/"+in.ID+"/deliveries/replay", map[string]any{"event_id": one},
			"Authorization", "Bearer "+apptest.AdminToken).Expect(t, http.StatusOK)
		if n := len(r.JSON(t)["replayed"].([]any)); n != 1 {
			t.Fatalf("replayed %d events, want 1", n)
		}
		ds := in.Receiver.WaitN(5, 10*time.Second)
		if ds[4].RequestID() != one || !bytes.Equal(ds[4].Body, first[0].Body) || !ds[4].SignatureOK {
			t.Errorf("the replayed event must be the same signed body with the same request_id")
		}
		srv.Do(t, "POST", "/admin/v1/integrations/"+in.ID+"/deliveries/replay", map[string]any{"event_id": one},
			"Authorization", "Bearer "+apptest.AdminToken).ExpectError(t, http.StatusNotFound, parley.ENotFound)

		// The rest, through the CLI on the same database while the server runs.
		var out, errOut strings.Builder
		code := cli.Run(context.Background(), []string{"deliveries", "replay", "--integration", in.ID, "--database-url", url},
			&cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		if code != 0 {
			t.Fatalf("parley deliveries replay exited %d: %s", code, errOut.String())
		}
		ds = in.Receiver.WaitN(8, 15*time.Second)
		for i, d := range ds[5:] {
			if d.RequestID() != first[i+1].RequestID() || !bytes.Equal(d.Body, first[i+1].Body) {
				t.Errorf("replayed event %d: request_id %s, want %s in the original order", i+1, d.RequestID(), first[i+1].RequestID())
			}
		}
		if n := len(other.Receiver.Deliveries()); n != 1 {
			t.Errorf("another integration's failed event was replayed (%d deliveries)", n)
		}

		var list strings.Builder
		cli.Run(context.Background(), []string{"deliveries", "list", "--integration", in.ID, "--database-url", url, "--json"},
			&cli.Env{Stdout: &list, Stderr: &errOut, Getenv: func(string) string { return "" }})
		if !strings.Contains(list.String(), `"attempt_log"`) || !strings.Contains(list.String(), `"status": 410`) {
			t.Errorf("deliveries list does not show the attempts:\n%s", list.String())
		}
	})
}

// TestSlowEndpointDoesNotHoldOthers: an integration whose endpoint takes seconds to answer
// fills its own slots, never the shared pool, and another integration's events go through.
func TestSlowEndpointDoesNotHoldOthers(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Configure: func(c *config.Config) { c.DeliveryInFlight = 32 }})
	slow := srv.NewIntegration(t, admin.IntegrationSpec{Delivery: &parley.DeliveryPolicy{MaxConcurrency: 16}})
	release := make(chan struct{})
	slow.Receiver.Script(func(*apptest.Delivery) apptest.Reply {
		<-release
		return apptest.Reply{}
	})
	defer close(release)
	fastIn := srv.NewIntegration(t, admin.IntegrationSpec{})
	var slowSessions, fastSessions []string
	for range 100 {
		slowSessions = append(slowSessions, slow.NewSession())
	}
	for range 40 {
		fastSessions = append(fastSessions, fastIn.NewSession())
	}
	emitEvents(t, slow, slowSessions, 1)
	slow.Receiver.WaitN(16, 10*time.Second) // its slots are full
	start := time.Now()
	emitEvents(t, fastIn, fastSessions, 2)
	fastIn.Receiver.WaitN(80, 10*time.Second)
	t.Logf("80 events of a healthy integration delivered in %v while another's endpoint hangs", time.Since(start))
	if n := len(slow.Receiver.Deliveries()); n > 16 {
		t.Errorf("the slow integration has %d requests in flight, its cap is 16", n)
	}
}
