package live

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// fakeSource makes one event per touched conversation, of the integration named by its session.
type fakeSource struct {
	mu      sync.Mutex
	forgot  int
	batches int
	fail    int // how many reads fail before the next succeeds
}

func (f *fakeSource) Events(ctx context.Context, touched []store.ConversationRef, signals []store.Signal) ([]Event, error) {
	f.mu.Lock()
	f.batches++
	fail := f.fail > 0
	f.fail--
	f.mu.Unlock()
	if fail {
		return nil, errors.New("the database is busy")
	}
	var out []Event
	for _, r := range touched {
		out = append(out, Event{Type: "conversation", IntegrationID: r.SessionID, Data: []byte(`"` + r.ConversationID + `"`)})
	}
	for _, s := range signals {
		out = append(out, Event{Type: s.Kind, IntegrationID: s.SessionID, Data: []byte(`"` + s.Data + `"`)})
	}
	return out, nil
}

func (f *fakeSource) Forget() { f.mu.Lock(); f.forgot++; f.mu.Unlock() }

// running returns a hub whose loop runs, fed by calling changed as the store would.
func running(t *testing.T, buffer int) (*Hub, *fakeSource) {
	src := &fakeSource{}
	h := New(nil, src, slog.New(slog.DiscardHandler))
	h.buffer = buffer
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go h.loop()
	t.Cleanup(h.Stop)
	return h, src
}

func next(t *testing.T, s *Subscription) *Event {
	t.Helper()
	select {
	case e := <-s.Events():
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

func touch(h *Hub, integration, conv string) {
	h.changed(&store.Change{Conversations: []store.ConversationRef{{SessionID: integration, ConversationID: conv}}})
}

func TestHubFiltersByIntegration(t *testing.T) {
	h, _ := running(t, 16)
	all, err := h.Subscribe(&parley.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	onlyA, _ := h.Subscribe(&parley.Agent{Integrations: []string{"A"}})
	touch(h, "B", "b1")
	touch(h, "A", "a1")
	h.changed(&store.Change{Signals: []store.Signal{{SessionID: "B", Kind: "typing", Data: "b"}}})
	if e := next(t, onlyA); string(e.Data) != `"a1"` {
		t.Errorf("the agent of A got %s first", e.Data)
	}
	got := map[string]bool{}
	for range 3 {
		got[string(next(t, all).Data)] = true
	}
	if !got[`"a1"`] || !got[`"b1"`] || !got[`"b"`] {
		t.Errorf("the agent of all integrations got %v", got)
	}
	select {
	case e := <-onlyA.Events():
		t.Errorf("the agent of A got %s of B", e.Data)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestHubDropsSlowSubscribers(t *testing.T) {
	h, _ := running(t, 4)
	slow, _ := h.Subscribe(&parley.Agent{})
	fast, _ := h.Subscribe(&parley.Agent{})
	for i := range 10 {
		touch(h, "A", string(rune('a'+i)))
		next(t, fast)
	}
	select {
	case <-slow.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("a subscriber that read nothing was not dropped")
	}
	select {
	case <-fast.Ended():
		t.Fatal("a subscriber that kept up was dropped")
	default:
	}
	if n := h.Subscribers(); n != 1 {
		t.Errorf("%d subscribers, want 1", n)
	}
}

func TestHubRescanResets(t *testing.T) {
	h, src := running(t, 16)
	s, _ := h.Subscribe(&parley.Agent{Integrations: []string{"A"}})
	h.changed(&store.Change{Remote: true, Rescan: true})
	if e := next(t, s); e.Type != EventReset {
		t.Errorf("after a rescan: %s, want %s", e.Type, EventReset)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.forgot != 1 {
		t.Errorf("the source forgot %d times, want 1", src.forgot)
	}
}

func TestHubCoalesces(t *testing.T) {
	src := &fakeSource{}
	h := New(nil, src, slog.New(slog.DiscardHandler))
	s, _ := h.Subscribe(&parley.Agent{})
	for range 10 { // commits that touch one conversation before the hub reads
		touch(h, "A", "c")
	}
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go h.loop()
	t.Cleanup(h.Stop)
	next(t, s)
	select {
	case e := <-s.Events():
		t.Errorf("a second event for one conversation touched in one batch: %s", e.Data)
	case <-time.After(50 * time.Millisecond):
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.batches != 1 {
		t.Errorf("%d reads, want 1", src.batches)
	}
}

func TestHubClose(t *testing.T) {
	h, _ := running(t, 4)
	s, _ := h.Subscribe(&parley.Agent{})
	h.CloseSubscriptions()
	select {
	case <-s.Ended():
	default:
		t.Error("a subscription outlived CloseSubscriptions")
	}
	if _, err := h.Subscribe(&parley.Agent{}); err == nil {
		t.Error("subscribed after CloseSubscriptions")
	}
}

func TestHubRetriesOnceThenResets(t *testing.T) {
	h, src := running(t, 16)
	s, _ := h.Subscribe(&parley.Agent{})
	src.mu.Lock()
	src.fail = 1
	src.mu.Unlock()
	touch(h, "A", "a1")
	if e := next(t, s); e.Type != "conversation" {
		t.Errorf("after one failed read: %s, want the event", e.Type)
	}
	src.mu.Lock()
	src.fail = 2
	src.mu.Unlock()
	touch(h, "A", "a2")
	if e := next(t, s); e.Type != EventReset {
		t.Errorf("after two failed reads: %s, want %s", e.Type, EventReset)
	}
}

func TestHubReadsNothingWithoutSubscribers(t *testing.T) {
	src := &fakeSource{}
	h := New(nil, src, slog.New(slog.DiscardHandler))
	touch(h, "A", "before") // no stream is open
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go h.loop()
	t.Cleanup(h.Stop)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		src.mu.Lock()
		forgot := src.forgot
		src.mu.Unlock()
		if forgot == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the source was not told to forget a change nobody received")
		}
	}
	s, _ := h.Subscribe(&parley.Agent{})
	touch(h, "A", "after")
	if e := next(t, s); string(e.Data) != `"after"` {
		t.Errorf("first event %s, want the conversation touched after subscribing", e.Data)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.batches != 1 {
		t.Errorf("%d reads, want 1: nothing is read for no subscriber", src.batches)
	}
}
