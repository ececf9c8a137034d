package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// JobsUpgrade checks migration 5, which moved brain jobs from their own table into their
// messages' rows, on a database a parley of schema 4 left with work waiting: db is that
// database, at schema 4 and empty; open opens the store on it and migrates it to the newest
// schema. The waiting job must come out of the upgrade as it went in, and nothing else must
// become a job.
func JobsUpgrade(t *testing.T, db *sql.DB, open func() store.Store) {
	in, sess, conv, answered, waiting := parley.NewID(), parley.NewID(), parley.NewID(), parley.NewID(), parley.NewID()
	// Literal values only: the same statements run on both databases.
	for _, q := range []string{
		`INSERT INTO integrations (id, webhook_url, session_timeout, desk_id, created_at, updated_at)
			VALUES ('%[1]s', 'http://127.0.0.1:9/hook', 3600, 'desk', 1, 1)`,
		`INSERT INTO sessions (id, integration_id, status, context, conversation_id, partition, job_seq, created_at,
			last_activity_at, expires_at) VALUES ('%[2]s', '%[1]s', 'active', '{}', '%[3]s', 7, 2, 1, 1, 4102444800000)`,
		`INSERT INTO conversations (id, session_id, integration_id, status, handled_by, created_at, updated_at)
			VALUES ('%[3]s', '%[2]s', '%[1]s', 'open', 'brain', 1, 1)`,
		`INSERT INTO messages (id, session_id, conversation_id, author, text, created_at)
			VALUES ('%[4]s', '%[2]s', '%[3]s', 'user', 'answered', 1000)`,
		`INSERT INTO messages (id, session_id, conversation_id, author, text, created_at)
			VALUES ('%[5]s', '%[2]s', '%[3]s', 'user', 'waiting', 2000)`,
		`INSERT INTO brain_jobs (integration_id, session_id, session_seq, partition, conversation_id, message_id,
			created_at, conversation_start) VALUES ('%[1]s', '%[2]s', 2, 7, '%[3]s', '%[5]s', 2000, 1)`,
	} {
		if _, err := db.ExecContext(t.Context(), fmt.Sprintf(q, in, sess, conv, answered, waiting)); err != nil {
			t.Fatalf("filling the schema 4 database: %v", err)
		}
	}
	s := open()
	msgs := read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.Messages(sess, 0, 10) })
	if len(msgs) != 2 || msgs[1].ID != waiting {
		t.Fatalf("messages after the upgrade: %s", dump(msgs))
	}
	want := []*parley.BrainJob{{Seq: msgs[1].Seq, IntegrationID: in, SessionID: sess, SessionSeq: 2, Partition: 7,
		ConversationID: conv, MessageID: waiting, ConversationStart: true, CreatedAt: time.UnixMilli(2000).UTC()}}
	equal(t, "jobs after the upgrade", read(t, s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(sess) }), want)
	equal(t, "sessions with jobs after the upgrade", read(t, s, func(tx store.ReadTx) ([]string, error) {
		return tx.PendingJobSessions([]int{7}, 10)
	}), []string{sess})
	if _, err := db.ExecContext(t.Context(), `SELECT 1 FROM brain_jobs`); err == nil {
		t.Error("the brain_jobs table is still there")
	}
	// The job is answered as any other.
	update(t, s, func(tx store.Tx) error { return tx.DeleteJob(msgs[1].Seq) })
	if jobs := read(t, s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(sess) }); len(jobs) != 0 {
		t.Errorf("jobs once answered: %s", dump(jobs))
	}
}
