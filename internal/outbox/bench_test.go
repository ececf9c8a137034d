package outbox_test

import (
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/store"
)

// BenchmarkDeliver measures delivery throughput to a fast receiver on loopback: events are
// committed in batches of 500 over 1,000 sessions, as fast as the store takes them, and the
// clock runs until the receiver has acknowledged every one.
func BenchmarkDeliver(b *testing.B) {
	for _, backend := range []apptest.Backend{apptest.SQLite, apptest.Postgres} {
		b.Run(string(backend), func(b *testing.B) {
			var got atomic.Int64
			done := make(chan struct{})
			want := int64(b.N)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			rcv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got.Add(1) == want {
					close(done)
				}
			})}
			go rcv.Serve(ln)
			defer rcv.Close()

			srv := apptest.Start(b, apptest.Options{Backend: backend})
			url := "http://" + ln.Addr().String() + "/hook"
			secret := "s"
			in, _, err := srv.Admin.CreateIntegration(b.Context(), admin.IntegrationSpec{WebhookURL: &url, WebhookSecret: &secret})
			if err != nil {
				b.Fatal(err)
			}
			sessions := make([]*parley.Session, 1000)
			for i := range sessions {
				sessions[i] = &parley.Session{ID: parley.NewID(), Context: []byte(`{"user":{"user_id":"u"}}`)}
				sessions[i].Partition = parley.PartitionOf(sessions[i].ID)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for i := 0; i < b.N; {
				n := min(500, b.N-i)
				err := srv.Main.DB.Update(b.Context(), func(tx store.Tx) error {
					for j := range n {
						s := sessions[(i+j)%len(sessions)]
						e := parley.NewEvent(in, s, parley.EventConversationReopened, time.Now(), parley.EventFields{Status: "open"})
						if err := tx.InsertEvent(e); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				i += n
			}
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("delivered %d of %d", got.Load(), want)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			// CPU time per event (this process: store, dispatcher and receiver together) is what
			// a busy machine distorts least.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
