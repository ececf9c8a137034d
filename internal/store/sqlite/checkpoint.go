package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// Checkpoints copy the WAL's pages back into the database file. SQLite runs them inside the
// COMMIT that crosses wal_autocheckpoint, so the writer, and every request waiting for it, stood
// still for the whole copy and its fsync: 25-50 ms every half second under load, measured, which
// is the open loop's p99 by itself. Here the writer's connection never checkpoints; a goroutine
// of its own, on a connection of its own, copies the WAL a little at a time beside the writer
// (SQLite's PASSIVE checkpoint neither waits for the writer nor stops it).
//
// What a passive checkpoint cannot do is start the WAL again from its beginning: SQLite does that
// when a write transaction begins and finds every frame copied, which under continuous writes
// never happens by itself. So when the WAL passes walRestartFrames, the writer, between two
// batches, waits for one more checkpoint (of the little written since the last one): its next
// transaction then restarts the WAL, whose file keeps its size.
const checkpointEvery = 50 * time.Millisecond

// walRestartFrames is about 40 MB of WAL (a variable for tests).
var walRestartFrames int64 = 10_000

type checkpointer struct {
	db       *sql.DB // one connection, used by run only
	requests chan chan struct{}
	frames   atomic.Int64 // frames in the WAL at the end of the last checkpoint
	passes   atomic.Int64 // checkpoints done
	asked    int64        // passes when the writer last waited: used by the writer only
	stop     chan struct{}
	done     chan struct{}
}

func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, requests: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// run checkpoints every checkpointEvery, and at once when the writer waits for it.
func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		var waiting chan struct{}
		select {
		case <-t.C:
		case waiting = <-c.requests:
		case <-c.stop:
			return
		}
		// A failed checkpoint leaves the WAL as it was; the next one tries again. Frames
		// stays as it was too, so a writer does not wait again for nothing.
		var busy, frames, copied int64
		err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		if err == nil {
			c.frames.Store(frames)
		}
		c.passes.Add(1)
		if waiting != nil {
			close(waiting)
		}
	}
}

// restartWAL is called by the writer between batches. When the WAL has grown past
// walRestartFrames, it waits for a checkpoint of what is left, so that the writer's next
// transaction starts the WAL again. It waits at most once per checkpoint seen, so it does not
// wait again before a checkpoint has measured the restarted WAL.
func (c *checkpointer) restartWAL() {
	if c.frames.Load() < walRestartFrames || c.passes.Load() <= c.asked {
		return
	}
	done := make(chan struct{})
	select {
	case c.requests <- done:
		<-done
	case <-c.done:
	}
	c.asked = c.passes.Load()
}

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
