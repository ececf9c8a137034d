package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func testSessionRoundTrip(t *testing.T, h Harness) {
	f := setup(t, h)
	closed := newSession(f.in)
	closed.ExternalSessionID = "ext-✓-שלום"
	closed.Status, closed.EndedAt = parley.SessionClosed, now.Add(30*time.Minute)
	closed.Context = []byte(`{"user":{"display_name":"Zoë 👩‍💻","language":"ar"},"tags":["a","b"],"n":12345678901234567890}`)
	closed.Partition, closed.EventSeq, closed.JobSeq = 63, 7, 3
	closed.LastActivityAt = now.Add(20 * time.Minute)
	c := closed.Conversation
	c.Status, c.HandledBy, c.AssigneeID = parley.ConversationResolved, parley.HandledByAgent, "agent-7"
	c.UpdatedAt, c.ResolvedAt = now.Add(25*time.Minute), now.Add(30*time.Minute)
	update(t, f.s, func(tx store.Tx) error { return insertSession(tx, closed) })

	for _, want := range []*parley.Session{f.sess, closed} {
		got := read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(want.ID) })
		equal(t, "Session", got, want)
		conv := read(t, f.s, func(tx store.ReadTx) (*parley.Conversation, error) { return tx.Conversation(want.ConversationID) })
		equal(t, "Conversation", conv, want.Conversation)
		var locked *parley.Session
		update(t, f.s, func(tx store.Tx) error {
			var err error
			locked, err = tx.LockSession(want.ID)
			return err
		})
		equal(t, "LockSession", locked, want)
	}
}

func testUpdateSession(t *testing.T, h Harness) {
	f := setup(t, h)
	// The session moves on to a second conversation, as when the first is resolved.
	next := &parley.Conversation{ID: parley.NewID(), SessionID: f.sess.ID, IntegrationID: f.in.ID,
		Status: parley.ConversationOpen, HandledBy: parley.HandledByQueue, CreatedAt: now.Add(time.Minute),
		UpdatedAt: now.Add(time.Minute)}
	changed := *f.sess
	changed.Status = parley.SessionExpired
	changed.ConversationID, changed.Conversation = next.ID, next
	changed.EventSeq, changed.JobSeq = 12, 4
	changed.LastActivityAt, changed.ExpiresAt, changed.EndedAt = now.Add(time.Minute), now.Add(2*time.Hour), now.Add(3*time.Hour)
	changed.Context = []byte(`{"ignored":true}`) // SetSessionContext writes the context, UpdateSession does not
	update(t, f.s, func(tx store.Tx) error {
		if err := tx.CreateConversation(next); err != nil {
			return err
		}
		return tx.UpdateSession(&changed)
	})

	want := changed
	want.Context = f.sess.Context
	got := read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(f.sess.ID) })
	equal(t, "session", got, &want)
	first := read(t, f.s, func(tx store.ReadTx) (*parley.Conversation, error) { return tx.Conversation(f.sess.ConversationID) })
	equal(t, "first conversation", first, f.sess.Conversation)
}

func testSetSessionContext(t *testing.T, h Harness) {
	f := setup(t, h)
	tests := []struct{ name, context string }{
		{"empty object", `{}`},
		{"nested", `{"user":{"location":{"city":"Zürich","latitude":47.37}},"global":{"ref":"x"}}`},
		{"exact numbers", `{"big":12345678901234567890,"small":1e-300}`},
		{"escapes kept verbatim", `{"s":"\u00e9\n\"\\\/"}`},
		{"unicode", `{"s":"👋🏽 مرحبا e` + "\u0301 \u2028\u2029" + `"}`},
		{"large", `{"s":"` + strings.Repeat("x", parley.MaxContextBytes-10) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sess := createSession(t, f.s, f.in)
			update(t, f.s, func(tx store.Tx) error { return tx.SetSessionContext(sess.ID, []byte(tc.context)) })
			got := read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(sess.ID) })
			want := *sess
			want.Context = []byte(tc.context)
			equal(t, "session", got, &want)
		})
	}
}

func testUpdateConversation(t *testing.T, h Harness) {
	f := setup(t, h)
	c := *f.sess.Conversation
	c.Status, c.HandledBy, c.AssigneeID = parley.ConversationResolved, parley.HandledByAgent, "agent-✓"
	c.UpdatedAt, c.ResolvedAt = now.Add(time.Minute), now.Add(time.Minute)
	update(t, f.s, func(tx store.Tx) error { return tx.UpdateConversation(&c) })
	got := read(t, f.s, func(tx store.ReadTx) (*parley.Conversation, error) { return tx.Conversation(c.ID) })
	equal(t, "resolved conversation", got, &c)
	sess := read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(f.sess.ID) })
	equal(t, "session's conversation", sess.Conversation, &c)

	// Reopening writes the zero times back.
	c.Status, c.HandledBy, c.AssigneeID, c.ResolvedAt = parley.ConversationOpen, parley.HandledByBrain, "", time.Time{}
	update(t, f.s, func(tx store.Tx) error { return tx.UpdateConversation(&c) })
	got = read(t, f.s, func(tx store.ReadTx) (*parley.Conversation, error) { return tx.Conversation(c.ID) })
	equal(t, "reopened conversation", got, &c)
}

// expiring stores sessions due at the given offsets from now, plus sessions that must never be
// returned, and returns the due ones by name.
func expiring(t *testing.T, s store.Store, in *parley.Integration) map[string]*parley.Session {
	t.Helper()
	due := map[string]time.Duration{"2h ago": -2 * time.Hour, "1h ago": -time.Hour, "now": 0}
	byName := map[string]*parley.Session{}
	var all []*parley.Session
	for name, d := range due {
		sess := newSession(in)
		sess.ExpiresAt = now.Add(d)
		byName[name] = sess
		all = append(all, sess)
	}
	notYet := newSession(in)
	notYet.ExpiresAt = now.Add(time.Millisecond)
	closed := newSession(in)
	closed.Status, closed.ExpiresAt, closed.EndedAt = parley.SessionClosed, now.Add(-3*time.Hour), now.Add(-4*time.Hour)
	expired := newSession(in)
	expired.Status, expired.ExpiresAt, expired.EndedAt = parley.SessionExpired, now.Add(-3*time.Hour), now.Add(-3*time.Hour)
	all = append(all, notYet, closed, expired)
	update(t, s, func(tx store.Tx) error {
		for _, sess := range all {
			if err := insertSession(tx, sess); err != nil {
				return err
			}
		}
		return nil
	})
	return byName
}

func expiringSessions(t *testing.T, s store.Store, limit int) []string {
	t.Helper()
	var got []string
	update(t, s, func(tx store.Tx) error {
		var err error
		got, err = tx.ExpiringSessions(now, limit)
		return err
	})
	return got
}

func testExpiringSessions(t *testing.T, h Harness) {
	s := h.Open(t)
	in := createIntegration(t, s)
	if got := expiringSessions(t, s, 10); len(got) != 0 {
		t.Errorf("a new store has expiring sessions %v", got)
	}
	due := expiring(t, s, in)
	order := []string{due["2h ago"].ID, due["1h ago"].ID, due["now"].ID}
	equal(t, "expiring, earliest first", expiringSessions(t, s, 10), order)
	equal(t, "expiring, limit 2", expiringSessions(t, s, 2), order[:2])
}

// testExpiringSessionsSkipLocked checks that two sweepers, or a sweeper and a request working on a
// session, do not wait for each other: each passes over the sessions the other holds.
func testExpiringSessionsSkipLocked(t *testing.T, h Harness) {
	if !h.RowLocks {
		t.Skip("the store runs one transaction at a time: there is no lock to skip")
	}
	s := h.Open(t)
	in := createIntegration(t, s)
	due := expiring(t, s, in)
	first, second, third := due["2h ago"].ID, due["1h ago"].ID, due["now"].ID

	tests := []struct {
		name string
		hold func(tx store.Tx) error // what the other transaction holds
		want []string
	}{
		{"a request holds a session", func(tx store.Tx) error {
			_, err := tx.LockSession(first)
			return err
		}, []string{second, third}},
		{"another sweeper holds sessions", func(tx store.Tx) error {
			got, err := tx.ExpiringSessions(now, 2)
			if err == nil && !slices.Equal(got, []string{first, second}) {
				err = fmt.Errorf("first sweeper got %v", got)
			}
			return err
		}, []string{third}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- s.Update(t.Context(), func(tx store.Tx) error {
					if err := tc.hold(tx); err != nil {
						return err
					}
					close(held)
					<-release
					return nil
				})
			}()
			select {
			case <-held:
			case err := <-done:
				t.Fatalf("holding transaction: %v", err)
			}
			// Bounded: a sweeper that waits for the lock instead of skipping it would wait forever.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var got []string
			err := s.Update(ctx, func(tx store.Tx) error {
				var err error
				got, err = tx.ExpiringSessions(now, 10)
				return err
			})
			close(release)
			if err != nil {
				t.Fatalf("sweeping beside the holding transaction: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("holding transaction: %v", err)
			}
			equal(t, "expiring sessions not held", got, tc.want)
		})
	}
}

// testLockSessionSerializes runs many Updates that each read a session's EventSeq under
// LockSession, add an event and write EventSeq back, all at once: not one increment may be lost,
// and the events must be numbered 1, 2, 3, ... without gap or repeat.
func testLockSessionSerializes(t *testing.T, h Harness) {
	f := setup(t, h)
	const n = 50
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			errs <- f.s.Update(t.Context(), func(tx store.Tx) error {
				sess, err := tx.LockSession(f.sess.ID)
				if err != nil {
					return err
				}
				if err := tx.InsertEvent(newEvent(f.in, sess)); err != nil {
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
	got := read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(f.sess.ID) })
	if got.EventSeq != n {
		t.Errorf("EventSeq = %d after %d concurrent increments", got.EventSeq, n)
	}
	events := read(t, f.s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.PendingEvents(f.sess.ID) })
	var seqs []int64
	for _, e := range events {
		seqs = append(seqs, e.SessionSeq)
	}
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	equal(t, "session seqs of the events", seqs, want)
}

// testUpdateSessionWithMessage checks that a session a message changed reads back changed,
// whether the store rewrote its row or let the message carry the change; that later messages
// keep the change; that a change of more than a message carries is kept whole; and that a
// rolled back change is gone.
func testUpdateSessionWithMessage(t *testing.T, h Harness) {
	f := setup(t, h)
	stored := func() *parley.Session {
		return read(t, f.s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(f.sess.ID) })
	}
	var want *parley.Session
	// change locks the session, changes it with fn and stores it with a user's message and its
	// job; it returns Update's error.
	change := func(fn func(s *parley.Session), fail bool) error {
		return f.s.Update(t.Context(), func(tx store.Tx) error {
			s, err := tx.LockSession(f.sess.ID)
			if err != nil {
				return err
			}
			s.JobSeq++
			fn(s)
			if err := tx.UpdateSessionWithMessage(s, newMessage(s, parley.AuthorUser, "hi", now), jobOf(s, s.JobSeq)); err != nil {
				return err
			}
			if fail {
				return errFail
			}
			want = s
			return nil
		})
	}
	// Twice: the first change may read the session from the database, the second from a cache.
	for i := 1; i <= 2; i++ {
		if err := change(func(s *parley.Session) {
			s.LastActivityAt, s.ExpiresAt = now.Add(time.Duration(i)*time.Minute), now.Add(time.Duration(i)*time.Hour)
		}, false); err != nil {
			t.Fatal(err)
		}
		equal(t, fmt.Sprintf("session after message %d", i), stored(), want)
	}
	// A message that leaves the session as it is (a reply) keeps what the last one carried.
	update(t, f.s, func(tx store.Tx) error {
		s, err := tx.LockSession(f.sess.ID)
		if err != nil {
			return err
		}
		return tx.InsertMessage(newMessage(s, parley.AuthorBrain, "reply", now))
	})
	equal(t, "session after a reply", stored(), want)
	jobs := read(t, f.s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(f.sess.ID) })
	if len(jobs) != 2 || jobs[0].SessionSeq != 1 || jobs[1].SessionSeq != 2 {
		t.Errorf("jobs after two messages: %s", dump(jobs))
	}
	// More than a message carries: the whole session.
	if err := change(func(s *parley.Session) { s.EventSeq++; s.ExpiresAt = now.Add(3 * time.Hour) }, false); err != nil {
		t.Fatal(err)
	}
	equal(t, "session after a message and an event", stored(), want)
	if err := change(func(s *parley.Session) { s.ExpiresAt = now.Add(4 * time.Hour) }, true); !errors.Is(err, errFail) {
		t.Fatalf("failing Update: %v", err)
	}
	equal(t, "session after a rolled back message", stored(), want)
	// As a writer sees it too (on SQLite, through its cache).
	update(t, f.s, func(tx store.Tx) error {
		s, err := tx.LockSession(f.sess.ID)
		if err == nil {
			equal(t, "locked session after a rolled back message", s, want)
		}
		return err
	})
	if err := change(func(s *parley.Session) { s.ExpiresAt = now.Add(5 * time.Hour) }, false); err != nil {
		t.Fatal(err)
	}
	equal(t, "session after the message that followed the rolled back one", stored(), want)
	jobs = read(t, f.s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(f.sess.ID) })
	var seqs []int64
	for _, j := range jobs {
		seqs = append(seqs, j.SessionSeq)
	}
	if want.JobSeq != 4 || !slices.Equal(seqs, []int64{1, 2, 3, 4}) {
		t.Errorf("session's job seq %d and its jobs' %v after four messages, want 4 and [1 2 3 4]", want.JobSeq, seqs)
	}
}

// testExpiringSessionsCarried checks the sweep against a deadline a message moved: a session
// whose row says it is due but whose last message moved its deadline past now is not due, and
// does not keep due sessions from the sweep, even when the limit would cut them off.
func testExpiringSessionsCarried(t *testing.T, h Harness) {
	s := h.Open(t)
	in := createIntegration(t, s)
	var sessions []*parley.Session
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Hour} {
		sess := newSession(in)
		sess.ExpiresAt = now.Add(d)
		sessions = append(sessions, sess)
	}
	update(t, s, func(tx store.Tx) error {
		return firstErr(insertSession(tx, sessions[0]), insertSession(tx, sessions[1]), insertSession(tx, sessions[2]))
	})
	moved := sessions[1]
	update(t, s, func(tx store.Tx) error {
		l, err := tx.LockSession(moved.ID)
		if err != nil {
			return err
		}
		l.JobSeq++
		l.LastActivityAt, l.ExpiresAt = now, now.Add(time.Hour)
		return tx.UpdateSessionWithMessage(l, newMessage(l, parley.AuthorUser, "still here", now), jobOf(l, l.JobSeq))
	})
	due := []string{sessions[0].ID, sessions[2].ID}
	equal(t, "expiring, limit 2", expiringSessions(t, s, 2), due)
	equal(t, "expiring", expiringSessions(t, s, 10), due)
	got := read(t, s, func(tx store.ReadTx) (*parley.Session, error) { return tx.Session(moved.ID) })
	if !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("the moved session's deadline after the sweep: %v, want %v", got.ExpiresAt, now.Add(time.Hour))
	}
}
