package sqlite

import (
	"fmt"
	"os"
	"slices"
	"syscall"

	"github.com/parleyhq/parley/internal/store"
)

// committed is a batch the writer has committed and whose callers wait for it to be durable.
type committed struct {
	ops    []*op
	errs   []error
	change *store.Change
	err    error // the batch's transaction failed: nothing of it committed
}

// syncer makes committed batches durable and only then tells the watchers and answers the
// callers, in commit order. The writer commits without waiting for the disk (synchronous =
// NORMAL) and goes on with the next batch while the syncer flushes the write-ahead log; one
// fdatasync covers every batch waiting (group fsync). So an answered request, a delivered
// event or a brain reply never rests on a commit a power cut could undo; a reader may see a
// commit a moment before it is durable, which is all that changes.
func (s *Store) syncer() {
	defer close(s.synced)
	for c := range s.toSync {
		pending := []committed{c}
	more:
		for {
			select {
			case c, ok := <-s.toSync:
				if !ok {
					break more
				}
				pending = append(pending, c)
			default:
				break more
			}
		}
		var err error
		if slices.ContainsFunc(pending, func(c committed) bool { return c.err == nil && c.change != nil }) {
			if err = s.wal.sync(); err != nil {
				s.log("sqlite: flushing the write-ahead log failed; the last commits may not be durable", err)
			}
		}
		for _, c := range pending {
			if c.err == nil && c.change != nil && err != nil {
				c.err = fmt.Errorf("sqlite: making the commit durable: %w", err)
			}
			s.finish(c)
		}
	}
}

// finish tells the watchers of a durable batch (before its callers are answered, as on
// PostgreSQL: when Update returns, whoever acts on changes already knows of this one) and
// answers its callers.
func (s *Store) finish(c committed) {
	if ch := c.change; c.err == nil && ch != nil &&
		(len(ch.Events) > 0 || len(ch.Jobs) > 0 || len(ch.Conversations) > 0 || len(ch.Signals) > 0) {
		s.mu.RLock()
		watchers := s.watchers
		s.mu.RUnlock()
		for _, w := range watchers {
			w(ch)
		}
	}
	for i, o := range c.ops {
		if c.err != nil && c.errs[i] == nil {
			c.errs[i] = c.err
		}
		o.errc <- c.errs[i]
	}
}

// wal is the database's write-ahead log, kept open to flush it.
type wal struct {
	path string
	f    *os.File
}

// sync flushes the log to disk. The file appears with the first commit and stays while the
// writer's connection is open; it is opened again if it was ever replaced.
func (w *wal) sync() error {
	if w.f != nil {
		cur, err1 := os.Stat(w.path)
		open, err2 := w.f.Stat()
		if err1 != nil || err2 != nil || !os.SameFile(cur, open) {
			w.f.Close()
			w.f = nil
		}
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		w.f = f
	}
	return syscall.Fdatasync(int(w.f.Fd()))
}

func (w *wal) close() {
	if w.f != nil {
		w.f.Close()
	}
}
