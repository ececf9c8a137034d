package postgres_test

import (
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
	"github.com/parleyhq/parley/internal/testenv"
)

// Notifications are sent after the commits, by the announcer: one queued when the store closes
// is still sent, and many commits at once all reach the other process.
func TestAnnouncementsAfterCommit(t *testing.T) {
	t.Parallel()
	u := testenv.PostgresSchema(t)
	a, b := openURL(t, u, true), openURL(t, u, false)
	heard := make(chan string, 1000)
	b.Watch(func(c *store.Change) {
		for _, j := range c.Jobs {
			if c.Remote {
				heard <- j.SessionID
			}
		}
	})
	newJob := func() *parley.BrainJob {
		return &parley.BrainJob{IntegrationID: parley.NewID(), SessionID: parley.NewID(), ConversationID: parley.NewID(),
			SessionSeq: 1}
	}
	// b starts listening in the background: commit probes until it hears one. (A probe heard
	// late is not among the commits wanted below.)
	deadline := time.Now().Add(10 * time.Second)
	for listening := false; !listening; {
		if time.Now().After(deadline) {
			t.Fatal("b never heard of a's commits")
		}
		j := newJob()
		if err := a.Update(t.Context(), func(tx store.Tx) error { return storetest.InsertJob(tx, j) }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
			listening = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	const n = 50
	want := map[string]bool{}
	done := make(chan error, n)
	for range n {
		j := newJob()
		want[j.SessionID] = true
		go func() { done <- a.Update(t.Context(), func(tx store.Tx) error { return storetest.InsertJob(tx, j) }) }()
	}
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // right after the commits: what is queued is still announced
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case sid := <-heard:
			delete(want, sid)
		case <-timeout:
			t.Fatalf("b never heard of %d of a's %d commits", len(want), n)
		}
	}
}
