// Package janitor deletes what parley keeps only for a while: delivered webhook events after
// their retention, and Idempotency-Key responses after their 24 hours. It deletes in small
// batches so it never holds the database for long.
package janitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/store"
)

// Janitor runs the deletions every interval.
type Janitor struct {
	store             store.Store
	clock             clock.Clock
	log               *slog.Logger
	interval          time.Duration
	deliveredRetained time.Duration
	idempotencyWindow time.Duration

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Janitor.
func New(st store.Store, clk clock.Clock, log *slog.Logger, deliveredRetained, idempotencyWindow time.Duration) *Janitor {
	return &Janitor{store: st, clock: clk, log: log, interval: time.Minute,
		deliveredRetained: deliveredRetained, idempotencyWindow: idempotencyWindow}
}

// Start begins cleaning.
func (j *Janitor) Start(ctx context.Context) error {
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	go j.loop()
	return nil
}

// Stop ends cleaning.
func (j *Janitor) Stop() {
	if j.stop == nil {
		return
	}
	j.stopOnce.Do(func() { close(j.stop) })
	<-j.done
}

func (j *Janitor) loop() {
	defer close(j.done)
	tick := j.clock.NewTicker(j.interval)
	defer tick.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-tick.C():
		}
		if err := j.Clean(context.Background()); err != nil {
			j.log.Warn("janitor: cleaning failed", "err", err)
		}
	}
}

// batch bounds one deletion, so the SQLite writer is never held for long.
const batch = 1000

// Clean deletes everything due now.
func (j *Janitor) Clean(ctx context.Context) error {
	now := j.clock.Now()
	for {
		var events, keys int
		err := j.store.Update(ctx, func(tx store.Tx) error {
			var err error
			if events, err = tx.DeleteDeliveredEvents(now.Add(-j.deliveredRetained), batch); err != nil {
				return err
			}
			keys, err = tx.DeleteIdempotentResponses(now.Add(-j.idempotencyWindow), batch)
			return err
		})
		if err != nil || (events < batch && keys < batch) {
			return err
		}
	}
}
