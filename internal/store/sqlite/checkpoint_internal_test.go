package sqlite

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/testenv"
)

const walFrame = 4096 + 24

// checkpointStore opens a migrated store with one session, with walRestartFrames at 200 (and
// walBackstopFrames at backstop) for the test, and returns a function that posts n messages from
// four goroutines. Checkpoints come every 5 ms, so that what a fast disk writes between two of
// them stays small beside the limits the tests check.
func checkpointStore(t *testing.T, backstop int64, log *slog.Logger) (*Store, func(n int)) {
	restart, back, every := walRestartFrames, walBackstopFrames, checkpointEvery
	t.Cleanup(func() { walRestartFrames, walBackstopFrames, checkpointEvery = restart, back, every })
	walRestartFrames, walBackstopFrames, checkpointEvery = 200, backstop, 5*time.Millisecond
	s, err := Open(filepath.Join(t.TempDir(), "parley.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	engine := chat.New(nil)
	in, id := SeedSession(t, s, engine)
	return s, func(n int) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range n / 4 {
					err := s.Update(t.Context(), func(tx store.Tx) error {
						_, err := engine.PostUserMessage(tx, in, id, chat.UserMessage{Text: "a message long enough to fill pages"})
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// walFrames is how many frames the WAL file has room for: its largest size so far, since
// SQLite writes a restarted WAL over the same file.
func walFrames(t *testing.T, s *Store) int64 {
	t.Helper()
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size() / walFrame
}

// TestCheckpointsBesideTheWriter: the writer's connection checkpoints only as a backstop, and
// yet under continuous writes the WAL is copied back and started again, so its file stays near
// walRestartFrames instead of growing with everything ever written.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	s, write := checkpointStore(t, 1_000_000, nil)
	var auto int64
	if err := s.wdb.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != walBackstopFrames {
		t.Fatalf("the writer's wal_autocheckpoint is %d (%v), want the backstop %d", auto, err, walBackstopFrames)
	}
	// 6,000 messages write about 18,000 frames (74 MB): with no restart the WAL would hold them
	// all. With restarts it holds walRestartFrames and what the writer wrote until the next
	// checkpoint noticed.
	write(6000)
	if n := walFrames(t, s); n > 4500 {
		t.Errorf("the WAL has %d frames after 6,000 messages, want at most 4,500: it is not started again", n)
	}
	if s.checkpoints.passes.Load() == 0 {
		t.Error("no checkpoint ran")
	}
}

// TestWALRestartsBesideReaders: a read in flight when the writer's next transaction begins keeps
// that transaction from starting the WAL again. With short reads always running, passive
// checkpoints alone let the WAL grow with everything written (3,600-40,000 frames here,
// measured); the RESTART the writer then waits for brings it back.
func TestWALRestartsBesideReaders(t *testing.T) {
	s, write := checkpointStore(t, 1_000_000, nil)
	var stop atomic.Bool
	var readers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for !stop.Load() {
				err := s.View(t.Context(), func(tx store.ReadTx) error {
					_, err := tx.Integrations()
					time.Sleep(200 * time.Microsecond)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	write(18000)
	stop.Store(true)
	readers.Wait()
	if n := walFrames(t, s); n > 2500 {
		t.Errorf("the WAL has %d frames after 18,000 messages beside readers, want at most 2,500", n)
	}
}

// TestFailingCheckpointsAreLoggedAndBackstopped: when checkpoints fail, they say so, and the
// writer's own wal_autocheckpoint keeps the WAL bounded.
func TestFailingCheckpointsAreLoggedAndBackstopped(t *testing.T) {
	var logs testenv.Buffer
	s, write := checkpointStore(t, 1000, slog.New(slog.NewTextHandler(&logs, nil)))
	s.ckdb.Close() // every checkpoint from now on fails
	write(6000)
	if n := walFrames(t, s); n > 4500 {
		t.Errorf("the WAL has %d frames after 6,000 messages with checkpoints failing, want at most 4,500", n)
	}
	if s.checkpoints.failures.Load() == 0 {
		t.Fatal("no checkpoint failed")
	}
	if got := logs.String(); strings.Count(got, "checkpoint failed") != 1 {
		t.Errorf("logged %q, want one line about the failing checkpoints", got)
	}
}

// TestIdleCheckpointerRests: with nothing committed since its last complete checkpoint, the
// checkpointer does not run one every 50 ms; the next commit wakes it.
func TestIdleCheckpointerRests(t *testing.T) {
	s, write := checkpointStore(t, 1_000_000, nil)
	write(4)
	time.Sleep(40 * checkpointEvery) // a checkpoint copies everything
	before := s.checkpoints.passes.Load()
	time.Sleep(20 * checkpointEvery)
	if after := s.checkpoints.passes.Load(); after != before {
		t.Errorf("%d checkpoints while nothing was written", after-before)
	}
	write(4)
	for deadline := time.Now().Add(5 * time.Second); s.checkpoints.passes.Load() == before; time.Sleep(checkpointEvery) {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint after a commit")
		}
	}
}

// TestWALShrinksAfterALongRead: a read held open keeps every frame written meanwhile in the WAL
// (nothing can restart it); once the read ends and the WAL restarts, its file is cut back to
// walKeepBytes instead of keeping the size of the spike.
func TestWALShrinksAfterALongRead(t *testing.T) {
	defer func(n int64) { walKeepBytes = n }(walKeepBytes)
	walKeepBytes = 400 * walFrame
	s, write := checkpointStore(t, 1_000_000, nil)
	reading, release := make(chan struct{}), make(chan struct{})
	go s.View(t.Context(), func(tx store.ReadTx) error {
		_, err := tx.Integrations()
		close(reading)
		<-release
		return err
	})
	<-reading
	write(2000)
	spike := walFrames(t, s)
	close(release)
	if spike < 2000 {
		t.Fatalf("the WAL grew to %d frames only beside the long read", spike)
	}
	// The WAL restarts at a commit after a checkpoint copied it all, and that commit cuts it.
	keep := walKeepBytes / walFrame
	for deadline := time.Now().Add(5 * time.Second); walFrames(t, s) > keep+50; write(4) {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL grew to %d frames beside a long read, and is still %d frames after it, want about %d",
				spike, walFrames(t, s), keep)
		}
	}
	// A RESTART that the long read defeated was not tried again at every checkpoint, but once
	// per walRestartFrames of growth.
	if n, most := s.checkpoints.restarts.Load(), spike/walRestartFrames+2; n > most {
		t.Errorf("%d RESTART checkpoints while the WAL grew to %d frames, want at most %d", n, spike, most)
	}
}

// TestCheckpointerRestsOnlyWhenAllIsCopied: a checkpoint that a reader kept from copying
// everything is tried again at the next tick, written or not; once all is copied, it rests.
func TestCheckpointerRestsOnlyWhenAllIsCopied(t *testing.T) {
	s, write := checkpointStore(t, 1_000_000, nil)
	reading, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s.View(t.Context(), func(tx store.ReadTx) error {
			_, err := tx.Integrations()
			close(reading)
			<-release
			return err
		})
	}()
	<-reading
	write(40) // frames the read's snapshot keeps a checkpoint from copying
	time.Sleep(10 * checkpointEvery)
	before := s.checkpoints.passes.Load()
	time.Sleep(10 * checkpointEvery)
	if after := s.checkpoints.passes.Load(); after == before {
		t.Error("no checkpoint while frames were left to copy")
	}
	close(release)
	<-done
	time.Sleep(40 * checkpointEvery)
	before = s.checkpoints.passes.Load()
	time.Sleep(20 * checkpointEvery)
	if after := s.checkpoints.passes.Load(); after != before {
		t.Errorf("%d checkpoints after all was copied and nothing written", after-before)
	}
}
