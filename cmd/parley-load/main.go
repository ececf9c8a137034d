// Command parley-load is parley's load harness. It starts the servers it measures as separate
// processes on loopback, drives them from many keep-alive clients, and prints throughput and
// latency percentiles. Every run stops by itself and cleans up after itself.
//
// Run the whole measurement of the inbound API from the repository root with one command:
//
//	go run ./cmd/parley-load messages                 # SQLite
//	go run ./cmd/parley-load messages --db postgres   # PostgreSQL (PARLEY_TEST_POSTGRES_URL or --postgres-url)
//	go run ./cmd/parley-load messages --kill9         # also: kill -9 under load, restart, count lost messages
//	go run ./cmd/parley-load messages --runs 5        # five times, then the medians
//	go run ./cmd/parley-load brain                    # messages answered by the demo dialog, end to end
//
// The messages scenario measures, in order:
//
//  1. the ceiling: a bare net/http server (this same binary, re-executed) that reads the body and
//     answers 202 with a small JSON body, driven exactly like parley (same clients, same
//     requests); its closed-loop throughput is what this machine can do at all;
//  2. parley serve (built with go build unless --parley-bin names a binary) on a fresh SQLite
//     file or PostgreSQL schema: an integration and --sessions sessions are created through the
//     APIs, then POST /v1/custom/{integration}/sessions/{session}/messages is driven in a closed
//     loop (throughput) and in an open loop at --rate (latency under that load; "auto" is
//     --target-ratio of the ceiling, the target);
//  3. that every message answered 202 is in the session's history (GET .../messages);
//  4. with --kill9, durability: parley is killed with SIGKILL in the middle of a closed loop,
//     restarted on the same database, and every message that got a 202 must be there.
//
// A closed loop gives each client one request in flight at a time, so it measures throughput.
// An open loop sends requests when they are due at a fixed rate and measures each from when it
// was due, so a stall is charged for every request it held up (no coordinated omission).
// Latencies are kept exactly; percentiles are nearest-rank.
//
// The clients share the machine with the server. On a machine where other work runs, use
// --runs and compare medians; the CPU time per request columns vary less than the throughput
// does. --cpuprofile writes a CPU profile of parley during its closed loop (parley
// serves pprof on a loopback port for it), and --json prints the results for scripts.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// roleEnv marks a re-executed harness that must be the bare server instead.
const roleEnv = "PARLEY_LOAD_ROLE"

func main() {
	switch os.Getenv(roleEnv) {
	case roleBareServer:
		os.Exit(bareServer(os.Stderr))
	case roleRelay:
		os.Exit(relay(os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// scenario is one subcommand: a kind of load and what it checks.
type scenario struct {
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// scenarios will grow: webhook delivery, brain replies end to end, agent live streams.
func scenarios() map[string]scenario {
	return map[string]scenario{
		"messages":   {"POST user messages: throughput and latency against the bare-server ceiling, durability", messages},
		"brain":      {"user messages answered by the demo dialog end to end: answers/s against the ceiling, latency to the brain_send", brainScenario},
		"deliveries": {"webhook delivery: throughput of a backlog, latency at a steady rate, isolation from a slow endpoint", deliveries},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	all := scenarios()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, all)
		return 0
	}
	sc, ok := all[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "parley-load: unknown scenario %q\n\n", args[0])
		usage(stderr, all)
		return 2
	}
	if err := sc.run(ctx, args[1:], stdout, stderr); err != nil {
		if err == errUsage {
			return 2
		}
		fmt.Fprintf(stderr, "parley-load %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, all map[string]scenario) {
	fmt.Fprintln(w, "usage: parley-load <scenario> [flags]\n\nscenarios:")
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, all[n].usage)
	}
	fmt.Fprintln(w, "\nparley-load <scenario> -h lists a scenario's flags.")
}
