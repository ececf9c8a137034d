package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// latch is what a test's fake holds the store on until the test opens it. Tests register open
// as a cleanup after syncStore, so that it runs before the store closes even when they fail.
type latch struct {
	c    chan struct{}
	once sync.Once
}

func newLatch() *latch { return &latch{c: make(chan struct{})} }

func (l *latch) open() { l.once.Do(func() { close(l.c) }) }

// stillWaiting fails the test if c delivers within 100 ms: what it stands for must wait.
func stillWaiting(t *testing.T, c <-chan error, what string) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("%s returned (%v) too early", what, err)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestUpdateReturnsOnlyOnceItsCommitIsSynced: the writer's COMMIT does not fsync, so an Update
// must wait for the syncer's fsync of the WAL, and its watchers hear of it only then.
func TestUpdateReturnsOnlyOnceItsCommitIsSynced(t *testing.T) {
	release := newLatch()
	var mu sync.Mutex
	var synced []string
	s, post := syncStore(t, func(wal *os.File) error {
		<-release.c
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, wal.Name())
		return nil
	})
	t.Cleanup(release.open)
	told := make(chan struct{}, 16)
	s.Watch(func(*store.Change) { told <- struct{}{} })

	returned := startPost(post)
	select {
	case err := <-returned:
		t.Fatalf("Update returned (%v) before its commit was synced", err)
	case <-told:
		t.Fatal("a watcher heard of a commit before it was synced")
	case <-time.After(100 * time.Millisecond):
	}
	release.open()
	succeeds(t, returned)
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
	if err := s.View(t.Context(), func(store.ReadTx) error { return nil }); err == nil {
		t.Fatal("View is fine after a failed sync: what it reads may not be on disk")
	}
	if !s.checkpoints.halted.Load() {
		t.Fatal("the checkpointer goes on copying a WAL whose sync failed")
	}
}

// gate is a fake fsync that says when it is entered and returns, with err's next value, only
// when allowed to.
type gate struct {
	entered, allow chan struct{}
	mu             sync.Mutex
	errs           []error // what the calls return, in turn; nil after them
}

func newGate(errs ...error) *gate {
	return &gate{entered: make(chan struct{}, 8), allow: make(chan struct{}, 8), errs: errs}
}

func (g *gate) sync(*os.File) error {
	g.entered <- struct{}{}
	<-g.allow
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) == 0 {
		return nil
	}
	err := g.errs[0]
	g.errs = g.errs[1:]
	return err
}

// succeeds fails the test unless each of cs delivers nil.
func succeeds(t *testing.T, cs ...chan error) {
	t.Helper()
	for _, c := range cs {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
}

// startPost runs post on a goroutine and returns its outcome's channel.
func startPost(post func() error) chan error {
	c := make(chan error, 1)
	go func() { c <- post() }()
	return c
}

// waitPending waits until n batches are committed and waiting for their sync.
func waitPending(t *testing.T, s *Store, n int64) {
	deadline := time.Now().Add(10 * time.Second)
	for s.syncs.pending.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches waiting for their sync, want %d", s.syncs.pending.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// eachBatchAlone has the writer run a batch as soon as it has one Update, even while the syncer
// is busy, so that tests can commit a batch during an fsync.
func eachBatchAlone(t *testing.T) {
	min := minSyncedBatch
	t.Cleanup(func() { minSyncedBatch = min })
	minSyncedBatch = 1
}

// TestBatchCommittedDuringASyncWaitsForTheNext: an fsync makes durable only what was written
// before it began, so a batch committed while one runs waits for the next.
func TestBatchCommittedDuringASyncWaitsForTheNext(t *testing.T) {
	eachBatchAlone(t)
	g := newGate()
	s, post := syncStore(t, g.sync)
	t.Cleanup(func() { close(g.allow) })
	first := startPost(post)
	<-g.entered
	second := startPost(post)
	waitPending(t, s, 2)
	g.allow <- struct{}{}
	succeeds(t, first)
	select {
	case <-g.entered:
	case err := <-second:
		t.Fatalf("a batch committed during an fsync was answered (%v) by it", err)
	}
	g.allow <- struct{}{}
	succeeds(t, second)
}

// TestBatchCommittedDuringAFailedSyncFails: a batch committed while the fsync that fails runs is
// not synced by a later fsync that happens to succeed: the store has stopped.
func TestBatchCommittedDuringAFailedSyncFails(t *testing.T) {
	eachBatchAlone(t)
	g := newGate(errors.New("EIO"))
	s, post := syncStore(t, g.sync)
	t.Cleanup(func() { close(g.allow) })
	first := startPost(post)
	<-g.entered
	second := startPost(post)
	waitPending(t, s, 2)
	g.allow <- struct{}{}
	if err := <-first; err == nil {
		t.Fatal("the Update whose sync failed succeeded")
	}
	if err := <-second; err == nil {
		t.Fatal("an Update committed during a failed sync succeeded")
	}
}

// TestMigrateSyncs: the writer's commits are not synced by SQLite, migrations' included.
func TestMigrateSyncs(t *testing.T) {
	real := syncWAL
	t.Cleanup(func() { syncWAL = real })
	var syncs atomic.Int64
	syncWAL = func(f *os.File) error {
		syncs.Add(1)
		return real(f)
	}
	s, err := Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() == 0 {
		t.Fatal("Migrate returned with its commits not synced")
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
	release := newLatch()
	s, post := syncStore(t, func(*os.File) error {
		<-release.c
		return nil
	})
	t.Cleanup(release.open)
	if err := s.View(t.Context(), func(store.ReadTx) error { return nil }); err != nil {
		t.Fatal(err) // nothing unsynced: at once
	}
	posted := startPost(post)
	waitPending(t, s, 1) // committed, and waiting for its sync
	read := startView(t, s)
	stillWaiting(t, read, "View, while a commit it could see was not synced,")
	release.open()
	succeeds(t, read, posted)
}

// startView runs a View that reads on a goroutine and returns its outcome's channel.
func startView(t *testing.T, s *Store) chan error {
	c := make(chan error, 1)
	go func() {
		c <- s.View(t.Context(), func(tx store.ReadTx) error {
			_, err := tx.Integrations()
			return err
		})
	}()
	return c
}

// TestViewWaitsForABatchCommittedBeforeItIsHandedOver: a batch is visible from its COMMIT, before
// the syncer has it, so the number a View waits for is taken before the batch runs.
func TestViewWaitsForABatchCommittedBeforeItIsHandedOver(t *testing.T) {
	s, post := syncStore(t, func(*os.File) error { return nil })
	committed, release := make(chan struct{}), newLatch()
	var once sync.Once
	afterCommit = func() {
		once.Do(func() {
			close(committed)
			<-release.c
		})
	}
	t.Cleanup(func() { afterCommit = nil })
	t.Cleanup(release.open)
	posted := startPost(post)
	<-committed
	read := startView(t, s)
	stillWaiting(t, read, "View, while a batch it could see was not handed to the syncer,")
	release.open()
	succeeds(t, read, posted)
}

// TestSyncsTheWALWhereSQLiteKeepsIt: SQLite follows a symbolic link to the database and keeps the
// WAL beside the file it points to; the syncer must sync that one, not a name beside the link.
func TestSyncsTheWALWhereSQLiteKeepsIt(t *testing.T) {
	dir := t.TempDir()
	data, links := filepath.Join(dir, "data"), filepath.Join(dir, "links")
	for _, d := range []string{data, links} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "real.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "real.db"), filepath.Join(links, "parley.db")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	real := syncWAL
	t.Cleanup(func() { syncWAL = real })
	var mu sync.Mutex
	var synced []string
	syncWAL = func(f *os.File) error {
		mu.Lock()
		synced = append(synced, f.Name())
		mu.Unlock()
		return real(f)
	}
	s, err := Open(filepath.Join(links, "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.EvalSymlinks(filepath.Join(data, "real.db-wal"))
	if err != nil {
		t.Fatal(err) // no WAL beside the real database
	}
	mu.Lock()
	defer mu.Unlock()
	if len(synced) == 0 {
		t.Fatal("nothing synced")
	}
	for _, name := range synced {
		if got, err := filepath.EvalSymlinks(name); err != nil || got != want {
			t.Fatalf("synced %s, want %s", name, want)
		}
	}
}
