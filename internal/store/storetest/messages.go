package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func testMessageRoundTrip(t *testing.T, h Harness) {
	f := setup(t, h)
	user := newMessage(f.sess, parley.AuthorUser, "hello <b>&</b> \"there\"", now)
	user.Attachments = []parley.Attachment{
		{Type: "image", MimeType: "image/png", URL: "https://cdn.example/a.png?sig=1&x=2", Title: "A picture"},
		{Type: "file", MimeType: "application/pdf", FileID: parley.NewID(), Filename: "résumé 📄.pdf"},
	}
	brain := newMessage(f.sess, parley.AuthorBrain, "", now.Add(time.Second))
	brain.Responses = json.RawMessage(`[{"type":"text","texts":["Hi!","Γειά"]},{"type":"options","options":[{"label":"Yes"}]}]`)
	brain.DeliveredAt, brain.ReadAt = now.Add(2*time.Second), now.Add(3*time.Second)
	agent := newMessage(f.sess, parley.AuthorAgent, "on it", now.Add(4*time.Second))
	agent.Agent = &parley.AgentRef{ID: "agent-7", Name: "Ana María", Avatar: "https://cdn.example/ana.png"}
	external := newMessage(f.sess, parley.AuthorExternal, "from the desk", now.Add(5*time.Second))
	external.Agent = &parley.AgentRef{ID: "ext-1", Name: "Desk"}
	all := []*parley.Message{user, brain, agent, external}

	update(t, f.s, func(tx store.Tx) error {
		for _, m := range all {
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	for i, m := range all {
		if m.Seq <= 0 || (i > 0 && m.Seq <= all[i-1].Seq) {
			t.Errorf("message %d: Seq = %d, want ascending from 1", i, m.Seq)
		}
		got := read(t, f.s, func(tx store.ReadTx) (*parley.Message, error) { return tx.Message(f.sess.ID, m.ID) })
		equal(t, "message by "+m.Author, got, m)
	}
	got := read(t, f.s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.Messages(f.sess.ID, 0, 10) })
	equal(t, "messages", got, all)
}

func testMessages(t *testing.T, h Harness) {
	f := setup(t, h)
	other := createSession(t, f.s, f.in)
	var mine []*parley.Message
	update(t, f.s, func(tx store.Tx) error {
		for i := range 5 {
			// Interleaved with another session's, which must not show.
			for _, s := range []*parley.Session{f.sess, other} {
				m := newMessage(s, parley.AuthorUser, "m", now.Add(time.Duration(i)*time.Second))
				if err := tx.InsertMessage(m); err != nil {
					return err
				}
				if s == f.sess {
					mine = append(mine, m)
				}
			}
		}
		return nil
	})
	tests := []struct {
		name     string
		afterSeq int64
		limit    int
		want     []*parley.Message
	}{
		{"all", 0, 100, mine},
		{"limit", 0, 2, mine[:2]},
		{"after", mine[1].Seq, 100, mine[2:]},
		{"after and limit", mine[1].Seq, 2, mine[2:4]},
		{"after the last", mine[4].Seq, 100, nil},
		{"limit 0", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := read(t, f.s, func(tx store.ReadTx) ([]*parley.Message, error) {
				return tx.Messages(f.sess.ID, tc.afterSeq, tc.limit)
			})
			equal(t, "messages", ids(got, messageID), ids(tc.want, messageID))
		})
	}
	got := read(t, f.s, func(tx store.ReadTx) ([]*parley.Message, error) { return tx.Messages(parley.NewID(), 0, 100) })
	if len(got) != 0 {
		t.Errorf("an unknown session has %d messages", len(got))
	}
}

// receipt is when a message was delivered and read.
type receipt struct{ delivered, read time.Time }

func testMarkMessages(t *testing.T, h Harness) {
	f := setup(t, h)
	t1, t2 := now.Add(time.Minute), now.Add(2*time.Minute)
	desk := []string{parley.AuthorBrain, parley.AuthorAgent} // whose messages the end user receives

	// mark is one MarkMessages call; ids name messages of seed (below), "other" one of another
	// session.
	type mark struct {
		kind    string
		authors []string
		ids     []string
		until   time.Time
		at      time.Time
		want    []string // the names of the messages it changes
	}
	tests := []struct {
		name  string
		marks []mark
		want  map[string]receipt // the receipts afterwards; messages not named have none
	}{
		{"by ids, only the given authors",
			[]mark{{parley.ReceiptDelivered, desk, []string{"b1", "u1", "x1"}, time.Time{}, t1, []string{"b1"}}},
			map[string]receipt{"b1": {delivered: t1}}},
		{"by until, inclusive",
			[]mark{{parley.ReceiptDelivered, desk, nil, now.Add(2 * time.Second), t1, []string{"b1", "a1"}}},
			map[string]receipt{"b1": {delivered: t1}, "a1": {delivered: t1}}},
		{"by ids and until",
			[]mark{{parley.ReceiptDelivered, desk, []string{"b2"}, now.Add(time.Second), t1, []string{"b1", "b2"}}},
			map[string]receipt{"b1": {delivered: t1}, "b2": {delivered: t1}}},
		{"read implies delivered",
			[]mark{{parley.ReceiptRead, desk, []string{"b1"}, time.Time{}, t1, []string{"b1"}}},
			map[string]receipt{"b1": {delivered: t1, read: t1}}},
		{"read keeps an earlier delivery",
			[]mark{
				{parley.ReceiptDelivered, desk, []string{"b1", "a1"}, time.Time{}, t1, []string{"b1", "a1"}},
				{parley.ReceiptRead, desk, []string{"b1", "b2"}, time.Time{}, t2, []string{"b1", "b2"}},
			},
			map[string]receipt{"b1": {delivered: t1, read: t2}, "a1": {delivered: t1}, "b2": {delivered: t2, read: t2}}},
		{"delivered after read changes nothing",
			[]mark{
				{parley.ReceiptRead, desk, []string{"b1"}, time.Time{}, t1, []string{"b1"}},
				{parley.ReceiptDelivered, desk, []string{"b1"}, time.Time{}, t2, nil},
			},
			map[string]receipt{"b1": {delivered: t1, read: t1}}},
		{"the user's messages, for the desk",
			[]mark{{parley.ReceiptDelivered, []string{parley.AuthorUser}, nil, now.Add(time.Hour), t1, []string{"u1"}}},
			map[string]receipt{"u1": {delivered: t1}}},
		{"another session's message is not touched",
			[]mark{{parley.ReceiptRead, desk, []string{"other"}, time.Time{}, t1, nil}},
			map[string]receipt{}},
		{"no authors",
			[]mark{{parley.ReceiptRead, nil, []string{"b1"}, now.Add(time.Hour), t1, nil}},
			map[string]receipt{}},
		{"neither ids nor until",
			[]mark{{parley.ReceiptRead, desk, nil, time.Time{}, t1, nil}},
			map[string]receipt{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sess, msgs := seedMarks(t, f)
			byID := map[string]string{}
			for name, m := range msgs {
				byID[m.ID] = name
			}
			for i, mk := range tc.marks {
				var ids []string
				for _, name := range mk.ids {
					ids = append(ids, msgs[name].ID)
				}
				call := func() []string {
					var changed []string
					update(t, f.s, func(tx store.Tx) error {
						var err error
						changed, err = tx.MarkMessages(sess.ID, mk.kind, mk.authors, ids, mk.until, mk.at)
						return err
					})
					var names []string
					for _, id := range changed {
						names = append(names, byID[id])
					}
					slices.Sort(names)
					return names
				}
				want := slices.Sorted(slices.Values(mk.want))
				equal(t, fmt.Sprintf("changed by mark %d", i+1), call(), want)
				if again := call(); len(again) != 0 {
					t.Errorf("mark %d made again changed %v", i+1, again)
				}
			}
			for name, m := range msgs {
				got := read(t, f.s, func(tx store.ReadTx) (*parley.Message, error) { return tx.Message(m.SessionID, m.ID) })
				equal(t, "receipt of "+name, receipt{got.DeliveredAt, got.ReadAt}, tc.want[name])
			}
		})
	}

	t.Run("unknown kind", func(t *testing.T) {
		t.Parallel()
		sess, msgs := seedMarks(t, f)
		err := f.s.Update(t.Context(), func(tx store.Tx) error {
			_, err := tx.MarkMessages(sess.ID, "seen", desk, []string{msgs["b1"].ID}, time.Time{}, t1)
			return err
		})
		if err == nil {
			t.Error("an unknown receipt kind was accepted")
		}
	})
}

// seedMarks stores a session with one message of each author, a second apart from now (u1, b1,
// a1, x1, b2), and a brain message of another session ("other").
func seedMarks(t *testing.T, f *fixture) (*parley.Session, map[string]*parley.Message) {
	t.Helper()
	sess, other := createSession(t, f.s, f.in), createSession(t, f.s, f.in)
	msgs := map[string]*parley.Message{
		"u1":    newMessage(sess, parley.AuthorUser, "u1", now),
		"b1":    newMessage(sess, parley.AuthorBrain, "b1", now.Add(time.Second)),
		"a1":    newMessage(sess, parley.AuthorAgent, "a1", now.Add(2*time.Second)),
		"x1":    newMessage(sess, parley.AuthorExternal, "x1", now.Add(3*time.Second)),
		"b2":    newMessage(sess, parley.AuthorBrain, "b2", now.Add(4*time.Second)),
		"other": newMessage(other, parley.AuthorBrain, "other", now),
	}
	update(t, f.s, func(tx store.Tx) error {
		for _, m := range msgs {
			if err := tx.InsertMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
	return sess, msgs
}
