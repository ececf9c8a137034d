package loadtest

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one measured phase of a report.
type Row struct {
	Name string // what was measured: "ceiling", "parley sqlite"
	Run  *Run
}

// Describe names a load: "closed 64" or "open 2000/s (64)".
func (l Load) Describe() string {
	if l.Rate <= 0 {
		return fmt.Sprintf("closed %d", l.Clients)
	}
	return fmt.Sprintf("open %s/s (%d)", strconv.FormatFloat(l.Rate, 'f', -1, 64), l.Clients)
}

// PrintTable writes the rows as an aligned table: requests, outcomes other than success,
// throughput and the latency percentiles.
func PrintTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tload\trequests\tok\tthroughput/s\tp50\tp90\tp99\tp99.9\tmax\tserver cpu/req\tclient cpu/req\tother outcomes\t")
	for _, r := range rows {
		s := r.Run.Recorder.Stats()
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Name, r.Run.Load.Describe(),
			s.Count, r.Run.OK(), r.Run.Throughput, FormatDuration(s.P50), FormatDuration(s.P90),
			FormatDuration(s.P99), FormatDuration(s.P999), FormatDuration(s.Max),
			perRequest(r.Run.ServerCPU, s.Count), perRequest(r.Run.ClientCPU, s.Count), r.Run.Others())
	}
	tw.Flush()
}

// perRequest formats a CPU time divided among n requests, or "-" when it is unknown.
func perRequest(cpu time.Duration, n int) string {
	if cpu <= 0 || n == 0 {
		return "-"
	}
	return FormatDuration(cpu / time.Duration(n))
}

// Others lists the outcomes that were not 2xx, and the unsent requests, most frequent first:
// "503×12 error: refused×3". It is "-" when there were none.
func (r *Run) Others() string {
	counts := r.Recorder.Outcomes()
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	var parts []string
	for _, k := range keys {
		if len(k) == 3 && k[0] == '2' {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s×%d", k, counts[k]))
	}
	if r.Unsent > 0 {
		parts = append(parts, fmt.Sprintf("unsent×%d", r.Unsent))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// FormatDuration prints a latency with three significant digits in a unit that suits it:
// 87µs, 1.25ms, 12.3ms, 1.20s.
func FormatDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return trim3(float64(d)/float64(time.Millisecond)) + "ms"
	default:
		return trim3(d.Seconds()) + "s"
	}
}

func trim3(v float64) string {
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

// RunJSON is a Run in machine-readable form, latencies in milliseconds.
type RunJSON struct {
	Name       string         `json:"name"`
	Load       string         `json:"load"`
	Clients    int            `json:"clients"`
	Rate       float64        `json:"rate,omitempty"`
	Seconds    float64        `json:"seconds"`
	Requests   int            `json:"requests"`
	OK         int            `json:"ok"`
	Outcomes   map[string]int `json:"outcomes"`
	Unsent     int            `json:"unsent,omitempty"`
	Throughput float64        `json:"throughput_per_s"`
	Latency    LatencyJSON    `json:"latency_ms"`
	// CPU time per request in microseconds; 0 when unknown.
	ServerCPU float64 `json:"server_cpu_us_per_req,omitempty"`
	ClientCPU float64 `json:"client_cpu_us_per_req,omitempty"`
}

// LatencyJSON is a latency distribution in milliseconds.
type LatencyJSON struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// JSON returns the row in machine-readable form.
func (r Row) JSON() RunJSON {
	s := r.Run.Recorder.Stats()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	us := func(d time.Duration) float64 {
		if s.Count == 0 {
			return 0
		}
		return float64(d.Nanoseconds()) / 1000 / float64(s.Count)
	}
	return RunJSON{ServerCPU: us(r.Run.ServerCPU), ClientCPU: us(r.Run.ClientCPU), Name: r.Name, Load: r.Run.Load.Describe(), Clients: r.Run.Load.Clients, Rate: r.Run.Load.Rate,
		Seconds: r.Run.Elapsed.Seconds(), Requests: s.Count, OK: r.Run.OK(), Outcomes: r.Run.Recorder.Outcomes(),
		Unsent: r.Run.Unsent, Throughput: r.Run.Throughput,
		Latency: LatencyJSON{Min: ms(s.Min), Mean: ms(s.Mean), P50: ms(s.P50), P90: ms(s.P90), P99: ms(s.P99),
			P999: ms(s.P999), Max: ms(s.Max)}}
}
