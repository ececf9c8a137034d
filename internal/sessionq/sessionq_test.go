package sessionq_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/sessionq"
)

type item struct {
	id      string
	session string
	seq     int64
}

// handler keeps pending items in memory, as the database would, and logs what it runs.
type handler struct {
	mu      sync.Mutex
	pending map[string][]*item // session -> pending items
	ran     []string           // "session/seq", in run order
	running map[string]bool    // sessions with an item being run, to catch overlap
	overlap bool
	run     func(*item) time.Time // decides the outcome; nil = done
	changed chan struct{}
}

func newHandler() *handler {
	return &handler{pending: map[string][]*item{}, running: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (h *handler) Key(it *item) sessionq.Key {
	return sessionq.Key{ID: it.id, Session: it.session, Seq: it.seq, Partition: parley.PartitionOf(it.session)}
}

func (h *handler) Pending(ctx context.Context, session string) ([]*item, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pending[session]), nil
}

func (h *handler) PendingSessions(ctx context.Context, partitions []int) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for s, items := range h.pending {
		if len(items) > 0 && slices.Contains(partitions, parley.PartitionOf(s)) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (h *handler) Run(ctx context.Context, it *item) time.Time {
	h.mu.Lock()
	if h.running[it.session] {
		h.overlap = true
	}
	h.running[it.session] = true
	run := h.run
	h.mu.Unlock()
	var again time.Time
	if run != nil {
		again = run(it)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running[it.session] = false
	if again.IsZero() {
		h.ran = append(h.ran, fmt.Sprintf("%s/%d", it.session, it.seq))
		h.pending[it.session] = slices.DeleteFunc(h.pending[it.session], func(p *item) bool { return p.id == it.id })
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
	return again
}

// commit stores items as pending, as a transaction would, and returns them.
func (h *handler) commit(session string, seqs ...int64) []*item {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*item
	for _, s := range seqs {
		it := &item{id: fmt.Sprintf("%s-%d", session, s), session: session, seq: s}
		h.pending[session] = append(h.pending[session], it)
		slices.SortFunc(h.pending[session], func(a, b *item) int { return int(a.seq - b.seq) })
		out = append(out, it)
	}
	return out
}

func (h *handler) ranFor(session string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.ran {
		if len(r) > len(session) && r[:len(session)+1] == session+"/" {
			out = append(out, r)
		}
	}
	return out
}

// waitRan waits until the session has run want.
func (h *handler) waitRan(t *testing.T, session string, want ...int64) {
	t.Helper()
	var exp []string
	for _, s := range want {
		exp = append(exp, fmt.Sprintf("%s/%d", session, s))
	}
	deadline := time.After(10 * time.Second)
	for {
		if got := h.ranFor(session); slices.Equal(got, exp) {
			return
		} else if len(got) > len(exp) {
			t.Fatalf("session %s ran %v, want %v", session, got, exp)
		}
		select {
		case <-h.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("session %s ran %v, want %v", session, h.ranFor(session), exp)
		}
	}
}

func allPartitions() []int {
	var ps []int
	for p := range parley.Partitions {
		ps = append(ps, p)
	}
	return ps
}

func start(t *testing.T, h *handler, clk clock.Clock) *sessionq.Queues[*item] {
	q := sessionq.New[*item](h, clk, slog.New(slog.DiscardHandler), sessionq.Options{ScanInterval: 50 * time.Millisecond})
	t.Cleanup(func() { q.Stop(time.Second) })
	return q
}

func TestInOrderFastPath(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	var seqs []int64
	for s := int64(1); s <= 200; s++ {
		seqs = append(seqs, s)
	}
	for _, sess := range []string{"a", "b", "c"} {
		for _, it := range h.commit(sess, seqs...) {
			q.Notify(it, true)
		}
	}
	for _, sess := range []string{"a", "b", "c"} {
		h.waitRan(t, sess, seqs...)
	}
	if h.overlap {
		t.Error("two items of one session ran at once")
	}
}

func TestGapIsFilledFromTheDatabase(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	// Items 1 and 2 were committed by another process; this one hears only of 3.
	h.commit("s", 1, 2)
	q.Notify(h.commit("s", 3)[0], true)
	h.waitRan(t, "s", 1, 2, 3)
}

func TestRemoteNotificationIsFilled(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	its := h.commit("s", 1, 2)
	q.Notify(&item{id: its[1].id, session: "s", seq: 2}, false) // incomplete: only its place is known
	h.waitRan(t, "s", 1, 2)
}

func TestOutOfOrderNotifications(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	its := h.commit("s", 1, 2, 3, 4)
	for _, i := range []int{2, 0, 3, 1} {
		q.Notify(its[i], true)
	}
	h.waitRan(t, "s", 1, 2, 3, 4)
}

// A session waiting to retry its head holds only itself.
func TestRetryHoldsOnlyItsSession(t *testing.T) {
	h := newHandler()
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	var tries sync.Map
	h.run = func(it *item) time.Time {
		if it.session == "slow" && it.seq == 1 {
			if n, _ := tries.LoadOrStore(it.id, 0); n.(int) == 0 {
				tries.Store(it.id, 1)
				return clk.Now().Add(time.Hour)
			}
		}
		return time.Time{}
	}
	q := start(t, h, clk)
	q.Acquired(allPartitions())
	for _, it := range h.commit("slow", 1, 2) {
		q.Notify(it, true)
	}
	for _, it := range h.commit("fast", 1, 2, 3) {
		q.Notify(it, true)
	}
	h.waitRan(t, "fast", 1, 2, 3)
	time.Sleep(50 * time.Millisecond)
	if got := h.ranFor("slow"); len(got) != 0 {
		t.Fatalf("slow ran %v while its first item waits to be retried", got)
	}
	clk.Advance(time.Hour)
	h.waitRan(t, "slow", 1, 2)
}

// A replayed item (a number the session already passed) is run again.
func TestReplayedItemRuns(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	for _, it := range h.commit("s", 1, 2, 3) {
		q.Notify(it, true)
	}
	h.waitRan(t, "s", 1, 2, 3)
	q.Notify(h.commit("s", 2)[0], true)
	h.waitRan(t, "s", 1, 2, 3, 2)
}

func TestScanFindsWhatNobodyNotified(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	h.commit("s", 1, 2)
	q.Acquired(allPartitions()) // a new owner reads its partitions
	h.waitRan(t, "s", 1, 2)
	h.commit("s", 3) // committed by a process whose notification was lost
	h.waitRan(t, "s", 1, 2, 3)
}

func TestNotOwnedIsIgnored(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	p := parley.PartitionOf("s")
	var others []int
	for _, x := range allPartitions() {
		if x != p {
			others = append(others, x)
		}
	}
	q.Acquired(others)
	q.Notify(h.commit("s", 1)[0], true)
	time.Sleep(150 * time.Millisecond)
	if got := h.ranFor("s"); len(got) != 0 {
		t.Fatalf("ran %v of a partition it does not own", got)
	}
	q.Acquired([]int{p})
	h.waitRan(t, "s", 1)
}

// Released waits for the item being run, ends waits at once, and runs nothing more of the
// partition; what is left stays pending for the next owner.
func TestReleasedDrains(t *testing.T) {
	h := newHandler()
	entered, proceed := make(chan struct{}), make(chan struct{})
	h.run = func(it *item) time.Time {
		if it.seq == 1 {
			close(entered)
			<-proceed
		}
		return time.Time{}
	}
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	for _, it := range h.commit("s", 1, 2) {
		q.Notify(it, true)
	}
	<-entered
	released := make(chan struct{})
	go func() {
		q.Released([]int{parley.PartitionOf("s")})
		close(released)
	}()
	select {
	case <-released:
		t.Fatal("Released returned while an item of the partition was running")
	case <-time.After(100 * time.Millisecond):
	}
	close(proceed)
	<-released
	time.Sleep(100 * time.Millisecond)
	if got := h.ranFor("s"); !slices.Equal(got, []string{"s/1"}) {
		t.Fatalf("ran %v; after Released nothing more of the partition may run", got)
	}
	h.mu.Lock()
	n := len(h.pending["s"])
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d items pending, want item 2 left for the next owner", n)
	}
}

// Many sessions, items notified from many goroutines in any order, some complete, some not:
// each session runs its items exactly in order, never two at once.
func TestConcurrentNotifications(t *testing.T) {
	h := newHandler()
	q := start(t, h, clock.Real{})
	q.Acquired(allPartitions())
	var wg sync.WaitGroup
	const sessions, n = 50, 40
	for s := range sessions {
		sess := fmt.Sprintf("session-%d", s)
		wg.Go(func() {
			for i := int64(1); i <= n; i++ {
				it := h.commit(sess, i)[0]
				q.Notify(it, i%7 != 0) // every 7th arrives without its content, as from another process
			}
		})
	}
	wg.Wait()
	var want []int64
	for i := int64(1); i <= n; i++ {
		want = append(want, i)
	}
	for s := range sessions {
		h.waitRan(t, fmt.Sprintf("session-%d", s), want...)
	}
	if h.overlap {
		t.Error("two items of one session ran at once")
	}
}
