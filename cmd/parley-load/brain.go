package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain/worker"
	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/webhook"
)

// The brain scenario measures a conversation end to end: a user message posted to parley,
// answered by the integration's brain (the bundled demo dialog, the default of an integration
// with no brain setting), and its message:brain_send delivered to a webhook receiver on loopback
// that checks each signature and dedupes on request_id, as an integrator's would.
//
//  1. the ceiling: the messages scenario's bare net/http server, driven by the same clients with
//     the same requests (closed loop); the other figures are read against it; then the relay
//     ceiling (relay.go): a bare server that posts each message on to the receiver as one signed
//     brain_send, storing nothing, measured as parley is: the most this machine can answer;
//  2. throughput: --clients clients post messages over --sessions sessions for --duration (or
//     --messages messages) in a closed loop; a message is answered when its brain_send reaches
//     the receiver. Messages answered per second count from the first send to the last
//     brain_send's arrival, so a brain that falls behind the 202s is charged for its backlog;
//  3. latency: an open loop at --rate for --duration; for each message, from its 202 (and from
//     the call's start) to its brain_send's arrival.
//
// Each phase has its own integration, sessions and receiver. A session has one call in flight at
// a time, as one user types, so its 202s come in the order of its messages; the brain answers a
// session's messages in that order and its events are delivered in it, so the k-th brain_send of
// a session answers its k-th message answered 202. An answer missing after the drain, or one
// more than the session's messages, is a failure.
type brainConfig struct {
	parleyBin, db, postgresURL string
	clients, sessions, runs    int
	messages                   int64
	rate                       float64
	duration, warmup, drain    time.Duration
	text                       string
	ceiling, relay             bool
	cpuprofile                 string
	asJSON, keep               bool
}

// demoText is what the users say. The demo dialog answers it with its "media" dialog (keyword
// "photo"): an image, a video, an audio, a file and a webview, and no question, handover or
// resolve, so every message is answered and the conversation stays the brain's. The first
// message of a session is greeted too, in the same brain_send. ("What plans do you have?"
// shows the carousel, but the plans dialog then asks which plan; the next message is not an
// answer and matches plans again, so it works too, with a context write on every message.)
const demoText = "Can I see a photo of the team?"

func parseBrain(args []string, stderr io.Writer) (*brainConfig, error) {
	c := &brainConfig{}
	fs := flag.NewFlagSet("parley-load brain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.parleyBin, "parley-bin", "", "parley binary to measure; empty builds ./cmd/parley with go build")
	fs.StringVar(&c.db, "db", "sqlite", "database: sqlite or postgres")
	fs.StringVar(&c.postgresURL, "postgres-url", postgresDefault(), "PostgreSQL database to make a fresh schema in (loopback only)")
	fs.IntVar(&c.clients, "clients", 64, "concurrent clients, each on its own keep-alive connection")
	fs.IntVar(&c.sessions, "sessions", 1000, "sessions (users) the messages are spread over")
	fs.Int64Var(&c.messages, "messages", 0, "end the throughput phase after this many messages instead of after --duration")
	fs.Float64Var(&c.rate, "rate", 2000, "messages per second in the latency phase; 0 skips it")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the ceiling, throughput and latency phases")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before the ceiling and latency phases")
	fs.DurationVar(&c.drain, "drain", 15*time.Second, "after a phase, how long the receiver may go without a new answer before the missing ones are a failure")
	fs.StringVar(&c.text, "text", demoText, "what each user message says")
	fs.BoolVar(&c.ceiling, "ceiling", true, "measure the bare-server ceiling first")
	fs.BoolVar(&c.relay, "relay", true, "measure the relay ceiling first: each message answered 202 and posted on as one signed brain_send, nothing stored")
	fs.IntVar(&c.runs, "runs", 1, "repeat the whole measurement this many times and report the medians too")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of parley during the throughput phase to this file")
	fs.BoolVar(&c.asJSON, "json", false, "print the results as JSON")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs, SQLite file) and PostgreSQL schema")
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.clients < 1, c.sessions < 1, c.runs < 1:
		return nil, errors.New("--clients, --sessions and --runs must be at least 1")
	case c.duration < 100*time.Millisecond, c.warmup < 0, c.drain < time.Second, c.messages < 0,
		!(c.rate >= 0) || math.IsInf(c.rate, 0):
		return nil, errors.New("--duration must be at least 100ms, --drain at least 1s, and --warmup, --messages and --rate not negative")
	case c.text == "":
		return nil, errors.New("--text must not be empty")
	case c.db != "sqlite" && c.db != "postgres":
		return nil, fmt.Errorf("--db must be sqlite or postgres, not %q", c.db)
	}
	return c, nil
}

// talk is the users: it posts their messages and notes, per session, when each call was sent
// and when its 202 came.
type talk struct {
	client   *http.Client
	prefix   string // .../v1/custom/{integration}/sessions/
	auth     []string
	body     []byte
	sessions []talkSession
	index    map[string]int // session ID -> its place in sessions

	accepted atomic.Int64
}

type talkSession struct {
	id string
	mu sync.Mutex // held across a call: one message in flight per session
	// sent, acked and nums are per message answered 202, in order: when it was sent, when its
	// 202 came, and its number in the load.
	sent, acked []time.Time
	nums        []int64
	unknown     int // calls that got no answer: committed or not, nobody can tell
}

func newTalk(client *http.Client, base string, in *integration, sessions []string, text string) *talk {
	body, _ := json.Marshal(map[string]any{"input": map[string]string{"text": text}})
	t := &talk{client: client, prefix: base + "/v1/custom/" + in.ID + "/sessions/", auth: []string{"apikey " + in.Key},
		body: body, sessions: make([]talkSession, len(sessions)), index: make(map[string]int, len(sessions))}
	for i, id := range sessions {
		t.sessions[i].id = id
		t.index[id] = i
	}
	return t
}

var jsonContentType = []string{"application/json"}

// request is the load's request: the next message of session i mod len(sessions).
func (t *talk) request(ctx context.Context, i int64) loadtest.Outcome {
	s := &t.sessions[i%int64(len(t.sessions))]
	s.mu.Lock()
	defer s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, "POST", t.prefix+s.id+"/messages", bytes.NewReader(t.body))
	if err != nil {
		return loadtest.Outcome{Err: err}
	}
	req.Header["Authorization"] = t.auth
	req.Header["Content-Type"] = jsonContentType
	sent := time.Now()
	o, _ := loadtest.Do(t.client, req)
	acked := time.Now()
	switch {
	case o.Status == http.StatusAccepted:
	case o.Status == 0:
		s.unknown++
		return o
	default:
		return o // refused: nothing was committed
	}
	s.sent = append(s.sent, sent)
	s.acked = append(s.acked, acked)
	s.nums = append(s.nums, i)
	t.accepted.Add(1)
	return o
}

// brainReceiver is the integrator's webhook endpoint: it checks signatures, dedupes on
// request_id and notes when each session's brain_sends arrive.
type brainReceiver struct {
	sink         loadtest.Sink
	fallbackText []byte // the default fallback reply's text, JSON-encoded: a brain that failed

	mu       sync.Mutex
	seen     map[string]bool
	arrived  map[string][]time.Time // session -> arrival of each distinct brain_send, in order
	last     time.Time
	repeats  int64            // deliveries of a request_id already received
	other    map[string]int64 // events other than message:brain_send, by type
	shapes   map[string]int   // sampled: the response types of an answer, "text+carousel"
	foreign  int64            // brain_sends whose body names another session than the header
	fallback int64
	handover int64

	count atomic.Int64 // distinct brain_sends
}

func newBrainReceiver() *brainReceiver {
	r := &brainReceiver{seen: map[string]bool{}, arrived: map[string][]time.Time{}, other: map[string]int64{},
		shapes: map[string]int{}}
	fb, _ := json.Marshal(worker.DefaultFallback[0].Text)
	r.fallbackText = fb[1 : len(fb)-1]
	r.sink = loadtest.Sink{Secret: webhookSecret, Status: http.StatusOK, Body: []byte(`{}`), Observe: r.observe}
	return r
}

func (r *brainReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.sink.ServeHTTP(w, req) }

func (r *brainReceiver) observe(req *http.Request, body []byte) {
	now := time.Now()
	id, sid, typ := req.Header.Get(webhook.RequestIDHeader), req.Header.Get(webhook.SessionIDHeader), req.Header.Get(webhook.EventHeader)
	fallback := bytes.Contains(body, r.fallbackText)
	handover := bytes.Contains(body, []byte(`"type":"handover"`))
	foreign := !bytes.Contains(body, []byte(`"session_id":"`+sid+`"`))
	r.mu.Lock()
	if r.seen[id] {
		r.repeats++
		r.mu.Unlock()
		return
	}
	r.seen[id] = true
	if typ != parley.EventBrainSend {
		r.other[typ]++
		r.mu.Unlock()
		return
	}
	r.arrived[sid] = append(r.arrived[sid], now)
	first := len(r.arrived[sid]) == 1
	r.last = now
	if fallback {
		r.fallback++
	}
	if handover {
		r.handover++
	}
	if foreign {
		r.foreign++
	}
	r.mu.Unlock()
	// Decoding every answer would cost the clients' CPU; the first of each session (the greeting)
	// and one in 64 of the others show what the brain says.
	if n := r.count.Add(1); first || n%64 == 0 {
		shape := responseShape(body)
		r.mu.Lock()
		r.shapes[shape]++
		r.mu.Unlock()
	}
}

// responseShape names the types of a brain_send's responses: "text+carousel".
func responseShape(body []byte) string {
	var v struct {
		Output struct {
			Responses []struct {
				Type string `json:"type"`
			} `json:"responses"`
		} `json:"output"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "undecodable"
	}
	var types []string
	for _, x := range v.Output.Responses {
		types = append(types, x.Type)
	}
	if len(types) == 0 {
		return "none"
	}
	return strings.Join(types, "+")
}

// answers is how the messages answered 202 in a phase were answered.
type answers struct {
	Accepted  int   `json:"accepted"`  // messages answered 202
	Answered  int   `json:"answered"`  // of those, answered by a brain_send
	Missing   int   `json:"missing"`   // answered 202, and no brain_send for them
	Extra     int   `json:"extra"`     // brain_sends beyond their session's messages answered 202
	Unknown   int   `json:"unknown"`   // calls that got no answer (committed or not: unknown)
	Repeats   int64 `json:"repeats"`   // deliveries of a request_id already received
	Fallbacks int64 `json:"fallbacks"` // answers that were the fallback reply: the brain failed
	Handovers int64 `json:"handovers"` // answers that handed the conversation over
	Foreign   int64 `json:"foreign"`   // brain_sends whose body names another session than the header
	// Sessions that got extra answers or missed some, by ID (at most 10 of each), to look up in
	// parley's log or database.
	MissingIn     []string         `json:"missing_in,omitempty"`
	ExtraIn       []string         `json:"extra_in,omitempty"`
	OtherEvents   map[string]int64 `json:"other_events,omitempty"`
	Shapes        map[string]int   `json:"shapes"`
	BadSignatures int64            `json:"bad_signatures"`
}

// failed says what is wrong with the answers, or "".
func (a *answers) failed() string {
	var s []string
	if a.Missing > 0 {
		s = append(s, fmt.Sprintf("%d messages answered 202 got no brain_send (sessions %s)", a.Missing, strings.Join(a.MissingIn, " ")))
	}
	if a.Extra > 0 {
		s = append(s, fmt.Sprintf("%d brain_sends more than messages answered 202 (sessions %s)", a.Extra, strings.Join(a.ExtraIn, " ")))
	}
	if a.Fallbacks > 0 || a.Handovers > 0 || a.Foreign > 0 || a.BadSignatures > 0 {
		s = append(s, fmt.Sprintf("%d fallback replies, %d handovers, %d brain_sends naming another session, %d bad signatures",
			a.Fallbacks, a.Handovers, a.Foreign, a.BadSignatures))
	}
	return strings.Join(s, "; ")
}

// account matches each session's brain_sends with its messages answered 202.
func account(t *talk, r *brainReceiver) *answers {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := &answers{Repeats: r.repeats, Fallbacks: r.fallback, Handovers: r.handover, Foreign: r.foreign,
		OtherEvents: maps.Clone(r.other), Shapes: maps.Clone(r.shapes), BadSignatures: r.sink.Stats().BadSignatures}
	for i := range t.sessions {
		s := &t.sessions[i]
		s.mu.Lock()
		acc, arr, unknown := len(s.acked), len(r.arrived[s.id]), s.unknown
		s.mu.Unlock()
		a.Accepted += acc
		a.Unknown += unknown
		a.Answered += min(acc, arr)
		switch {
		case arr < acc:
			a.Missing += acc - arr
			if len(a.MissingIn) < 10 {
				a.MissingIn = append(a.MissingIn, s.id)
			}
		case arr > acc+unknown:
			// A call with no answer may have been committed, and answered: only brain_sends
			// beyond those are surely extra.
			a.Extra += arr - acc - unknown
			if len(a.ExtraIn) < 10 {
				a.ExtraIn = append(a.ExtraIn, s.id)
			}
		}
	}
	for sid, arr := range r.arrived {
		if _, ok := t.index[sid]; !ok {
			a.Extra += len(arr)
			if len(a.ExtraIn) < 10 {
				a.ExtraIn = append(a.ExtraIn, sid)
			}
		}
	}
	return a
}

// drainAnswers waits until every message answered 202 has its brain_send, or until the receiver has
// gone --drain without a new one. It returns when the last brain_send arrived.
func drainAnswers(ctx context.Context, t *talk, r *brainReceiver, stall time.Duration) (time.Time, *answers, error) {
	progress, seen := time.Now(), int64(-1)
	for {
		n := r.count.Load()
		if n != seen {
			seen, progress = n, time.Now()
			if n >= t.accepted.Load() {
				if a := account(t, r); a.Missing == 0 {
					r.mu.Lock()
					last := r.last
					r.mu.Unlock()
					return last, a, nil
				}
			}
		}
		if time.Since(progress) > stall {
			r.mu.Lock()
			last := r.last
			r.mu.Unlock()
			return last, account(t, r), nil
		}
		if !sleep(ctx, 2*time.Millisecond) {
			return time.Time{}, nil, ctx.Err()
		}
	}
}

// brainReport is what one run of the brain scenario found.
type brainReport struct {
	DB       string             `json:"db"`
	Clients  int                `json:"clients"`
	Sessions int                `json:"sessions"`
	Text     string             `json:"text"`
	Runs     []loadtest.RunJSON `json:"runs"`
	Ceiling  float64            `json:"ceiling_per_s,omitempty"`
	// The relay's answered messages per second: one in, one signed webhook out, nothing between.
	Relay        float64  `json:"relay_ceiling_per_s,omitempty"`
	RelayAnswers *answers `json:"relay_answers,omitempty"`

	Throughput brainThroughput `json:"throughput"`
	Latency    *brainLatency   `json:"latency,omitempty"`

	rows []loadtest.Row
}

type brainThroughput struct {
	Seconds      float64  `json:"seconds"`               // from the first send to the last brain_send
	AcceptedPerS float64  `json:"accepted_per_s"`        // 202s per second of the loop
	AnsweredPerS float64  `json:"answered_per_s"`        // answered messages per second of Seconds
	Ratio        float64  `json:"ratio,omitempty"`       // AnsweredPerS / the ceiling
	RelayRatio   float64  `json:"relay_ratio,omitempty"` // AnsweredPerS / the relay ceiling
	CPUPerMsgUs  float64  `json:"parley_cpu_us_per_message"`
	Backlog      int64    `json:"backlog_at_end"` // messages answered 202 and not yet answered when the loop ended
	Answers      *answers `json:"answers"`
}

type brainLatency struct {
	Rate      float64              `json:"rate_per_s"`
	Measured  int                  `json:"measured"` // answered messages sent after the warm-up
	From202   loadtest.LatencyJSON `json:"from_202_ms"`
	FromCall  loadtest.LatencyJSON `json:"from_call_ms"`
	Early     int                  `json:"answered_before_202"` // brain_sends that arrived before the client read the 202
	OpenP99   float64              `json:"open_loop_p99_ms"`    // the 202's own p99, from when each call was due
	Unsent    int                  `json:"unsent"`              // due and never sent: the open loop fell behind
	Answers   *answers             `json:"answers"`
	CPUPerMsg float64              `json:"parley_cpu_us_per_message"`
}

func brainScenario(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseBrain(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "parley-load: "+format+"\n", a...) }
	dir, cleanup, err := scratch(c.keep, logf)
	if err != nil {
		return err
	}
	defer cleanup()
	if c.parleyBin == "" {
		logf("building parley")
		if c.parleyBin, err = buildParley(ctx, dir); err != nil {
			return err
		}
	}
	var out brainOutput
	var failures []string
	for i := range c.runs {
		runDir, err := makeRunDir(dir, i, c.runs, logf)
		if err != nil {
			return err
		}
		rep, err := runBrain(ctx, c, runDir, logf)
		if err != nil {
			return err
		}
		out.Reports = append(out.Reports, rep)
		if !c.asJSON {
			if c.runs > 1 {
				fmt.Fprintf(stdout, "run %d of %d: ", i+1, c.runs)
			}
			rep.print(stdout, c)
			fmt.Fprintln(stdout)
		}
		for _, a := range []*answers{rep.Throughput.Answers, rep.latencyAnswers()} {
			if a != nil && a.failed() != "" {
				failures = append(failures, fmt.Sprintf("run %d: %s", i+1, a.failed()))
			}
		}
	}
	out.Median = brainMedian(out.Reports)
	if c.asJSON {
		if err := printJSON(stdout, out); err != nil {
			return err
		}
	} else if c.runs > 1 {
		out.Median.print(stdout)
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "\n"))
	}
	return nil
}

func (r *brainReport) latencyAnswers() *answers {
	if r.Latency == nil {
		return nil
	}
	return r.Latency.Answers
}

func runBrain(ctx context.Context, c *brainConfig, dir string, logf func(string, ...any)) (*brainReport, error) {
	rep := &brainReport{Clients: c.clients, Sessions: c.sessions, Text: c.text}
	add := func(name string, run *loadtest.Run) {
		row := loadtest.Row{Name: name, Run: run}
		rep.rows = append(rep.rows, row)
		rep.Runs = append(rep.Runs, row.JSON())
		logf("  %s %s: %.0f/s %s", name, run.Load.Describe(), run.Throughput, run.Recorder.Stats())
	}
	body, _ := json.Marshal(map[string]any{"input": map[string]string{"text": c.text}})

	// 1. The ceiling: the same requests to a server that does nothing with them.
	if c.ceiling {
		logf("ceiling: bare net/http server")
		run, err := bareCeiling(ctx, c, dir, body)
		if err != nil {
			return nil, err
		}
		add("ceiling", run)
		rep.Ceiling = run.Throughput
	}
	if c.relay {
		logf("relay ceiling: one signed brain_send per message, nothing stored")
		run, answered, a, err := relayCeiling(ctx, c, dir)
		if err != nil {
			return nil, err
		}
		add("relay ceiling", run)
		logf("  %d answered at %.0f/s", a.Answered, answered)
		rep.Relay, rep.RelayAnswers = answered, a
	}

	db, err := newDatabase(ctx, c.db, c.postgresURL, dir)
	if err != nil {
		return nil, err
	}
	rep.DB = db.Label
	defer func() {
		if c.keep {
			logf("kept database %s", db.URL)
		} else if err := db.cleanup(); err != nil {
			logf("dropping the database: %v", err)
		}
	}()
	logf("parley on %s", db.Label)
	srv, err := startParley(c.parleyBin, db.URL, adminToken, filepath.Join(dir, "parley.log"), c.cpuprofile != "")
	if err != nil {
		return nil, err
	}
	defer srv.proc.Kill()
	client := loadtest.NewClient(c.clients, 30*time.Second)
	defer client.CloseIdleConnections()
	sctx, stopReceivers := context.WithCancel(context.Background())
	defer stopReceivers()
	name := "parley " + db.Label

	// setup makes an integration with the default brain (the demo dialog) and default delivery,
	// whose webhooks go to a new receiver, and its sessions.
	setup := func(phase string) (*talk, *brainReceiver, error) {
		r := newBrainReceiver()
		url, _, err := loadtest.Serve(sctx, "127.0.0.1:0", r)
		if err != nil {
			return nil, nil, err
		}
		in, err := createIntegration(ctx, client, srv.URL, adminToken, url, webhookSecret, nil)
		if err != nil {
			return nil, nil, err
		}
		sessions, run, err := createSessions(ctx, client, srv.URL, in, c.sessions, c.clients)
		if err != nil {
			return nil, nil, err
		}
		add(name+" sessions ("+phase+")", run)
		return newTalk(client, srv.URL, in, sessions, c.text), r, nil
	}

	// 2. Throughput: a closed loop, and the clock runs until the last answer arrives.
	how := c.duration.String()
	if c.messages > 0 {
		how = fmt.Sprintf("%d messages", c.messages)
	}
	logf("throughput: closed loop of %d clients over %d sessions for %s", c.clients, c.sessions, how)
	t, r, err := setup("throughput")
	if err != nil {
		return nil, err
	}
	var profiled chan error
	if c.cpuprofile != "" {
		profiled = make(chan error, 1)
		go func() { profiled <- cpuProfile(ctx, srv.PprofAddr, 0, c.duration, c.cpuprofile) }()
	}
	load := loadtest.Load{Clients: c.clients, Duration: c.duration, ServerCPU: srv.proc.CPU}
	if c.messages > 0 {
		load.Duration, load.Requests = 0, c.messages
	}
	cpu0, _ := srv.proc.CPU()
	start := time.Now()
	run, err := load.Run(ctx, t.request)
	if err != nil {
		return nil, err
	}
	add(name+" throughput", run)
	tp := &rep.Throughput
	tp.Backlog = t.accepted.Load() - r.count.Load()
	tp.AcceptedPerS = float64(t.accepted.Load()) / run.Elapsed.Seconds()
	logf("  %d accepted at %.0f/s, %d answered so far; waiting for the rest", t.accepted.Load(), tp.AcceptedPerS, r.count.Load())
	last, a, err := drainAnswers(ctx, t, r, c.drain)
	if err != nil {
		return nil, err
	}
	cpu1, _ := srv.proc.CPU()
	tp.Answers = a
	tp.Seconds = last.Sub(start).Seconds()
	if a.Answered > 0 {
		tp.AnsweredPerS = float64(a.Answered) / tp.Seconds
		tp.CPUPerMsgUs = float64((cpu1 - cpu0).Microseconds()) / float64(a.Answered)
	}
	if rep.Ceiling > 0 {
		tp.Ratio = tp.AnsweredPerS / rep.Ceiling
	}
	if rep.Relay > 0 {
		tp.RelayRatio = tp.AnsweredPerS / rep.Relay
	}
	logf("  %d answered at %.0f/s (%.1f s from the first send to the last answer)", a.Answered, tp.AnsweredPerS, tp.Seconds)
	if profiled != nil {
		if err := <-profiled; err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		logf("wrote %s", c.cpuprofile)
	}

	// 3. Latency at a steady rate.
	var lt *talk
	var lr *brainReceiver
	if c.rate > 0 {
		logf("latency: open loop at %.0f/s for %s", c.rate, c.duration)
		if lt, lr, err = setup("latency"); err != nil {
			return nil, err
		}
		load := loadtest.Load{Clients: c.clients, Rate: c.rate, Duration: c.duration, Warmup: c.warmup, ServerCPU: srv.proc.CPU}
		cpu0, _ := srv.proc.CPU()
		run, err := load.Run(ctx, lt.request)
		if err != nil {
			return nil, err
		}
		add(name+" latency", run)
		if _, _, err := drainAnswers(ctx, lt, lr, c.drain); err != nil {
			return nil, err
		}
		cpu1, _ := srv.proc.CPU()
		// The open loop measures the requests due after the warm-up: those numbered from this.
		rep.Latency = latencies(lt, lr, int64(math.Ceil(c.warmup.Seconds()*c.rate)))
		rep.Latency.Rate = c.rate
		rep.Latency.OpenP99 = float64(run.Recorder.Stats().P99.Microseconds()) / 1000
		rep.Latency.Unsent = run.Unsent
		if n := rep.Latency.Answers.Answered; n > 0 {
			rep.Latency.CPUPerMsg = float64((cpu1 - cpu0).Microseconds()) / float64(n)
		}
		logf("  from the 202 p50 %.2f ms p99 %.2f ms", rep.Latency.From202.P50, rep.Latency.From202.P99)
	}

	// Answers that come late, or twice, count too: account again once parley has stopped.
	if err := srv.proc.Stop(15 * time.Second); err != nil {
		return nil, fmt.Errorf("parley did not stop cleanly: %w", err)
	}
	rep.Throughput.Answers = account(t, r)
	if lt != nil {
		rep.Latency.Answers = account(lt, lr)
	}
	return rep, nil
}

// latencies pairs each session's k-th message answered 202 with its k-th brain_send, for the
// messages numbered from on.
func latencies(t *talk, r *brainReceiver, from int64) *brainLatency {
	var from202, fromCall []time.Duration
	early := 0
	r.mu.Lock()
	for i := range t.sessions {
		s := &t.sessions[i]
		s.mu.Lock()
		arr := r.arrived[s.id]
		for k := range min(len(s.acked), len(arr)) {
			if s.nums[k] < from {
				continue
			}
			d := arr[k].Sub(s.acked[k])
			if d < 0 {
				early++
				d = 0
			}
			from202 = append(from202, d)
			fromCall = append(fromCall, arr[k].Sub(s.sent[k]))
		}
		s.mu.Unlock()
	}
	r.mu.Unlock()
	return &brainLatency{Measured: len(from202), From202: distribution(from202), FromCall: distribution(fromCall),
		Early: early, Answers: account(t, r)} // account locks r.mu itself
}

func distribution(ds []time.Duration) loadtest.LatencyJSON {
	if len(ds) == 0 {
		return loadtest.LatencyJSON{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return loadtest.LatencyJSON{Min: ms(ds[0]), Mean: ms(sum / time.Duration(len(ds))),
		P50: ms(loadtest.Percentile(ds, 50)), P90: ms(loadtest.Percentile(ds, 90)), P99: ms(loadtest.Percentile(ds, 99)),
		P999: ms(loadtest.Percentile(ds, 99.9)), Max: ms(ds[len(ds)-1])}
}

// fakeIntegration and fakeSessions are what the clients name when they talk to a server that
// checks no keys and keeps no sessions (the bare server, the relay).
var fakeIntegration = &integration{ID: "00000000-0000-4000-8000-000000000001", Key: "pk_" + strings.Repeat("x", 43)}

func fakeSessions(n int) []string {
	sessions := make([]string, n)
	for i := range sessions {
		sessions[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	return sessions
}

// bareCeiling measures the messages scenario's ceiling with the brain scenario's requests: a
// bare net/http server that reads each message and answers 202, in a closed loop.
func bareCeiling(ctx context.Context, c *brainConfig, dir string, body []byte) (*loadtest.Run, error) {
	bare, err := startBareServer(filepath.Join(dir, "bare-server.log"))
	if err != nil {
		return nil, err
	}
	defer bare.Kill()
	client := loadtest.NewClient(c.clients, 30*time.Second)
	defer client.CloseIdleConnections()
	req := postMessage(client, "http://"+bare.Addr, fakeIntegration, fakeSessions(c.sessions), func(int64) []byte { return body }, nil)
	run, err := loadtest.Load{Clients: c.clients, Duration: c.duration, Warmup: c.warmup, ServerCPU: bare.CPU}.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	return run, bare.Stop(5 * time.Second)
}

// relayCeiling measures the relay (relay.go) as the throughput phase measures parley: a closed
// loop of the same requests, and the clock runs from the first send until the last answer
// reaches a receiver like parley's. It returns the answered messages per second.
func relayCeiling(ctx context.Context, c *brainConfig, dir string) (*loadtest.Run, float64, *answers, error) {
	sctx, stopReceiver := context.WithCancel(ctx)
	defer stopReceiver()
	r := newBrainReceiver()
	url, _, err := loadtest.Serve(sctx, "127.0.0.1:0", r)
	if err != nil {
		return nil, 0, nil, err
	}
	relay, err := startRelay(filepath.Join(dir, "relay.log"), url, c.text)
	if err != nil {
		return nil, 0, nil, err
	}
	defer relay.Kill()
	client := loadtest.NewClient(c.clients, 30*time.Second)
	defer client.CloseIdleConnections()
	t := newTalk(client, "http://"+relay.Addr, fakeIntegration, fakeSessions(c.sessions), c.text)
	start := time.Now()
	load := loadtest.Load{Clients: c.clients, Duration: c.duration, ServerCPU: relay.CPU}
	if c.messages > 0 { // as parley's throughput phase
		load.Duration, load.Requests = 0, c.messages
	}
	run, err := load.Run(ctx, t.request)
	if err != nil {
		return nil, 0, nil, err
	}
	last, a, err := drainAnswers(ctx, t, r, c.drain)
	if err != nil {
		return nil, 0, nil, err
	}
	if f := a.failed(); f != "" {
		return nil, 0, nil, fmt.Errorf("relay ceiling: %s", f)
	}
	return run, float64(a.Answered) / last.Sub(start).Seconds(), a, relay.Stop(5 * time.Second)
}

// Targets of the issue, printed beside the figures.
const (
	brainTargetPerS   = 10_000
	brainTargetP99Ms  = 25
	brainTargetRateHz = 2000
)

func (r *brainReport) print(w io.Writer, c *brainConfig) {
	fmt.Fprintf(w, "brain (demo dialog) on %s: %d clients, %d sessions, each message %q\n\n", r.DB, r.Clients, r.Sessions, r.Text)
	loadtest.PrintTable(w, r.rows)
	fmt.Fprintln(w)
	tp := r.Throughput
	ratio := ""
	if r.Ceiling > 0 {
		ratio = fmt.Sprintf(" = %.1f%% of the ceiling %.0f/s", 100*tp.Ratio, r.Ceiling)
	}
	if r.Relay > 0 {
		ratio += fmt.Sprintf(" = %.1f%% of the relay ceiling %.0f/s", 100*tp.RelayRatio, r.Relay)
	}
	fmt.Fprintf(w, "throughput: %d messages accepted at %.0f/s, answered at %.0f/s%s (target ≥ %d/s); %.1f s from the first send to the last answer, backlog %d when the loop ended; parley CPU %.0f µs/message\n",
		tp.Answers.Accepted, tp.AcceptedPerS, tp.AnsweredPerS, ratio, brainTargetPerS, tp.Seconds, tp.Backlog, tp.CPUPerMsgUs)
	printAnswers(w, tp.Answers)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "latency at %.0f/s: %d messages; from the 202 to the brain_send p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.1f ms (target p99 < %d ms at %d/s); from the call's start p50 %.2f ms p99 %.2f ms; the 202 itself p99 %.2f ms; parley CPU %.0f µs/message\n",
			l.Rate, l.Measured, l.From202.P50, l.From202.P90, l.From202.P99, l.From202.Max, brainTargetP99Ms, brainTargetRateHz,
			l.FromCall.P50, l.FromCall.P99, l.OpenP99, l.CPUPerMsg)
		if l.Unsent > 0 {
			fmt.Fprintf(w, "            BEHIND: %d messages due were never sent; parley does not sustain %.0f/s here, and these are the latencies of an overloaded server\n", l.Unsent, l.Rate)
		}
		if l.Early > 0 {
			fmt.Fprintf(w, "            %d brain_sends arrived before the client had read their 202 (counted as 0)\n", l.Early)
		}
		printAnswers(w, l.Answers)
	}
}

func printAnswers(w io.Writer, a *answers) {
	shapes := make([]string, 0, len(a.Shapes))
	for s, n := range a.Shapes {
		shapes = append(shapes, fmt.Sprintf("%s×%d", s, n))
	}
	slices.Sort(shapes)
	fmt.Fprintf(w, "            answers: %d of %d answered, %d missing, %d extra, %d calls unanswered, %d repeated deliveries; sampled replies %s\n",
		a.Answered, a.Accepted, a.Missing, a.Extra, a.Unknown, a.Repeats, strings.Join(shapes, " "))
	if f := a.failed(); f != "" {
		fmt.Fprintf(w, "            FAILED: %s\n", f)
	}
	if len(a.OtherEvents) > 0 {
		fmt.Fprintf(w, "            other events: %v\n", a.OtherEvents)
	}
}

// brainOutput is every run's report and the medians over the runs.
type brainOutput struct {
	Reports []*brainReport `json:"reports"`
	Median  brainSummary   `json:"median"`
}

type brainSummary struct {
	Runs         int     `json:"runs"`
	Ceiling      float64 `json:"ceiling_per_s"`
	AcceptedPerS float64 `json:"accepted_per_s"`
	AnsweredPerS float64 `json:"answered_per_s"`
	Ratio        float64 `json:"ratio"`
	Relay        float64 `json:"relay_ceiling_per_s,omitempty"`
	RelayRatio   float64 `json:"relay_ratio,omitempty"`
	CPUPerMsgUs  float64 `json:"parley_cpu_us_per_message"`
	From202P50   float64 `json:"from_202_p50_ms"`
	From202P99   float64 `json:"from_202_p99_ms"`
	Missing      int     `json:"missing"` // all runs
	Extra        int     `json:"extra"`   // all runs
	answered     []float64
	p99s         []float64
}

func brainMedian(reps []*brainReport) brainSummary {
	m := brainSummary{Runs: len(reps)}
	var cols [9][]float64
	for _, r := range reps {
		vals := [9]float64{r.Ceiling, r.Throughput.AcceptedPerS, r.Throughput.AnsweredPerS, r.Throughput.Ratio, r.Throughput.CPUPerMsgUs, 0, 0,
			r.Relay, r.Throughput.RelayRatio}
		m.Missing += r.Throughput.Answers.Missing
		m.Extra += r.Throughput.Answers.Extra
		if l := r.Latency; l != nil {
			vals[5], vals[6] = l.From202.P50, l.From202.P99
			m.Missing += l.Answers.Missing
			m.Extra += l.Answers.Extra
		}
		for i, v := range vals {
			cols[i] = append(cols[i], v)
		}
	}
	m.answered, m.p99s = slices.Clone(cols[2]), slices.Clone(cols[6])
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
	m.Ceiling, m.AcceptedPerS, m.AnsweredPerS, m.Ratio = mid(cols[0]), mid(cols[1]), mid(cols[2]), mid(cols[3])
	m.CPUPerMsgUs, m.From202P50, m.From202P99 = mid(cols[4]), mid(cols[5]), mid(cols[6])
	m.Relay, m.RelayRatio = mid(cols[7]), mid(cols[8])
	return m
}

func (m brainSummary) print(w io.Writer) {
	list := func(v []float64, unit string) string {
		var s []string
		for _, x := range v {
			s = append(s, strconv.FormatFloat(x, 'f', 0, 64)+unit)
		}
		return strings.Join(s, " ")
	}
	ratio := ""
	if m.Ceiling > 0 {
		ratio = fmt.Sprintf(" = %.1f%% of the ceiling %.0f/s (median of the runs' ratios)", 100*m.Ratio, m.Ceiling)
	}
	if m.Relay > 0 {
		ratio += fmt.Sprintf(" = %.1f%% of the relay ceiling %.0f/s", 100*m.RelayRatio, m.Relay)
	}
	fmt.Fprintf(w, "median of %d runs: accepted %.0f/s, answered %.0f/s%s (runs: %s); parley CPU %.0f µs/message\n",
		m.Runs, m.AcceptedPerS, m.AnsweredPerS, ratio, list(m.answered, "/s"), m.CPUPerMsgUs)
	if m.From202P99 > 0 {
		var p99s []string
		for _, v := range m.p99s {
			p99s = append(p99s, fmt.Sprintf("%.1fms", v))
		}
		fmt.Fprintf(w, "latency from the 202 to the brain_send: p50 %.2f ms, p99 %.2f ms (runs: %s)\n", m.From202P50, m.From202P99, strings.Join(p99s, " "))
	}
	fmt.Fprintf(w, "answers missing, all runs: %d; extra: %d\n", m.Missing, m.Extra)
}
