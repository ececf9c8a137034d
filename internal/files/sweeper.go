package files

import (
	"context"
	"log/slog"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/store"
)

// SweepInterval is how often the Sweeper looks for files to remove. The query reads only
// unreferenced files that are due, through an index, so looking often costs little.
const SweepInterval = time.Minute

// sweepBatch bounds the files one transaction marks.
const sweepBatch = 100

// Sweeper removes files that no message references once they are older than the retention
// period: uploads never used, and upload URLs never used. Files a message references are kept
// as long as the message; closing or expiring a session removes nothing (its history stays
// readable, attachments included).
//
// Removal is in two steps, so that a crash never leaves bytes without a record nor a record
// without bytes that a message could still name: a transaction marks the files (only those
// still unreferenced; from then on no message can take them), then each file's bytes are
// deleted, then its row. Files marked by a process that died are finished by the next sweep,
// of any process.
type Sweeper struct {
	files *Service
	clock clock.Clock
	log   *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// Sweeper returns the retention service of s, timed by clk.
func (s *Service) Sweeper(clk clock.Clock, log *slog.Logger) *Sweeper {
	return &Sweeper{files: s, clock: clk, log: log}
}

// Start starts sweeping every SweepInterval until Stop or the end of ctx.
func (w *Sweeper) Start(ctx context.Context) error {
	ctx, w.cancel = context.WithCancel(ctx)
	w.done = make(chan struct{})
	go w.run(ctx)
	return nil
}

// Stop stops sweeping and waits for a sweep in progress to finish its file.
func (w *Sweeper) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

func (w *Sweeper) run(ctx context.Context) {
	defer close(w.done)
	tick := w.clock.NewTicker(SweepInterval)
	defer tick.Stop()
	for {
		if _, err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("files: retention sweep failed", "err", err)
		}
		select {
		case <-tick.C():
		case <-ctx.Done():
			return
		}
	}
}

// Sweep removes the files that are due now and returns how many it removed.
func (w *Sweeper) Sweep(ctx context.Context) (int, error) {
	removed := 0
	for ctx.Err() == nil {
		before := w.files.now().Add(-w.files.cfg.Retention)
		var batch []*parley.File
		err := w.files.db.Update(ctx, func(tx store.Tx) (err error) {
			batch, err = tx.FilesToDelete(before, sweepBatch)
			return err
		})
		if err != nil {
			return removed, err
		}
		failed := false
		for _, f := range batch {
			if err := w.files.blobs.Delete(ctx, f.ID); err != nil {
				// Left marked: the next sweep tries again.
				w.log.Warn("files: removing a file's bytes failed", "file_id", f.ID, "err", err)
				failed = true
				continue
			}
			err := w.files.db.Update(ctx, func(tx store.Tx) error { return tx.DeleteFile(f.ID) })
			if err != nil && !parley.IsCode(err, parley.ENotFound) { // another process finished it
				return removed, err
			}
			removed++
		}
		if failed || len(batch) < sweepBatch {
			break
		}
	}
	if removed > 0 {
		w.log.Info("files: removed unreferenced files", "count", removed, "retention", w.files.cfg.Retention)
	}
	return removed, ctx.Err()
}
