package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/testenv"
)

func TestMain(m *testing.M) {
	// The harness re-executes itself as the bare server; under test, itself is the test binary.
	switch os.Getenv(roleEnv) {
	case roleBareServer:
		os.Exit(bareServer(os.Stderr))
	case roleRelay:
		os.Exit(relay(os.Stderr))
	}
	os.Exit(m.Run())
}

// TestMessages runs the whole messages scenario briefly, kill -9 included, and checks what it
// reports about correctness. Its timings are printed, never asserted.
func TestMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds parley and runs load for a few seconds")
	}
	args := []string{"messages", "--duration", "300ms", "--warmup", "100ms", "--clients", "8", "--sessions", "20",
		"--rate", "200", "--open-clients", "12", "--kill9", "--json"}
	openProfile := filepath.Join(t.TempDir(), "open.prof")
	args = append(args, "--open-cpuprofile", openProfile)
	if os.Getenv("PARLEY_LOAD_TEST_DB") == "postgres" {
		args = append(args, "--db", "postgres", "--postgres-url", testenv.PostgresURL(t))
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	t.Log(stderr.String())
	var out messagesOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Reports) != 1 {
		t.Fatalf("output is not the JSON report of one run: %v\n%s", err, stdout.String())
	}
	rep := out.Reports[0]
	if len(rep.Runs) != 5 {
		t.Fatalf("%d runs, want ceiling closed and open, sessions, parley closed and open: %s", len(rep.Runs), stdout.String())
	}
	for _, r := range rep.Runs {
		if r.Requests == 0 || r.OK != r.Requests {
			t.Errorf("%s %s: %d requests, %d ok: %v", r.Name, r.Load, r.Requests, r.OK, r.Outcomes)
		}
		if want := map[bool]int{false: 8, true: 12}[r.Rate > 0]; r.Clients != want {
			t.Errorf("%s %s: %d clients, want %d", r.Name, r.Load, r.Clients, want)
		}
	}
	if rep.Accepted == 0 || rep.Lost != 0 {
		t.Errorf("accepted %d, lost %d", rep.Accepted, rep.Lost)
	}
	if rep.Kill9 == nil || rep.Kill9.AcceptedBeforeKill == 0 || rep.Kill9.Lost != 0 {
		t.Errorf("kill -9: %+v", rep.Kill9)
	}
	if rep.Ceiling <= 0 || rep.Parley <= 0 || rep.Webhooks.BadSignatures != 0 {
		t.Errorf("report %+v", rep)
	}
	if m := out.Median; m.Runs != 1 || m.Parley != rep.Parley || m.OpenRate != 200 || m.OpenP99Ms <= 0 || m.Lost != 0 {
		t.Errorf("median %+v", m)
	}
	if fi, err := os.Stat(openProfile); err != nil || fi.Size() == 0 {
		t.Errorf("no CPU profile of the open loop: %v", err)
	}
}

// TestBrain runs the brain scenario briefly and checks that every message answered 202 got
// exactly one message:brain_send from the demo dialog. Its timings are printed, never asserted.
func TestBrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds parley and runs load for a few seconds")
	}
	args := []string{"brain", "--duration", "300ms", "--warmup", "100ms", "--clients", "8", "--sessions", "20",
		"--rate", "200", "--json"}
	if os.Getenv("PARLEY_LOAD_TEST_DB") == "postgres" {
		args = append(args, "--db", "postgres", "--postgres-url", testenv.PostgresURL(t))
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	t.Log(stderr.String())
	var out brainOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Reports) != 1 {
		t.Fatalf("output is not the JSON report of one run: %v\n%s", err, stdout.String())
	}
	rep := out.Reports[0]
	if rep.Ceiling <= 0 || rep.Relay <= 0 || rep.Throughput.AnsweredPerS <= 0 || rep.Throughput.RelayRatio <= 0 ||
		rep.Latency == nil || rep.Latency.Measured == 0 {
		t.Fatalf("report %s", stdout.String())
	}
	for _, a := range []*answers{rep.RelayAnswers, rep.Throughput.Answers, rep.Latency.Answers} {
		if a.Accepted == 0 || a.Answered != a.Accepted || a.failed() != "" || len(a.OtherEvents) > 0 {
			t.Errorf("answers %+v", a)
		}
	}
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), nil, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "messages") {
		t.Errorf("exit %d, usage %q", code, stdout.String())
	}
	for _, args := range [][]string{{"nonsense"}, {"messages", "--db", "oracle"}, {"messages", "--rate", "fast"}, {"messages", "--open-clients", "0"},
		{"messages", "--rate", "0", "--open-cpuprofile", "open.prof"}, {"messages", "--cpuprofile", "p", "--open-cpuprofile", "p"},
		{"brain", "--db", "oracle"}, {"brain", "--rate", "-1"}} {
		stderr.Reset()
		if code := run(t.Context(), args, &stdout, &stderr); code == 0 {
			t.Errorf("%q: exit 0", args)
		}
	}
}

// TestRelayAnswersTheText: the relay answers what parley's demo dialog answers to the text the
// users say (--text), not always to the default one.
func TestRelayAnswersTheText(t *testing.T) {
	for text, want := range map[string]string{demoText: `"type":"image"`, "What plans do you have?": `"type":"carousel"`} {
		r, err := newRelayHandler("http://127.0.0.1:9/", text)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.responses), want) {
			t.Errorf("%q: the relay answers %s, want %s in it", text, r.responses, want)
		}
	}
}
