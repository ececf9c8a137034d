package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/webhook"
)

// The deliveries scenario measures webhook delivery (issue 3):
//
//  1. throughput: a backlog of events waits behind a closed gate at the receiver; the gate
//     opens and the clock runs until the receiver has every event;
//  2. latency: events made at a steady rate (open loop); from the call that made each event
//     (its start, and its answer) to the receiver getting it;
//  3. isolation: the throughput of one integration again, while another integration's
//     endpoint takes 5 s to answer each of its events.
//
// Events come from POST conversation/close and conversation/reopen, alternately per session:
// each call makes exactly one event, and the k-th event a session delivers is its k-th call.
type deliveriesConfig struct {
	parleyBin, db, postgresURL string
	events, sessions, clients  int
	rate                       float64
	duration                   time.Duration
	slow                       time.Duration
	asJSON, keep               bool
}

func parseDeliveries(args []string, stderr io.Writer) (*deliveriesConfig, error) {
	c := &deliveriesConfig{}
	fs := flag.NewFlagSet("parley-load deliveries", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.parleyBin, "parley-bin", "", "parley binary (built from this checkout when empty)")
	fs.StringVar(&c.db, "db", "sqlite", "sqlite or postgres")
	fs.StringVar(&c.postgresURL, "postgres-url", postgresDefault(), "PostgreSQL database for --db postgres (loopback only)")
	fs.IntVar(&c.events, "events", 40000, "events in the backlog of the throughput phases")
	fs.IntVar(&c.sessions, "sessions", 2000, "sessions the events are spread over")
	fs.IntVar(&c.clients, "clients", 64, "concurrent API clients making events")
	fs.Float64Var(&c.rate, "rate", 2000, "events per second in the latency phase")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the latency phase")
	fs.DurationVar(&c.slow, "slow", 5*time.Second, "how long the slow endpoint takes to answer")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&c.keep, "keep", false, "keep the database")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	return c, nil
}

// receiver is a webhook endpoint that checks signatures, can hold every request behind a
// gate, and notes when each session's events arrive.
type receiver struct {
	sink  loadtest.Sink
	gate  chan struct{} // closed: requests pass
	delay time.Duration // slow endpoints wait this long first

	entered atomic.Int64 // requests that reached the endpoint, answered or not yet

	mu      sync.Mutex
	seen    map[string]bool        // request IDs received
	arrived map[string][]time.Time // session -> arrival of each new event, in order
	last    time.Time
	count   atomic.Int64 // distinct events
}

func newReceiver(open bool, delay time.Duration) *receiver {
	r := &receiver{gate: make(chan struct{}), delay: delay, seen: map[string]bool{}, arrived: map[string][]time.Time{}}
	r.sink = loadtest.Sink{Secret: webhookSecret, Status: http.StatusOK, Body: []byte(`{}`), Observe: r.observe}
	if open {
		close(r.gate)
	}
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.entered.Add(1)
	<-r.gate
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
	}
	r.sink.ServeHTTP(w, req)
}

func (r *receiver) observe(req *http.Request, _ []byte) {
	now := time.Now()
	id, sid := req.Header.Get(webhook.RequestIDHeader), req.Header.Get(webhook.SessionIDHeader)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[id] {
		return // a repeat: receivers dedupe on request_id
	}
	r.seen[id] = true
	r.arrived[sid] = append(r.arrived[sid], now)
	r.last = now
	r.count.Add(1)
}

// waitFor waits until the receiver has n distinct events and returns when the last arrived.
func (r *receiver) waitFor(ctx context.Context, n int64, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for r.count.Load() < n {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the receiver has %d of %d events after %v", r.count.Load(), n, timeout)
		}
		if !sleep(ctx, 2*time.Millisecond) {
			return time.Time{}, ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// calls makes events and notes when each session's calls started and were answered.
type calls struct {
	client   *http.Client
	base     string
	in       *integration
	sessions []string
	next     []atomic.Int64 // per session: how many calls were made

	mu             sync.Mutex
	started, ended map[string][]time.Time // session -> per call
	made           atomic.Int64           // calls answered 200 (one event each)
}

func newCalls(client *http.Client, base string, in *integration, sessions []string) *calls {
	return &calls{client: client, base: base, in: in, sessions: sessions, next: make([]atomic.Int64, len(sessions)),
		started: map[string][]time.Time{}, ended: map[string][]time.Time{}}
}

// request is the load's request: the next change of session i mod len(sessions).
func (c *calls) request(ctx context.Context, i int64) loadtest.Outcome {
	s := int(i % int64(len(c.sessions)))
	sid := c.sessions[s]
	op := "close"
	if c.next[s].Add(1)%2 == 0 {
		op = "reopen"
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/v1/custom/"+c.in.ID+"/sessions/"+sid+"/conversation/"+op, nil)
	if err != nil {
		return loadtest.Outcome{Err: err}
	}
	req.Header.Set("Authorization", "apikey "+c.in.Key)
	start := time.Now()
	out, _ := loadtest.Do(c.client, req)
	if out.OK() {
		end := time.Now()
		c.made.Add(1)
		c.mu.Lock()
		c.started[sid] = append(c.started[sid], start)
		c.ended[sid] = append(c.ended[sid], end)
		c.mu.Unlock()
	}
	return out
}

// latencies pairs each session's k-th call with its k-th event.
func (c *calls) latencies(r *receiver) (fromStart, fromAnswer []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for sid, starts := range c.started {
		arr := r.arrived[sid]
		for k := range min(len(starts), len(arr)) {
			fromStart = append(fromStart, arr[k].Sub(starts[k]))
			fromAnswer = append(fromAnswer, max(0, arr[k].Sub(c.ended[sid][k])))
		}
	}
	slices.Sort(fromStart)
	slices.Sort(fromAnswer)
	return fromStart, fromAnswer
}

type deliveriesReport struct {
	DB                string  `json:"db"`
	Events            int     `json:"events"`
	Throughput        float64 `json:"throughput_per_s"`
	LatencyRate       float64 `json:"latency_rate_per_s"`
	LatencyEvents     int     `json:"latency_events"`
	FromCallP50Ms     float64 `json:"from_call_p50_ms"`
	FromCallP99Ms     float64 `json:"from_call_p99_ms"`
	FromAnswerP50Ms   float64 `json:"from_answer_p50_ms"`
	FromAnswerP99Ms   float64 `json:"from_answer_p99_ms"`
	IsolatedAlone     float64 `json:"isolation_alone_per_s"`
	IsolatedBeside    float64 `json:"isolation_beside_slow_per_s"`
	IsolationRatio    float64 `json:"isolation_ratio"`
	SlowInFlight      int64   `json:"slow_requests_received"`
	BadSignatures     int64   `json:"bad_signatures"`
	ParleyCPUPerEvent float64 `json:"parley_cpu_us_per_event"`
}

func deliveries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseDeliveries(args, stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "parley-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "parley-load: "+format+"\n", a...) }
	rep, err := runDeliveries(ctx, c, dir, logf)
	if err != nil {
		return err
	}
	if c.asJSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "webhook delivery on %s\n", rep.DB)
	fmt.Fprintf(stdout, "throughput:  %d events drained at %.0f/s (target ≥ 15,000/s on SQLite); parley CPU %.0f µs/event\n",
		rep.Events, rep.Throughput, rep.ParleyCPUPerEvent)
	fmt.Fprintf(stdout, "latency:     %d events at %.0f/s; from the call's start p50 %.2f ms p99 %.2f ms; from its answer p50 %.2f ms p99 %.2f ms (target p50 < 2 ms, p99 < 20 ms)\n",
		rep.LatencyEvents, rep.LatencyRate, rep.FromCallP50Ms, rep.FromCallP99Ms, rep.FromAnswerP50Ms, rep.FromAnswerP99Ms)
	fmt.Fprintf(stdout, "isolation:   %.0f/s alone (mean of a drain before and after), %.0f/s beside an endpoint answering in %v (%d of its requests in flight): %.1f%% (target ≥ 90%%)\n",
		rep.IsolatedAlone, rep.IsolatedBeside, c.slow, rep.SlowInFlight, 100*rep.IsolationRatio)
	fmt.Fprintf(stdout, "signatures:  %d bad\n", rep.BadSignatures)
	return nil
}

func runDeliveries(ctx context.Context, c *deliveriesConfig, dir string, logf func(string, ...any)) (*deliveriesReport, error) {
	bin := c.parleyBin
	if bin == "" {
		logf("building parley")
		var err error
		if bin, err = buildParley(ctx, dir); err != nil {
			return nil, err
		}
	}
	db, err := newDatabase(ctx, c.db, c.postgresURL, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !c.keep {
			db.cleanup()
		}
	}()
	srv, err := startParley(bin, db.URL, adminToken, filepath.Join(dir, "parley.log"), false)
	if err != nil {
		return nil, err
	}
	defer srv.proc.Kill()
	client := loadtest.NewClient(c.clients, 30*time.Second)
	rep := &deliveriesReport{DB: db.Label, Events: c.events}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()

	// setup makes an integration whose webhooks go to r, and its sessions.
	setup := func(r *receiver, concurrency int) (*calls, error) {
		url, _, err := loadtest.Serve(sctx, "127.0.0.1:0", r)
		if err != nil {
			return nil, err
		}
		in, err := createIntegration(ctx, client, srv.URL, adminToken, url, webhookSecret,
			map[string]any{"delivery": map[string]any{"max_concurrency": concurrency}})
		if err != nil {
			return nil, err
		}
		sessions, _, err := createSessions(ctx, client, srv.URL, in, c.sessions, c.clients)
		if err != nil {
			return nil, err
		}
		return newCalls(client, srv.URL, in, sessions), nil
	}
	// drain makes a backlog of events behind r's closed gate, opens it, and returns the rate
	// at which the receiver got them.
	drain := func(r *receiver, cs *calls) (float64, time.Duration, error) {
		load := loadtest.Load{Clients: c.clients, Requests: int64(c.events)}
		if _, err := load.Run(ctx, cs.request); err != nil {
			return 0, 0, err
		}
		cpu0, _ := srv.proc.CPU()
		start := time.Now()
		close(r.gate)
		last, err := r.waitFor(ctx, cs.made.Load(), 5*time.Minute)
		if err != nil {
			return 0, 0, err
		}
		cpu1, _ := srv.proc.CPU()
		return float64(cs.made.Load()) / last.Sub(start).Seconds(), cpu1 - cpu0, nil
	}

	// 1. Throughput.
	logf("throughput: %d events behind a closed gate, then drained", c.events)
	fast := newReceiver(false, 0)
	cs, err := setup(fast, 512)
	if err != nil {
		return nil, err
	}
	var cpu time.Duration
	if rep.Throughput, cpu, err = drain(fast, cs); err != nil {
		return nil, err
	}
	rep.ParleyCPUPerEvent = float64(cpu.Microseconds()) / float64(cs.made.Load())
	logf("  %.0f events/s", rep.Throughput)

	// 2. Latency at a steady rate.
	logf("latency: %.0f events/s for %v", c.rate, c.duration)
	steady := newReceiver(true, 0)
	if cs, err = setup(steady, 64); err != nil {
		return nil, err
	}
	load := loadtest.Load{Clients: c.clients, Rate: c.rate, Duration: c.duration, Warmup: time.Second}
	if _, err := load.Run(ctx, cs.request); err != nil {
		return nil, err
	}
	if _, err := steady.waitFor(ctx, cs.made.Load(), time.Minute); err != nil {
		return nil, err
	}
	fromStart, fromAnswer := cs.latencies(steady)
	rep.LatencyRate, rep.LatencyEvents = c.rate, len(fromStart)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rep.FromCallP50Ms, rep.FromCallP99Ms = ms(loadtest.Percentile(fromStart, 50)), ms(loadtest.Percentile(fromStart, 99))
	rep.FromAnswerP50Ms, rep.FromAnswerP99Ms = ms(loadtest.Percentile(fromAnswer, 50)), ms(loadtest.Percentile(fromAnswer, 99))
	logf("  from the call p50 %.2f ms p99 %.2f ms", rep.FromCallP50Ms, rep.FromCallP99Ms)

	// 3. Isolation: the same drain beside an endpoint that takes seconds, against the mean of
	// a drain alone before and one after (the database grows from drain to drain).
	logf("isolation: drains alone, beside an endpoint answering in %v, and alone again", c.slow)
	alone := newReceiver(false, 0)
	if cs, err = setup(alone, 512); err != nil {
		return nil, err
	}
	before, _, err := drain(alone, cs)
	if err != nil {
		return nil, err
	}
	slow := newReceiver(true, c.slow)
	slowCalls, err := setup(slow, 64)
	if err != nil {
		return nil, err
	}
	if _, err := (loadtest.Load{Clients: c.clients, Requests: int64(c.sessions)}).Run(ctx, slowCalls.request); err != nil {
		return nil, err
	}
	beside := newReceiver(false, 0)
	if cs, err = setup(beside, 512); err != nil {
		return nil, err
	}
	if rep.IsolatedBeside, _, err = drain(beside, cs); err != nil {
		return nil, err
	}
	rep.SlowInFlight = slow.entered.Load() - slow.sink.Stats().Requests
	after := newReceiver(false, 0)
	if cs, err = setup(after, 512); err != nil {
		return nil, err
	}
	again, _, err := drain(after, cs)
	if err != nil {
		return nil, err
	}
	rep.IsolatedAlone = (before + again) / 2
	rep.IsolationRatio = rep.IsolatedBeside / rep.IsolatedAlone
	logf("  alone %.0f/s and %.0f/s, beside the slow endpoint %.0f/s", before, again, rep.IsolatedBeside)
	for _, r := range []*receiver{fast, steady, alone, slow, beside, after} {
		rep.BadSignatures += r.sink.Stats().BadSignatures
	}
	return rep, nil
}
