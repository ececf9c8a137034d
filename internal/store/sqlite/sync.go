package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/parleyhq/parley/internal/store"
)

// Commits are made durable by the syncer, not by the writer's COMMIT. With synchronous = FULL,
// the COMMIT of every batch waited for an fsync of the WAL: measured under load, 650-750 µs of
// the writer's ~1.2 ms per batch, during which nothing else could be written. The writer's
// connection now runs with synchronous = NORMAL, whose COMMIT writes the WAL's frames without
// syncing them, and the syncer fsyncs the WAL beside the writer while it runs the next batch.
// No caller is answered, and no watcher told, before an fsync that began after its commit
// returned: what Update promises (a durable commit) is what it promised before.
//
// A commit is visible to other connections from its COMMIT, an fsync before it is durable. So
// that nobody acts on what a power cut could still take back (a webhook sent for an event, a
// GET's answer), View returns only once every commit its read could have seen is synced: at
// most about two fsyncs later under load, at once when nothing is being written. A killed
// process loses nothing in that window either way: the frames are in the kernel's page cache.
// Checkpoints are unaffected: SQLite syncs the WAL before it copies frames into the database,
// and syncs the database after.
//
// The fsync goes to the WAL file through a descriptor of the syncer's own: fsync flushes the
// file, whichever descriptor wrote it. The WAL is named as SQLite names it (the database's real
// path). SQLite deletes the WAL when the database's last connection closes,
// which happens when database/sql replaces the writer's connection while no other is open; the
// syncer then opens the new WAL.

// minSyncedBatch is how many Updates the writer gathers before it starts a transaction while
// the syncer is busy. Smaller batches cost more per Update (BEGIN, COMMIT and the pages every
// commit writes); waiting for the syncer to be idle gives up running beside it. Variable for
// measurements.
var minSyncedBatch = 8

// syncWAL makes everything written to the WAL durable. Variable for tests, which make it fail
// or wait.
var syncWAL = func(wal *os.File) error { return wal.Sync() }

// committed is one batch the writer ran: its ops, each one's outcome, and what its
// transaction changed (nil if nothing committed).
type committed struct {
	ops    []*op
	errs   []error
	change *store.Change
	wrote  bool  // a transaction committed: there is something to sync
	seq    int64 // reserved before the batch ran (syncer.reserve)
}

// syncer answers the writer's batches in the order they were committed, each once an fsync
// that began after its commit has succeeded.
type syncer struct {
	wal     *os.File
	log     *slog.Logger
	notify  func(*store.Change) // tells the watchers
	onFail  func()              // called once, when a sync fails
	mu      sync.Mutex
	queue   []*committed
	closing bool
	wake    chan struct{} // cap 1: the queue has something, or the syncer must stop
	idle    chan struct{} // cap 1: poked when the syncer answered everything it had
	pending atomic.Int64  // batches handed over and not yet answered
	// reserved counts the batches that may have committed (the writer reserves a number before
	// it runs one); synced is the highest number answered. synced changes under mu, which
	// closes advanced and makes it anew.
	reserved atomic.Int64
	synced   atomic.Int64
	advanced chan struct{}
	broken   atomic.Pointer[error] // why the store stopped
	done     chan struct{}
}

func newSyncer(wal *os.File, log *slog.Logger, notify func(*store.Change), onFail func()) *syncer {
	y := &syncer{wal: wal, log: log, notify: notify, onFail: onFail,
		wake: make(chan struct{}, 1), idle: make(chan struct{}, 1), done: make(chan struct{}),
		advanced: make(chan struct{})}
	go y.run()
	return y
}

// add hands a batch over; it is answered once durable.
func (y *syncer) add(c *committed) {
	y.pending.Add(1)
	y.mu.Lock()
	y.queue = append(y.queue, c)
	y.mu.Unlock()
	y.poke(y.wake)
}

// reserve numbers a batch about to run.
func (y *syncer) reserve() int64 { return y.reserved.Add(1) }

// wait returns once every batch that may have committed so far is answered, with the error
// that stopped the store, if any.
func (y *syncer) wait(ctx context.Context) error {
	target := y.reserved.Load()
	for y.synced.Load() < target {
		y.mu.Lock()
		advanced := y.advanced
		y.mu.Unlock()
		if y.synced.Load() >= target {
			break
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return y.err()
}

// busy says some batch handed over is not answered yet.
func (y *syncer) busy() bool { return y.pending.Load() > 0 }

// err is the failure that stopped the store from writing, if any.
func (y *syncer) err() error {
	if e := y.broken.Load(); e != nil {
		return *e
	}
	return nil
}

// close answers what was handed over, then stops the syncer.
func (y *syncer) close() {
	y.mu.Lock()
	y.closing = true
	y.mu.Unlock()
	y.poke(y.wake)
	<-y.done
}

func (y *syncer) poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// current returns the WAL's descriptor, opened again if the file at its name is another one,
// or nil if there is no WAL: SQLite deletes it only after copying it into the database and
// syncing that, when the database's last connection closes (database/sql may replace the
// writer's connection).
func (y *syncer) current() (*os.File, error) {
	at, err := os.Stat(y.wal.Name())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if held, err := y.wal.Stat(); err == nil && os.SameFile(at, held) {
		return y.wal, nil
	}
	f, err := os.OpenFile(y.wal.Name(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // deleted since the Stat: copied and synced, as above
	}
	if err != nil {
		return nil, err
	}
	y.wal.Close()
	y.wal = f
	return f, nil
}

func (y *syncer) run() {
	defer close(y.done)
	defer func() { y.wal.Close() }()
	for {
		y.mu.Lock()
		group, closing := y.queue, y.closing
		y.queue = nil
		y.mu.Unlock()
		if len(group) == 0 {
			if closing {
				return
			}
			<-y.wake
			continue
		}
		y.answer(group, y.sync(group))
	}
}

// sync fsyncs the WAL if any batch of group committed. Once an fsync has failed, nothing is
// durable any more: the kernel may have dropped the pages it could not write (and a later fsync
// would not say so), so the store stops, and every caller learns why.
func (y *syncer) sync(group []*committed) error {
	if err := y.err(); err != nil {
		return err
	}
	wrote := false
	for _, c := range group {
		wrote = wrote || c.wrote
	}
	if !wrote {
		return nil
	}
	wal, err := y.current()
	if err == nil && wal != nil {
		err = syncWAL(wal)
	}
	if err != nil {
		err = fmt.Errorf("sqlite: syncing the WAL failed, so commits may not be durable; the store neither writes nor reads until parley restarts: %w", err)
		y.broken.Store(&err)
		y.log.Error(err.Error())
		y.onFail()
		return err
	}
	return nil
}

// answer tells the watchers of each batch's change, then its callers, in commit order.
// Watchers come first, as on PostgreSQL: when Update returns they have seen its change, and a
// watcher registered after that never sees it.
func (y *syncer) answer(group []*committed, err error) {
	y.mu.Lock()
	for _, c := range group {
		y.synced.Store(max(y.synced.Load(), c.seq))
	}
	close(y.advanced) // readers waiting for these batches go on
	y.advanced = make(chan struct{})
	y.mu.Unlock()
	for _, c := range group {
		if err == nil && c.change != nil {
			y.notify(c.change)
		}
		y.pending.Add(-1) // before the callers hear: busy is false once the last has returned
		for i, o := range c.ops {
			e := c.errs[i]
			if err != nil && c.wrote && e == nil {
				e = err
			}
			o.errc <- e
		}
	}
	y.poke(y.idle)
}
