package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// syncStore opens a migrated store with one session whose WAL syncs go through sync instead of
// fsync, and returns a function that posts a user message to the session.
func syncStore(t *testing.T, sync func(wal *os.File) error) (*Store, func() error) {
	real := syncWAL
	t.Cleanup(func() { syncWAL = real })
	s, err := Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	engine := chat.New(nil)
	in, id := SeedSession(t, s, engine)
	syncWAL = sync // after Open's and Migrate's own writes, which sync for real
	return s, func() error {
		return s.Update(t.Context(), func(tx store.Tx) error {
			_, err := engine.PostUserMessage(tx, in, id, chat.UserMessage{Text: "hello"})
			return err
		})
	}
}

// TestUpdateReturnsOnlyOnceItsCommitIsSynced: the writer's COMMIT does not fsync, so an Update
// must wait for the syncer's fsync of the WAL, and its watchers hear of it only then.
func TestUpdateReturnsOnlyOnceItsCommitIsSynced(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var synced []string
	s, post := syncStore(t, func(wal *os.File) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, wal.Name())
		return nil
	})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open) // before the store closes, even when the test fails
	told := make(chan struct{}, 16)
	s.Watch(func(*store.Change) { told <- struct{}{} })

	returned := make(chan error, 1)
	go func() { returned <- post() }()
	select {
	case err := <-returned:
		t.Fatalf("Update returned (%v) before its commit was synced", err)
	case <-told:
		t.Fatal("a watcher heard of a commit before it was synced")
	case <-time.After(100 * time.Millisecond):
	}
	open()
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	select {
	case <-told:
	default:
		t.Fatal("Update returned before its watcher heard of the commit")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(synced) == 0 || !strings.HasSuffix(synced[0], "parley.db-wal") {
		t.Fatalf("synced %q, want the database's WAL", synced)
	}
}

// TestFailedSyncStopsTheStore: after an fsync fails the kernel may have dropped what it could
// not write, so no commit can be called durable any more: the Updates it covered fail, every
// later one fails without running, and Ping says why.
func TestFailedSyncStopsTheStore(t *testing.T) {
	s, post := syncStore(t, func(*os.File) error { return errors.New("EIO") })
	if err := post(); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("Update = %v, want the failed sync", err)
	}
	ran := false
	err := s.Update(t.Context(), func(store.Tx) error {
		ran = true
		return nil
	})
	if err == nil || ran {
		t.Fatalf("Update after a failed sync: err %v, ran %v; want an error and nothing run", err, ran)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping is fine after a failed sync")
	}
}

// TestSyncsCoverEveryBatch: under concurrent Updates, batches committed while an fsync runs
// wait for the next one, which covers them all; every Update returns, and the syncer is left
// with nothing.
func TestSyncsCoverEveryBatch(t *testing.T) {
	var mu sync.Mutex
	syncs := 0
	s, post := syncStore(t, func(*os.File) error {
		mu.Lock()
		defer mu.Unlock()
		syncs++
		time.Sleep(time.Millisecond) // an fsync's time, for batches to pile up behind it
		return nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if err := post(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s.syncs.busy() {
		t.Fatal("the syncer holds batches after every Update returned")
	}
	mu.Lock()
	defer mu.Unlock()
	if syncs == 0 || syncs >= 400 {
		t.Fatalf("%d syncs for 400 Updates: want some, grouped", syncs)
	}
}

// TestViewReturnsOnlyOnceWhatItCouldSeeIsSynced: a commit is visible before it is synced, so a
// read that could have seen it (the dispatcher reading events to send, a GET) is held until it
// is: nobody acts on what a power cut could take back.
func TestViewReturnsOnlyOnceWhatItCouldSeeIsSynced(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	s, post := syncStore(t, func(*os.File) error {
		<-release
		return nil
	})
	t.Cleanup(open)
	if err := s.View(t.Context(), func(store.ReadTx) error { return nil }); err != nil {
		t.Fatal(err) // nothing unsynced: at once
	}
	posted := make(chan error, 1)
	go func() { posted <- post() }()
	for !s.syncs.busy() { // committed, and waiting for its sync
		time.Sleep(time.Millisecond)
	}
	read := make(chan error, 1)
	go func() {
		read <- s.View(t.Context(), func(tx store.ReadTx) error {
			_, err := tx.Integrations()
			return err
		})
	}()
	select {
	case err := <-read:
		t.Fatalf("View returned (%v) while a commit it could see was not synced", err)
	case <-time.After(100 * time.Millisecond):
	}
	open()
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
}
