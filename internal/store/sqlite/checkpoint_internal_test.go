package sqlite

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// TestCheckpointsBesideTheWriter: the writer's connection never checkpoints, and yet under
// continuous writes the WAL is copied back and started again, so its file stays near
// walRestartFrames instead of growing with everything ever written.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	defer func(n int64) { walRestartFrames = n }(walRestartFrames)
	walRestartFrames = 200
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.wdb.QueryRowContext(t.Context(), `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint is %d (%v), want 0", auto, err)
	}
	engine := chat.New(nil)
	in, id := SeedSession(t, s, engine)
	const frame = 4096 + 24
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1500 {
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
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	largest := fi.Size()
	// 6,000 messages write about 18,000 frames (74 MB): with no restart the WAL would hold them
	// all. With restarts it holds walRestartFrames and what the writer wrote until the next
	// checkpoint noticed.
	if limit := int64(4500 * frame); largest > limit {
		t.Errorf("WAL is %d bytes after 6,000 messages, want at most %d: it is not started again", largest, limit)
	}
	if s.checkpoints.passes.Load() == 0 {
		t.Error("no checkpoint ran")
	}
}
