package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// AtSchema returns a new, empty database migrated up to version only, as a parley of that
// schema left it, and a function that opens the store on it, migrating it to the newest schema.
type AtSchema func(t *testing.T, version int) (*sql.DB, func() store.Store)

// Upgrades runs every upgrade check, each on a database of its own made by at.
func Upgrades(t *testing.T, at AtSchema) {
	for _, u := range []struct {
		name  string
		from  int
		check func(*testing.T, *sql.DB, func() store.Store)
	}{
		{"Jobs", 4, JobsUpgrade},
		{"SessionNum", 6, SessionNumUpgrade},
	} {
		t.Run(u.name, func(t *testing.T) {
			t.Parallel()
			db, open := at(t, u.from)
			u.check(t, db, open)
		})
	}
}

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

// SessionNumUpgrade checks migration 7, which gave sessions a number and messages their
// session's number, on a database a parley of schema 6 left: db is that database, at schema 6
// and empty; open opens the store on it and migrates it to the newest schema. Every read of a
// session's messages must find exactly that session's messages, a waiting job must still wait,
// and a session made after the upgrade must get a number of its own.
func SessionNumUpgrade(t *testing.T, db *sql.DB, open func() store.Store) {
	in, a, b, convA, convB := parley.NewID(), parley.NewID(), parley.NewID(), parley.NewID(), parley.NewID()
	// Literal values only: the same statements run on both databases. The sessions' messages
	// are interleaved, and b was stored first.
	stmts := []string{
		`INSERT INTO integrations (id, webhook_url, session_timeout, desk_id, created_at, updated_at)
			VALUES ('%[1]s', 'http://127.0.0.1:9/hook', 3600, 'desk', 1, 1)`,
		`INSERT INTO sessions (id, integration_id, status, context, conversation_id, partition, job_seq, created_at,
			last_activity_at, expires_at) VALUES ('%[3]s', '%[1]s', 'active', '{}', '%[5]s', 3, 0, 1, 1, 4102444800000)`,
		`INSERT INTO sessions (id, integration_id, status, context, conversation_id, partition, job_seq, created_at,
			last_activity_at, expires_at) VALUES ('%[2]s', '%[1]s', 'active', '{}', '%[4]s', 7, 1, 1, 1, 4102444800000)`,
		`INSERT INTO conversations (id, session_id, integration_id, status, handled_by, created_at, updated_at)
			VALUES ('%[4]s', '%[2]s', '%[1]s', 'open', 'brain', 1, 1)`,
		`INSERT INTO conversations (id, session_id, integration_id, status, handled_by, created_at, updated_at)
			VALUES ('%[5]s', '%[3]s', '%[1]s', 'open', 'queue', 1, 1)`,
	}
	for i, q := range stmts {
		stmts[i] = fmt.Sprintf(q, in, a, b, convA, convB)
	}
	msgs := []struct{ session, conv, text string }{{a, convA, "a1"}, {b, convB, "b1"}, {a, convA, "a2"}, {b, convB, "b2"}}
	ids := map[string]string{}
	for i, m := range msgs {
		id := parley.NewID()
		ids[m.text] = id
		job := 0
		if m.text == "a2" {
			job = 1 // waits for the brain
		}
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO messages (id, session_id, conversation_id, author, text,
			created_at, job_seq) VALUES ('%s', '%s', '%s', 'user', '%s', %d, %d)`, id, m.session, m.conv, m.text, 1000*(i+1), job))
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("filling the schema 6 database: %v", err)
		}
	}
	s := open()
	texts := func(ms []*parley.Message) []string {
		var ts []string
		for _, m := range ms {
			ts = append(ts, m.Text)
		}
		return ts
	}
	equal(t, "a's messages after the upgrade", texts(read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) {
		return tx.Messages(a, 0, 2)
	})), []string{"a1", "a2"})
	equal(t, "b's recent messages after the upgrade", texts(read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) {
		return tx.RecentMessages(b, 10)
	})), []string{"b1", "b2"})
	jobs := read(t, s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(a) })
	if len(jobs) != 1 || jobs[0].MessageID != ids["a2"] || jobs[0].SessionSeq != 1 {
		t.Errorf("a's jobs after the upgrade: %s", dump(jobs))
	}
	// Its messages from before carry no state (0): the session's is its row's, and its next job
	// follows the last.
	if got := read(t, s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(a) }); got.JobSeq != 1 ||
		!got.ExpiresAt.Equal(time.UnixMilli(4102444800000)) {
		t.Errorf("a after the upgrade: job seq %d, deadline %v", got.JobSeq, got.ExpiresAt)
	}
	update(t, s, func(tx store.Tx) error {
		sess, err := tx.LockSession(a)
		if err != nil {
			return err
		}
		sess.JobSeq++
		return tx.UpdateSessionWithMessage(sess, newMessage(sess, parley.AuthorUser, "a3", now), jobOf(sess, sess.JobSeq))
	})
	jobs = read(t, s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(a) })
	if len(jobs) != 2 || jobs[1].SessionSeq != 2 {
		t.Errorf("a's jobs after a message after the upgrade: %s", dump(jobs))
	}
	// A receipt up to a time marks that session's messages only.
	var marked []string
	update(t, s, func(tx store.Tx) error {
		var err error
		marked, err = tx.MarkMessages(b, parley.ReceiptRead, []string{parley.AuthorUser}, nil, time.UnixMilli(5000), now)
		return err
	})
	equal(t, "messages b's receipt marked", marked, []string{ids["b1"], ids["b2"]})

	// A new session gets a number of its own: its messages are its own, and the others' stay theirs.
	c := createSession(t, s, &parley.Integration{ID: in})
	update(t, s, func(tx store.Tx) error { return tx.InsertMessage(newMessage(c, parley.AuthorUser, "c1", now)) })
	equal(t, "c's messages", texts(read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) {
		return tx.Messages(c.ID, 0, 10)
	})), []string{"c1"})
	for id, want := range map[string][]string{a: {"a1", "a2", "a3"}, b: {"b1", "b2"}} {
		equal(t, "messages after c's", texts(read(t, s, func(tx store.ReadTx) ([]*parley.Message, error) {
			return tx.Messages(id, 0, 10)
		})), want)
	}
}
