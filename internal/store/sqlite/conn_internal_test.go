package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// TestNewWriterConnectionEmptiesSessionCache: data_version counts per connection, so when
// database/sql replaces the writer's connection the cache cannot trust the count it kept and
// must start again.
func TestNewWriterConnectionEmptiesSessionCache(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, id := SeedSession(t, s, chat.New(nil))
	cached := func() (n int) {
		err := s.Update(ctx, func(tx store.Tx) error {
			n = s.sessions.Len() // as the writer sees it once the batch has checked the cache
			_, err := tx.LockSession(id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cached() // reads the session into the cache
	if n := cached(); n != 1 {
		t.Fatalf("cache holds %d sessions on the same connection, want 1", n)
	}
	s.wdb.SetConnMaxLifetime(time.Nanosecond) // the next batch gets a new connection
	time.Sleep(time.Millisecond)
	if n := cached(); n != 0 {
		t.Fatalf("cache holds %d sessions on a new writer connection, want 0", n)
	}
}
