// Package loadtest is the machinery of parley's load harness (cmd/parley-load): it starts and
// kills server processes, drives HTTP load from many keep-alive clients in a closed loop (for
// throughput) or an open loop at a fixed rate (for latency under a given load), records every
// latency exactly, prints reports, and receives webhooks on loopback.
//
// Each load scenario (messages today; webhook delivery, brain replies and agent streams later) is
// a subcommand of cmd/parley-load built from these pieces.
//
// It must never aim load at anything but loopback, nor run without a deadline: every Load stops
// by itself.
package loadtest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
)

// Outcome is how one request ended.
type Outcome struct {
	Status int   // HTTP status; 0 when no response arrived
	Err    error // transport error, or nil
}

// OK reports whether the request got a 2xx response.
func (o Outcome) OK() bool { return o.Err == nil && o.Status >= 200 && o.Status < 300 }

// Key is how the outcome is counted: the status code, or a short name of the error.
func (o Outcome) Key() string {
	if o.Err != nil {
		return "error: " + ErrorKind(o.Err)
	}
	return strconv.Itoa(o.Status)
}

// Recorder keeps every latency of a run, and counts outcomes. It is not safe for concurrent
// use: give each client its own and Merge them at the end, so recording costs no lock.
// Exactness is cheap here: a run of a million requests keeps 8 MB.
type Recorder struct {
	samples  []time.Duration
	outcomes map[string]int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{outcomes: map[string]int{}} }

// Record adds one request.
func (r *Recorder) Record(d time.Duration, o Outcome) {
	r.samples = append(r.samples, d)
	r.outcomes[o.Key()]++
}

// Merge adds every request of others to r.
func (r *Recorder) Merge(others ...*Recorder) {
	for _, o := range others {
		r.samples = append(r.samples, o.samples...)
		for k, n := range o.outcomes {
			r.outcomes[k] += n
		}
	}
}

// Count returns how many requests were recorded.
func (r *Recorder) Count() int { return len(r.samples) }

// Outcomes returns the count of each outcome key ("202", "503", "error: refused").
func (r *Recorder) Outcomes() map[string]int { return maps.Clone(r.outcomes) }

// Stats summarizes the latencies.
func (r *Recorder) Stats() Stats {
	s := Stats{Count: len(r.samples)}
	if s.Count == 0 {
		return s
	}
	sorted := slices.Clone(r.samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Mean = sum / time.Duration(len(sorted))
	s.P50 = Percentile(sorted, 50)
	s.P90 = Percentile(sorted, 90)
	s.P99 = Percentile(sorted, 99)
	s.P999 = Percentile(sorted, 99.9)
	return s
}

// Stats is a latency distribution.
type Stats struct {
	Count                               int
	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank method:
// the smallest sample that at least p% of the samples do not exceed. It is always a sample that
// was observed, never an interpolation.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	// The small epsilon keeps p·n that is whole in decimal (99.9% of 1000) from rounding up
	// to the next rank through binary floating point.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// String formats the distribution on one line, for logs.
func (s Stats) String() string {
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", s.Count,
		FormatDuration(s.P50), FormatDuration(s.P90), FormatDuration(s.P99), FormatDuration(s.P999), FormatDuration(s.Max))
}
