// Package sessionq runs work that must happen in order within a session but may happen in
// parallel across sessions: webhook deliveries and brain replies. Items of a session are
// numbered 1, 2, 3, ... in the transaction that creates them; a session with work has one
// goroutine (its actor) doing its items strictly in that order.
//
// Items reach the queues two ways. The fast way: a commit hands its new items over in memory
// (store.Watch), and an item that is the session's next number is queued as is. The sure way:
// whenever the queue cannot be sure it has everything (an item from another process, a gap in
// the numbers, a session it has not seen, a partition just acquired) it reads the session's
// pending items from the database; a periodic scan of the owned partitions catches anything
// else. The database is the truth; memory only makes it fast.
//
// It must never run two items of one session at once, nor an item before an earlier one.
package sessionq

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/clock"
)

// Key places an item.
type Key struct {
	ID        string // unique among items
	Session   string
	Seq       int64 // 1, 2, 3, ... within the session
	Partition int
}

// Handler does the work and reads the database for the queues. Its methods are called from
// many goroutines at once, but never twice at once for one session.
type Handler[T any] interface {
	// Key places an item.
	Key(item T) Key
	// Pending returns the session's pending items in Seq order.
	Pending(ctx context.Context, session string) ([]T, error)
	// PendingSessions returns sessions of the partitions that have pending items.
	PendingSessions(ctx context.Context, partitions []int) ([]string, error)
	// Run does an item. It returns the zero time when the item is finished, or when to run it
	// again; the session waits for it meanwhile.
	Run(ctx context.Context, item T) time.Time
}

// Options tune the queues. Zero fields take the defaults.
type Options struct {
	ScanInterval time.Duration // how often owned partitions are scanned (default 2s)
	IdleTTL      time.Duration // how long an idle session is remembered (default 1m)
	MaxSessions  int           // sessions kept in memory; the rest wait in the database (default 100,000)
}

// Queues holds the sessions of the partitions this process owns.
type Queues[T any] struct {
	h     Handler[T]
	clock clock.Clock
	log   *slog.Logger
	opt   Options

	mu       sync.Mutex
	owned    [parley.Partitions]bool
	release  [parley.Partitions]chan struct{} // closed when the partition is given up
	actors   [parley.Partitions]int           // running actors per partition
	idle     *sync.Cond                       // signalled when an actor ends
	sessions map[string]*session[T]
	stopping bool

	running sync.WaitGroup
	ctx     context.Context // ends only when Stop's grace is over
	cancel  context.CancelFunc
	scan    chan struct{}
	done    chan struct{}
}

type session[T any] struct {
	id        string
	partition int
	queue     []T
	highest   int64 // the highest Seq queued or done
	needFill  bool  // the queue may miss items: read the database before the next one
	actor     bool
	idleSince time.Time
}

// New returns queues that own no partition yet.
func New[T any](h Handler[T], clk clock.Clock, log *slog.Logger, opt Options) *Queues[T] {
	if opt.ScanInterval <= 0 {
		opt.ScanInterval = 2 * time.Second
	}
	if opt.IdleTTL <= 0 {
		opt.IdleTTL = time.Minute
	}
	if opt.MaxSessions <= 0 {
		opt.MaxSessions = 100_000
	}
	q := &Queues[T]{h: h, clock: clk, log: log, opt: opt, sessions: map[string]*session[T]{},
		scan: make(chan struct{}, 1), done: make(chan struct{})}
	q.idle = sync.NewCond(&q.mu)
	q.ctx, q.cancel = context.WithCancel(context.Background())
	for p := range q.release {
		q.release[p] = make(chan struct{})
	}
	go q.scanLoop()
	return q
}

// Acquired starts work on partitions: their pending sessions are read from the database.
func (q *Queues[T]) Acquired(partitions []int) {
	q.mu.Lock()
	for _, p := range partitions {
		q.owned[p] = true
	}
	q.mu.Unlock()
	q.Rescan()
}

// Released stops work on partitions and returns once none of their items is running. Items
// being run finish; waits between attempts end at once.
func (q *Queues[T]) Released(partitions []int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range partitions {
		if q.owned[p] {
			q.owned[p] = false
			close(q.release[p])
			q.release[p] = make(chan struct{})
		}
	}
	for _, p := range partitions {
		for q.actors[p] > 0 {
			q.idle.Wait()
		}
	}
	for id, s := range q.sessions {
		if slices.Contains(partitions, s.partition) {
			delete(q.sessions, id)
		}
	}
}

// Rescan makes the queues read the owned partitions' pending sessions from the database soon.
func (q *Queues[T]) Rescan() {
	select {
	case q.scan <- struct{}{}:
	default:
	}
}

// Notify tells the queues about a committed item. complete says whether the item carries all
// the handler needs to run it (items committed by another process do not).
func (q *Queues[T]) Notify(item T, complete bool) {
	k := q.h.Key(item)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopping || !q.owned[k.Partition] {
		return
	}
	s := q.sessions[k.Session]
	if s == nil {
		if !q.makeRoom() {
			q.Rescan() // it waits in the database; a later scan finds it
			return
		}
		s = &session[T]{id: k.Session, partition: k.Partition}
		q.sessions[k.Session] = s
		if !complete || k.Seq != 1 {
			s.needFill = true // nothing is known of the session: items before this one may wait
		}
	}
	switch {
	case complete && k.Seq == s.highest+1:
		s.queue = append(s.queue, item)
		s.highest = k.Seq
	case complete && q.queued(s, k.ID):
		return
	default:
		s.needFill = true
	}
	q.start(s)
}

// makeRoom reports whether another session fits in memory, forgetting idle ones if needed.
func (q *Queues[T]) makeRoom() bool {
	if len(q.sessions) < q.opt.MaxSessions {
		return true
	}
	for id, s := range q.sessions {
		if !s.actor && len(s.queue) == 0 && !s.needFill {
			delete(q.sessions, id)
			if len(q.sessions) < q.opt.MaxSessions*9/10 {
				break
			}
		}
	}
	return len(q.sessions) < q.opt.MaxSessions
}

func (q *Queues[T]) queued(s *session[T], id string) bool {
	return slices.ContainsFunc(s.queue, func(it T) bool { return q.h.Key(it).ID == id })
}

// start runs the session's actor unless it runs already. q.mu is held.
func (q *Queues[T]) start(s *session[T]) {
	if s.actor {
		return
	}
	s.actor = true
	q.actors[s.partition]++
	q.running.Add(1)
	go q.act(s)
}

// act does the session's items in order until it has none, its partition is given up or the
// queues stop.
func (q *Queues[T]) act(s *session[T]) {
	defer q.running.Done()
	q.mu.Lock()
	release := q.release[s.partition]
	q.mu.Unlock()
	for {
		q.mu.Lock()
		if q.stopping || !q.owned[s.partition] || (len(s.queue) == 0 && !s.needFill) {
			s.actor = false
			s.idleSince = time.Now()
			q.actors[s.partition]--
			q.idle.Broadcast()
			q.mu.Unlock()
			return
		}
		fill := s.needFill
		s.needFill = false
		var head T
		if !fill {
			head = s.queue[0]
		}
		q.mu.Unlock()

		if fill {
			items, err := q.h.Pending(q.ctx, s.id)
			q.mu.Lock()
			if err != nil {
				s.needFill = true
				q.mu.Unlock()
				q.log.Warn("sessionq: reading pending items failed", "session", s.id, "err", err)
				q.pause(release, time.Second)
				continue
			}
			q.merge(s, items)
			q.mu.Unlock()
			continue
		}

		again := q.h.Run(q.ctx, head)
		if again.IsZero() {
			q.mu.Lock()
			s.queue = s.queue[1:]
			q.mu.Unlock()
			continue
		}
		q.pause(release, again.Sub(q.clock.Now()))
	}
}

// pause waits d on the clock, or until the partition is given up or the queues stop.
func (q *Queues[T]) pause(release chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-q.clock.After(d):
	case <-release:
	case <-q.ctx.Done():
	}
}

// merge adds items read from the database that the queue does not hold, in Seq order.
// q.mu is held.
func (q *Queues[T]) merge(s *session[T], items []T) {
	for _, it := range items {
		k := q.h.Key(it)
		if q.queued(s, k.ID) {
			continue
		}
		i, _ := slices.BinarySearchFunc(s.queue, k.Seq, func(e T, seq int64) int {
			return int(q.h.Key(e).Seq - seq)
		})
		s.queue = slices.Insert(s.queue, i, it)
		s.highest = max(s.highest, k.Seq)
	}
}

// scanLoop reads the owned partitions' pending sessions now and then, and when asked.
func (q *Queues[T]) scanLoop() {
	defer close(q.done)
	t := time.NewTicker(q.opt.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-q.ctx.Done():
			return
		case <-t.C:
		case <-q.scan:
		}
		q.scanOnce()
	}
}

func (q *Queues[T]) scanOnce() {
	q.mu.Lock()
	var owned []int
	for p, ok := range q.owned {
		if ok {
			owned = append(owned, p)
		}
	}
	// Forget sessions idle for a while; their next item makes them read the database again.
	for id, s := range q.sessions {
		if !s.actor && len(s.queue) == 0 && !s.needFill && time.Since(s.idleSince) > q.opt.IdleTTL {
			delete(q.sessions, id)
		}
	}
	q.mu.Unlock()
	if len(owned) == 0 {
		return
	}
	ids, err := q.h.PendingSessions(q.ctx, owned)
	if err != nil {
		if q.ctx.Err() == nil {
			q.log.Warn("sessionq: scanning pending sessions failed", "err", err)
		}
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, id := range ids {
		if q.stopping {
			return
		}
		s := q.sessions[id]
		if s == nil {
			if !q.makeRoom() {
				return
			}
			s = &session[T]{id: id, partition: parley.PartitionOf(id)}
			q.sessions[id] = s
		}
		if !s.actor && q.owned[s.partition] {
			s.needFill = true
			q.start(s)
		}
	}
}

// Stop stops the queues: waits between attempts end, items being run finish within grace,
// after which their context is cancelled. Unfinished items stay pending in the database.
func (q *Queues[T]) Stop(grace time.Duration) {
	q.mu.Lock()
	q.stopping = true
	for p := range q.release {
		close(q.release[p])
		q.release[p] = make(chan struct{})
	}
	q.mu.Unlock()
	finished := make(chan struct{})
	go func() { q.running.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(grace):
		q.cancel()
		<-finished
	}
	q.cancel()
	<-q.done
}

// Stats reports what the queues hold, for metrics.
func (q *Queues[T]) Stats() (sessions, items, actors int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.sessions {
		items += len(s.queue)
		if s.actor {
			actors++
		}
	}
	return len(q.sessions), items, actors
}
