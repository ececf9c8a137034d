// Package live carries what changes an agent's view to the agents' open streams as it happens:
// conversations entering and leaving the queue, messages, receipts, agents typing. A Hub is fed
// by the store's watchers, so it hears of the commits of this process and, on PostgreSQL, of the
// other processes sharing the database; it turns what they touched into events once (its Source
// reads and renders them) and fans each out to the subscribers allowed to see it.
//
// It must never block a commit: watchers run on the committing goroutine, so the Hub only notes
// what was touched and does its reading on its own goroutine. A subscriber that cannot keep up
// is dropped (its stream ends, and the client reloads), never waited for.
package live

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Event is one message to subscribers: a type, its JSON, and the integration whose
// subscribers may see it (every subscriber when empty).
type Event struct {
	Type          string
	IntegrationID string
	Data          []byte
}

// EventReset tells a subscriber that it may have missed changes and must read everything again.
const EventReset = "reset"

// Source turns what a batch of commits touched into events, reading the store once for all.
type Source interface {
	Events(ctx context.Context, touched []store.ConversationRef, signals []store.Signal) ([]Event, error)
	// Forget drops what the source remembers of past reads: changes may have been missed.
	Forget()
}

// Hub fans events out to subscribers.
type Hub struct {
	store  store.Store
	source Source
	log    *slog.Logger
	buffer int

	mu      sync.Mutex // guards what commits touched; watchers take it, so it is held briefly
	touched map[store.ConversationRef]struct{}
	order   []store.ConversationRef
	signals []store.Signal
	rescan  bool

	subMu  sync.Mutex // guards the subscribers
	subs   map[*Subscription]struct{}
	closed bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// DefaultBuffer is how many events a subscriber may fall behind before it is dropped.
const DefaultBuffer = 1024

// retryAfter is how long the hub waits before reading a batch again after a failure.
const retryAfter = 200 * time.Millisecond

// New returns a Hub that reads through source.
func New(st store.Store, source Source, log *slog.Logger) *Hub {
	return &Hub{store: st, source: source, log: log, buffer: DefaultBuffer,
		touched: map[store.ConversationRef]struct{}{}, subs: map[*Subscription]struct{}{},
		wake: make(chan struct{}, 1)}
}

// Start makes the hub hear every commit.
func (h *Hub) Start(ctx context.Context) error {
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	h.store.Watch(h.changed)
	go h.loop()
	return nil
}

// Stop ends every subscription and stops reading.
func (h *Hub) Stop() {
	h.CloseSubscriptions()
	if h.stop == nil {
		return
	}
	close(h.stop)
	<-h.done
}

// CloseSubscriptions ends every subscription and refuses new ones: the server is shutting down,
// and open streams would keep it waiting.
func (h *Hub) CloseSubscriptions() {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.end()
	}
	clear(h.subs)
}

// changed is the store watcher: it notes what a commit touched and wakes the loop.
func (h *Hub) changed(c *store.Change) {
	if len(c.Conversations) == 0 && len(c.Signals) == 0 && !c.Rescan {
		return
	}
	h.mu.Lock()
	for _, r := range c.Conversations {
		if _, ok := h.touched[r]; !ok {
			h.touched[r] = struct{}{}
			h.order = append(h.order, r)
		}
	}
	h.signals = append(h.signals, c.Signals...)
	h.rescan = h.rescan || c.Rescan
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *Hub) loop() {
	defer close(h.done)
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		}
		h.mu.Lock()
		touched, signals, rescan := h.order, h.signals, h.rescan
		h.order, h.signals, h.rescan = nil, nil, false
		clear(h.touched)
		h.mu.Unlock()
		if rescan {
			h.source.Forget()
			h.publish([]Event{{Type: EventReset, Data: []byte("{}")}})
		}
		if len(touched) == 0 && len(signals) == 0 {
			continue
		}
		if h.Subscribers() == 0 {
			// Nobody would receive the events: reading and rendering them would be thrown
			// away (under a busy inbound API, with no console open, it was half of parley's
			// CPU). The source forgets instead, as it misses these changes; a stream opened
			// later starts with "ready" and reads everything.
			h.source.Forget()
			continue
		}
		events, err := h.source.Events(context.Background(), touched, signals)
		if err != nil {
			// A passing failure (a busy database) is tried once more: a reset makes every
			// console read everything again, which a busy database needs least.
			select {
			case <-h.stop:
				return
			case <-time.After(retryAfter):
			}
			events, err = h.source.Events(context.Background(), touched, signals)
		}
		if err != nil {
			// What was touched is lost to the streams: tell them to read again.
			h.log.Warn("live: reading changes failed; subscribers will reload", "err", err)
			h.source.Forget()
			events = []Event{{Type: EventReset, Data: []byte("{}")}}
		}
		h.publish(events)
	}
}

// publish hands each event to the subscribers allowed to see it.
func (h *Hub) publish(events []Event) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for i := range events {
		e := &events[i]
		for s := range h.subs {
			if e.IntegrationID != "" && !s.allowed(e.IntegrationID) {
				continue
			}
			select {
			case s.c <- e:
			default:
				s.end() // it fell behind: its client reloads everything when it reconnects
				delete(h.subs, s)
			}
		}
	}
}

// Subscription receives the events its agent may see.
type Subscription struct {
	c       chan *Event
	ended   chan struct{}
	allowed func(integrationID string) bool
	hub     *Hub
	once    sync.Once
}

// Subscribe starts a subscription for an agent.
func (h *Hub) Subscribe(a *parley.Agent) (*Subscription, error) {
	s := &Subscription{c: make(chan *Event, h.buffer), ended: make(chan struct{}), allowed: a.CanAccess, hub: h}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	if h.closed {
		return nil, parley.Errorf(parley.EInternal, "live: the server is shutting down")
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Events delivers the subscription's events in order.
func (s *Subscription) Events() <-chan *Event { return s.c }

// Ended is closed when the hub drops the subscription (it fell behind, or the server is
// stopping); events already delivered remain to be read.
func (s *Subscription) Ended() <-chan struct{} { return s.ended }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.subMu.Lock()
	delete(s.hub.subs, s)
	s.hub.subMu.Unlock()
	s.end()
}

func (s *Subscription) end() { s.once.Do(func() { close(s.ended) }) }

// Subscribers returns how many subscriptions are open.
func (h *Hub) Subscribers() int {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	return len(h.subs)
}
