package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/loadtest"
)

// errUsage marks an error whose usage text was already printed.
var errUsage = errors.New("usage")

// messagesConfig is the messages scenario's flags.
type messagesConfig struct {
	parleyBin   string
	db          string
	postgresURL string
	clients     int
	openClients int
	duration    time.Duration
	warmup      time.Duration
	sessions    int
	rate        string
	targetRatio float64
	targetP99   time.Duration
	textSize    int
	runs        int
	kill9       bool
	noBrain     bool
	json        bool
	cpuprofile  string
	openProfile string
	keep        bool
}

func parseMessages(args []string, stderr io.Writer) (*messagesConfig, error) {
	c := &messagesConfig{}
	fs := flag.NewFlagSet("parley-load messages", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pg := postgresDefault()
	fs.StringVar(&c.parleyBin, "parley-bin", "", "parley binary to measure; empty builds ./cmd/parley with go build")
	fs.StringVar(&c.db, "db", "sqlite", "database: sqlite or postgres")
	fs.StringVar(&c.postgresURL, "postgres-url", pg, "PostgreSQL database to make a fresh schema in (loopback only)")
	fs.IntVar(&c.clients, "clients", 64, "concurrent clients, each on its own keep-alive connection")
	fs.IntVar(&c.openClients, "open-clients", 256, "open loop: most requests in flight at once, each on its own keep-alive connection")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each phase")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each phase")
	fs.IntVar(&c.sessions, "sessions", 1000, "sessions the messages are spread over")
	fs.StringVar(&c.rate, "rate", "auto", "open-loop rate in requests/s; auto is target-ratio × the ceiling's throughput; 0 skips the open loop")
	fs.Float64Var(&c.targetRatio, "target-ratio", 0.4, "throughput parley must reach, as a fraction of the ceiling")
	fs.DurationVar(&c.targetP99, "target-p99", 50*time.Millisecond, "p99 latency parley must stay under in the open loop")
	fs.IntVar(&c.textSize, "text-size", 64, "bytes of text in each message")
	fs.IntVar(&c.runs, "runs", 1, "repeat the whole measurement this many times and report the medians too")
	fs.BoolVar(&c.noBrain, "no-brain", false, "run parley without its brain worker (--brain-in-flight 0): the inbound API alone, as before the brain")
	fs.BoolVar(&c.kill9, "kill9", false, "also kill -9 parley under load, restart it and count lost messages")
	fs.BoolVar(&c.json, "json", false, "print the results as JSON")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of parley during its closed loop to this file")
	fs.StringVar(&c.openProfile, "open-cpuprofile", "", "write a CPU profile of parley during its open loop to this file")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs, SQLite file) and PostgreSQL schema")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.clients < 1, c.openClients < 1, c.sessions < 1, c.runs < 1:
		return nil, errors.New("--clients, --open-clients, --sessions and --runs must be at least 1")
	case c.duration < 100*time.Millisecond, c.warmup < 0:
		return nil, errors.New("--duration must be at least 100ms and --warmup not negative")
	case c.textSize < 1 || c.textSize > 100_000:
		return nil, errors.New("--text-size must be between 1 and 100000")
	case c.db != "sqlite" && c.db != "postgres":
		return nil, fmt.Errorf("--db must be sqlite or postgres, not %q", c.db)
	}
	if c.rate != "auto" {
		r, err := strconv.ParseFloat(c.rate, 64)
		if err != nil || r < 0 || math.IsInf(r, 0) {
			return nil, fmt.Errorf("--rate must be auto or a number of requests per second, not %q", c.rate)
		}
		if r == 0 && c.openProfile != "" {
			return nil, errors.New("--open-cpuprofile needs an open loop: --rate 0 skips it")
		}
	}
	if c.openProfile != "" && c.openProfile == c.cpuprofile {
		return nil, errors.New("--cpuprofile and --open-cpuprofile must be different files")
	}
	return c, nil
}

// openRate returns the open loop's rate given the ceiling's throughput; 0 means none.
// postgresDefault is the PostgreSQL the harness makes schemas in: the tests' one.
func postgresDefault() string {
	if pg := os.Getenv("PARLEY_TEST_POSTGRES_URL"); pg != "" {
		return pg
	}
	return defaultPostgresURL
}

func (c *messagesConfig) openRate(ceiling float64) float64 {
	if c.rate == "auto" {
		return math.Max(1, math.Round(ceiling*c.targetRatio/10)*10)
	}
	r, _ := strconv.ParseFloat(c.rate, 64)
	return r
}

const (
	adminToken    = "parley-load-admin-token"
	webhookSecret = "parley-load-webhook-secret"
)

// messagesReport is what the messages scenario found.
type messagesReport struct {
	DB          string             `json:"db"`
	Clients     int                `json:"clients"`
	Runs        []loadtest.RunJSON `json:"runs"`
	Ceiling     float64            `json:"ceiling_per_s"`
	Parley      float64            `json:"parley_per_s"`
	Ratio       float64            `json:"ratio"`
	TargetRatio float64            `json:"target_ratio"`
	OpenRate    float64            `json:"open_rate_per_s,omitempty"`
	OpenP99Ms   float64            `json:"open_p99_ms,omitempty"`
	TargetP99Ms float64            `json:"target_p99_ms"`
	Accepted    int                `json:"accepted"`
	Lost        int                `json:"lost"`
	Kill9       *kill9Report       `json:"kill9,omitempty"`
	Webhooks    loadtest.SinkStats `json:"webhooks"`

	rows []loadtest.Row
}

type kill9Report struct {
	AcceptedBeforeKill int `json:"accepted_before_kill"`
	Lost               int `json:"lost"`
}

func messages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseMessages(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "parley-load: "+format+"\n", a...) }
	dir, cleanup, err := scratch(c.keep, logf)
	if err != nil {
		return err
	}
	defer cleanup()
	var out messagesOutput
	for i := range c.runs {
		runDir, err := makeRunDir(dir, i, c.runs, logf)
		if err != nil {
			return err
		}
		rep, err := runMessages(ctx, c, runDir, logf)
		if err != nil {
			return err
		}
		out.Reports = append(out.Reports, rep)
		if !c.json {
			if c.runs > 1 {
				fmt.Fprintf(stdout, "run %d of %d: ", i+1, c.runs)
			}
			rep.print(stdout, c)
			fmt.Fprintln(stdout)
		}
	}
	out.Median = median(out.Reports)
	if c.json {
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else if c.runs > 1 {
		out.printMedian(stdout, c)
	}
	if out.Median.Lost > 0 {
		return errors.New("messages answered 202 were lost")
	}
	return nil
}

// messagesOutput is every run's report and the medians over the runs.
type messagesOutput struct {
	Reports []*messagesReport `json:"reports"`
	Median  summary           `json:"median"`
}

// summary is a run's headline figures, or their medians over runs. Lost is the total.
type summary struct {
	Runs         int     `json:"runs"`
	Ceiling      float64 `json:"ceiling_per_s"`
	Parley       float64 `json:"parley_per_s"`
	Ratio        float64 `json:"ratio"`
	ClosedP50Ms  float64 `json:"closed_p50_ms"`
	ClosedP99Ms  float64 `json:"closed_p99_ms"`
	ServerCPUUs  float64 `json:"server_cpu_us_per_req"`
	OpenRate     float64 `json:"open_rate_per_s,omitempty"`
	OpenP50Ms    float64 `json:"open_p50_ms,omitempty"`
	OpenP99Ms    float64 `json:"open_p99_ms,omitempty"`
	Lost         int     `json:"lost"`
	ratios, p99s []float64
}

// median returns the medians of the reports' headline figures.
func median(reps []*messagesReport) summary {
	var cols [9][]float64
	m := summary{Runs: len(reps)}
	for _, r := range reps {
		closed, open := r.parleyRuns()
		vals := [9]float64{r.Ceiling, r.Parley, r.Ratio, closed.Latency.P50, closed.Latency.P99, closed.ServerCPU,
			r.OpenRate, open.Latency.P50, open.Latency.P99}
		for i, v := range vals {
			cols[i] = append(cols[i], v)
		}
		m.Lost += r.Lost
		if r.Kill9 != nil {
			m.Lost += r.Kill9.Lost
		}
	}
	m.ratios, m.p99s = slices.Clone(cols[2]), slices.Clone(cols[8])
	mid := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	m.Ceiling, m.Parley, m.Ratio = mid(cols[0]), mid(cols[1]), mid(cols[2])
	m.ClosedP50Ms, m.ClosedP99Ms, m.ServerCPUUs = mid(cols[3]), mid(cols[4]), mid(cols[5])
	m.OpenRate, m.OpenP50Ms, m.OpenP99Ms = mid(cols[6]), mid(cols[7]), mid(cols[8])
	return m
}

// parleyRuns returns the closed-loop and open-loop message runs of parley (zero when absent).
func (r *messagesReport) parleyRuns() (closed, open loadtest.RunJSON) {
	for _, run := range r.Runs {
		if run.Name != "parley "+r.DB {
			continue
		}
		if run.Rate > 0 {
			open = run
		} else {
			closed = run
		}
	}
	return closed, open
}

func (o *messagesOutput) printMedian(w io.Writer, c *messagesConfig) {
	m := o.Median
	pct := func(v []float64) string {
		var s []string
		for _, x := range v {
			s = append(s, fmt.Sprintf("%.1f%%", 100*x))
		}
		return strings.Join(s, " ")
	}
	fmt.Fprintf(w, "median of %d runs: ceiling %.0f/s, parley %s %.0f/s = %.1f%% of the ceiling (runs: %s); closed loop p50 %.1fms p99 %.1fms, server CPU %.0fµs/request\n",
		m.Runs, m.Ceiling, c.db, m.Parley, 100*m.Ratio, pct(m.ratios), m.ClosedP50Ms, m.ClosedP99Ms, m.ServerCPUUs)
	if m.OpenRate > 0 {
		var p99s []string
		for _, v := range m.p99s {
			p99s = append(p99s, fmt.Sprintf("%.1fms", v))
		}
		fmt.Fprintf(w, "open loop at %.0f/s: p50 %.1fms, p99 %.1fms (runs: %s)\n", m.OpenRate, m.OpenP50Ms, m.OpenP99Ms, strings.Join(p99s, " "))
	}
	fmt.Fprintf(w, "messages answered 202 and missing, all runs: %d\n", m.Lost)
}

func runMessages(ctx context.Context, c *messagesConfig, dir string, logf func(string, ...any)) (*messagesReport, error) {
	rep := &messagesReport{DB: c.db, Clients: c.clients, TargetRatio: c.targetRatio,
		TargetP99Ms: float64(c.targetP99.Microseconds()) / 1000}
	body := messageBodies(c.textSize)
	add := func(name string, run *loadtest.Run) {
		row := loadtest.Row{Name: name, Run: run}
		rep.rows = append(rep.rows, row)
		rep.Runs = append(rep.Runs, row.JSON())
		logf("  %s %s: %.0f/s %s", name, run.Load.Describe(), run.Throughput, run.Recorder.Stats())
	}
	closed := loadtest.Load{Clients: c.clients, Duration: c.duration, Warmup: c.warmup}

	// 1. The ceiling: the same requests to a server that does nothing with them.
	parleyBin := c.parleyBin
	if parleyBin == "" {
		logf("building parley")
		var err error
		if parleyBin, err = buildParley(ctx, dir); err != nil {
			return nil, err
		}
	}
	logf("ceiling: bare net/http server")
	bare, err := startBareServer(filepath.Join(dir, "bare-server.log"))
	if err != nil {
		return nil, err
	}
	defer bare.Kill()
	client := loadtest.NewClient(max(c.clients, c.openClients), 30*time.Second)
	req := postMessage(client, "http://"+bare.Addr, fakeIntegration, fakeSessions(c.sessions), body, nil)
	load := closed
	load.ServerCPU = bare.CPU
	run, err := load.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	add("ceiling", run)
	rep.Ceiling = run.Throughput
	rate := c.openRate(run.Throughput)
	if rate > 0 {
		load.Rate, load.Clients = rate, c.openClients
		if run, err = load.Run(ctx, req); err != nil {
			return nil, err
		}
		add("ceiling", run)
	}
	if err := bare.Stop(5 * time.Second); err != nil {
		return nil, err
	}
	client.CloseIdleConnections()

	// 2. parley, on a fresh database, with an integration whose webhooks go to a sink.
	db, err := newDatabase(ctx, c.db, c.postgresURL, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if c.keep {
			logf("kept database %s", db.URL)
		} else if err := db.cleanup(); err != nil {
			logf("dropping the database: %v", err)
		}
	}()
	sctx, stopSink := context.WithCancel(context.Background())
	defer stopSink()
	sink := &loadtest.Sink{Secret: webhookSecret, Status: http.StatusOK, Body: []byte(`{}`)}
	webhookURL, _, err := loadtest.Serve(sctx, "127.0.0.1:0", sink)
	if err != nil {
		return nil, err
	}
	logf("parley on %s", db.Label)
	var flags []string
	if c.noBrain {
		flags = append(flags, "--brain-in-flight", "0")
	}
	srv, err := startParley(parleyBin, db.URL, adminToken, filepath.Join(dir, "parley.log"), c.cpuprofile != "" || c.openProfile != "", flags...)
	if err != nil {
		return nil, err
	}
	defer func() { srv.proc.Kill() }()
	in, err := createIntegration(ctx, client, srv.URL, adminToken, webhookURL, webhookSecret, nil)
	if err != nil {
		return nil, err
	}
	name := "parley " + db.Label
	sessions, run, err := createSessions(ctx, client, srv.URL, in, c.sessions, c.clients)
	if err != nil {
		return nil, err
	}
	add(name+" sessions", run)

	acc := &accepted{}
	req = postMessage(client, srv.URL, in, sessions, body, acc)
	profiled := profileDuring(ctx, c, srv.PprofAddr, c.cpuprofile)
	load = closed
	load.ServerCPU = srv.proc.CPU
	if run, err = load.Run(ctx, req); err != nil {
		return nil, err
	}
	add(name, run)
	rep.Parley = run.Throughput
	rep.Ratio = rep.Parley / rep.Ceiling
	if err := profiled(logf); err != nil {
		return nil, err
	}
	if rate > 0 {
		load.Rate, load.Clients = rate, c.openClients
		profiled := profileDuring(ctx, c, srv.PprofAddr, c.openProfile)
		if run, err = load.Run(ctx, req); err != nil {
			return nil, err
		}
		if err := profiled(logf); err != nil {
			return nil, err
		}
		add(name, run)
		rep.OpenRate = rate
		rep.OpenP99Ms = float64(run.Recorder.Stats().P99.Microseconds()) / 1000
	}

	// 3. Every message answered 202 is in its session's history.
	logf("checking that every accepted message is committed")
	rep.Accepted = acc.count()
	if rep.Lost, err = missing(ctx, client, srv.URL, in, sessions, acc); err != nil {
		return nil, err
	}

	// 4. kill -9 under load, restart, and check again.
	if c.kill9 {
		if rep.Kill9, err = killUnderLoad(ctx, c, srv, client, in, sessions, req, acc, logf); err != nil {
			return nil, err
		}
	}
	if err := srv.proc.Stop(15 * time.Second); err != nil {
		return nil, fmt.Errorf("parley did not stop cleanly: %w", err)
	}
	rep.Webhooks = sink.Stats()
	return rep, nil
}

// killUnderLoad drives a closed loop, kills parley with SIGKILL halfway, restarts it on the same
// database and counts the messages answered 202 (in this phase and before) that are missing.
func killUnderLoad(ctx context.Context, c *messagesConfig, srv *parleyServer, client *http.Client, in *integration,
	sessions []string, req loadtest.Request, acc *accepted, logf func(string, ...any)) (*kill9Report, error) {
	before := acc.count()
	after := max(c.duration/2, time.Second)
	logf("kill -9: closed loop, SIGKILL after %s", after)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		loadtest.Load{Clients: c.clients, Duration: after + time.Minute}.Run(lctx, req)
	}()
	select {
	case <-time.After(after):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := srv.proc.Kill(); err != nil {
		return nil, err
	}
	cancel() // requests in flight at the kill have no answer: neither accepted nor refused
	<-done
	rep := &kill9Report{AcceptedBeforeKill: acc.count() - before}
	client.CloseIdleConnections()
	logf("kill -9: %d messages accepted in the phase; restarting parley", rep.AcceptedBeforeKill)
	if err := srv.restart(); err != nil {
		return nil, err
	}
	var err error
	rep.Lost, err = missing(ctx, client, srv.URL, in, sessions, acc)
	return rep, err
}

// missing counts the accepted messages absent from the sessions' histories.
func missing(ctx context.Context, client *http.Client, base string, in *integration, sessions []string, acc *accepted) (int, error) {
	found, err := history(ctx, client, base, in, sessions, 8)
	if err != nil {
		return 0, err
	}
	lost := 0
	for _, id := range acc.all() {
		if !found[id] {
			lost++
		}
	}
	return lost, nil
}

// createSessions creates n sessions with POST /sessions, measured as a closed loop.
func createSessions(ctx context.Context, client *http.Client, base string, in *integration, n, clients int) ([]string, *loadtest.Run, error) {
	url := base + "/v1/custom/" + in.ID + "/sessions"
	ids := make([]string, n)
	run, err := loadtest.Load{Clients: min(clients, n), Requests: int64(n)}.Run(ctx, func(ctx context.Context, i int64) loadtest.Outcome {
		req, err := http.NewRequestWithContext(ctx, "POST", url,
			strings.NewReader(fmt.Sprintf(`{"external_session_id":"load-%d"}`, i)))
		if err != nil {
			return loadtest.Outcome{Err: err}
		}
		req.Header.Set("Authorization", "apikey "+in.Key)
		req.Header.Set("Content-Type", "application/json")
		o, b := loadtest.Do(client, req)
		if o.Status == http.StatusCreated {
			var v struct {
				SessionID string `json:"session_id"`
			}
			if json.Unmarshal(b, &v) != nil || v.SessionID == "" {
				return loadtest.Outcome{Status: o.Status, Err: fmt.Errorf("no session_id in %s", b)}
			}
			ids[i] = v.SessionID
		}
		return o
	})
	if err != nil {
		return nil, nil, err
	}
	if run.OK() != n {
		return nil, nil, fmt.Errorf("creating %d sessions: %s", n, run.Others())
	}
	return ids, run, nil
}

// messageBodies returns the body of message i: {"input":{"text":...}} with size bytes of text.
func messageBodies(size int) func(i int64) []byte {
	pad := strings.Repeat("x", size)
	return func(i int64) []byte {
		text := strconv.FormatInt(i, 10) + " " + pad
		return []byte(`{"input":{"text":"` + text[:size] + `"}}`)
	}
}

// postMessage returns the request the scenario measures: a user message to session i mod n.
// Parley and the ceiling get exactly the same requests and their answers are read the same way;
// with acc, the ID of every accepted message is kept.
func postMessage(client *http.Client, base string, in *integration, sessions []string, body func(int64) []byte, acc *accepted) loadtest.Request {
	prefix := base + "/v1/custom/" + in.ID + "/sessions/"
	auth := []string{"apikey " + in.Key}
	contentType := []string{"application/json"}
	return func(ctx context.Context, i int64) loadtest.Outcome {
		req, err := http.NewRequestWithContext(ctx, "POST", prefix+sessions[i%int64(len(sessions))]+"/messages",
			bytes.NewReader(body(i)))
		if err != nil {
			return loadtest.Outcome{Err: err}
		}
		req.Header["Authorization"] = auth
		req.Header["Content-Type"] = contentType
		o, b := loadtest.Do(client, req)
		if o.Status != http.StatusAccepted {
			return o
		}
		var v struct {
			MessageID string `json:"message_id"`
		}
		if json.Unmarshal(b, &v) != nil || v.MessageID == "" {
			return loadtest.Outcome{Status: o.Status, Err: fmt.Errorf("no message_id in %.100s", b)}
		}
		if acc != nil {
			acc.add(i, v.MessageID)
		}
		return o
	}
}

// accepted keeps the IDs of the messages parley answered 202, in shards so that clients rarely
// wait for each other.
type accepted struct {
	shards [64]struct {
		mu  sync.Mutex
		ids []string
	}
}

func (a *accepted) add(i int64, id string) {
	s := &a.shards[i%int64(len(a.shards))]
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
}

func (a *accepted) all() []string {
	var out []string
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		out = append(out, s.ids...)
		s.mu.Unlock()
	}
	return out
}

func (a *accepted) count() int {
	n := 0
	for i := range a.shards {
		s := &a.shards[i]
		s.mu.Lock()
		n += len(s.ids)
		s.mu.Unlock()
	}
	return n
}

// profileDuring starts recording parley's CPU profile into path (none when path is empty)
// for the measured part of the phase about to start; wait waits for it to be written.
func profileDuring(ctx context.Context, c *messagesConfig, addr, path string) (wait func(logf func(string, ...any)) error) {
	if path == "" {
		return func(func(string, ...any)) error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- cpuProfile(ctx, addr, c.warmup, c.duration, path) }()
	return func(logf func(string, ...any)) error {
		if err := <-done; err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		logf("wrote %s", path)
		return nil
	}
}

// cpuProfile records parley's CPU profile during the measured part of a phase.
func cpuProfile(ctx context.Context, addr string, warmup, duration time.Duration, path string) error {
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	secs := max(1, int(duration.Seconds()))
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	o, b := loadtest.Do(&http.Client{Timeout: time.Duration(secs)*time.Second + time.Minute}, req)
	if o.Err != nil || o.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %v %d %.200s", url, o.Err, o.Status, b)
	}
	return os.WriteFile(path, b, 0o644)
}

// print writes the table and the verdicts for people.
func (r *messagesReport) print(w io.Writer, c *messagesConfig) {
	fmt.Fprintf(w, "POST /sessions/{id}/messages, %d clients (the open loop up to %d), %d sessions, %d bytes of text, %s measured after %s warm-up\n\n",
		c.clients, c.openClients, c.sessions, c.textSize, c.duration, c.warmup)
	loadtest.PrintTable(w, r.rows)
	fmt.Fprintln(w)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(w, "throughput: parley %s %.0f/s = %.1f%% of the ceiling %.0f/s (target ≥ %.0f%%): %s\n",
		r.DB, r.Parley, 100*r.Ratio, r.Ceiling, 100*r.TargetRatio, verdict(r.Ratio >= r.TargetRatio))
	if r.OpenRate > 0 {
		fmt.Fprintf(w, "latency: open loop at %.0f/s, p99 %.1fms (target ≤ %.0fms): %s\n",
			r.OpenRate, r.OpenP99Ms, r.TargetP99Ms, verdict(r.OpenP99Ms <= r.TargetP99Ms))
	}
	fmt.Fprintf(w, "committed: %d messages answered 202, %d missing from the history\n", r.Accepted, r.Lost)
	if r.Kill9 != nil {
		fmt.Fprintf(w, "kill -9: %d messages answered 202 in the phase before SIGKILL; after restart %d of all %d accepted are missing\n",
			r.Kill9.AcceptedBeforeKill, r.Kill9.Lost, r.Accepted+r.Kill9.AcceptedBeforeKill)
	}
	if r.Webhooks.BadSignatures > 0 {
		fmt.Fprintf(w, "webhooks: %d received, %d with a bad signature\n", r.Webhooks.Requests, r.Webhooks.BadSignatures)
	}
}
