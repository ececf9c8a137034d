package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Load is how requests are sent.
//
// Closed loop (Rate 0): each of Clients clients sends a request, waits for its response and
// sends the next, on its own keep-alive connection. It measures throughput: the server is as
// busy as it can be, and latency is whatever queueing that causes.
//
// Open loop (Rate > 0): requests are due at a fixed rate whatever the server does, and a
// request's latency is measured from when it was due, not from when a client got round to
// sending it. A server that stalls is charged for every request it held up (no coordinated
// omission), so the percentiles are those a steady stream of users would see. Clients bounds
// how many requests are in flight; when all are busy, due requests wait and their wait counts.
type Load struct {
	Clients  int
	Rate     float64       // requests per second; 0 is a closed loop
	Duration time.Duration // how long the measured part lasts
	Warmup   time.Duration // sent before the measured part and not recorded
	// Grace bounds how long an open loop that fell behind goes on after Duration; requests
	// still not sent then are counted as "unsent". 0 means 5 s.
	Grace time.Duration
	// Requests, when positive, ends a closed loop after that many requests (warm-up
	// included), even before Duration; Duration may then be 0 for no time limit.
	Requests int64
	// ServerCPU, when set, returns the CPU time the server has used so far; the run reports
	// how much of it the measured window took.
	ServerCPU func() (time.Duration, bool)
}

// Request sends request number i (counting from 0 across all clients) and reports how it
// ended. It runs on many goroutines at once.
type Request func(ctx context.Context, i int64) Outcome

// Run is the result of a Load.
type Run struct {
	Load       Load
	Recorder   *Recorder     // the measured requests
	Elapsed    time.Duration // from the start of the measured window to the last response
	Unsent     int           // open loop: due requests never sent
	Throughput float64       // measured requests completed per second of Elapsed
	// CPU time used during the measured window by the server and by this process (the
	// clients), when known: per request, they are steadier than throughput on a busy machine.
	ServerCPU, ClientCPU time.Duration
}

// OK returns how many measured requests got a 2xx answer.
func (r *Run) OK() int {
	n := 0
	for k, c := range r.Recorder.outcomes {
		if len(k) == 3 && k[0] == '2' {
			n += c
		}
	}
	return n
}

// Run drives do until the load's duration is over, and returns what it measured. If ctx ends
// first, it returns what it measured so far with ctx's error.
func (l Load) Run(ctx context.Context, do Request) (*Run, error) {
	if l.Clients < 1 {
		return nil, errors.New("loadtest: clients must be at least 1")
	}
	if l.Duration <= 0 && l.Requests <= 0 {
		return nil, errors.New("loadtest: duration must be positive")
	}
	if l.Rate > 0 && l.Requests > 0 {
		return nil, errors.New("loadtest: an open loop runs for a duration, not a number of requests")
	}
	if l.Duration <= 0 {
		l.Duration = 1000 * time.Hour
	}
	if l.Grace <= 0 {
		l.Grace = 5 * time.Second
	}
	recs := make([]*Recorder, l.Clients)
	for i := range recs {
		recs[i] = NewRecorder()
	}
	start := time.Now()
	measureFrom := start.Add(l.Warmup)
	end := measureFrom.Add(l.Duration)
	var next, sent atomic.Int64
	var wg sync.WaitGroup
	var meter meter
	stopMeter := meter.start(measureFrom, l.ServerCPU)
	for c := range l.Clients {
		wg.Go(func() {
			rec := recs[c]
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if l.Rate <= 0 {
					t0 := time.Now()
					if !t0.Before(end) || (l.Requests > 0 && i >= l.Requests) {
						return
					}
					o := do(ctx, i)
					if !t0.Before(measureFrom) && ctx.Err() == nil {
						rec.Record(time.Since(t0), o)
					}
					continue
				}
				due := start.Add(time.Duration(float64(i) / l.Rate * float64(time.Second)))
				if !due.Before(end) {
					return
				}
				now := time.Now()
				if now.After(end.Add(l.Grace)) {
					return // hopelessly behind: what is left of the schedule is counted unsent
				}
				if wait := due.Sub(now); wait > 0 && !sleep(ctx, wait) {
					return
				}
				sent.Add(1)
				o := do(ctx, i)
				if !due.Before(measureFrom) && ctx.Err() == nil {
					rec.Record(time.Since(due), o)
				}
			}
		})
	}
	wg.Wait()
	stopMeter()
	// The window runs until the last measured request finished: after the end for a closed
	// loop's last requests and an open loop's backlog, before it when ctx stopped the run.
	finished := time.Now()
	run := &Run{Load: l, Recorder: NewRecorder(), Elapsed: max(finished.Sub(measureFrom), time.Millisecond)}
	run.ServerCPU, run.ClientCPU = meter.server, meter.client
	if l.Rate > 0 {
		scheduled := int64(math.Ceil((l.Warmup + l.Duration).Seconds() * l.Rate))
		run.Unsent = int(max(0, scheduled-sent.Load()))
	}
	run.Recorder.Merge(recs...)
	run.Throughput = float64(run.Recorder.Count()) / run.Elapsed.Seconds()
	return run, ctx.Err()
}

// meter samples CPU time when the measured window opens and when the last measured request
// has finished.
type meter struct {
	serverCPU func() (time.Duration, bool)

	mu             sync.Mutex
	started        bool
	s0, c0         time.Duration
	sok, cok       bool
	server, client time.Duration
}

// start samples at from; the returned stop samples again and waits for nothing.
func (m *meter) start(from time.Time, serverCPU func() (time.Duration, bool)) (stop func()) {
	if serverCPU == nil {
		serverCPU = func() (time.Duration, bool) { return 0, false }
	}
	t := time.AfterFunc(time.Until(from), func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.started = true
		m.s0, m.sok = serverCPU()
		m.c0, m.cok = SelfCPU()
	})
	return func() {
		t.Stop()
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.started {
			return
		}
		if s1, ok := serverCPU(); ok && m.sok {
			m.server = s1 - m.s0
		}
		if c1, ok := SelfCPU(); ok && m.cok {
			m.client = c1 - m.c0
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// NewClient returns an HTTP/1.1 client that keeps up to conns connections alive to each host,
// and gives up on a request after timeout.
func NewClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, whatever the environment says
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// Do sends req and reads the whole response body, so its connection goes back to the pool.
func Do(c *http.Client, req *http.Request) (Outcome, []byte) {
	resp, err := c.Do(req)
	if err != nil {
		return Outcome{Err: err}, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return Outcome{Status: resp.StatusCode, Err: err}, body
	}
	return Outcome{Status: resp.StatusCode}, body
}

// ErrorKind names a transport error briefly, so outcomes group by cause.
func ErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return fmt.Sprint(s)
}
