package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// TestServeAlone: the first server on a file is alone and forgets the leases left in it; a
// second beside it is not alone and forgets nothing; nor is a third started after the first
// closed while the second still serves; once all have closed, the next is alone again.
func TestServeAlone(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "parley.db")
	a := openPath(t, path, true)
	lease := func(s store.Store, node string) []int {
		t.Helper()
		var got []int
		err := s.Update(t.Context(), func(tx store.Tx) (err error) {
			got, err = tx.AcquirePartitions(node, 64, time.Now(), time.Now().Add(time.Hour))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := lease(a, "dead"); len(got) != 64 {
		t.Fatalf("the dead node leased %d partitions", len(got))
	}
	if alone, err := a.ServeAlone(t.Context()); !alone || err != nil {
		t.Fatalf("first server: alone %v, %v", alone, err)
	}
	if got := lease(a, "a"); len(got) != 64 {
		t.Fatalf("the first server leased %d partitions after forgetting the dead node's, want 64", len(got))
	}

	b := openPath(t, path, false)
	if alone, err := b.ServeAlone(t.Context()); alone || err != nil {
		t.Fatalf("second server beside the first: alone %v, %v", alone, err)
	}
	if got := lease(b, "b"); len(got) != 0 {
		t.Fatalf("the second server took %v of the first's leases", got)
	}

	// The first dies; the second still serves, so the next to start is not alone either.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c := openPath(t, path, false)
	if alone, err := c.ServeAlone(t.Context()); alone || err != nil {
		t.Fatalf("server started beside the second after the first closed: alone %v, %v", alone, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// Nobody serves: the next server is alone, and takes every lease at once.
	d := openPath(t, path, false)
	if alone, err := d.ServeAlone(t.Context()); !alone || err != nil {
		t.Fatalf("server after every other closed: alone %v, %v", alone, err)
	}
	if got := lease(d, "d"); len(got) != 64 {
		t.Fatalf("the lone server leased %d partitions, want all 64", len(got))
	}
}
