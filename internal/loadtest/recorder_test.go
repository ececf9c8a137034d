package loadtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond // 1..100 ms
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", ms(7), 99.9, 7 * time.Millisecond},
		{"p0 is the minimum", ms(1, 2, 3), 0, time.Millisecond},
		{"p100 is the maximum", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"median of an odd count", ms(1, 2, 3), 50, 2 * time.Millisecond},
		// Nearest rank: the smallest sample that half the samples do not exceed.
		{"median of an even count", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the max", hundred, 99.9, 100 * time.Millisecond},
		{"p99.9 of 1..1000", thousand, 99.9, 999 * time.Millisecond},
		{"p99 of 1..1000", thousand, 99, 990 * time.Millisecond},
		// One slow request in a hundred stays above the p99; two reach it.
		{"one outlier in 100 is above p99", append(ms(make([]int, 99)...), time.Second), 99, 0},
		{"two outliers in 100 reach p99", append(ms(make([]int, 98)...), time.Second, time.Second), 99, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestRecorderStatsAndMerge(t *testing.T) {
	// Ten recorders each get a shuffled tenth of 1..1000 ms; merged, they are exactly 1..1000.
	all := make([]time.Duration, 1000)
	for i := range all {
		all[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	recs := make([]*Recorder, 10)
	for i := range recs {
		recs[i] = NewRecorder()
		for _, d := range all[i*100 : (i+1)*100] {
			o := Outcome{Status: 202}
			if d == 500*time.Millisecond {
				o = Outcome{Status: 503}
			}
			if d == 600*time.Millisecond {
				o = Outcome{Err: fmt.Errorf("post: %w", syscall.ECONNREFUSED)}
			}
			recs[i].Record(d, o)
		}
	}
	total := NewRecorder()
	total.Merge(recs...)
	s := total.Stats()
	want := Stats{Count: 1000, Min: time.Millisecond, Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond,
		P90: 900 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: time.Second}
	if s != want {
		t.Errorf("Stats() = %+v\nwant       %+v", s, want)
	}
	if got := total.Outcomes(); got["202"] != 998 || got["503"] != 1 || got["error: refused"] != 1 || len(got) != 3 {
		t.Errorf("Outcomes() = %v", got)
	}
	if !slices.Equal(recs[0].samples, all[:100]) {
		t.Error("Merge changed a merged recorder")
	}
	run := &Run{Recorder: total, Unsent: 4}
	if got := run.OK(); got != 998 {
		t.Errorf("OK() = %d, want 998", got)
	}
	if got, want := run.Others(), "503×1 error: refused×1 unsent×4"; got != want {
		t.Errorf("Others() = %q, want %q", got, want)
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "reset"},
		{fmt.Errorf("Post \"http://x\": %w", errors.New("something odd happened")), "something odd happened"},
	}
	for _, tt := range tests {
		if got := ErrorKind(tt.err); got != tt.want {
			t.Errorf("ErrorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0ns"},
		{87 * time.Microsecond, "87µs"},
		{1250 * time.Microsecond, "1.25ms"},
		{12345 * time.Microsecond, "12.3ms"},
		{123456 * time.Microsecond, "123ms"},
		{1200 * time.Millisecond, "1.20s"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
