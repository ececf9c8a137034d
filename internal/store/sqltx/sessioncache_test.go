package sqltx_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store/sqlite"
	"github.com/parleyhq/parley/internal/store/sqltx"
)

// cacheFixture is a migrated SQLite database opened directly, so each test step can run a
// transaction with the cache and compare what it says with what the database holds.
type cacheFixture struct {
	t     *testing.T
	db    *sql.DB
	d     *sqltx.Dialect
	cache *sqltx.SessionCache
	in    *parley.Integration
}

func newCacheFixture(t *testing.T, max int) *cacheFixture {
	path := filepath.Join(t.TempDir(), "parley.db")
	s, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("parley-sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	f := &cacheFixture{t: t, db: db, d: sqlite.Dialect(), cache: sqltx.NewSessionCache(max, 1<<20)}
	f.in = &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook", SessionTimeout: 3600}
	if err := f.in.Normalize(); err != nil {
		t.Fatal(err)
	}
	f.commit(func(tx *sqltx.Tx) error { return tx.CreateIntegration(f.in) })
	return f
}

// run runs fn in a transaction that uses the cache; the cache learns of it only if it commits.
func (f *cacheFixture) run(commit bool, fn func(tx *sqltx.Tx) error) {
	f.t.Helper()
	ctx := context.Background()
	raw, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	tx := sqltx.New(ctx, raw, f.d, nil)
	tx.UseSessionCache(f.cache)
	if err := fn(tx); err != nil {
		raw.Rollback()
		f.t.Fatal(err)
	}
	if !commit {
		if err := raw.Rollback(); err != nil {
			f.t.Fatal(err)
		}
		return
	}
	if err := raw.Commit(); err != nil {
		f.t.Fatal(err)
	}
	f.cache.Commit(tx)
}

func (f *cacheFixture) commit(fn func(tx *sqltx.Tx) error) { f.t.Helper(); f.run(true, fn) }

// locked returns LockSession's answer, through the cache.
func (f *cacheFixture) locked(id string) *parley.Session {
	f.t.Helper()
	var s *parley.Session
	f.commit(func(tx *sqltx.Tx) (err error) {
		s, err = tx.LockSession(id)
		return err
	})
	return s
}

// stored returns the session as the database holds it, without the cache.
func (f *cacheFixture) stored(id string) *parley.Session {
	f.t.Helper()
	raw, err := f.db.Begin()
	if err != nil {
		f.t.Fatal(err)
	}
	defer raw.Rollback()
	s, err := sqltx.New(context.Background(), raw, f.d, nil).Session(id)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// agrees fails unless the cache answers for session id what the database holds.
func (f *cacheFixture) agrees(id, when string) *parley.Session {
	f.t.Helper()
	got, want := f.locked(id), f.stored(id)
	if !reflect.DeepEqual(got, want) {
		f.t.Fatalf("%s: the cache says\n%+v %+v\nthe database\n%+v %+v", when, got, got.Conversation, want, want.Conversation)
	}
	return got
}

func (f *cacheFixture) newSession(engine *chat.Engine) string {
	f.t.Helper()
	var id string
	f.commit(func(tx *sqltx.Tx) error {
		s, err := engine.CreateSession(tx, f.in, chat.NewSession{})
		if err == nil {
			id = s.ID
		}
		return err
	})
	return id
}

func TestSessionCacheFollowsTheDatabase(t *testing.T) {
	f := newCacheFixture(t, 100)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	engine := chat.New(func() time.Time { now = now.Add(1234567 * time.Nanosecond); return now })
	id := f.newSession(engine)

	f.agrees(id, "first read")
	if f.cache.Len() != 1 {
		t.Fatalf("cache holds %d sessions after one read, want 1", f.cache.Len())
	}

	// The hot path: a user message moves the job sequence and the deadline (sub-millisecond
	// times must come back as the database keeps them).
	f.commit(func(tx *sqltx.Tx) error {
		_, err := engine.PostUserMessage(tx, f.in, id, chat.UserMessage{Text: "hi"})
		return err
	})
	if s := f.agrees(id, "after a user message"); s.JobSeq != 1 {
		t.Fatalf("job_seq %d after one message, want 1", s.JobSeq)
	}

	// Times are kept in milliseconds: the cache must say what a read would.
	f.commit(func(tx *sqltx.Tx) error {
		s, err := tx.LockSession(id)
		if err != nil {
			return err
		}
		s.LastActivityAt = now.Add(987654 * time.Nanosecond)
		return tx.UpdateSession(s)
	})
	f.agrees(id, "after an update with a sub-millisecond time")

	// A caller changing what it was given changes nothing cached.
	f.commit(func(tx *sqltx.Tx) error {
		s, err := tx.LockSession(id)
		s.Status, s.Conversation.HandledBy, s.Context = "closed", "agent", []byte(`{"x":1}`)
		return err
	})
	f.agrees(id, "after a caller changed its copy")

	// A transaction that rolls back teaches the cache nothing, though it saw its own write.
	f.run(false, func(tx *sqltx.Tx) error {
		s, err := tx.LockSession(id)
		if err != nil {
			return err
		}
		s.JobSeq = 99
		if err := tx.UpdateSession(s); err != nil {
			return err
		}
		if again, err := tx.LockSession(id); err != nil || again.JobSeq != 99 {
			t.Errorf("within the transaction, job_seq %v (%v), want 99", again.JobSeq, err)
		}
		return nil
	})
	if s := f.agrees(id, "after a rollback"); s.JobSeq != 1 {
		t.Fatalf("job_seq %d after a rolled-back update, want 1", s.JobSeq)
	}

	// Context, handover, resolve and a new conversation: each must read as stored.
	f.commit(func(tx *sqltx.Tx) error {
		_, err := engine.UpdateContext(tx, f.in, id, map[string]any{"user": map[string]any{"name": "Ada"}})
		return err
	})
	f.agrees(id, "after a context patch")
	f.commit(func(tx *sqltx.Tx) error { return engine.Handover(tx, f.in, id) })
	if s := f.agrees(id, "after a handover"); s.Conversation.HandledBy != parley.HandledByQueue {
		t.Fatalf("handled by %q after a handover", s.Conversation.HandledBy)
	}
	f.commit(func(tx *sqltx.Tx) error { return engine.CloseConversation(tx, f.in, id, chat.ClosedBy{By: "api"}) })
	f.agrees(id, "after a resolve")
	f.commit(func(tx *sqltx.Tx) error {
		_, err := engine.PostUserMessage(tx, f.in, id, chat.UserMessage{Text: "again"})
		return err
	})
	if s := f.agrees(id, "after a message opened a new conversation"); s.Conversation.Status != parley.ConversationOpen {
		t.Fatalf("conversation %q after a new message", s.Conversation.Status)
	}
	f.commit(func(tx *sqltx.Tx) error { return engine.CloseSession(tx, f.in, id) })
	f.agrees(id, "after closing the session")
}

func TestSessionCacheForgetsUntrackedWrites(t *testing.T) {
	f := newCacheFixture(t, 100)
	engine := chat.New(nil)
	id := f.newSession(engine)
	f.agrees(id, "first read")
	f.commit(func(tx *sqltx.Tx) error {
		return tx.ExecShaped(`UPDATE sessions SET job_seq = job_seq + 7 WHERE id = ?`, id)
	})
	if f.cache.Len() != 0 {
		t.Fatalf("cache holds %d sessions after a statement it cannot replay, want 0", f.cache.Len())
	}
	if s := f.agrees(id, "after an untracked write"); s.JobSeq != 7 {
		t.Fatalf("job_seq %d, want 7", s.JobSeq)
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	f := newCacheFixture(t, 3)
	engine := chat.New(nil)
	for range 10 {
		id := f.newSession(engine)
		f.agrees(id, "read")
		if f.cache.Len() > 3 {
			t.Fatalf("cache holds %d sessions, bound 3", f.cache.Len())
		}
	}
}

// TestSessionCacheStaleWithinTransaction: after a write the cache cannot replay, the rest of the
// same transaction (the later ops of a SQLite batch) reads sessions from the database, so no op
// sees, or writes back, the old values.
func TestSessionCacheStaleWithinTransaction(t *testing.T) {
	f := newCacheFixture(t, 100)
	engine := chat.New(nil)
	id := f.newSession(engine)
	s := f.agrees(id, "first read")
	f.commit(func(tx *sqltx.Tx) error {
		if err := tx.ExecShaped(`UPDATE Sessions SET job_seq = job_seq + 7 WHERE id = ?`, id); err != nil {
			return err
		}
		if got, err := tx.LockSession(id); err != nil || got.JobSeq != 7 {
			t.Errorf("in the transaction after an untracked write: job_seq %v (%v), want 7", got.JobSeq, err)
		}
		_, err := engine.PostUserMessage(tx, f.in, id, chat.UserMessage{Text: "hi"})
		return err
	})
	if s := f.agrees(id, "after an untracked write and a message"); s.JobSeq != 8 {
		t.Fatalf("job_seq %d after +7 and one message, want 8", s.JobSeq)
	}

	// A conversation updated without its session's ID: whose it is, the cache cannot tell.
	s = f.agrees(id, "read again")
	f.commit(func(tx *sqltx.Tx) error {
		c := *s.Conversation
		c.SessionID, c.HandledBy = "", parley.HandledByQueue
		if err := tx.UpdateConversation(&c); err != nil {
			return err
		}
		if got, err := tx.LockSession(id); err != nil || got.Conversation.HandledBy != parley.HandledByQueue {
			t.Errorf("in the transaction after an anonymous conversation update: handled by %q (%v)", got.Conversation.HandledBy, err)
		}
		return nil
	})
	f.agrees(id, "after an anonymous conversation update")
}

// TestSessionCacheBoundsContextBytes: contexts can be large, so the cache bounds their bytes too.
func TestSessionCacheBoundsContextBytes(t *testing.T) {
	f := newCacheFixture(t, 100)
	f.cache = sqltx.NewSessionCache(100, 4000)
	engine := chat.New(nil)
	big := strings.Repeat("x", 1500)
	for range 6 {
		id := f.newSession(engine)
		f.commit(func(tx *sqltx.Tx) error {
			_, err := engine.UpdateContext(tx, f.in, id, map[string]any{"note": big})
			return err
		})
		f.agrees(id, "a session with a large context")
		if f.cache.Len() > 2 {
			t.Fatalf("cache holds %d sessions of about 1.5 KB of context, bound 4000 bytes", f.cache.Len())
		}
	}
}

// TestSessionCacheOfNothing: a cache bounded to no session holds none and still answers.
func TestSessionCacheOfNothing(t *testing.T) {
	f := newCacheFixture(t, 0)
	id := f.newSession(chat.New(nil))
	f.agrees(id, "read")
	f.agrees(id, "read again")
	if f.cache.Len() != 0 {
		t.Fatalf("a cache bounded to 0 sessions holds %d", f.cache.Len())
	}
}
