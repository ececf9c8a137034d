// Package storetest is the one test suite every store.Store implementation must pass. The
// SQLite and PostgreSQL packages each call Run from their tests with a function that opens a
// fresh, migrated store.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Opener returns a new, empty, migrated store, closed when the test ends.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite against the stores open makes.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"IntegrationRoundTrip", testIntegrationRoundTrip},
		{"SessionLifecycle", testSessionLifecycle},
		{"FileLifecycle", testFileLifecycle},
		{"FileRetention", testFileRetention},
		{"SigningKey", testSigningKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// now is a fixed instant with millisecond precision (what the stores keep).
var now = time.UnixMilli(1_780_000_000_000).UTC()

func ctx(t *testing.T) context.Context { return t.Context() }

// newIntegration stores a valid integration and returns it.
func newIntegration(t *testing.T, s store.Store) *parley.Integration {
	t.Helper()
	in := &parley.Integration{ID: parley.NewID(), Name: "test", WebhookURL: "http://127.0.0.1:9/hook",
		WebhookSecret: "s3cret", AllowedIPs: []string{"10.0.0.0/8"}, CreatedAt: now, UpdatedAt: now}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx(t), func(tx store.Tx) error { return tx.CreateIntegration(in) }); err != nil {
		t.Fatal(err)
	}
	return in
}

func testIntegrationRoundTrip(t *testing.T, s store.Store) {
	in := newIntegration(t, s)
	var got *parley.Integration
	err := s.View(ctx(t), func(tx store.ReadTx) error {
		var err error
		got, err = tx.Integration(in.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.WebhookSecret != "s3cret" || got.AllowedIPs[0] != "10.0.0.0/8" || !got.CreatedAt.Equal(now) {
		t.Errorf("got %+v", got)
	}
	err = s.View(ctx(t), func(tx store.ReadTx) error {
		_, err := tx.Integration(parley.NewID())
		return err
	})
	if !parley.IsCode(err, parley.ENotFound) {
		t.Errorf("missing integration: err = %v, want not found", err)
	}
}

func testSessionLifecycle(t *testing.T, s store.Store) {
	in := newIntegration(t, s)
	sess := &parley.Session{ID: parley.NewID(), IntegrationID: in.ID, Status: parley.SessionActive,
		Context: []byte(`{"a":1}`), Partition: 3, CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
	conv := &parley.Conversation{ID: parley.NewID(), SessionID: sess.ID, IntegrationID: in.ID,
		Status: parley.ConversationOpen, HandledBy: parley.HandledByBrain, CreatedAt: now, UpdatedAt: now}
	sess.ConversationID = conv.ID
	// Watchers run on the committing goroutine, possibly after Update has returned: collect
	// what they see through a channel.
	changes := make(chan *store.Change, 8)
	s.Watch(func(c *store.Change) { changes <- c })
	err := s.Update(ctx(t), func(tx store.Tx) error {
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		if err := tx.CreateConversation(conv); err != nil {
			return err
		}
		m := &parley.Message{ID: parley.NewID(), SessionID: sess.ID, ConversationID: conv.ID, Author: parley.AuthorUser,
			Text: "hi", CreatedAt: now}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		return tx.InsertEvent(parley.NewEvent(in, sess, parley.EventSessionClosed, now, parley.EventFields{Reason: "api"}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var got *parley.Session
	var msgs []*parley.Message
	err = s.View(ctx(t), func(tx store.ReadTx) error {
		var err error
		if got, err = tx.Session(sess.ID); err != nil {
			return err
		}
		msgs, err = tx.Messages(sess.ID, 0, 10)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Conversation.HandledBy != parley.HandledByBrain || string(got.Context) != `{"a":1}` || len(msgs) != 1 || msgs[0].Text != "hi" {
		t.Errorf("session %+v conversation %+v messages %d", got, got.Conversation, len(msgs))
	}
	select {
	case c := <-changes:
		if len(c.Events) != 1 {
			t.Errorf("watchers saw a change with %d events, want 1", len(c.Events))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watchers saw no change, want 1 with 1 event")
	}
	select {
	case <-changes:
		t.Error("watchers saw more than one change, want 1")
	default:
	}
}
