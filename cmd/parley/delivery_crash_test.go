package main

import (
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/testenv"
)

// opsPerSession is how many state changes each session makes: it alternates
// conversation/close and conversation/reopen, so each change is one event and a request
// repeated after a crash (not knowing whether it committed) is a no-op, not a new event. Every
// session must therefore end with exactly this many events, alternating, whatever died when.
const opsPerSession = 20

// drive makes every session go through its changes, each request sent to a server pick()s,
// retrying on transport errors until one answers. progress is told the number of changes
// made so far after each one.
func drive(t *testing.T, pick func() *server, in integration, sessions []string, progress func(n int64)) {
	var wg sync.WaitGroup
	var done atomic.Int64
	for _, sid := range sessions {
		wg.Go(func() {
			for i := range opsPerSession {
				op := "close"
				if i%2 == 1 {
					op = "reopen"
				}
				for attempt := 0; ; attempt++ {
					status, b, err := pick().do("POST", "/v1/custom/"+in.id+"/sessions/"+sid+"/conversation/"+op, in.auth, nil)
					if err == nil && status == http.StatusOK {
						progress(done.Add(1))
						break
					}
					if err == nil {
						t.Errorf("%s: %d %s", op, status, b)
						return
					}
					if attempt > 400 {
						t.Errorf("%s: no server answered: %v", op, err)
						return
					}
					time.Sleep(25 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

// checkDelivered waits until every session's events have reached the receiver and checks they
// arrived in order: no event of a session before the earlier ones were acknowledged.
func checkDelivered(t *testing.T, rcv *apptest.Receiver, sessions []string) {
	t.Helper()
	ds := rcv.Wait(90*time.Second, "every event of every session", func(ds []*apptest.Delivery) bool {
		per := map[string]map[string]bool{}
		for _, d := range ds {
			if per[d.SessionID()] == nil {
				per[d.SessionID()] = map[string]bool{}
			}
			per[d.SessionID()][d.RequestID()] = true
		}
		for _, sid := range sessions {
			if len(per[sid]) < opsPerSession {
				return false
			}
		}
		return true
	})
	type event struct{ rid, typ string }
	order := map[string][]event{}
	pos := map[string]int{}
	repeats := 0
	for _, d := range ds {
		if !d.SignatureOK {
			t.Fatalf("a delivery's signature does not verify")
		}
		sid, rid := d.SessionID(), d.RequestID()
		p, seen := pos[rid]
		if !seen {
			p = len(order[sid])
			pos[rid] = p
			order[sid] = append(order[sid], event{rid, d.Type()})
		} else {
			repeats++
		}
		if p != len(order[sid])-1 {
			t.Fatalf("session %s: event %d was sent again after event %d had started", sid, p, len(order[sid])-1)
		}
	}
	for _, sid := range sessions {
		evs := order[sid]
		if len(evs) != opsPerSession {
			t.Fatalf("session %s: %d events, want %d", sid, len(evs), opsPerSession)
		}
		for i, e := range evs {
			want := parley.EventConversationClosed
			if i%2 == 1 {
				want = parley.EventConversationReopened
			}
			if e.typ != want {
				t.Fatalf("session %s: event %d is %s, want %s", sid, i, e.typ, want)
			}
		}
	}
	t.Logf("%d events of %d sessions delivered in order; %d deliveries repeated (at least once)", len(pos), len(sessions), repeats)
}

// TestDeliveryAfterKill9: kill -9 a SQLite server while it delivers; after a restart every
// event committed before the kill is delivered, each session's in order.
func TestDeliveryAfterKill9(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	srv := serve(t, db)
	rcv := apptest.NewReceiver(t, "kill9-secret")
	// A slow receiver keeps deliveries in flight when the kill comes.
	rcv.Script(func(*apptest.Delivery) apptest.Reply { return apptest.Reply{Delay: 2 * time.Millisecond} })
	in := srv.newIntegrationHook(t, rcv)
	sessions := make([]string, 30)
	for i := range sessions {
		sessions[i] = srv.newSession(t, in)
	}
	var cur atomic.Pointer[server]
	cur.Store(srv)
	var once sync.Once
	drive(t, cur.Load, in, sessions, func(n int64) {
		if n < int64(len(sessions)*opsPerSession*4/10) {
			return
		}
		once.Do(func() {
			srv.Kill9()
			t.Logf("killed with -9 after %d changes and %d deliveries", n, len(rcv.Deliveries()))
			cur.Store(serve(t, db))
		})
	})
	checkDelivered(t, rcv, sessions)
}

// TestThreeProcessesOneKilled: three parley processes on one PostgreSQL database take requests
// at random; one is killed with -9 half-way. The other two take its partitions over once its
// leases lapse, and every event is delivered, each session's in order.
func TestThreeProcessesOneKilled(t *testing.T) {
	url := testenv.PostgresSchema(t)
	procs := make([]*server, 3)
	for i := range procs {
		procs[i] = serveURL(t, url)
	}
	rcv := apptest.NewReceiver(t, "three-secret")
	in := procs[0].newIntegrationHook(t, rcv)
	sessions := make([]string, 40)
	for i := range sessions {
		sessions[i] = procs[i%3].newSession(t, in)
	}
	pick, killed := picker(procs, 3)
	var killedAt time.Time
	var once sync.Once
	kill := func(n int64) {
		if n < int64(len(sessions)*opsPerSession/2) {
			return
		}
		once.Do(func() {
			killed.Store(true)
			procs[2].Kill9()
			killedAt = time.Now()
			t.Logf("process 3 killed with -9 after %d changes and %d deliveries", n, len(rcv.Deliveries()))
		})
	}
	drive(t, pick, in, sessions, kill)
	checkDelivered(t, rcv, sessions)
	if killed.Load() {
		t.Logf("all delivered %v after the kill (lease TTL 5 s)", time.Since(killedAt).Round(time.Millisecond))
	}
}

// serveURL starts parley on any database URL.
func serveURL(t *testing.T, url string) *server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real parley processes; skipped with -short")
	}
	p := testenv.StartProcess(t, testenv.BuildParley(t),
		[]string{"serve", "--database-url", url, "--log-level", "warn", "--shutdown-timeout", "20s", "--database-max-conns", "8"},
		"PARLEY_ADMIN_TOKEN="+adminToken)
	return &server{Process: p, client: &http.Client{Timeout: 10 * time.Second}}
}

// newIntegrationHook creates an integration whose webhooks go to rcv.
func (s *server) newIntegrationHook(t *testing.T, rcv *apptest.Receiver) integration {
	t.Helper()
	in := s.must(t, http.StatusCreated, "POST", "/admin/v1/integrations", "Bearer "+adminToken,
		map[string]any{"webhook_url": rcv.URL, "webhook_secret": rcv.Secret,
			"delivery": map[string]any{"retry_delays_ms": []int{20, 20, 20, 20, 20, 20, 20, 20, 20, 20}}})
	return integration{id: in["id"].(string), auth: "apikey " + in["api_key"].(string)}
}

// picker returns a function choosing one of procs at random (from seed), leaving out the last
// once killed is set: requests go to any process of the deployment still alive.
func picker(procs []*server, seed uint64) (pick func() *server, killed *atomic.Bool) {
	killed = new(atomic.Bool)
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	return func() *server {
		mu.Lock()
		defer mu.Unlock()
		if killed.Load() {
			return procs[rng.IntN(len(procs)-1)]
		}
		return procs[rng.IntN(len(procs))]
	}, killed
}
