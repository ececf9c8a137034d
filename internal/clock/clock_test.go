package clock_test

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/clock"
)

func TestFakeAfter(t *testing.T) {
	f := clock.NewFake(time.Unix(0, 0))
	c := f.After(time.Second)
	f.Advance(999 * time.Millisecond)
	select {
	case <-c:
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Millisecond)
	select {
	case got := <-c:
		if !got.Equal(time.Unix(1, 0)) {
			t.Errorf("fired at %v", got)
		}
	default:
		t.Fatal("did not fire when due")
	}
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) must fire at once")
	}
}

// A tick that comes while the loop is busy waits for it; ticks that come while one waits are
// folded into it, as with time.Ticker.
func TestFakeTickerKeepsOneTick(t *testing.T) {
	f := clock.NewFake(time.Unix(0, 0))
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	f.Advance(500 * time.Millisecond)
	select {
	case <-tk.C():
		t.Fatal("ticked early")
	default:
	}
	f.Advance(3 * time.Second) // three periods pass while nobody reads
	<-tk.C()
	select {
	case <-tk.C():
		t.Fatal("more than one tick kept")
	default:
	}
	f.Advance(time.Second)
	select {
	case <-tk.C():
	default:
		t.Fatal("no tick after the next period")
	}
	tk.Stop()
	f.Advance(time.Hour)
	select {
	case <-tk.C():
		t.Fatal("ticked after Stop")
	default:
	}
}
