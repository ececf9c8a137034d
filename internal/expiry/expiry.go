// Package expiry ends sessions whose session_timeout has passed since their last inbound
// activity, and emits session:expired for each (SPEC §2, Lifecycle), within a second of the
// deadline.
//
// Each sweep reads only the sessions that are due, through an index on the deadline of active
// sessions: its cost follows the number expiring, not the number stored. Any number of
// processes may sweep one PostgreSQL database at once: they skip each other's locked rows,
// and a session already ended is never ended twice, so no event is doubled.
package expiry

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
)

// Sweeper expires sessions.
type Sweeper struct {
	store    store.Store
	chat     *chat.Engine
	clock    clock.Clock
	log      *slog.Logger
	interval time.Duration
	batch    int
	expired  *metrics.CounterVec

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Sweeper that sweeps every interval (default 500ms) of clk.
func New(st store.Store, engine *chat.Engine, clk clock.Clock, log *slog.Logger, reg *metrics.Registry, interval time.Duration) *Sweeper {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	return &Sweeper{store: st, chat: engine, clock: clk, log: log, interval: interval, batch: 100,
		expired: reg.NewCounterVec("parley_sessions_expired_total", "Sessions ended by their timeout.")}
}

// Start begins sweeping.
func (s *Sweeper) Start(ctx context.Context) error {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.loop()
	return nil
}

// Stop ends sweeping after the sweep in progress.
func (s *Sweeper) Stop() {
	if s.stop == nil {
		return
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

func (s *Sweeper) loop() {
	defer close(s.done)
	tick := s.clock.NewTicker(s.interval)
	defer tick.Stop()
	for {
		if _, err := s.Sweep(context.Background()); err != nil {
			s.log.Warn("expiry: sweep failed", "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-tick.C():
		}
	}
}

// Sweep expires every session due now and returns how many it expired.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		now := s.clock.Now()
		err := s.store.Update(ctx, func(tx store.Tx) error {
			ids, err := tx.ExpiringSessions(now, s.batch)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if err := s.chat.Expire(tx, id); err != nil {
					return err
				}
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		s.expired.Add(int64(n))
		if n < s.batch {
			return total, nil
		}
	}
}
