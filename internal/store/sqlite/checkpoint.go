package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checkpoints copy the WAL's pages back into the database file. SQLite runs them inside the
// COMMIT that crosses wal_autocheckpoint, so the writer, and every request waiting for it, stood
// still for the whole copy and its fsync: 25-50 ms every half second under load, measured, which
// is the open loop's p99 by itself. Here a goroutine of its own, on a connection of its own,
// copies the WAL a little at a time beside the writer (SQLite's PASSIVE checkpoint neither waits
// for the writer nor stops it).
//
// What a passive checkpoint cannot do is start the WAL again from its beginning: SQLite does that
// when a write transaction begins, finds every frame copied and no reader using the WAL, which
// under continuous writes never happens by itself. So when the WAL passes walRestartFrames, the
// writer, between two batches, waits for one more checkpoint (of the little written since the
// last one): its next transaction then restarts the WAL, whose file keeps its size. Should a
// reader have been using the WAL at that moment, the restart did not happen, and the WAL goes on
// growing; past twice the limit the checkpoint the writer waits for is a RESTART, which also
// waits (restartWait at most) until no reader uses the WAL. A RESTART that a reader still
// defeated (a long read: an export, say) is not tried again before the WAL has grown by another
// walRestartFrames, so that a long read does not cost the writer restartWait at every tick.
//
// Should checkpoints fail (a full disk, say), they are logged, and the writer's own
// wal_autocheckpoint at walBackstopFrames keeps the WAL bounded, as SQLite does by default.
const restartWait = 20 * time.Millisecond

// checkpointEvery is a variable for tests, whose WAL limits are small enough for a fast disk
// to pass them within one tick.
var checkpointEvery = 50 * time.Millisecond

// walRestartFrames is about 40 MB of WAL; walBackstopFrames, where the writer checkpoints inside
// its COMMIT, is never reached while the checkpointer works. A WAL that grew past walKeepBytes
// (a reader held it for long) is cut back to that size when it restarts: the writer's
// journal_size_limit. Variables for tests.
var (
	walRestartFrames  int64 = 10_000
	walBackstopFrames int64 = 40_000
	walKeepBytes      int64 = 96 << 20 // above the ~85 MB a RESTART happens at
)

// logFailuresEvery bounds how often a failing checkpointer logs.
const logFailuresEvery = time.Minute

type checkpointer struct {
	db       *sql.DB // one connection, used by run only
	log      *slog.Logger
	requests chan checkpointRequest
	frames   atomic.Int64 // frames in the WAL at the end of the last checkpoint
	passes   atomic.Int64 // checkpoints tried
	commits  atomic.Int64 // batches the writer committed
	restarts atomic.Int64 // RESTART checkpoints tried
	// No RESTART before the WAL has this many frames: set when one found a reader it could not
	// wait out.
	restartFrom atomic.Int64
	failures    atomic.Int64 // checkpoints failed
	halted      atomic.Bool  // no more checkpoints: a sync failed (Store.failed)
	asked       int64        // passes when the writer last waited: used by the writer only
	stop        chan struct{}
	done        chan struct{}
}

// checkpointRequest is the writer waiting for a checkpoint: done is closed once it ran.
type checkpointRequest struct {
	restart bool
	done    chan struct{}
}

func newCheckpointer(db *sql.DB, log *slog.Logger) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, log: log, requests: make(chan checkpointRequest), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// run checkpoints every checkpointEvery, and at once when the writer waits for it; it rests
// while nothing was committed since a checkpoint that left nothing to copy.
func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var failed int64     // failures since the last log line
	var logged time.Time // when the last one was written
	var seen int64       // commits when the last checkpoint began
	clean := false       // it succeeded and left nothing to copy
	for {
		var req checkpointRequest
		select {
		case <-t.C:
			if clean && c.commits.Load() == seen {
				continue // an idle server rests
			}
		case req = <-c.requests:
		case <-c.stop:
			return
		}
		if c.halted.Load() {
			if req.done != nil {
				close(req.done)
			}
			continue
		}
		seen = c.commits.Load()
		mode := `PRAGMA wal_checkpoint(PASSIVE)`
		if req.restart {
			mode = `PRAGMA wal_checkpoint(RESTART)`
		}
		// A failed checkpoint leaves the WAL and frames as they were: the writer, if frames
		// was past the limit, waits for the next try (once per try), and the next try may
		// succeed.
		var busy, frames, copied int64
		err := c.db.QueryRowContext(context.Background(), mode).Scan(&busy, &frames, &copied)
		clean = err == nil && busy == 0 && copied == frames
		switch {
		case req.restart && err == nil && busy != 0:
			c.restartFrom.Store(frames + walRestartFrames)
		case err == nil && frames < walRestartFrames: // the WAL restarted
			c.restartFrom.Store(0)
		}
		if req.restart {
			c.restarts.Add(1)
		}
		if err == nil {
			c.frames.Store(frames)
		} else {
			c.failures.Add(1)
			failed++
			if now := time.Now(); now.Sub(logged) >= logFailuresEvery {
				c.log.Error("sqlite: checkpoint failed; until one succeeds, the writer checkpoints when the WAL reaches its backstop", "err", err, "failures", failed)
				logged, failed = now, 0
			}
		}
		c.passes.Add(1)
		if req.done != nil {
			close(req.done)
		}
	}
}

// committed is called by the writer after each batch.
func (c *checkpointer) committed() { c.commits.Add(1) }

// restartWAL is called by the writer between batches. When the WAL has grown past
// walRestartFrames, it waits for a checkpoint of what is left, so that the writer's next
// transaction starts the WAL again. It waits at most once per checkpoint seen, so it does not
// wait again before a checkpoint has measured the restarted WAL.
func (c *checkpointer) restartWAL() {
	frames := c.frames.Load()
	if frames < walRestartFrames || c.passes.Load() <= c.asked {
		return
	}
	restart := frames >= 2*walRestartFrames && frames >= c.restartFrom.Load()
	req := checkpointRequest{restart: restart, done: make(chan struct{})}
	select {
	case c.requests <- req:
		<-req.done
	case <-c.done:
	}
	c.asked = c.passes.Load()
}

// halt stops the checkpoints for good.
func (c *checkpointer) halt() { c.halted.Store(true) }

// end stops the goroutine, leaving its connection open.
func (c *checkpointer) end() {
	close(c.stop)
	<-c.done
}

func (c *checkpointer) close() error {
	c.end()
	return c.db.Close()
}
