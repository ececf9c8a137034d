// Package clock is the time parley's background work reads. Production uses the real clock;
// tests use a Fake they move forward, so expiry and backoff are tested without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed on this clock.
	After(d time.Duration) <-chan time.Time
	// NewTicker returns a ticker that ticks every d on this clock. Like time.Ticker it keeps
	// one tick waiting: a loop busy when a tick comes still sees it.
	NewTicker(d time.Duration) Ticker
}

// Ticker ticks until stopped.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system clock.
type Real struct{}

func (Real) Now() time.Time                         { return time.Now() }
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (Real) NewTicker(d time.Duration) Ticker       { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// Fake is a clock that moves only when told to. Waits on it end when Advance passes them.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	tickers []*fakeTicker
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

// NewFake returns a Fake clock set at start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
		return c
	}
	f.waiters = append(f.waiters, waiter{at: f.now.Add(d), c: c})
	return c
}

// NewTicker returns a ticker that ticks when Advance passes each multiple of d.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{f: f, every: d, next: f.now.Add(d), c: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	return t
}

type fakeTicker struct {
	f     *Fake
	every time.Duration
	next  time.Time
	c     chan time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.tickers {
		if x == t {
			t.f.tickers = append(t.f.tickers[:i], t.f.tickers[i+1:]...)
			return
		}
	}
}

// Advance moves the clock forward by d, ends the waits that are now due and ticks the tickers
// whose period passed.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.tickers {
		if t.next.After(f.now) {
			continue
		}
		for !t.next.After(f.now) {
			t.next = t.next.Add(t.every)
		}
		select {
		case t.c <- f.now:
		default: // a tick is already waiting
		}
	}
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.at.After(f.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- f.now
	}
	f.waiters = kept
}
