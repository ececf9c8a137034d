// Package metrics keeps counters and histograms and writes them in the Prometheus text format
// for /metrics. It is deliberately small: lock-free updates on hot paths, labels fixed at
// registration or looked up in a sync.Map, no dependencies.
package metrics

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds metrics in the order they were registered.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
}

type metric interface {
	write(w io.Writer)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(m metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics = append(r.metrics, m)
}

// Write writes every metric in the Prometheus text exposition format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	ms := slices.Clone(r.metrics)
	r.mu.Unlock()
	for _, m := range ms {
		m.write(w)
	}
}

// CounterVec is a family of counters told apart by label values.
type CounterVec struct {
	name, help string
	labels     []string
	values     sync.Map // joined label values -> *atomic.Int64
}

// NewCounterVec registers a counter family.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{name: name, help: help, labels: labels}
	r.add(c)
	return c
}

// Add adds n to the counter with the given label values (in registration order).
func (c *CounterVec) Add(n int64, values ...string) {
	key := strings.Join(values, "\xff")
	v, ok := c.values.Load(key)
	if !ok {
		v, _ = c.values.LoadOrStore(key, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(n)
}

// Inc adds one.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

func (c *CounterVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
	for _, kv := range sortedEntries(&c.values) {
		fmt.Fprintf(w, "%s%s %d\n", c.name, labelString(c.labels, kv.key, ""), kv.v.(*atomic.Int64).Load())
	}
}

// Gauge is a value read when metrics are written.
type Gauge struct {
	name, help string
	read       func() float64
}

// NewGauge registers a gauge whose value read returns.
func (r *Registry) NewGauge(name, help string, read func() float64) {
	r.add(&Gauge{name: name, help: help, read: read})
}

func (g *Gauge) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", g.name, g.help, g.name, g.name, g.read())
}

// HistogramVec is a family of histograms of durations in seconds.
type HistogramVec struct {
	name, help string
	labels     []string
	buckets    []float64
	values     sync.Map // joined label values -> *histogram
}

type histogram struct {
	counts []atomic.Int64 // one per bucket, then +Inf
	sum    atomic.Uint64  // float64 bits
}

// DefaultBuckets spans 100 µs to 10 s.
var DefaultBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewHistogramVec registers a histogram family with DefaultBuckets.
func (r *Registry) NewHistogramVec(name, help string, labels ...string) *HistogramVec {
	h := &HistogramVec{name: name, help: help, labels: labels, buckets: DefaultBuckets}
	r.add(h)
	return h
}

// Observe records a duration.
func (h *HistogramVec) Observe(d time.Duration, values ...string) {
	key := strings.Join(values, "\xff")
	v, ok := h.values.Load(key)
	if !ok {
		v, _ = h.values.LoadOrStore(key, &histogram{counts: make([]atomic.Int64, len(h.buckets)+1)})
	}
	hist := v.(*histogram)
	s := d.Seconds()
	i := sort.SearchFloat64s(h.buckets, s)
	hist.counts[i].Add(1)
	for {
		old := hist.sum.Load()
		if hist.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+s)) {
			break
		}
	}
}

func (h *HistogramVec) write(w io.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, h.help, h.name)
	for _, kv := range sortedEntries(&h.values) {
		hist := kv.v.(*histogram)
		var cum int64
		for i, b := range h.buckets {
			cum += hist.counts[i].Load()
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelString(h.labels, kv.key, fmt.Sprintf("%g", b)), cum)
		}
		cum += hist.counts[len(h.buckets)].Load()
		fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelString(h.labels, kv.key, "+Inf"), cum)
		fmt.Fprintf(w, "%s_sum%s %g\n", h.name, labelString(h.labels, kv.key, ""), math.Float64frombits(hist.sum.Load()))
		fmt.Fprintf(w, "%s_count%s %d\n", h.name, labelString(h.labels, kv.key, ""), cum)
	}
}

type entry struct {
	key string
	v   any
}

func sortedEntries(m *sync.Map) []entry {
	var out []entry
	m.Range(func(k, v any) bool {
		out = append(out, entry{k.(string), v})
		return true
	})
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	return out
}

// labelString renders {a="x",b="y"} (plus le= for a bucket), escaping values.
func labelString(names []string, joined, le string) string {
	var parts []string
	if len(names) > 0 {
		for i, v := range strings.Split(joined, "\xff") {
			if i < len(names) {
				parts = append(parts, fmt.Sprintf("%s=%q", names[i], v))
			}
		}
	}
	if le != "" {
		parts = append(parts, fmt.Sprintf("le=%q", le))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, ",") + "}"
}
