// Package storetest is the one test suite every store.Store must pass, after River's driver test
// suite: store/sqlite and store/postgres each call Run from their tests with a Harness that opens
// real, fresh, migrated stores. It never uses mocks: a store passes only by doing the real thing
// against its real database, and both stores are held to the same expectations, so code written
// against one behaves the same on the other.
//
// What the suite does not store, on purpose: NUL (U+0000). PostgreSQL text cannot hold it
// (SQLSTATE 22021) while SQLite can, so the two stores would disagree. The API layer must refuse
// NUL in every string it accepts, as it refuses invalid UTF-8 (which PostgreSQL rejects too); the
// suite stores only text both databases keep byte for byte.
//
// Times are kept in Unix milliseconds, so the suite's instants have millisecond precision and
// come back in UTC.
package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Harness is how the suite reaches the store under test.
type Harness struct {
	// Open returns a new, empty, migrated store on a database of its own, closed when the test
	// ends.
	Open func(t *testing.T) store.Store
	// OpenPair returns two stores on one new, migrated database, as two processes would open
	// them. Nil when a store cannot hear another's commits (SQLite: one process per file).
	OpenPair func(t *testing.T) (store.Store, store.Store)
	// RowLocks is set when Updates run in concurrent transactions that hold row locks
	// (PostgreSQL). Tests that keep one transaction open while another runs need it: on SQLite
	// the second would wait forever behind the first on the one writer.
	RowLocks bool
}

// Run runs the whole suite. Each test opens its own store and runs in parallel with the others.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"IntegrationRoundTrip", testIntegrationRoundTrip},
		{"Integrations", testIntegrations},
		{"UpdateIntegration", testUpdateIntegration},
		{"APIKeys", testAPIKeys},

		{"SessionRoundTrip", testSessionRoundTrip},
		{"UpdateSession", testUpdateSession},
		{"SetSessionContext", testSetSessionContext},
		{"UpdateConversation", testUpdateConversation},
		{"ExpiringSessions", testExpiringSessions},
		{"ExpiringSessionsSkipLocked", testExpiringSessionsSkipLocked},
		{"ExpiringSessionsCarried", testExpiringSessionsCarried},
		{"UpdateSessionWithMessage", testUpdateSessionWithMessage},
		{"LockSessionSerializes", testLockSessionSerializes},
		{"LockSessionSeesConversation", testLockSessionSeesConversation},

		{"MessageRoundTrip", testMessageRoundTrip},
		{"Messages", testMessages},
		{"MarkMessages", testMarkMessages},

		{"EventRoundTrip", testEventRoundTrip},
		{"PendingEvents", testPendingEvents},
		{"PendingEventSessions", testPendingEventSessions},
		{"RecordAttempt", testRecordAttempt},
		{"ReplayEvents", testReplayEvents},
		{"Events", testEvents},
		{"DeleteDeliveredEvents", testDeleteDeliveredEvents},
		{"Jobs", testJobs},
		{"PendingJobSessions", testPendingJobSessions},
		{"Idempotency", testIdempotency},

		{"AgentRoundTrip", testAgentRoundTrip},
		{"AgentTokens", testAgentTokens},
		{"AgentLogins", testAgentLogins},
		{"ConversationList", testConversationList},
		{"Signals", testSignals},

		{"Nodes", testNodes},
		{"Partitions", testPartitions},
		{"PartitionsConcurrent", testPartitionsConcurrent},

		{"NotFound", testNotFound},
		{"Conflict", testConflict},
		{"Unicode", testUnicode},
		{"Times", testTimes},

		{"UpdateRollback", testUpdateRollback},
		{"UpdateCanceledContext", testUpdateCanceledContext},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Watch", testWatch},
		{"WatchRemote", testWatchRemote},
		{"ViewReadOnly", testViewReadOnly},
		{"ViewSnapshot", testViewSnapshot},
		{"Close", testClose},

		{"FileLifecycle", withStore(testFileLifecycle)},
		{"FileRetention", withStore(testFileRetention)},
		{"SigningKey", withStore(testSigningKey)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

// now is a fixed instant with millisecond precision (what the stores keep), in UTC (what they
// return).
var now = time.UnixMilli(1_780_000_000_000).UTC()

// fixture is a store holding one integration and one active session of it.
type fixture struct {
	s    store.Store
	in   *parley.Integration
	sess *parley.Session // with its conversation
}

// setup opens a store and stores an integration and a session in it.
func setup(t *testing.T, h Harness) *fixture {
	t.Helper()
	s := h.Open(t)
	in := createIntegration(t, s)
	return &fixture{s: s, in: in, sess: createSession(t, s, in)}
}

func newIntegration() *parley.Integration {
	in := &parley.Integration{ID: parley.NewID(), Name: "test", WebhookURL: "http://127.0.0.1:9/hook",
		WebhookSecret: "s3cret", AllowedIPs: []string{"10.0.0.0/8"}, CreatedAt: now, UpdatedAt: now}
	if err := in.Normalize(); err != nil {
		panic(err) // the literal above is valid
	}
	return in
}

func createIntegration(t *testing.T, s store.Store) *parley.Integration {
	t.Helper()
	in := newIntegration()
	update(t, s, func(tx store.Tx) error { return tx.CreateIntegration(in) })
	return in
}

// newSession returns an active session of in, expiring in an hour, with its first conversation.
func newSession(in *parley.Integration) *parley.Session {
	id := parley.NewID()
	c := &parley.Conversation{ID: parley.NewID(), SessionID: id, IntegrationID: in.ID,
		Status: parley.ConversationOpen, HandledBy: parley.HandledByBrain, CreatedAt: now, UpdatedAt: now}
	return &parley.Session{ID: id, IntegrationID: in.ID, Status: parley.SessionActive,
		Context: []byte(`{"user":{"user_id":"u1"}}`), ConversationID: c.ID, Partition: parley.PartitionOf(id),
		CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour), Conversation: c}
}

// InsertJob commits brain job j, whose integration, session and conversation IDs the caller
// chose, with everything it lives in: an integration, a session and a conversation of those
// IDs, and the user message that carries the job. Tests that wait until a store hears of a
// commit use it as a probe.
func InsertJob(tx store.Tx, j *parley.BrainJob) error {
	in := newIntegration()
	in.ID = j.IntegrationID
	sess := newSession(in)
	sess.ID, sess.Conversation.SessionID = j.SessionID, j.SessionID
	sess.ConversationID, sess.Conversation.ID = j.ConversationID, j.ConversationID
	sess.Partition = parley.PartitionOf(sess.ID)
	j.Partition = sess.Partition
	return firstErr(tx.CreateIntegration(in), insertSession(tx, sess),
		tx.InsertMessageWithJob(newMessage(sess, parley.AuthorUser, "probe", now), j))
}

// newProbe returns a brain job for InsertJob.
func newProbe() *parley.BrainJob {
	return &parley.BrainJob{IntegrationID: parley.NewID(), SessionID: parley.NewID(), ConversationID: parley.NewID(),
		SessionSeq: 1}
}

// insertSession stores a session and its current conversation.
func insertSession(tx store.Tx, s *parley.Session) error {
	if err := tx.CreateSession(s); err != nil {
		return err
	}
	return tx.CreateConversation(s.Conversation)
}

func createSession(t *testing.T, s store.Store, in *parley.Integration) *parley.Session {
	t.Helper()
	sess := newSession(in)
	update(t, s, func(tx store.Tx) error { return insertSession(tx, sess) })
	return sess
}

func newMessage(s *parley.Session, author, text string, at time.Time) *parley.Message {
	return &parley.Message{ID: parley.NewID(), SessionID: s.ID, ConversationID: s.ConversationID,
		Author: author, Text: text, CreatedAt: at}
}

// newEvent makes the session's next event, as the domain does.
func newEvent(in *parley.Integration, s *parley.Session) *parley.Event {
	return parley.NewEvent(in, s, parley.EventCompose, now, parley.EventFields{Action: "typing"})
}

// insertEvents stores events, setting each one's Seq.
func insertEvents(t *testing.T, s store.Store, events ...*parley.Event) {
	t.Helper()
	update(t, s, func(tx store.Tx) error {
		for _, e := range events {
			if err := tx.InsertEvent(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// update runs fn in an Update and fails the test on error. fn must not call t.Fatal: on SQLite
// it runs on the writer's goroutine.
func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// read returns what fn reads in a View, failing the test on error.
func read[T any](t *testing.T, s store.Store, fn func(store.ReadTx) (T, error)) T {
	t.Helper()
	var v T
	err := s.View(t.Context(), func(tx store.ReadTx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	return v
}

// readErr returns the error of a read that should fail.
func readErr(t *testing.T, s store.Store, fn func(store.ReadTx) error) error {
	t.Helper()
	return s.View(t.Context(), fn)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if !parley.IsCode(err, code) {
		t.Errorf("%s: err = %v, want a *parley.Error with code %s", what, err, code)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, dump(got), dump(want))
	}
}

// dump shows a value with the fields behind its pointers.
func dump(v any) string {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return "nil"
		}
		return "&" + dump(rv.Elem().Interface())
	case reflect.Slice:
		if rv.IsNil() {
			return "nil"
		}
		parts := make([]string, rv.Len())
		for i := range parts {
			parts[i] = dump(rv.Index(i).Interface())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case reflect.Struct:
		var b strings.Builder
		b.WriteString("{")
		for i := range rv.NumField() {
			if i > 0 {
				b.WriteString(" ")
			}
			f := rv.Type().Field(i)
			if !f.IsExported() {
				return fmt.Sprintf("%+v", v)
			}
			b.WriteString(f.Name + ":" + dump(rv.Field(i).Interface()))
		}
		return b.String() + "}"
	}
	if b, ok := v.([]byte); ok {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%v", v)
}

// ids returns the IDs of rows, in order.
func ids[T any](rows []T, id func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}

func eventID(e *parley.Event) string     { return e.ID }
func messageID(m *parley.Message) string { return m.ID }

// errFail is what an Update's fn returns to roll back.
var errFail = errors.New("storetest: fn failed on purpose")

// recorder keeps every Change the watchers of a store are given.
type recorder struct {
	mu      sync.Mutex
	changes []*store.Change
	poke    chan struct{} // receives after a change arrives (buffered: one pending poke)
	from    int           // where the changes since the last barrier start
}

// record registers a watcher on s that keeps its changes.
func record(s store.Store) *recorder {
	r := &recorder{poke: make(chan struct{}, 1)}
	s.Watch(func(c *store.Change) {
		r.mu.Lock()
		r.changes = append(r.changes, c)
		r.mu.Unlock()
		select {
		case r.poke <- struct{}{}:
		default:
		}
	})
	return r
}

func (r *recorder) seen() []*store.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// waitFor returns the changes seen once ok holds for them, or fails the test after a while.
// Watchers may run a moment after Update returns (SQLite answers callers first), or much later
// (another process's commit), so a test waits for what it expects instead of sleeping.
func (r *recorder) waitFor(t *testing.T, what string, ok func([]*store.Change) bool) []*store.Change {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		cs := r.seen()
		if ok(cs) {
			return cs
		}
		select {
		case <-r.poke:
		case <-timeout.C:
			t.Fatalf("timed out waiting for watchers to see %s; they saw %s", what, dump(cs))
		}
	}
}

// barrier commits a brain job nobody else uses, waits until the watchers have seen it, and
// returns the changes they saw before it since the previous barrier. Each store calls its
// watchers in commit order, so a change committed before the barrier that is not among them was
// never announced.
func (r *recorder) barrier(t *testing.T, s store.Store) []*store.Change {
	t.Helper()
	j := newProbe()
	update(t, s, func(tx store.Tx) error { return InsertJob(tx, j) })
	hasJob := func(c *store.Change) bool {
		return slices.ContainsFunc(c.Jobs, func(got *parley.BrainJob) bool { return got.MessageID == j.MessageID })
	}
	cs := r.waitFor(t, "the barrier job", func(cs []*store.Change) bool { return slices.ContainsFunc(cs, hasJob) })
	i := slices.IndexFunc(cs, hasJob)
	// A job comes with its message, which touches its conversation.
	if c := cs[i]; len(c.Jobs) != 1 || len(c.Events) != 0 || len(c.Conversations) != 1 || c.Conversations[0].SessionID != j.SessionID {
		t.Errorf("the barrier's change holds more than the barrier: %s", dump(c))
	}
	from := r.from
	r.from = i + 1
	return cs[from:i]
}

// withStore adapts a test that needs only one fresh store.
func withStore(fn func(t *testing.T, s store.Store)) func(t *testing.T, h Harness) {
	return func(t *testing.T, h Harness) { fn(t, h.Open(t)) }
}
