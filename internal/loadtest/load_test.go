package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/webhook"
)

func TestClosedLoopAgainstSink(t *testing.T) {
	sink := &Sink{Body: []byte(`{"ok":true}`)}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	client := NewClient(4, 5*time.Second)
	var sent atomic.Int64
	run, err := Load{Clients: 4, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond}.Run(t.Context(),
		func(ctx context.Context, i int64) Outcome {
			sent.Add(1)
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, strings.NewReader(`{"input":{"text":"hi"}}`))
			o, body := Do(client, req)
			if o.OK() && string(body) != `{"ok":true}` {
				t.Errorf("body %q", body)
			}
			return o
		})
	if err != nil {
		t.Fatal(err)
	}
	n := run.Recorder.Count()
	if n == 0 || run.OK() != n || run.Others() != "-" {
		t.Fatalf("recorded %d, ok %d, others %s", n, run.OK(), run.Others())
	}
	// Warm-up requests were sent but not recorded.
	if got := sink.Stats().Requests; got != sent.Load() || got <= int64(n) {
		t.Errorf("sink got %d requests, harness sent %d and recorded %d", got, sent.Load(), n)
	}
	if run.Throughput <= 0 {
		t.Errorf("throughput %v", run.Throughput)
	}
}

// An open loop charges a slow server for the requests it held up: latency counts from when a
// request was due. One client sending 200/s to a server that takes 10 ms a request falls further
// behind with every request, and the last requests wait far longer than 10 ms. (Only lower
// bounds are checked: a sleep never ends early, however busy the machine.)
func TestOpenLoopMeasuresFromDueTime(t *testing.T) {
	load := Load{Clients: 1, Rate: 200, Duration: 200 * time.Millisecond, Grace: time.Minute}
	run, err := load.Run(t.Context(), func(ctx context.Context, i int64) Outcome {
		time.Sleep(10 * time.Millisecond)
		return Outcome{Status: 202}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := run.Recorder.Count(); n != 40 || run.Unsent != 0 {
		t.Fatalf("recorded %d requests (unsent %d), want all 40 due in 200ms at 200/s", n, run.Unsent)
	}
	// Request i is due at 5ms·i and cannot start before 10ms·i: it waited at least 5ms·i.
	if max := run.Recorder.Stats().Max; max < 39*5*time.Millisecond {
		t.Errorf("max latency %v; the last request waited at least 195ms behind the others", max)
	}
}

// The open loop sends each request of the schedule once, and none before it is due: requests
// may go late (and are charged for it), never early.
func TestOpenLoopSendsEachRequestOnceWhenDue(t *testing.T) {
	const rate, n = 2000, 200
	load := Load{Clients: 8, Rate: rate, Duration: n * time.Second / rate, Grace: time.Minute}
	start := time.Now()
	var mu sync.Mutex
	sent := map[int64]time.Duration{}
	run, err := load.Run(t.Context(), func(ctx context.Context, i int64) Outcome {
		at := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if _, again := sent[i]; again {
			t.Errorf("request %d sent twice", i)
		}
		sent[i] = at
		return Outcome{Status: 202}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != n || run.Unsent != 0 {
		t.Fatalf("sent %d requests (unsent %d), want the %d due", len(sent), run.Unsent, n)
	}
	for i, at := range sent {
		// Run's clock starts after this test's start: a request due at i/rate from Run's start
		// is sent at least that long after start.
		if due := time.Duration(i) * time.Second / rate; at < due {
			t.Errorf("request %d sent at %v, before it was due at %v", i, at, due)
		}
	}
}

func TestOpenLoopGivesUpWhenHopelesslyBehind(t *testing.T) {
	load := Load{Clients: 1, Rate: 1000, Duration: 100 * time.Millisecond, Grace: 50 * time.Millisecond}
	run, err := load.Run(t.Context(), func(ctx context.Context, i int64) Outcome {
		time.Sleep(20 * time.Millisecond)
		return Outcome{Status: 202}
	})
	if err != nil {
		t.Fatal(err)
	}
	// At most (100+50)/20 + 1 requests fit; the other ~90 of the 100 due are unsent.
	if n := run.Recorder.Count(); n+run.Unsent != 100 || run.Unsent < 80 {
		t.Errorf("recorded %d, unsent %d; want 100 in all, most unsent", n, run.Unsent)
	}
}

func TestLoadStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	_, err := Load{Clients: 2, Duration: time.Hour}.Run(ctx, func(ctx context.Context, i int64) Outcome {
		time.Sleep(time.Millisecond)
		return Outcome{Status: 200}
	})
	if err != context.Canceled || time.Since(start) > 10*time.Second {
		t.Errorf("Run = %v after %v; want canceled promptly", err, time.Since(start))
	}
}

// An open loop stops with its context too, even with every client waiting on a server that
// does not answer: what was released and not sent is not sent.
func TestOpenLoopStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	var calls atomic.Int64
	run, err := Load{Clients: 2, Rate: 1000, Duration: time.Hour}.Run(ctx, func(ctx context.Context, i int64) Outcome {
		calls.Add(1)
		<-ctx.Done()
		return Outcome{Err: ctx.Err()}
	})
	if err != context.Canceled || time.Since(start) > 10*time.Second {
		t.Fatalf("Run = %v after %v; want canceled promptly", err, time.Since(start))
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d requests sent; want the 2 the clients took before the cancel", n)
	}
	if run.Unsent < 1000*3600-2 {
		t.Errorf("unsent %d; want the whole schedule but the 2 sent", run.Unsent)
	}
}

func TestSinkChecksSignatures(t *testing.T) {
	sink := &Sink{Secret: "s3cret", Status: http.StatusOK, Body: []byte(`{}`)}
	var observed atomic.Int64
	sink.Observe = func(r *http.Request, body []byte) { observed.Add(1) }
	srv := httptest.NewServer(sink)
	defer srv.Close()
	body := `{"event_type":"message:brain_send"}`
	for _, tt := range []struct {
		sig  string
		want int
	}{
		{webhook.Sign("s3cret", []byte(body)), http.StatusOK},
		{webhook.Sign("other", []byte(body)), http.StatusUnauthorized},
		{"", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, tt.sig)
		o, _ := Do(srv.Client(), req)
		if o.Status != tt.want {
			t.Errorf("signature %q: status %d, want %d", tt.sig, o.Status, tt.want)
		}
	}
	if st := sink.Stats(); st.Requests != 3 || st.BadSignatures != 2 || observed.Load() != 1 {
		t.Errorf("stats %+v, observed %d", st, observed.Load())
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "[::1]:8080": true, "localhost:80": true,
		"0.0.0.0:0": false, ":8080": false, "10.0.0.1:80": false, "example.com:80": false, "nonsense": false,
	} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}

func TestLogAddr(t *testing.T) {
	ready := LogAddr("parley is serving")
	for line, want := range map[string]string{
		`{"time":"x","level":"INFO","msg":"parley is serving","addr":"127.0.0.1:4242","database":"sqlite://x"}`: "127.0.0.1:4242",
		`{"level":"INFO","msg":"migrated","note":"parley is serving soon"}`:                                     "",
		`time=x level=INFO msg="parley is serving" addr=127.0.0.1:1`:                                            "",
	} {
		if got, _ := ready([]byte(line)); got != want {
			t.Errorf("LogAddr(%s) = %q, want %q", line, got, want)
		}
	}
}
