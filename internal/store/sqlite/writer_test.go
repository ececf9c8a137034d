package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// TestFailuresAfterWritesUndoOnlyThemselves: ops that write and then fail are undone without
// taking the other ops of their batch with them, however many fail in one batch (more than two
// make the writer run the rest one by one).
func TestFailuresAfterWritesUndoOnlyThemselves(t *testing.T) {
	s := open(t)
	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook"}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(tx store.Tx) error { return tx.CreateIntegration(in) }); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	heard := map[string]bool{}
	s.Watch(func(c *store.Change) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range c.Events {
			heard[e.SessionID] = true
		}
	})
	errLate := errors.New("failed after writing")
	const n = 300
	results := make([]error, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = parley.NewID()
		wg.Go(func() {
			results[i] = s.Update(t.Context(), func(tx store.Tx) error {
				sess := &parley.Session{ID: ids[i], IntegrationID: in.ID, Status: parley.SessionActive, Context: []byte(`{}`),
					ConversationID: parley.NewID(), Partition: parley.PartitionOf(ids[i])}
				if err := tx.CreateSession(sess); err != nil {
					return err
				}
				if err := tx.CreateConversation(&parley.Conversation{ID: sess.ConversationID, SessionID: sess.ID,
					IntegrationID: in.ID, Status: parley.ConversationOpen, HandledBy: parley.HandledByBrain}); err != nil {
					return err
				}
				if err := tx.InsertEvent(parley.NewEvent(in, sess, parley.EventSessionClosed, sess.CreatedAt, parley.EventFields{})); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("op %d: %w", i, errLate)
				}
				if i%3 == 1 && i%5 == 0 {
					panic("op panics after writing")
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		failed := i%3 == 0 || (i%3 == 1 && i%5 == 0)
		if (results[i] != nil) != failed {
			t.Fatalf("op %d: error %v, want failure %v", i, results[i], failed)
		}
		err := s.View(t.Context(), func(tx store.ReadTx) error { _, err := tx.Session(ids[i]); return err })
		exists := !parley.IsCode(err, parley.ENotFound)
		if exists == failed {
			t.Fatalf("op %d (failed %v): its session exists %v", i, failed, exists)
		}
		mu.Lock()
		h := heard[ids[i]]
		mu.Unlock()
		if h == failed {
			t.Fatalf("op %d (failed %v): watchers heard of it %v", i, failed, h)
		}
	}
}

// TestWriterSeesOtherConnectionsWrites: the writer keeps sessions it has read, and another
// process (the CLI, a second server) may change them; the writer must then read them again.
func TestWriterSeesOtherConnectionsWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	s := openPath(t, path, true)
	engine := chat.New(nil)
	in, id := sqlite.SeedSession(t, s, engine)
	post := func() error {
		return s.Update(t.Context(), func(tx store.Tx) error {
			_, err := engine.PostUserMessage(tx, in, id, chat.UserMessage{Text: "hello"})
			return err
		})
	}
	if err := post(); err != nil { // the writer now holds the session
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(`UPDATE sessions SET status = 'closed' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	if err := post(); !parley.IsCode(err, parley.ESessionNotFound) {
		t.Fatalf("a message to a session another process closed: %v, want %s", err, parley.ESessionNotFound)
	}
}
