package expiry_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/store"
)

// BenchmarkSweep measures one sweep that expires 100 sessions, with 0, 100k and 1M other
// sessions stored and not due. The cost must follow the 100, not the idle ones: the sweep
// reads through the partial index on the deadline of active sessions.
//
//	go test -run XXX -bench Sweep -benchtime 20x ./internal/expiry/
func BenchmarkSweep(b *testing.B) {
	for _, backend := range []apptest.Backend{apptest.SQLite, apptest.Postgres} {
		for _, idle := range []int{0, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s/idle=%d", backend, idle), func(b *testing.B) {
				now := time.UnixMilli(1_800_000_000_000)
				clk := clock.NewFake(now)
				srv := apptest.Start(b, apptest.Options{Backend: backend, Clock: clk})
				srv.Main.Expiry.Stop()
				in := srv.NewIntegration(b, admin.IntegrationSpec{})
				seed(b, srv, in.ID, idle, now.Add(24*time.Hour))
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					seed(b, srv, in.ID, 100, now.Add(-time.Second))
					b.StartTimer()
					n, err := srv.Main.Expiry.Sweep(b.Context())
					if err != nil || n != 100 {
						b.Fatalf("swept %d, %v", n, err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/100, "µs/session")
			})
		}
	}
}

// seed stores n active sessions of the integration due at deadline, straight into the store.
func seed(b *testing.B, srv *apptest.Server, integrationID string, n int, deadline time.Time) {
	const batch = 5000
	for i := 0; i < n; i += batch {
		err := srv.Main.DB.Update(b.Context(), func(tx store.Tx) error {
			for range min(batch, n-i) {
				s := &parley.Session{ID: parley.NewID(), IntegrationID: integrationID, Status: parley.SessionActive,
					Context: []byte(`{}`), CreatedAt: deadline, LastActivityAt: deadline, ExpiresAt: deadline}
				s.Partition = parley.PartitionOf(s.ID)
				c := &parley.Conversation{ID: parley.NewID(), SessionID: s.ID, IntegrationID: integrationID,
					Status: parley.ConversationOpen, HandledBy: parley.HandledByBrain, CreatedAt: deadline, UpdatedAt: deadline}
				s.ConversationID = c.ID
				if err := tx.CreateSession(s); err != nil {
					return err
				}
				if err := tx.CreateConversation(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
