package lease_test

import (
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/lease"
	"github.com/parleyhq/parley/internal/store"
)

// owner records what a lease manager tells it.
type owner struct {
	mu   sync.Mutex
	held map[int]bool
}

func (o *owner) Acquired(ps []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if o.held[p] {
			panic("acquired a partition twice")
		}
		o.held[p] = true
	}
}

func (o *owner) Released(ps []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		delete(o.held, p)
	}
}

func (o *owner) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.held)
}

func (o *owner) has(p int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held[p]
}

// open opens the database at url as a separate store, as another process would.
func open(t *testing.T, url string) store.Store {
	t.Helper()
	db, err := app.OpenDatabase(t.Context(), url, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// quick leases expire in 300 ms and are renewed every 50 ms.
var quick = lease.Config{TTL: 300 * time.Millisecond, Interval: 50 * time.Millisecond}

func node(t *testing.T, db store.Store, name string) (*lease.Manager, *owner) {
	o := &owner{held: map[int]bool{}}
	cfg := quick
	cfg.Node = name
	m := lease.New(db, cfg, apptest.Logger(t), o)
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m, o
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoneNodeOwnsEverythingAtOnce(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		m, o := node(t, open(t, apptest.NewDatabase(t, b)), "a")
		defer m.Stop()
		if o.count() != parley.Partitions || len(m.Held()) != parley.Partitions {
			t.Fatalf("a lone node holds %d partitions after Start, want all %d", o.count(), parley.Partitions)
		}
	})
}

// Nodes share the partitions evenly and never both own one; a node that stops hands its
// partitions over at once; a node that dies loses them when its leases lapse.
func TestNodesShareAndTakeOver(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		url := apptest.NewDatabase(t, b)
		if b == apptest.SQLite {
			url = "sqlite://" + filepath.Join(t.TempDir(), "shared.db") // two processes on one file
		}
		ma, oa := node(t, open(t, url), "a")
		dbB := open(t, url)
		mb, ob := node(t, dbB, "b")
		mc, oc := node(t, open(t, url), "c")
		owners := []*owner{oa, ob, oc}
		eventually(t, "three nodes share the partitions", func() bool {
			total := 0
			for _, o := range owners {
				if n := o.count(); n < 20 || n > 22 { // each at most its share, ceil(64/3)
					return false
				}
				total += o.count()
			}
			return total == parley.Partitions
		})
		for p := range parley.Partitions {
			n := 0
			for _, o := range owners {
				if o.has(p) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("partition %d has %d owners", p, n)
			}
		}

		// c stops: its leases are given back and a and b take them.
		start := time.Now()
		mc.Stop()
		eventually(t, "two nodes take over", func() bool { return oa.count()+ob.count() == parley.Partitions })
		t.Logf("a stopped node's partitions were taken over in %v", time.Since(start))

		// b dies: its store goes away, so it can no longer renew. It stops working on its
		// partitions before its leases end, and a takes them once they have.
		eventually(t, "b holds partitions again", func() bool { return ob.count() >= parley.Partitions/2-2 })
		held := slices.Clone(mb.Held())
		dbB.Close()
		start = time.Now()
		eventually(t, "a dead node stops working", func() bool { return ob.count() == 0 })
		eventually(t, "the survivor owns everything", func() bool { return oa.count() == parley.Partitions })
		t.Logf("a dead node's %d partitions were taken over in %v (lease TTL %v)", len(held), time.Since(start), quick.TTL)
		mb.Stop()
		ma.Stop()
	})
}
