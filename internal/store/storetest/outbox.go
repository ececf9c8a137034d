package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// eventIn returns a pending event of a session that need not exist (the outbox does not check).
func eventIn(integrationID, sessionID string, partition int, sessionSeq int64) *parley.Event {
	return &parley.Event{ID: parley.NewRandomID(), IntegrationID: integrationID, SessionID: sessionID,
		SessionSeq: sessionSeq, Partition: partition, Type: parley.EventAgentSend, Body: []byte(`{"event_type":"message:send"}`),
		CreatedAt: now, State: parley.DeliveryPending, NextAttemptAt: now}
}

// finished sets an event's delivery outcome.
func finished(e *parley.Event, state string, at time.Time) *parley.Event {
	e.State, e.FinishedAt, e.Attempts = state, at, 1
	e.AttemptLog = []parley.Attempt{{At: at.UnixMilli(), Status: 500, DurationMS: 3}}
	return e
}

func eventByID(t *testing.T, s store.Store, id string) *parley.Event {
	t.Helper()
	got := read(t, s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.Events(store.EventFilter{EventID: id}) })
	if len(got) != 1 {
		t.Fatalf("event %s: found %d", id, len(got))
	}
	return got[0]
}

func testEventRoundTrip(t *testing.T, h Harness) {
	f := setup(t, h)
	fresh := newEvent(f.in, f.sess)
	fresh.Body = []byte(`{"bytes":"kept exactly","\u00e9":"é","nl":"` + "\u2028" + `"}` + "\n\t ")
	done := finished(newEvent(f.in, f.sess), parley.DeliveryFailed, now.Add(time.Minute))
	done.LastError = "HTTP 500: ошибка"
	done.NextAttemptAt = now.Add(30 * time.Second)
	insertEvents(t, f.s, fresh, done)
	later := newEvent(f.in, f.sess)
	insertEvents(t, f.s, later)
	if fresh.Seq <= 0 || done.Seq <= fresh.Seq || later.Seq <= done.Seq {
		t.Errorf("Seqs %d, %d, %d: want ascending in commit order", fresh.Seq, done.Seq, later.Seq)
	}
	for _, e := range []*parley.Event{fresh, done, later} {
		equal(t, "event "+e.State, eventByID(t, f.s, e.ID), e)
	}
}

func testPendingEvents(t *testing.T, h Harness) {
	s := h.Open(t)
	in, sess, other := parley.NewID(), parley.NewID(), parley.NewID()
	e1, e2, e3 := eventIn(in, sess, 5, 1), eventIn(in, sess, 5, 2), eventIn(in, sess, 5, 3)
	delivered := finished(eventIn(in, sess, 5, 4), parley.DeliveryDone, now)
	failed := finished(eventIn(in, sess, 5, 5), parley.DeliveryFailed, now)
	insertEvents(t, s, e3, delivered, e1, eventIn(in, other, 5, 1), failed, e2)

	got := read(t, s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.PendingEvents(sess) })
	equal(t, "pending events, in SessionSeq order", got, []*parley.Event{e1, e2, e3})
	got = read(t, s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.PendingEvents(parley.NewID()) })
	if len(got) != 0 {
		t.Errorf("an unknown session has %d pending events", len(got))
	}
}

// sessionsByPartition stores events of sessions in partitions 1, 2 and 3: a (1) and b (2) with
// pending work, c (3) too, and d (1) with nothing pending. insert stores one item of a session.
func sessionsByPartition(t *testing.T, s store.Store, insert func(tx store.Tx, session string, partition int, seq int64, pending bool) error) map[string]string {
	t.Helper()
	names := map[string]string{"a": parley.NewID(), "b": parley.NewID(), "c": parley.NewID(), "d": parley.NewID()}
	update(t, s, func(tx store.Tx) error {
		for _, it := range []struct {
			name      string
			partition int
			seq       int64
			pending   bool
		}{{"a", 1, 1, true}, {"b", 2, 1, true}, {"b", 2, 2, true}, {"c", 3, 1, true}, {"d", 1, 1, false}} {
			if err := insert(tx, names[it.name], it.partition, it.seq, it.pending); err != nil {
				return err
			}
		}
		return nil
	})
	return names
}

// checkPendingSessions checks a PendingEventSessions or PendingJobSessions against the sessions
// of sessionsByPartition.
func checkPendingSessions(t *testing.T, s store.Store, names map[string]string, list func(tx store.ReadTx, partitions []int, limit int) ([]string, error)) {
	tests := []struct {
		name       string
		partitions []int
		limit      int
		want       []string // names; with a limit below the matches, how many to expect of them
		n          int
	}{
		{"one partition", []int{1}, 10, []string{"a"}, 1},
		{"two partitions, each session once", []int{1, 2}, 10, []string{"a", "b"}, 2},
		{"limit", []int{1, 2, 3}, 2, []string{"a", "b", "c"}, 2},
		{"partition without work", []int{9}, 10, nil, 0},
		{"no partitions", nil, 10, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := read(t, s, func(tx store.ReadTx) ([]string, error) { return list(tx, tc.partitions, tc.limit) })
			var allowed []string
			for _, n := range tc.want {
				allowed = append(allowed, names[n])
			}
			if len(got) != tc.n {
				t.Errorf("got %d sessions %v, want %d of %v", len(got), got, tc.n, tc.want)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if !slices.Contains(allowed, id) || seen[id] {
					t.Errorf("got %v, want %d distinct of %v", got, tc.n, allowed)
					break
				}
				seen[id] = true
			}
		})
	}
}

func testPendingEventSessions(t *testing.T, h Harness) {
	s := h.Open(t)
	in := parley.NewID()
	names := sessionsByPartition(t, s, func(tx store.Tx, session string, partition int, seq int64, pending bool) error {
		e := eventIn(in, session, partition, seq)
		if !pending {
			finished(e, parley.DeliveryDone, now)
		}
		return tx.InsertEvent(e)
	})
	// A failed event is not pending either.
	insertEvents(t, s, finished(eventIn(in, names["d"], 1, 2), parley.DeliveryFailed, now))
	checkPendingSessions(t, s, names, func(tx store.ReadTx, partitions []int, limit int) ([]string, error) {
		return tx.PendingEventSessions(partitions, limit)
	})
}

func testRecordAttempt(t *testing.T, h Harness) {
	f := setup(t, h)
	e, other := newEvent(f.in, f.sess), newEvent(f.in, f.sess)
	insertEvents(t, f.s, e, other)
	steps := []struct {
		name   string
		record func(e *parley.Event)
	}{
		{"retry scheduled", func(e *parley.Event) {
			e.Attempts, e.NextAttemptAt, e.LastError = 1, now.Add(250*time.Millisecond), "dial tcp: connection refused"
			e.AttemptLog = append(e.AttemptLog, parley.Attempt{At: now.UnixMilli(), Error: "dial tcp: connection refused", DurationMS: 2})
		}},
		{"delivered", func(e *parley.Event) {
			e.State, e.Attempts, e.LastError, e.FinishedAt = parley.DeliveryDone, 2, "", now.Add(time.Second)
			e.AttemptLog = append(e.AttemptLog, parley.Attempt{At: now.Add(time.Second).UnixMilli(), Status: 204, DurationMS: 15})
		}},
	}
	for _, step := range steps {
		step.record(e)
		update(t, f.s, func(tx store.Tx) error { return tx.RecordAttempt(e) })
		equal(t, step.name, eventByID(t, f.s, e.ID), e)
	}
	equal(t, "the other event", eventByID(t, f.s, other.ID), other)
}

func testReplayEvents(t *testing.T, h Harness) {
	s := h.Open(t)
	a, b, sess := parley.NewID(), parley.NewID(), parley.NewID()
	failed1 := finished(eventIn(a, sess, 1, 1), parley.DeliveryFailed, now)
	delivered := finished(eventIn(a, sess, 1, 2), parley.DeliveryDone, now)
	failed2 := finished(eventIn(a, sess, 1, 3), parley.DeliveryFailed, now)
	pending := eventIn(a, sess, 1, 4)
	failedB := finished(eventIn(b, sess, 1, 5), parley.DeliveryFailed, now)
	failedB2 := finished(eventIn(b, sess, 1, 6), parley.DeliveryFailed, now)
	insertEvents(t, s, failed1, delivered, failed2, pending, failedB, failedB2)

	replay := func(integrationID, eventID string, at time.Time) []*parley.Event {
		t.Helper()
		var got []*parley.Event
		update(t, s, func(tx store.Tx) error {
			var err error
			got, err = tx.ReplayEvents(integrationID, eventID, at)
			return err
		})
		return got
	}
	// replayed is e pending again at `at`, its history kept.
	replayed := func(e *parley.Event, at time.Time) *parley.Event {
		r := *e
		r.State, r.Attempts, r.NextAttemptAt, r.FinishedAt = parley.DeliveryPending, 0, at, time.Time{}
		return &r
	}
	at := now.Add(time.Hour)

	got := replay(a, "", at)
	want := []*parley.Event{replayed(failed1, at), replayed(failed2, at)}
	equal(t, "replay all failed of a, in Seq order", got, want)
	for i, e := range want {
		equal(t, "stored replayed event", eventByID(t, s, e.ID), want[i])
	}
	for _, e := range []*parley.Event{delivered, pending, failedB, failedB2} {
		equal(t, "event not replayed", eventByID(t, s, e.ID), e)
	}
	if got := replay(a, "", at); len(got) != 0 {
		t.Errorf("replaying again returned %d events", len(got))
	}

	if got := replay(a, failedB.ID, at); len(got) != 0 {
		t.Errorf("replaying b's event as a's returned %d events", len(got))
	}
	if got := replay(b, delivered.ID, at); len(got) != 0 {
		t.Errorf("replaying a delivered event returned %d events", len(got))
	}
	equal(t, "replay one of b", replay(b, failedB2.ID, at), []*parley.Event{replayed(failedB2, at)})
	equal(t, "the other of b", eventByID(t, s, failedB.ID), failedB)
}

func testEvents(t *testing.T, h Harness) {
	s := h.Open(t)
	a, b, sess := parley.NewID(), parley.NewID(), parley.NewID()
	a1 := eventIn(a, sess, 1, 1)
	a2 := finished(eventIn(a, sess, 1, 2), parley.DeliveryFailed, now)
	b1 := eventIn(b, sess, 1, 3)
	a3 := finished(eventIn(a, sess, 1, 4), parley.DeliveryDone, now)
	a4 := finished(eventIn(a, sess, 1, 5), parley.DeliveryFailed, now)
	insertEvents(t, s, a1, a2, b1, a3, a4)

	tests := []struct {
		name string
		f    store.EventFilter
		want []*parley.Event // newest first
	}{
		{"all", store.EventFilter{}, []*parley.Event{a4, a3, b1, a2, a1}},
		{"integration", store.EventFilter{IntegrationID: a}, []*parley.Event{a4, a3, a2, a1}},
		{"state", store.EventFilter{State: parley.DeliveryFailed}, []*parley.Event{a4, a2}},
		{"integration and state", store.EventFilter{IntegrationID: b, State: parley.DeliveryPending}, []*parley.Event{b1}},
		{"event", store.EventFilter{EventID: a2.ID}, []*parley.Event{a2}},
		{"event of another integration", store.EventFilter{IntegrationID: b, EventID: a2.ID}, nil},
		{"limit", store.EventFilter{IntegrationID: a, Limit: 2}, []*parley.Event{a4, a3}},
		{"unknown integration", store.EventFilter{IntegrationID: parley.NewID()}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := read(t, s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.Events(tc.f) })
			equal(t, "events", got, tc.want)
		})
	}
}

func testDeleteDeliveredEvents(t *testing.T, h Harness) {
	s := h.Open(t)
	in, sess := parley.NewID(), parley.NewID()
	old1 := finished(eventIn(in, sess, 1, 1), parley.DeliveryDone, now.Add(-time.Hour))
	old2 := finished(eventIn(in, sess, 1, 2), parley.DeliveryDone, now.Add(-2*time.Hour))
	atCutoff := finished(eventIn(in, sess, 1, 3), parley.DeliveryDone, now)
	failed := finished(eventIn(in, sess, 1, 4), parley.DeliveryFailed, now.Add(-3*time.Hour))
	pending := eventIn(in, sess, 1, 5)
	insertEvents(t, s, old1, old2, atCutoff, failed, pending)

	del := func(limit int) int {
		var n int
		update(t, s, func(tx store.Tx) error {
			var err error
			n, err = tx.DeleteDeliveredEvents(now, limit)
			return err
		})
		return n
	}
	if n := del(1); n != 1 {
		t.Errorf("deleted %d with limit 1", n)
	}
	if n := del(10); n != 1 {
		t.Errorf("deleted %d of the one left before the cutoff", n)
	}
	if n := del(10); n != 0 {
		t.Errorf("deleted %d with none left", n)
	}
	got := read(t, s, func(tx store.ReadTx) ([]*parley.Event, error) { return tx.Events(store.EventFilter{}) })
	equal(t, "events left", got, []*parley.Event{pending, failed, atCutoff})
}

// jobOf is the brain job a session's seq-th message for the brain carries, as the domain makes it.
func jobOf(sess *parley.Session, seq int64) *parley.BrainJob {
	return &parley.BrainJob{IntegrationID: sess.IntegrationID, SessionSeq: seq, Partition: sess.Partition}
}

func testJobs(t *testing.T, h Harness) {
	f := setup(t, h)
	other := createSession(t, f.s, f.in)
	msg := func(s *parley.Session, seq int64) *parley.Message {
		return newMessage(s, parley.AuthorUser, fmt.Sprint(seq), now.Add(time.Duration(seq)*time.Second))
	}
	m1, m2, m3 := msg(f.sess, 1), msg(f.sess, 2), msg(f.sess, 3)
	j1, j2, j3 := jobOf(f.sess, 1), jobOf(f.sess, 2), jobOf(f.sess, 3)
	j1.ConversationStart = true
	m2.Attachments = []parley.Attachment{{Type: "image", MimeType: "image/png", URL: "https://example.com/a.png", Title: "ä <b>"}}
	m3.Attachments = []parley.Attachment{} // none, as a request may say: read back as nil
	plain := newMessage(f.sess, parley.AuthorBrain, "not a job", now)
	update(t, f.s, func(tx store.Tx) error {
		return firstErr(tx.InsertMessageWithJob(m3, j3), tx.InsertMessageWithJob(m1, j1), tx.InsertMessage(plain),
			tx.InsertMessageWithJob(msg(other, 1), jobOf(other, 1)), tx.InsertMessageWithJob(m2, j2))
	})
	if j3.Seq <= 0 || j1.Seq <= j3.Seq || j2.Seq <= j1.Seq {
		t.Errorf("Seqs %d, %d, %d: want ascending in insert order", j3.Seq, j1.Seq, j2.Seq)
	}
	for _, c := range []struct {
		j *parley.BrainJob
		m *parley.Message
	}{{j1, m1}, {j2, m2}, {j3, m3}} {
		// The job holds its message as the database does, for the worker not to read it back.
		stored := read(t, f.s, func(tx store.ReadTx) (*parley.Message, error) { return tx.Message(f.sess.ID, c.m.ID) })
		equal(t, "the job's message", c.j.Message, stored)
		c.j.Message = nil // jobs read from the database have none
		want := parley.BrainJob{Seq: c.m.Seq, IntegrationID: f.in.ID, SessionID: f.sess.ID, SessionSeq: c.j.SessionSeq,
			Partition: f.sess.Partition, ConversationID: f.sess.ConversationID, MessageID: c.m.ID,
			ConversationStart: c.j == j1, CreatedAt: c.m.CreatedAt}
		equal(t, "the job, from its message", *c.j, want)
	}
	pending := func() []*parley.BrainJob {
		return read(t, f.s, func(tx store.ReadTx) ([]*parley.BrainJob, error) { return tx.PendingJobs(f.sess.ID) })
	}
	equal(t, "jobs in SessionSeq order", pending(), []*parley.BrainJob{j1, j2, j3})
	update(t, f.s, func(tx store.Tx) error { return tx.DeleteJob(j1.Seq) })
	equal(t, "jobs after delete", pending(), []*parley.BrainJob{j2, j3})
	history := read(t, f.s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.Messages(f.sess.ID, 0, 10) })
	equal(t, "messages after delete", ids(history, messageID), []string{m3.ID, m1.ID, plain.ID, m2.ID})
	err := f.s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteJob(j1.Seq) })
	wantCode(t, "deleting a deleted job", err, parley.ENotFound)
	err = f.s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteJob(plain.Seq) })
	wantCode(t, "deleting a message that was never a job", err, parley.ENotFound)
	err = f.s.Update(t.Context(), func(tx store.Tx) error {
		return tx.InsertMessageWithJob(msg(f.sess, 4), &parley.BrainJob{IntegrationID: f.in.ID, Partition: f.sess.Partition})
	})
	if err == nil {
		t.Error("a job with no SessionSeq was stored")
	}
	equal(t, "jobs after the refused one", pending(), []*parley.BrainJob{j2, j3})
}

func testPendingJobSessions(t *testing.T, h Harness) {
	s := h.Open(t)
	in := createIntegration(t, s)
	made := map[string]*parley.Session{}
	names := sessionsByPartition(t, s, func(tx store.Tx, id string, partition int, seq int64, pending bool) error {
		sess := made[id]
		if sess == nil {
			sess = newSession(in)
			sess.ID, sess.Partition, sess.Conversation.SessionID = id, partition, id
			if err := insertSession(tx, sess); err != nil {
				return err
			}
			made[id] = sess
		}
		j := jobOf(sess, seq)
		if err := tx.InsertMessageWithJob(newMessage(sess, parley.AuthorUser, "hi", now), j); err != nil {
			return err
		}
		if !pending {
			return tx.DeleteJob(j.Seq) // answered: its message stays, the work does not
		}
		return nil
	})
	checkPendingSessions(t, s, names, func(tx store.ReadTx, partitions []int, limit int) ([]string, error) {
		return tx.PendingJobSessions(partitions, limit)
	})
}

func testIdempotency(t *testing.T, h Harness) {
	s := h.Open(t)
	in := parley.NewID()
	const window = 24 * time.Hour
	type response struct {
		status int
		body   string
	}
	lookup := func(integrationID, key string, since time.Time) (response, error) {
		var r response
		err := s.View(t.Context(), func(tx store.ReadTx) error {
			status, body, err := tx.IdempotentResponse(integrationID, key, since)
			r = response{status, string(body)}
			return err
		})
		return r, err
	}
	save := func(integrationID, key string, r response, at time.Time) error {
		return s.Update(t.Context(), func(tx store.Tx) error {
			return tx.SaveIdempotentResponse(integrationID, key, r.status, []byte(r.body), at, at.Add(-window))
		})
	}
	mustLookup := func(what, integrationID, key string, since time.Time, want response) {
		t.Helper()
		got, err := lookup(integrationID, key, since)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		equal(t, what, got, want)
	}

	_, err := lookup(in, "k", now.Add(-window))
	wantCode(t, "an unused key", err, parley.ENotFound)

	first := response{201, `{"session_id":"x","émoji":"🙂"}`}
	if err := save(in, "k", first, now); err != nil {
		t.Fatal(err)
	}
	mustLookup("inside the window", in, "k", now.Add(-window), first)
	mustLookup("since is inclusive", in, "k", now, first)
	_, err = lookup(in, "k", now.Add(time.Millisecond))
	wantCode(t, "stored before since", err, parley.ENotFound)
	_, err = lookup(parley.NewID(), "k", now.Add(-window))
	wantCode(t, "the key of another integration", err, parley.ENotFound)

	err = save(in, "k", response{500, "other"}, now.Add(window-time.Millisecond))
	wantCode(t, "saving again inside the window", err, parley.EConflict)
	mustLookup("after the conflict", in, "k", now.Add(-window), first)

	second := response{204, ""} // no body at all
	if err := save(in, "k", second, now.Add(window+time.Millisecond)); err != nil {
		t.Fatalf("saving after the window: %v", err)
	}
	mustLookup("replaced after the window", in, "k", now.Add(time.Millisecond), second)
	if err := save(parley.NewID(), "k", first, now); err != nil {
		t.Fatalf("the same key for another integration: %v", err)
	}
	err = s.Update(t.Context(), func(tx store.Tx) error {
		return tx.SaveIdempotentResponse(in, "nil body", 204, nil, now, now.Add(-window))
	})
	if err != nil {
		t.Fatalf("saving a nil body: %v", err)
	}
	mustLookup("nil body", in, "nil body", now, response{204, ""})

	// Delete: the rows of in at now (nil body), of the other integration at now, and of in at
	// now+window+1ms ("k").
	del := func(before time.Time, limit int) int {
		var n int
		update(t, s, func(tx store.Tx) error {
			var err error
			n, err = tx.DeleteIdempotentResponses(before, limit)
			return err
		})
		return n
	}
	if n := del(now, 10); n != 0 {
		t.Errorf("deleted %d rows older than the oldest", n)
	}
	if n := del(now.Add(time.Millisecond), 1); n != 1 {
		t.Errorf("deleted %d with limit 1", n)
	}
	if n := del(now.Add(time.Millisecond), 10); n != 1 {
		t.Errorf("deleted %d of the one left", n)
	}
	mustLookup("a newer row survives", in, "k", now, second)
}
