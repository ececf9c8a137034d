package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// testLockSessionSeesConversation checks that a session locked after waiting for another
// transaction comes with its conversation as that transaction left it. (On PostgreSQL a row
// locked FOR UPDATE after a wait is re-read, but rows joined to it are not: a lock and a join in
// one statement would hand out the conversation as it was before the wait, and two agents
// joining at once would both see it free.)
func testLockSessionSeesConversation(t *testing.T, h Harness) {
	f := setup(t, h)
	const n = 20
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- f.s.Update(t.Context(), func(tx store.Tx) error {
				sess, err := tx.LockSession(f.sess.ID)
				if err != nil {
					return err
				}
				c := sess.Conversation
				if c.AssigneeID != "" {
					return nil // taken: what every transaction but the first must see
				}
				c.HandledBy, c.AssigneeID = parley.HandledByAgent, fmt.Sprint("agent-", i)
				if err := tx.UpdateConversation(c); err != nil {
					return err
				}
				sess.JobSeq++
				if err := tx.InsertMessageWithJob(newMessage(sess, parley.AuthorUser, "x", now), jobOf(sess, sess.JobSeq)); err != nil {
					return err
				}
				return tx.UpdateSession(sess)
			})
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	jobs := read(t, f.s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(f.sess.ID) })
	if len(jobs) != 1 {
		t.Errorf("%d transactions saw the conversation unassigned, want 1", len(jobs))
	}
}
