package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

func testNodes(t *testing.T, h Harness) {
	s := h.Open(t)
	live := func(since time.Time) int {
		t.Helper()
		var n int
		update(t, s, func(tx store.Tx) error {
			var err error
			n, err = tx.LiveNodes(since)
			return err
		})
		return n
	}
	beat := func(node string, at time.Time) {
		t.Helper()
		update(t, s, func(tx store.Tx) error { return tx.Heartbeat(node, now.Add(-time.Hour), at) })
	}
	if n := live(time.Time{}); n != 0 {
		t.Errorf("a new store has %d live nodes", n)
	}
	beat("a", now)
	beat("b", now.Add(time.Second))
	beat("c", now.Add(-10*time.Second))
	for _, tc := range []struct {
		since time.Time
		want  int
	}{{now, 2}, {now.Add(time.Second), 1}, {now.Add(-time.Hour), 3}} {
		if n := live(tc.since); n != tc.want {
			t.Errorf("LiveNodes(now%+v) = %d, want %d", tc.since.Sub(now), n, tc.want)
		}
	}
	beat("c", now.Add(2*time.Second)) // a node beats again: the same node, later
	if n := live(now.Add(time.Second)); n != 2 {
		t.Errorf("after c's second heartbeat, %d live nodes, want 2", n)
	}
	update(t, s, func(tx store.Tx) error { return tx.DeleteNodes(now.Add(time.Second)) })
	if n := live(time.Time{}); n != 2 {
		t.Errorf("after deleting nodes silent before now+1s, %d nodes, want 2 (b and c)", n)
	}
}

// partitions runs one of the partition methods and returns the partitions it returned, sorted.
func partitions(t *testing.T, s store.Store, fn func(tx store.Tx) ([]int, error)) []int {
	t.Helper()
	var got []int
	update(t, s, func(tx store.Tx) error {
		var err error
		got, err = fn(tx)
		return err
	})
	slices.Sort(got)
	return got
}

func acquire(t *testing.T, s store.Store, node string, n int, at, until time.Time) []int {
	t.Helper()
	return partitions(t, s, func(tx store.Tx) ([]int, error) { return tx.AcquirePartitions(node, n, at, until) })
}

func renew(t *testing.T, s store.Store, node string, ps []int, until time.Time) []int {
	t.Helper()
	return partitions(t, s, func(tx store.Tx) ([]int, error) { return tx.RenewPartitions(node, ps, until) })
}

func release(t *testing.T, s store.Store, node string, ps []int) {
	t.Helper()
	update(t, s, func(tx store.Tx) error { return tx.ReleasePartitions(node, ps) })
}

func allPartitions() []int {
	all := make([]int, parley.Partitions)
	for i := range all {
		all[i] = i
	}
	return all
}

func testPartitions(t *testing.T, h Harness) {
	s := h.Open(t)
	until := now.Add(5 * time.Second)

	a := acquire(t, s, "a", 40, now, until)
	if len(a) != 40 || len(slices.Compact(slices.Clone(a))) != 40 || a[0] < 0 || a[39] >= parley.Partitions {
		t.Fatalf("a acquired %v, want 40 distinct partitions", a)
	}
	b := acquire(t, s, "b", 40, now, until)
	equal(t, "b acquires the rest", b, difference(allPartitions(), a))
	if got := acquire(t, s, "c", 10, now, until); len(got) != 0 {
		t.Errorf("c acquired %v while every lease runs", got)
	}
	if got := acquire(t, s, "a", 0, now, until); len(got) != 0 {
		t.Errorf("acquiring 0 returned %v", got)
	}

	// Renewing returns only what the node holds.
	equal(t, "a renews its own", renew(t, s, "a", append(slices.Clone(a), b[:3]...), now.Add(10*time.Second)), a)
	if got := renew(t, s, "a", nil, now.Add(10*time.Second)); len(got) != 0 {
		t.Errorf("renewing nothing returned %v", got)
	}

	// Released partitions are free at once, and releasing another's does nothing.
	release(t, s, "a", a[:10])
	release(t, s, "a", b)
	release(t, s, "a", nil)
	equal(t, "c acquires what a released", acquire(t, s, "c", 64, now, until.Add(10*time.Second)), a[:10])
	a = a[10:]

	// A lease is taken over only once it has ended before now: b's end at until, a's and c's
	// later.
	if got := acquire(t, s, "c", 64, until, until.Add(5*time.Second)); len(got) != 0 {
		t.Errorf("c acquired %v at the instant b's leases end", got)
	}
	equal(t, "c takes over b's lapsed leases", acquire(t, s, "c", 64, until.Add(time.Millisecond), until.Add(5*time.Second)), b)
	if got := renew(t, s, "b", b, until.Add(10*time.Second)); len(got) != 0 {
		t.Errorf("b renewed %v after c took them over", got)
	}
	equal(t, "a still holds its own", renew(t, s, "a", allPartitions(), until.Add(10*time.Second)), a)

	// Forgotten leases are free at once, whoever held them and however long they ran.
	update(t, s, func(tx store.Tx) error { return tx.ForgetLeases() })
	if got := renew(t, s, "a", allPartitions(), until.Add(20*time.Second)); len(got) != 0 {
		t.Errorf("a renewed %v after every lease was forgotten", got)
	}
	equal(t, "d acquires every partition", acquire(t, s, "d", 64, now, until), allPartitions())
}

// testPartitionsConcurrent has many nodes acquire at once: no partition may go to two nodes, and
// none may be lost.
func testPartitionsConcurrent(t *testing.T, h Harness) {
	s := h.Open(t)
	const nodes = 8
	until := now.Add(5 * time.Second)
	got := make([][]int, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			errs[i] = s.Update(t.Context(), func(tx store.Tx) error {
				var err error
				got[i], err = tx.AcquirePartitions(fmt.Sprint("node", i), 16, now, until)
				return err
			})
		})
	}
	close(start)
	wg.Wait()
	owner := map[int]int{}
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		for _, p := range got[i] {
			if j, taken := owner[p]; taken {
				t.Errorf("partition %d leased to node %d and node %d", p, j, i)
			}
			owner[p] = i
		}
		slices.Sort(got[i])
		equal(t, fmt.Sprintf("node %d holds what it acquired", i), renew(t, s, fmt.Sprint("node", i), allPartitions(), until), got[i])
	}
	rest := acquire(t, s, "late", parley.Partitions, now, until)
	if len(owner)+len(rest) != parley.Partitions {
		t.Errorf("%d partitions leased at once and %d left after, want %d in all", len(owner), len(rest), parley.Partitions)
	}
}

// difference returns the elements of a not in b.
func difference(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
