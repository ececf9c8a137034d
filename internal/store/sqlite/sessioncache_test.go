package sqlite_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// sameSession compares two reads of a session, either of which may have failed.
func sameSession(a, b *parley.Session) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a, b)
}

// TestSessionCacheUnderBatches runs random lifecycle operations concurrently, so that many share a
// writer batch, some failing before they write, some after, some panicking (which makes the
// writer roll back and run the rest again), and checks inside every operation and after every
// round that the writer's cached LockSession agrees with a plain read of the database.
func TestSessionCacheUnderBatches(t *testing.T) {
	st := open(t)
	now := time.Now()
	var nowMu sync.Mutex
	engine := chat.New(func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now })
	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/hook", SessionTimeout: 3600}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	const nsess = 12
	ids := make([]string, nsess)
	agents := []*parley.Agent{{ID: parley.NewID(), Email: "a@x.io", Name: "A"}, {ID: parley.NewID(), Email: "b@x.io", Name: "B"}}
	if err := st.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		for _, a := range agents {
			if err := tx.CreateAgent(a); err != nil {
				return err
			}
		}
		for i := range ids {
			s, err := engine.CreateSession(tx, in, chat.NewSession{})
			if err != nil {
				return err
			}
			ids[i] = s.ID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var mismatches []string
	check := func(tx store.Tx, id, when string) {
		a, errA := tx.LockSession(id)
		b, errB := tx.Session(id)
		if (errA == nil) != (errB == nil) || !sameSession(a, b) {
			mu.Lock()
			mismatches = append(mismatches, fmt.Sprintf("%s: cached %+v %+v / db %+v %+v", when, a, conv(a), b, conv(b)))
			mu.Unlock()
		}
	}
	errFail := errors.New("fail")
	rng := rand.New(rand.NewPCG(1, 2))
	var rmu sync.Mutex
	rnd := func(n int) int { rmu.Lock(); defer rmu.Unlock(); return rng.IntN(n) }
	for round := range 300 {
		var wg sync.WaitGroup
		for g := range 24 {
			op, how := rnd(15), rnd(6)
			ag := agents[rnd(2)]
			id, id2 := ids[rnd(nsess)], ids[rnd(nsess)]
			wg.Go(func() {
				_ = st.Update(t.Context(), func(tx store.Tx) error {
					if how == 0 {
						// fails before writing, after a read
						check(tx, id, "before-write failure")
						return errFail
					}
					var err error
					switch op {
					case 0, 1:
						_, err = engine.PostUserMessage(tx, in, id, chat.UserMessage{Text: "hi", Context: map[string]any{"n": round*100 + g}})
					case 2:
						_, err = engine.UpdateContext(tx, in, id, map[string]any{"k": g})
					case 3:
						err = engine.Handover(tx, in, id)
					case 4:
						err = engine.CloseConversation(tx, in, id, chat.ClosedBy{By: "api"})
					case 5:
						err = engine.ReopenConversation(tx, in, id)
					case 6:
						_, err = engine.PostExternalAgentMessage(tx, in, id, chat.ExternalAgentMessage{Text: "x", Agent: parley.AgentRef{ID: "a", Name: "a"}})
					case 7:
						jobs, _ := tx.PendingJobs(id)
						if len(jobs) > 0 {
							_, err = engine.CommitBrainReply(tx, in, jobs[0], chat.BrainReply{Responses: []byte(`[{"type":"text","text":"ok"}]`),
								Context: map[string]any{"b": g}, Handover: g%5 == 0, Resolve: g%7 == 0})
						}
					case 9, 10:
						if s, e := tx.Session(id); e == nil {
							err = engine.Join(tx, ag, s.ConversationID)
						}
					case 11:
						if s, e := tx.Session(id); e == nil {
							err = engine.Leave(tx, ag, s.ConversationID)
						}
					case 12:
						if s, e := tx.Session(id); e == nil {
							_, err = engine.PostAgentMessage(tx, ag, s.ConversationID, chat.AgentMessage{Text: "yo"})
						}
					case 13:
						if g == 0 && round%40 == 39 {
							err = engine.CloseSession(tx, in, id)
						}
					case 14:
						if g < 3 && round > 280 {
							var ex []string
							ex, err = tx.ExpiringSessions(now.Add(2*time.Hour), 100)
							for _, x := range ex {
								if err == nil {
									err = engine.Expire(tx, x)
								}
							}
						}
					case 8:
						_, err = engine.PostUserMessage(tx, in, id, chat.UserMessage{Text: "a"})
						if err == nil {
							err = engine.Handover(tx, in, id2)
						}
					}
					check(tx, id, "after op")
					check(tx, id2, "after op (other)")
					if err != nil {
						return err
					}
					switch how {
					case 1:
						return errFail // after writing
					case 2:
						if g%4 == 0 {
							panic("after writing")
						}
					}
					return nil
				})
			})
		}
		wg.Wait()
		// every session: outside any op
		for _, id := range ids {
			var a, b *parley.Session
			if err := st.Update(t.Context(), func(tx store.Tx) (err error) { a, err = tx.LockSession(id); return err }); err != nil {
				t.Fatal(err)
			}
			if err := st.View(t.Context(), func(tx store.ReadTx) (err error) { b, err = tx.Session(id); return err }); err != nil {
				t.Fatal(err)
			}
			if !sameSession(a, b) {
				t.Fatalf("round %d: cache %+v %+v\ndb %+v %+v", round, a, conv(a), b, conv(b))
			}
		}
		nowMu.Lock()
		now = now.Add(1234567 * time.Nanosecond)
		if round == 280 {
			now = now.Add(2 * time.Hour)
		}
		nowMu.Unlock()
	}
	if len(mismatches) > 0 {
		t.Fatalf("%d mismatches, first: %s", len(mismatches), mismatches[0])
	}
}

// conv returns s's conversation, for messages.
func conv(s *parley.Session) *parley.Conversation {
	if s == nil {
		return nil
	}
	return s.Conversation
}
