package expiry_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/clock"
)

func timeout(s int) *int { return &s }

// TestExpiresAfterTimeout: a session expires session_timeout after its last inbound activity,
// session:expired carries the deadline as its time, and the session answers 404 afterwards
// while staying readable.
func TestExpiresAfterTimeout(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		start := time.UnixMilli(1_800_000_000_000)
		clk := clock.NewFake(start)
		srv := apptest.Start(t, apptest.Options{Backend: b, Clock: clk})
		in := srv.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: timeout(60)})
		idle := in.NewSession()
		busy := in.NewSession()

		clk.Advance(30 * time.Second)
		in.Send(busy, "still here") // activity: busy's deadline moves to start+90s
		in.Call("POST", "/sessions/"+idle+"/messages/read", map[string]any{"timestamp": 1}).Expect(t, http.StatusOK)
		in.Call("POST", "/sessions/"+idle+"/conversation/close", nil).Expect(t, http.StatusOK) // not activity

		clk.Advance(29 * time.Second) // start+59s: nothing is due
		time.Sleep(100 * time.Millisecond)
		for _, d := range in.Receiver.Deliveries() {
			if d.Type() == parley.EventSessionExpired {
				t.Fatalf("a session expired before its deadline")
			}
		}
		clk.Advance(2 * time.Second) // start+61s: idle is due
		d := in.Receiver.WaitType(parley.EventSessionExpired, 10*time.Second)
		if d.SessionID() != idle {
			t.Fatalf("the session that expired is %s, want the idle one", d.SessionID())
		}
		if ts := int64(d.Event["timestamp"].(float64)); ts != start.Add(60*time.Second).UnixMilli() {
			t.Errorf("session:expired timestamp %d, want the deadline %d", ts, start.Add(60*time.Second).UnixMilli())
		}
		in.Call("POST", "/sessions/"+idle+"/messages", map[string]any{"input": map[string]any{"text": "hi"}}).
			ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
		got := in.Call("GET", "/sessions/"+idle, nil).Expect(t, http.StatusOK).JSON(t)["session"].(map[string]any)
		if got["status"] != parley.SessionExpired {
			t.Errorf("status %v, want expired", got["status"])
		}
		in.Call("GET", "/sessions/"+busy, nil).Expect(t, http.StatusOK)
		in.Send(busy, "the busy session is still active")
		// The brain answers it first: the fake clock ticks the sweep once, and a sweep skips a
		// session another transaction holds (the brain's reply, say) until its next tick.
		in.Receiver.Wait(10*time.Second, "the brain's replies", func(ds []*apptest.Delivery) bool {
			n := 0
			for _, d := range ds {
				if d.Type() == parley.EventBrainSend && d.SessionID() == busy {
					n++
				}
			}
			return n == 2
		})

		clk.Advance(90 * time.Second)
		in.Receiver.Wait(10*time.Second, "the busy session expires too", func(ds []*apptest.Delivery) bool {
			n := 0
			for _, d := range ds {
				if d.Type() == parley.EventSessionExpired {
					n++
				}
			}
			return n == 2
		})
	})
}

// TestPastDeadlineBeforeTheSweep: a session past its deadline is gone for callers even if
// no sweep has ended it yet.
func TestPastDeadlineBeforeTheSweep(t *testing.T) {
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	srv := apptest.Start(t, apptest.Options{Clock: clk})
	srv.Main.Expiry.Stop() // nobody sweeps
	in := srv.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: timeout(60)})
	sid := in.NewSession()
	clk.Advance(time.Minute)
	in.Call("POST", "/sessions/"+sid+"/handover", nil).ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
	got := in.Call("GET", "/sessions/"+sid, nil).Expect(t, http.StatusOK).JSON(t)["session"].(map[string]any)
	if got["status"] != parley.SessionExpired {
		t.Errorf("status %v, want expired", got["status"])
	}
}

// TestSweepersDoNotDoubleEvents: two processes sweeping one PostgreSQL database at the same
// moment emit exactly one session:expired per session.
func TestSweepersDoNotDoubleEvents(t *testing.T) {
	url := apptest.NewDatabase(t, apptest.Postgres)
	clk := clock.NewFake(time.UnixMilli(1_800_000_000_000))
	a := apptest.Start(t, apptest.Options{DatabaseURL: url, Clock: clk})
	b := apptest.Start(t, apptest.Options{DatabaseURL: url, Clock: clk})
	in := a.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: timeout(60)})
	const n = 300
	var wg sync.WaitGroup
	for range n / 10 {
		wg.Go(func() {
			for range 10 {
				in.NewSession()
			}
		})
	}
	wg.Wait()
	// Both sweep at once, many times over.
	clk.Advance(2 * time.Minute)
	for range 5 {
		wg.Go(func() { a.Main.Expiry.Sweep(t.Context()) })
		wg.Go(func() { b.Main.Expiry.Sweep(t.Context()) })
	}
	wg.Wait()
	ds := in.Receiver.Wait(20*time.Second, "every session expired", func(ds []*apptest.Delivery) bool {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.SessionID()] = true
		}
		return len(seen) == n
	})
	time.Sleep(200 * time.Millisecond)
	events := map[string]bool{}
	for _, d := range in.Receiver.Deliveries() {
		events[d.RequestID()] = true
	}
	if len(events) != n {
		t.Fatalf("%d session:expired events for %d sessions (%d deliveries)", len(events), n, len(ds))
	}
}

// TestExpiresOnTimeInRealTime uses the real clock and the shortest timeout allowed: the event
// must reach the receiver within 2 s of the deadline.
func TestExpiresOnTimeInRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute of real time")
	}
	t.Parallel()
	srv := apptest.Start(t, apptest.Options{})
	in := srv.NewIntegration(t, admin.IntegrationSpec{SessionTimeout: timeout(parley.MinSessionTimeout)})
	sid := in.NewSession()
	got := in.Call("GET", "/sessions/"+sid, nil).JSON(t)["session"].(map[string]any)
	deadline := time.UnixMilli(int64(got["expires_at"].(float64)))
	d := in.Receiver.WaitType(parley.EventSessionExpired, 70*time.Second)
	late := d.At.Sub(deadline)
	t.Logf("session:expired reached the receiver %v after the deadline", late)
	if late < 0 || late > 2*time.Second {
		t.Errorf("session:expired arrived %v after the deadline; it must arrive within 2s", late)
	}
}
