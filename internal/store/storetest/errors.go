package storetest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// testNotFound checks that every single-row read and update of a missing row returns a
// *parley.Error with code ENotFound, and no row with it. A malformed ID is as missing as an
// unknown one (PostgreSQL keeps IDs as uuid, SQLite as text: the caller must not care).
func testNotFound(t *testing.T, h Harness) {
	f := setup(t, h)
	m := newMessage(f.sess, parley.AuthorUser, "hi", now)
	update(t, f.s, func(tx store.Tx) error { return tx.InsertMessage(m) })
	other := createSession(t, f.s, f.in)

	reads := []struct {
		name string
		fn   func(tx store.ReadTx, id string) (any, error)
	}{
		{"Integration", func(tx store.ReadTx, id string) (any, error) { return tx.Integration(id) }},
		{"Session", func(tx store.ReadTx, id string) (any, error) { return tx.Session(id) }},
		{"Conversation", func(tx store.ReadTx, id string) (any, error) { return tx.Conversation(id) }},
		{"Message", func(tx store.ReadTx, id string) (any, error) { return tx.Message(f.sess.ID, id) }},
		{"Message of another session", func(tx store.ReadTx, id string) (any, error) { return tx.Message(other.ID, m.ID) }},
		{"Message of a missing session", func(tx store.ReadTx, id string) (any, error) { return tx.Message(id, m.ID) }},
		{"IdempotentResponse", func(tx store.ReadTx, id string) (any, error) {
			_, body, err := tx.IdempotentResponse(id, "key", time.Time{})
			return body, err
		}},
	}
	writes := []struct {
		name string
		fn   func(tx store.Tx, id string) (any, error)
	}{
		{"LockSession", func(tx store.Tx, id string) (any, error) { return tx.LockSession(id) }},
		{"UpdateIntegration", func(tx store.Tx, id string) (any, error) {
			in := newIntegration()
			in.ID = id
			return nil, tx.UpdateIntegration(in)
		}},
		{"UpdateSession", func(tx store.Tx, id string) (any, error) {
			s := newSession(f.in)
			s.ID = id
			return nil, tx.UpdateSession(s)
		}},
		{"SetSessionContext", func(tx store.Tx, id string) (any, error) { return nil, tx.SetSessionContext(id, []byte(`{}`)) }},
		{"UpdateConversation", func(tx store.Tx, id string) (any, error) {
			c := *f.sess.Conversation
			c.ID = id
			return nil, tx.UpdateConversation(&c)
		}},
		{"RecordAttempt", func(tx store.Tx, id string) (any, error) {
			e := eventIn(f.in.ID, f.sess.ID, 1, 1)
			e.ID = id
			return nil, tx.RecordAttempt(e)
		}},
	}
	for _, id := range []struct{ name, id string }{{"unknown", parley.NewID()}, {"malformed", "not-a-uuid ✗"}} {
		check := func(t *testing.T, v any, err error) {
			t.Helper()
			wantCode(t, "err", err, parley.ENotFound)
			if rv := reflect.ValueOf(v); v != nil && !rv.IsNil() {
				t.Errorf("returned %s with the error, want nil", dump(v))
			}
		}
		for _, tc := range reads {
			t.Run(tc.name+"/"+id.name, func(t *testing.T) {
				t.Parallel()
				var v any
				err := readErr(t, f.s, func(tx store.ReadTx) error {
					var err error
					v, err = tc.fn(tx, id.id)
					return err
				})
				check(t, v, err)
			})
		}
		for _, tc := range writes {
			t.Run(tc.name+"/"+id.name, func(t *testing.T) {
				t.Parallel()
				var v any
				err := f.s.Update(t.Context(), func(tx store.Tx) error {
					var err error
					v, err = tc.fn(tx, id.id)
					return err
				})
				check(t, v, err)
			})
		}
	}
	t.Run("DeleteJob", func(t *testing.T) {
		t.Parallel()
		err := f.s.Update(t.Context(), func(tx store.Tx) error { return tx.DeleteJob(1 << 40) })
		wantCode(t, "err", err, parley.ENotFound)
	})
}

// testConflict checks that writes breaking a unique rule return a *parley.Error with code
// EConflict and leave the row that was there.
func testConflict(t *testing.T, h Harness) {
	f := setup(t, h)
	key := newAPIKey(f.in.ID, now)
	m := newMessage(f.sess, parley.AuthorUser, "first", now)
	e := eventIn(f.in.ID, f.sess.ID, f.sess.Partition, 1)
	update(t, f.s, func(tx store.Tx) error {
		if err := tx.CreateAPIKey(key); err != nil {
			return err
		}
		if err := tx.InsertMessage(m); err != nil {
			return err
		}
		if err := tx.InsertEvent(e); err != nil {
			return err
		}
		return tx.SaveIdempotentResponse(f.in.ID, "k", 200, []byte("first"), now, now.Add(-time.Hour))
	})

	tests := []struct {
		name  string
		write func(tx store.Tx) error
		check func(tx store.ReadTx) (any, any, error) // returns got, want
	}{
		{"CreateIntegration", func(tx store.Tx) error {
			in := fullIntegration()
			in.ID = f.in.ID
			return tx.CreateIntegration(in)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.Integration(f.in.ID)
			return got, f.in, err
		}},
		{"CreateAPIKey, same id", func(tx store.Tx) error {
			k := newAPIKey(f.in.ID, now)
			k.ID = key.ID
			return tx.CreateAPIKey(k)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.APIKeys(f.in.ID)
			return got, []*parley.APIKey{key}, err
		}},
		{"CreateAPIKey, same hash", func(tx store.Tx) error {
			k := newAPIKey(f.in.ID, now)
			k.Hash = key.Hash
			return tx.CreateAPIKey(k)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.APIKeys(f.in.ID)
			return got, []*parley.APIKey{key}, err
		}},
		{"CreateSession", func(tx store.Tx) error {
			s := newSession(f.in)
			s.ID = f.sess.ID
			return tx.CreateSession(s)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.Session(f.sess.ID)
			return got, f.sess, err
		}},
		{"CreateConversation", func(tx store.Tx) error {
			c := *f.sess.Conversation
			c.HandledBy = parley.HandledByQueue
			return tx.CreateConversation(&c)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.Conversation(f.sess.ConversationID)
			return got, f.sess.Conversation, err
		}},
		{"InsertMessage", func(tx store.Tx) error {
			dup := newMessage(f.sess, parley.AuthorBrain, "second", now)
			dup.ID = m.ID
			return tx.InsertMessage(dup)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.Message(f.sess.ID, m.ID)
			return got, m, err
		}},
		{"InsertEvent", func(tx store.Tx) error {
			dup := eventIn(f.in.ID, f.sess.ID, 1, 99)
			dup.ID = e.ID
			return tx.InsertEvent(dup)
		}, func(tx store.ReadTx) (any, any, error) {
			got, err := tx.Events(store.EventFilter{EventID: e.ID})
			return got, []*parley.Event{e}, err
		}},
		{"SaveIdempotentResponse", func(tx store.Tx) error {
			return tx.SaveIdempotentResponse(f.in.ID, "k", 500, []byte("second"), now, now.Add(-time.Hour))
		}, func(tx store.ReadTx) (any, any, error) {
			_, body, err := tx.IdempotentResponse(f.in.ID, "k", now.Add(-time.Hour))
			return string(body), "first", err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := f.s.Update(t.Context(), tc.write)
			wantCode(t, "err", err, parley.EConflict)
			var got, want any
			err = f.s.View(t.Context(), func(tx store.ReadTx) error {
				var err error
				got, want, err = tc.check(tx)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "the row already there", got, want)
		})
	}
}

// testTimes checks times come back as stored: to the millisecond, in UTC, and zero as zero.
func testTimes(t *testing.T, h Harness) {
	f := setup(t, h)
	zone := time.FixedZone("UTC+9", 9*3600)
	precise := time.Date(2031, 3, 4, 5, 6, 7, 891_234_567, zone)
	m := newMessage(f.sess, parley.AuthorBrain, "t", precise)
	m.DeliveredAt = time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC) // before the epoch
	update(t, f.s, func(tx store.Tx) error { return tx.InsertMessage(m) })
	got := read(t, f.s, func(tx store.ReadTx) (*parley.Message, error) { return tx.Message(f.sess.ID, m.ID) })
	equal(t, "CreatedAt", got.CreatedAt, time.Date(2031, 3, 4, 5, 6, 7, 891_000_000, zone).UTC())
	equal(t, "DeliveredAt", got.DeliveredAt, m.DeliveredAt)
	equal(t, "ReadAt", got.ReadAt, time.Time{})
}

// testUnicode stores awkward text in every kind of column and reads back the same bytes. (No
// NUL: see the package comment.)
func testUnicode(t *testing.T, h Harness) {
	f := setup(t, h)
	tests := []struct{ name, s string }{
		{"emoji", "👋🏽 👨‍👩‍👧‍👦 🇺🇦 🏳️‍🌈 ❤️"},
		{"right to left", "مرحبا بالعالم — שלום עולם \u200f\u200e\u202ereversed\u202c"},
		{"combining marks", "e\u0301 a\u0308\u0304 Z\u0351\u0300\u0336 ก\u0e33"},
		{"line and paragraph separators", "a\u2028b\u2029c\r\nd\u0085e"},
		{"zero width and BOM", "\u200b\u200c\u200d\ufeffx\u2060"},
		{"astral and last code points", "𝕳𝖊𝖑𝖑𝖔 𐍈 𠜎 \U0010FFFF \uFFFD \uFFFE"},
		{"controls", "\x01\x07\x1b[31mred\x1b[0m\x7f\t"},
		{"SQL and placeholders", `'; DROP TABLE messages; -- "\\ %_ ? $1 :name @p1`},
		{"long", strings.Repeat("ü🙂", 5000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.s
			in := newIntegration()
			in.Name, in.WebhookSecret, in.DeskID = s, s, s
			in.SubscribedEvents = []string{s}
			sess := newSession(in)
			sess.ExternalSessionID = s
			ctxJSON, _ := json.Marshal(map[string]string{"s": s})
			sess.Context = ctxJSON
			sess.Conversation.AssigneeID = s
			m := newMessage(sess, parley.AuthorAgent, s, now)
			m.Agent = &parley.AgentRef{ID: s, Name: s, Avatar: s}
			m.Attachments = []parley.Attachment{{Type: "file", MimeType: s, URL: s, Filename: s, Title: s}}
			m.Responses, _ = json.Marshal([]map[string]string{{"type": "text", "text": s}})
			e := newEvent(in, sess)
			e.Body, e.LastError = []byte(s), s
			e.AttemptLog = []parley.Attempt{{At: 1, Error: s}}
			key := newAPIKey(in.ID, now)
			key.Prefix = s
			// An index entry must fit in a PostgreSQL page: the API layer caps Idempotency-Key.
			idemKey := string([]rune(s)[:min(len([]rune(s)), 64)])
			update(t, f.s, func(tx store.Tx) error {
				for _, err := range []error{tx.CreateIntegration(in), tx.CreateAPIKey(key), insertSession(tx, sess),
					tx.InsertMessage(m), tx.InsertEvent(e),
					tx.SaveIdempotentResponse(in.ID, idemKey, 200, []byte(s), now, now.Add(-time.Hour))} {
					if err != nil {
						return err
					}
				}
				return nil
			})
			err := f.s.View(t.Context(), func(tx store.ReadTx) error {
				gotIn, err1 := tx.Integration(in.ID)
				gotKeys, err2 := tx.APIKeys(in.ID)
				gotSess, err3 := tx.Session(sess.ID)
				gotMsg, err4 := tx.Message(sess.ID, m.ID)
				gotEvents, err5 := tx.Events(store.EventFilter{EventID: e.ID})
				_, body, err6 := tx.IdempotentResponse(in.ID, idemKey, now)
				for _, err := range []error{err1, err2, err3, err4, err5, err6} {
					if err != nil {
						return err
					}
				}
				equal(t, "integration", gotIn, in)
				equal(t, "api keys", gotKeys, []*parley.APIKey{key})
				equal(t, "session", gotSess, sess)
				equal(t, "message", gotMsg, m)
				equal(t, "events", gotEvents, []*parley.Event{e})
				equal(t, "idempotent response", string(body), s)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
