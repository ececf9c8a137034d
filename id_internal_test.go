package parley

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestNewIDTime: the first 48 bits are the milliseconds given, also across a carry of the low
// 16 bits, and IDs made a millisecond apart sort in time order.
func TestNewIDTime(t *testing.T) {
	stamp := func(id string) int64 {
		b, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")[:12])
		if err != nil {
			t.Fatal(err)
		}
		var ms int64
		for _, c := range b {
			ms = ms<<8 | int64(c)
		}
		return ms
	}
	prev := ""
	for _, ms := range []int64{1_700_000_000_000 | 0xfffe, 1_700_000_000_000 | 0xffff, (1_700_000_000_000 | 0xffff) + 1} {
		id := newIDAt(ms)
		if got := stamp(id); got != ms {
			t.Fatalf("newIDAt(%d) = %s, which says %d", ms, id, got)
		}
		if id <= prev {
			t.Fatalf("%s (at %d) does not sort after %s", id, ms, prev)
		}
		prev = id
	}
}
