//go:build unix

package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// BenchmarkStreamLatency measures how long a user's message takes to reach agents' live streams:
// 200 handed-over conversations, 20 agents connected to the stream, user messages posted through
// the inbound API at a steady rate (open loop, 100 a second, spread over the conversations). The
// latency of one (message, agent) pair is from the moment the message's POST starts to the
// moment that agent's stream delivers it; the benchmark reports percentiles over all pairs and
// the CPU time of the process (server and clients together) per message.
//
//	go test ./internal/console -run '^$' -bench StreamLatency -benchtime 3000x
func BenchmarkStreamLatency(b *testing.B) {
	for _, backend := range []apptest.Backend{apptest.SQLite, apptest.Postgres} {
		b.Run(string(backend), func(b *testing.B) { benchStream(b, backend) })
	}
}

const (
	benchConversations = 200
	benchAgents        = 20
	benchRate          = 100 // user messages a second
)

func benchStream(b *testing.B, backend apptest.Backend) {
	srv := apptest.Start(b, apptest.Options{Backend: backend})
	in := srv.NewIntegration(b, admin.IntegrationSpec{})
	var sids []string
	for i := range benchConversations {
		sid, _ := handedOver(b, in, fmt.Sprintf("User %d", i), "hello")
		sids = append(sids, sid)
	}
	rec := &latencies{sent: map[string]time.Time{}}
	var readers sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); readers.Wait() }()
	for i := range benchAgents {
		a := newAgent(b, srv, fmt.Sprintf("Agent %d", i))
		ready := make(chan struct{})
		readers.Go(func() { benchReader(b, ctx, srv.URL, a.Token, rec, ready) })
		<-ready
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var postMu sync.Mutex
	var postTimes []time.Duration
	post := func(sid, text string) {
		start := time.Now()
		defer func() {
			postMu.Lock()
			postTimes = append(postTimes, time.Since(start))
			postMu.Unlock()
		}()
		body := `{"input":{"text":"` + text + `"}}`
		req, _ := http.NewRequest("POST", srv.URL+"/v1/custom/"+in.ID+"/sessions/"+sid+"/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "apikey "+in.Key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Errorf("posting a message: %d", resp.StatusCode)
		}
	}

	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	var posts sync.WaitGroup
	for i := range b.N {
		due := start.Add(time.Duration(i) * time.Second / benchRate)
		time.Sleep(time.Until(due))
		text := "bench-" + strconv.Itoa(i)
		rec.send(text, time.Now())
		posts.Go(func() { post(sids[i%len(sids)], text) })
	}
	posts.Wait()
	want := b.N * benchAgents
	deadline := time.Now().Add(30 * time.Second)
	for rec.count() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	got := rec.sorted()
	if len(got) < want {
		b.Fatalf("streams delivered %d of %d (message, agent) pairs", len(got), want)
	}
	pct := func(p float64) float64 {
		return float64(got[min(len(got)-1, int(p*float64(len(got))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(got[len(got)-1])/float64(time.Millisecond), "max-ms")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/msg")
	// How much of it is the inbound API's own answer (the commit), for comparison.
	slices.Sort(postTimes)
	b.ReportMetric(float64(postTimes[min(len(postTimes)-1, len(postTimes)*99/100)])/float64(time.Millisecond), "post-p99-ms")
	b.ReportMetric(0, "ns/op") // wall time per message is the rate, not a result
}

// latencies records when each message was sent and how long each stream took to deliver it.
type latencies struct {
	mu   sync.Mutex
	sent map[string]time.Time
	got  []time.Duration
}

func (l *latencies) send(text string, at time.Time) {
	l.mu.Lock()
	l.sent[text] = at
	l.mu.Unlock()
}

func (l *latencies) received(text string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.sent[text]; ok {
		l.got = append(l.got, at.Sub(t))
	}
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.got)
}

func (l *latencies) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.got)
	slices.Sort(out)
	return out
}

// benchReader reads an agent's stream and records every new user message it delivers.
func benchReader(b *testing.B, ctx context.Context, base, token string, rec *latencies, ready chan<- struct{}) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/agent/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		close(ready)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var typ string
	first := true
	seen := map[string]bool{}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = line[len("event: "):]
			if typ == "ready" && first {
				first = false
				close(ready)
			}
		case strings.HasPrefix(line, "data: ") && typ == "message":
			at := time.Now()
			var e struct {
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
			}
			if json.Unmarshal([]byte(line[len("data: "):]), &e) == nil && strings.HasPrefix(e.Message.Text, "bench-") && !seen[e.Message.Text] {
				seen[e.Message.Text] = true
				rec.received(e.Message.Text, at)
			}
		}
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
