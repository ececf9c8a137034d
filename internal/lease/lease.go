// Package lease decides which parley process works on which sessions. Sessions are spread over
// parley.Partitions partitions; each process (a node) leases about its share of them in the
// database and renews the leases every second. Work that must stay in order within a session
// (webhook delivery, brain replies) is done only by the owner of the session's partition, so
// two processes never deliver the same session's events at once.
//
// When a node joins, the others drain and hand over partitions until the shares are even; when
// a node dies, its leases run out and the others take its partitions within seconds. There is
// no leader to lose. Lease times come from each node's wall clock: nodes must agree on the
// time to well under a second (NTP), which the lease length allows for.
//
// It must never let an owner work on a partition whose lease it may have lost.
package lease

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Owner does work per partition.
type Owner interface {
	// Acquired tells the owner it holds these partitions now.
	Acquired(partitions []int)
	// Released tells the owner to stop working on these partitions. It returns once no work
	// on them is in flight.
	Released(partitions []int)
}

// Config tunes the leases. Zero fields take the defaults.
type Config struct {
	Node     string        // this process; a new random ID by default
	TTL      time.Duration // how long a lease lasts unless renewed (default 5s)
	Interval time.Duration // how often leases are renewed and shares rebalanced (default 1s)
}

// Manager holds this node's leases.
type Manager struct {
	store   store.Store
	cfg     Config
	owners  []Owner
	log     *slog.Logger
	started time.Time

	mu        sync.Mutex
	held      map[int]time.Time // partition -> when our lease on it ends, as far as we know
	releasing map[int]bool      // partitions being drained before we give them up
	drains    sync.WaitGroup

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Manager that tells owners what it holds.
func New(st store.Store, cfg Config, log *slog.Logger, owners ...Owner) *Manager {
	if cfg.Node == "" {
		cfg.Node = parley.NewRandomID()
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Manager{store: st, cfg: cfg, owners: owners, log: log, held: map[int]time.Time{}, releasing: map[int]bool{}}
}

// Node returns this node's ID.
func (m *Manager) Node() string { return m.cfg.Node }

// Start takes this node's first leases before it returns (a lone node owns everything from its
// first request), then keeps renewing and rebalancing them.
func (m *Manager) Start(ctx context.Context) error {
	m.started = time.Now()
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	if err := m.tick(ctx); err != nil {
		m.log.Warn("lease: first round failed; retrying", "err", err)
	}
	go m.loop()
	return nil
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.TTL)
			if err := m.tick(ctx); err != nil {
				m.log.Warn("lease: renewing failed", "err", err)
			}
			cancel()
		}
	}
}

// Stop drains every owner and gives the leases back, so other nodes take over at once.
func (m *Manager) Stop() {
	if m.stop == nil {
		return
	}
	first := false
	m.stopOnce.Do(func() { close(m.stop); first = true })
	<-m.done
	if !first {
		return
	}
	m.drains.Wait()
	m.mu.Lock()
	all := keys(m.held)
	m.mu.Unlock()
	m.release(all, true)
}

// Held returns the partitions this node holds.
func (m *Manager) Held() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return keys(m.held)
}

// tick renews what we hold, drops what we lost, and moves towards our share.
func (m *Manager) tick(ctx context.Context) error {
	now := time.Now()
	until := now.Add(m.cfg.TTL)
	m.mu.Lock()
	held := keys(m.held)
	m.mu.Unlock()

	var renewed []int
	var live int
	err := m.store.Update(ctx, func(tx store.Tx) error {
		if err := tx.Heartbeat(m.cfg.Node, m.started, now); err != nil {
			return err
		}
		var err error
		if live, err = tx.LiveNodes(now.Add(-m.cfg.TTL)); err != nil {
			return err
		}
		renewed, err = tx.RenewPartitions(m.cfg.Node, held, until)
		return err
	})
	if err != nil {
		m.expire(now)
		return err
	}
	m.mu.Lock()
	var lost []int
	for _, p := range held {
		if slices.Contains(renewed, p) {
			m.held[p] = until
		} else {
			lost = append(lost, p)
		}
	}
	m.mu.Unlock()
	if len(lost) > 0 {
		m.log.Warn("lease: lost partitions to another node", "partitions", lost)
		m.mu.Lock()
		for _, p := range lost {
			m.releasing[p] = true
		}
		m.mu.Unlock()
		m.drains.Go(func() { m.release(lost, false) })
	}

	share := (parley.Partitions + max(live, 1) - 1) / max(live, 1)
	m.mu.Lock()
	keeping := len(m.held) - len(m.releasing)
	m.mu.Unlock()
	switch {
	case keeping < share:
		var got []int
		err := m.store.Update(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.AcquirePartitions(m.cfg.Node, share-keeping, now, until)
			return err
		})
		if err != nil {
			return err
		}
		if len(got) > 0 {
			m.mu.Lock()
			for _, p := range got {
				m.held[p] = until
			}
			m.mu.Unlock()
			m.log.Debug("lease: acquired partitions", "partitions", got, "live_nodes", live)
			for _, o := range m.owners {
				o.Acquired(got)
			}
		}
	case keeping > share:
		m.handOver(keeping - share)
	}
	if now.Sub(m.started) > time.Minute {
		// Housekeeping any node may do: forget nodes silent for an hour.
		m.store.Update(ctx, func(tx store.Tx) error { return tx.DeleteNodes(now.Add(-time.Hour)) })
	}
	return nil
}

// handOver drains n partitions in the background and then gives their leases up; they stay
// ours, and renewed, until the owners have stopped working on them.
func (m *Manager) handOver(n int) {
	m.mu.Lock()
	var extra []int
	for _, p := range slices.Backward(keys(m.held)) {
		if len(extra) == n {
			break
		}
		if !m.releasing[p] {
			m.releasing[p] = true
			extra = append(extra, p)
		}
	}
	m.mu.Unlock()
	if len(extra) == 0 {
		return
	}
	m.log.Debug("lease: handing partitions over", "partitions", extra)
	m.drains.Go(func() { m.release(extra, true) })
}

// release tells the owners to stop work on partitions, then forgets them, and gives the
// leases back in the database when we still hold them.
func (m *Manager) release(partitions []int, giveBack bool) {
	if len(partitions) == 0 {
		return
	}
	for _, o := range m.owners {
		o.Released(partitions)
	}
	if giveBack {
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.TTL)
		err := m.store.Update(ctx, func(tx store.Tx) error { return tx.ReleasePartitions(m.cfg.Node, partitions) })
		cancel()
		if err != nil {
			m.log.Warn("lease: giving partitions back failed; they will lapse", "err", err)
		}
	}
	m.mu.Lock()
	for _, p := range partitions {
		delete(m.held, p)
		delete(m.releasing, p)
	}
	m.mu.Unlock()
}

// expire stops work on partitions whose lease may have ended while we could not renew it, a
// safety margin before the end: another node may take them as soon as it passes.
func (m *Manager) expire(now time.Time) {
	margin := m.cfg.TTL / 5
	m.mu.Lock()
	var gone []int
	for p, until := range m.held {
		if now.Add(margin).After(until) && !m.releasing[p] {
			gone = append(gone, p)
			m.releasing[p] = true
		}
	}
	m.mu.Unlock()
	if len(gone) > 0 {
		m.log.Warn("lease: could not renew; stopping work on partitions", "partitions", gone)
		m.drains.Go(func() { m.release(gone, false) })
	}
}

func keys(m map[int]time.Time) []int {
	out := make([]int, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
