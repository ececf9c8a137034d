package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// testUpdateRollback checks that an Update whose fn fails, by error or by panic, after writing
// through every kind of method leaves nothing written and tells no watcher.
func testUpdateRollback(t *testing.T, h Harness) {
	f := setup(t, h)
	sent := newMessage(f.sess, parley.AuthorBrain, "sent", now)
	update(t, f.s, func(tx store.Tx) error { return tx.InsertMessage(sent) })
	r := record(f.s)

	tests := []struct {
		name  string
		end   func(tx store.Tx) error // called after the writes; its error is fn's
		check func(t *testing.T, err error)
	}{
		{"error", func(store.Tx) error { return errFail }, func(t *testing.T, err error) {
			if !errors.Is(err, errFail) {
				t.Errorf("Update returned %v, want fn's error", err)
			}
		}},
		{"store error", func(tx store.Tx) error { return tx.CreateIntegration(f.in) }, func(t *testing.T, err error) {
			wantCode(t, "Update", err, parley.EConflict)
		}},
		{"panic", func(store.Tx) error { panic("boom") }, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Errorf("Update returned %v, want an error naming the panic", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newIntegration()
			key := newAPIKey(in.ID, now)
			sess := newSession(in)
			m := newMessage(f.sess, parley.AuthorUser, "never", now)
			e := eventIn(f.in.ID, f.sess.ID, f.sess.Partition, 1)
			j := jobOf(f.sess, 1)
			c := *f.sess.Conversation
			c.HandledBy = parley.HandledByQueue
			// SQLite turns a panic into an error; were a store to let it through, it must still
			// have rolled back.
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panicked: %v", p)
					}
				}()
				err = f.s.Update(t.Context(), func(tx store.Tx) error {
					for _, err := range []error{
						tx.CreateIntegration(in), tx.CreateAPIKey(key), insertSession(tx, sess),
						tx.InsertMessageWithJob(m, j), tx.InsertEvent(e),
						tx.SetSessionContext(f.sess.ID, []byte(`{"changed":true}`)), tx.UpdateConversation(&c),
						tx.SaveIdempotentResponse(f.in.ID, "k", 200, []byte("x"), now, now.Add(-time.Hour)),
					} {
						if err != nil {
							return fmt.Errorf("write before the failure: %w", err)
						}
					}
					if _, err := tx.MarkMessages(f.sess.ID, parley.ReceiptRead, []string{parley.AuthorBrain}, []string{sent.ID}, time.Time{}, now); err != nil {
						return err
					}
					return tc.end(tx)
				})
			}()
			tc.check(t, err)

			err = f.s.View(t.Context(), func(tx store.ReadTx) error {
				_, err1 := tx.Integration(in.ID)
				_, err2 := tx.Session(sess.ID)
				_, err3 := tx.Message(f.sess.ID, m.ID)
				_, _, err4 := tx.IdempotentResponse(f.in.ID, "k", time.Time{})
				for i, err := range []error{err1, err2, err3, err4} {
					wantCode(t, fmt.Sprintf("read %d of a rolled back row", i+1), err, parley.ENotFound)
				}
				keys, err := tx.APIKeys(in.ID)
				if err != nil || len(keys) != 0 {
					t.Errorf("api keys after rollback: %d, %v", len(keys), err)
				}
				events, err := tx.Events(store.EventFilter{EventID: e.ID})
				if err != nil || len(events) != 0 {
					t.Errorf("events after rollback: %d, %v", len(events), err)
				}
				jobs, err := tx.PendingJobs(f.sess.ID)
				if err != nil || len(jobs) != 0 {
					t.Errorf("jobs after rollback: %d, %v", len(jobs), err)
				}
				got, err := tx.Session(f.sess.ID)
				if err != nil {
					return err
				}
				equal(t, "session after rollback", got, f.sess)
				msg, err := tx.Message(f.sess.ID, sent.ID)
				if err != nil {
					return err
				}
				equal(t, "receipts after rollback", msg, sent)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if cs := r.barrier(t, f.s); len(cs) != 0 {
				t.Errorf("watchers saw %s", dump(cs))
			}
		})
	}
}

func testUpdateCanceledContext(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	in := newIntegration()
	err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateIntegration(in) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context: err = %v, want context.Canceled", err)
	}
	err = readErr(t, s, func(tx store.ReadTx) error { _, err := tx.Integration(in.ID); return err })
	wantCode(t, "integration of the canceled Update", err, parley.ENotFound)
	err = s.View(ctx, func(tx store.ReadTx) error { _, err := tx.Integrations(); return err })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a canceled context: err = %v, want context.Canceled", err)
	}
}

// testConcurrentUpdates starts many Updates at once, half of which fail after writing (by error,
// by a unique conflict, by panic). On SQLite they are committed in groups, each in a savepoint:
// exactly the successful ones must be stored, each caller must get its own result, and watchers
// must hear of the successful ones' events and jobs only.
func testConcurrentUpdates(t *testing.T, h Harness) {
	f := setup(t, h)
	r := record(f.s)
	const n = 200
	type op struct {
		m   *parley.Message
		e   *parley.Event
		j   *parley.BrainJob
		err error
	}
	ops := make([]*op, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		o := &op{m: newMessage(f.sess, parley.AuthorUser, fmt.Sprint(i), now)}
		o.e = eventIn(f.in.ID, f.sess.ID, f.sess.Partition, int64(i+1))
		o.j = jobOf(f.sess, int64(i+1))
		ops[i] = o
		wg.Go(func() {
			<-start
			o.err = f.s.Update(t.Context(), func(tx store.Tx) error {
				for _, err := range []error{tx.InsertMessageWithJob(o.m, o.j), tx.InsertEvent(o.e)} {
					if err != nil {
						return err
					}
				}
				switch i % 6 {
				case 1:
					return fmt.Errorf("op %d: %w", i, errFail)
				case 3:
					return tx.CreateIntegration(f.in)
				case 5:
					panic(fmt.Sprintf("op %d panics", i))
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()

	var okMsgs, okEvents, okJobs []string
	for i, o := range ops {
		switch i % 6 {
		case 1:
			if !errors.Is(o.err, errFail) || !strings.Contains(o.err.Error(), fmt.Sprintf("op %d:", i)) {
				t.Errorf("op %d: err = %v, want its own error", i, o.err)
			}
		case 3:
			wantCode(t, fmt.Sprintf("op %d", i), o.err, parley.EConflict)
		case 5:
			if o.err == nil || !strings.Contains(o.err.Error(), fmt.Sprintf("op %d panics", i)) {
				t.Errorf("op %d: err = %v, want its own panic", i, o.err)
			}
		default:
			if o.err != nil {
				t.Errorf("op %d: %v", i, o.err)
			}
			okMsgs, okEvents, okJobs = append(okMsgs, o.m.ID), append(okEvents, o.e.ID), append(okJobs, o.j.MessageID)
		}
	}
	seqs := map[int64]bool{}
	for _, o := range ops {
		if o.err == nil {
			if o.m.Seq <= 0 || o.e.Seq <= 0 || o.j.Seq <= 0 || seqs[o.m.Seq] {
				t.Errorf("op for message %q: Seqs %d, %d, %d", o.m.Text, o.m.Seq, o.e.Seq, o.j.Seq)
			}
			seqs[o.m.Seq] = true
		}
	}
	slices.Sort(okMsgs)
	slices.Sort(okEvents)
	slices.Sort(okJobs)

	sorted := func(s []string) []string { slices.Sort(s); return s }
	msgs := read(t, f.s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.Messages(f.sess.ID, 0, 2*n) })
	equal(t, "stored messages", sorted(ids(msgs, messageID)), okMsgs)
	events := read(t, f.s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.PendingEvents(f.sess.ID) })
	equal(t, "stored events", sorted(ids(events, eventID)), okEvents)
	jobs := read(t, f.s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(f.sess.ID) })
	equal(t, "stored jobs", sorted(ids(jobs, func(j *parley.BrainJob) string { return j.MessageID })), okJobs)

	var seenEvents, seenJobs []string
	for _, c := range r.barrier(t, f.s) {
		seenEvents = append(seenEvents, ids(c.Events, eventID)...)
		seenJobs = append(seenJobs, ids(c.Jobs, func(j *parley.BrainJob) string { return j.MessageID })...)
	}
	equal(t, "events watchers saw", sorted(seenEvents), okEvents)
	equal(t, "jobs watchers saw", sorted(seenJobs), okJobs)
}

// testWatch checks what watchers are told of each commit: the events (with their bodies) and
// jobs it inserted and the conversations it touched, each once, and nothing for commits that
// change none of these.
func testWatch(t *testing.T, h Harness) {
	f := setup(t, h)
	sent := newMessage(f.sess, parley.AuthorBrain, "sent", now)
	update(t, f.s, func(tx store.Tx) error { return tx.InsertMessage(sent) })
	r1, r2 := record(f.s), record(f.s)

	// Not announced: nothing an outbox, a brain or a console follows.
	update(t, f.s, func(tx store.Tx) error {
		in := newIntegration()
		return firstErr(tx.CreateIntegration(in), tx.CreateAPIKey(newAPIKey(in.ID, now)),
			tx.SetSessionContext(f.sess.ID, []byte(`{}`)),
			tx.SaveIdempotentResponse(f.in.ID, "k", 200, nil, now, now))
	})
	// A session, messages in two conversations, events and a job.
	sess := newSession(f.in)
	m1, m2 := newMessage(f.sess, parley.AuthorUser, "one", now), newMessage(sess, parley.AuthorUser, "two", now)
	e1, e2 := newEvent(f.in, f.sess), newEvent(f.in, sess)
	j := jobOf(f.sess, 1)
	update(t, f.s, func(tx store.Tx) error {
		return firstErr(insertSession(tx, sess), tx.InsertMessageWithJob(m1, j), tx.InsertMessage(m2), tx.InsertEvent(e1),
			tx.InsertEvent(e2))
	})
	// Receipts and a conversation update touch their conversation, once.
	c := *f.sess.Conversation
	c.HandledBy = parley.HandledByQueue
	update(t, f.s, func(tx store.Tx) error {
		_, err := tx.MarkMessages(f.sess.ID, parley.ReceiptRead, []string{parley.AuthorBrain}, []string{sent.ID}, time.Time{}, now)
		return firstErr(err, tx.UpdateConversation(&c))
	})
	// Marking nothing, or updating a missing conversation, touches nothing.
	e3 := newEvent(f.in, f.sess)
	update(t, f.s, func(tx store.Tx) error {
		_, err := tx.MarkMessages(f.sess.ID, parley.ReceiptRead, []string{parley.AuthorBrain}, []string{sent.ID}, time.Time{}, now)
		ghost := *f.sess.Conversation
		ghost.ID = parley.NewID()
		if err := tx.UpdateConversation(&ghost); !parley.IsCode(err, parley.ENotFound) {
			return fmt.Errorf("updating a missing conversation: %v", err)
		}
		return firstErr(err, tx.InsertEvent(e3))
	})

	ref := func(s *parley.Session) store.ConversationRef {
		return store.ConversationRef{SessionID: s.ID, ConversationID: s.ConversationID}
	}
	want := []*store.Change{
		{Events: []*parley.Event{e1, e2}, Jobs: []*parley.BrainJob{j}, Conversations: []store.ConversationRef{ref(sess), ref(f.sess)}},
		{Conversations: []store.ConversationRef{ref(f.sess)}},
		{Events: []*parley.Event{e3}},
	}
	got := r1.barrier(t, f.s)
	equal(t, "changes seen", got, want)
	for _, c := range got {
		for _, e := range c.Events {
			if len(e.Body) == 0 || e.Seq == 0 {
				t.Errorf("watchers got event %s without its body or Seq", e.ID)
			}
		}
	}
	// Every watcher is called before Update returns, so the second has seen all the first has.
	equal(t, "changes seen by the second watcher", r2.seen(), r1.seen())
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// testWatchRemote checks that a store hears of the commits of another store on the same
// database, as another process's: by reference (partition, session, SessionSeq), with Remote
// set, only once committed, and however many there are.
func testWatchRemote(t *testing.T, h Harness) {
	if h.OpenPair == nil {
		t.Skip("the store cannot hear another process's commits")
	}
	a, b := h.OpenPair(t)
	in := createIntegration(t, a)
	sess := createSession(t, a, in)
	ra, rb := record(a), record(b)
	waitListening(t, a, rb)
	heard := len(rb.seen())
	since := func(cs []*store.Change) []*store.Change { return cs[min(heard, len(cs)):] }

	// A rolled back commit is never heard of; the next one is.
	err := a.Update(t.Context(), func(tx store.Tx) error {
		return firstErr(tx.InsertEvent(newEvent(in, sess)), errFail)
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("failing Update: %v", err)
	}
	m := newMessage(sess, parley.AuthorUser, "hi", now)
	e := newEvent(in, sess)
	j := jobOf(sess, 1)
	update(t, a, func(tx store.Tx) error { return firstErr(tx.InsertMessageWithJob(m, j), tx.InsertEvent(e)) })
	cs := rb.waitFor(t, "the remote commit", func(cs []*store.Change) bool { return len(since(cs)) > 0 })
	want := &store.Change{
		Events:        []*parley.Event{{Partition: sess.Partition, SessionID: sess.ID, SessionSeq: e.SessionSeq}},
		Jobs:          []*parley.BrainJob{{Partition: sess.Partition, SessionID: sess.ID, SessionSeq: j.SessionSeq}},
		Conversations: []store.ConversationRef{{SessionID: sess.ID, ConversationID: sess.ConversationID}},
		Remote:        true,
	}
	equal(t, "the remote change", since(cs), []*store.Change{want})
	heard = len(cs)

	// A commit too large for one notification is heard of in several.
	const n = 400
	var events []*parley.Event
	for range n {
		events = append(events, newEvent(in, sess))
	}
	insertEvents(t, a, events...)
	cs = rb.waitFor(t, fmt.Sprintf("%d remote events", n), func(cs []*store.Change) bool {
		k := 0
		for _, c := range since(cs) {
			k += len(c.Events)
		}
		return k >= n
	})
	var got, wantSeqs []int64
	for _, c := range since(cs) {
		if !c.Remote {
			t.Errorf("a change heard from the other store is not Remote: %s", dump(c))
		}
		for _, e := range c.Events {
			got = append(got, e.SessionSeq)
		}
	}
	for _, e := range events {
		wantSeqs = append(wantSeqs, e.SessionSeq)
	}
	equal(t, "remote SessionSeqs", got, wantSeqs)

	for _, c := range ra.seen() {
		if c.Remote {
			t.Errorf("a store heard its own commit as remote: %s", dump(c))
		}
	}
}

// waitListening commits probes to a until r, a watcher of another store, hears of the latest: a
// store starts listening in the background, and a commit made before it listens is not heard.
// Notifications arrive in commit order, so once the latest probe is heard no other is on its way.
func waitListening(t *testing.T, a store.Store, r *recorder) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j := newProbe()
		update(t, a, func(tx store.Tx) error { return InsertJob(tx, j) })
		heard := func(c *store.Change) bool { return c.Remote && len(c.Jobs) == 1 && c.Jobs[0].SessionID == j.SessionID }
		wait := time.After(50 * time.Millisecond)
	probe:
		for {
			if slices.ContainsFunc(r.seen(), heard) {
				return
			}
			select {
			case <-r.poke:
			case <-wait:
				break probe
			}
		}
	}
	t.Fatal("the other store never heard of a commit")
}

// testViewReadOnly checks a View cannot write, even through the write methods of its Tx.
func testViewReadOnly(t *testing.T, h Harness) {
	s := h.Open(t)
	in := newIntegration()
	err := s.View(t.Context(), func(rtx store.ReadTx) error {
		tx, ok := rtx.(store.Tx)
		if !ok {
			return nil // nothing to try
		}
		if err := tx.CreateIntegration(in); err == nil {
			t.Error("a write in a View succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = readErr(t, s, func(tx store.ReadTx) error { _, err := tx.Integration(in.ID); return err })
	wantCode(t, "integration written in a View", err, parley.ENotFound)
}

// testViewSnapshot checks that a View sees one snapshot: a commit made while it runs is not seen.
func testViewSnapshot(t *testing.T, h Harness) {
	f := setup(t, h)
	count := func(tx store.ReadTx) (int, error) {
		msgs, err := tx.Messages(f.sess.ID, 0, 100)
		return len(msgs), err
	}
	update(t, f.s, func(tx store.Tx) error { return tx.InsertMessage(newMessage(f.sess, parley.AuthorUser, "1", now)) })
	err := f.s.View(t.Context(), func(tx store.ReadTx) error {
		before, err := count(tx)
		if err != nil {
			return err
		}
		if err := f.s.Update(t.Context(), func(tx store.Tx) error {
			return tx.InsertMessage(newMessage(f.sess, parley.AuthorUser, "2", now))
		}); err != nil {
			return err
		}
		after, err := count(tx)
		if err != nil {
			return err
		}
		if before != 1 || after != 1 {
			t.Errorf("a View saw %d messages, then %d after a concurrent commit; want 1 both times", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := read(t, f.s, count); n != 2 {
		t.Errorf("a View after the commit sees %d messages, want 2", n)
	}
}

// testClose checks a closed store refuses work instead of hanging, and closing twice is harmless.
func testClose(t *testing.T, h Harness) {
	s := h.Open(t)
	createIntegration(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var called atomic.Bool
	err := s.Update(t.Context(), func(tx store.Tx) error { called.Store(true); return nil })
	if err == nil || called.Load() {
		t.Errorf("Update on a closed store: err = %v, fn called = %v", err, called.Load())
	}
	err = s.View(t.Context(), func(tx store.ReadTx) error { called.Store(true); return nil })
	if err == nil || called.Load() {
		t.Errorf("View on a closed store: err = %v, fn called = %v", err, called.Load())
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
