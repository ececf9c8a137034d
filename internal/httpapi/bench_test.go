package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/internal/metrics"
)

// BenchmarkPostMessage posts user messages through the real handler chain (request IDs,
// metrics, authentication, decoding, the lifecycle, the store) from many goroutines at once,
// as a busy API would, without the network: the load harness (cmd/parley-load) measures that.
// On SQLite the concurrent requests share commits through the one writer.
//
//	go test ./internal/httpapi -run '^$' -bench PostMessage -cpuprofile cpu.out
func BenchmarkPostMessage(b *testing.B) {
	for _, backend := range []apptest.Backend{apptest.SQLite, apptest.Postgres} {
		b.Run(string(backend), func(b *testing.B) {
			srv := apptest.Start(b, apptest.Options{NoBrain: true, Backend: backend})
			in := srv.NewIntegration(b, admin.IntegrationSpec{})
			sessions := make([]string, 1000)
			for i := range sessions {
				sessions[i] = in.NewSession()
			}
			log := apptest.Logger(b)
			rt := httpapi.NewRouter(log)
			srv.Main.API.Register(rt)
			h := httpapi.Observe(rt.Handler(), log, metrics.NewRegistry())
			prefix := "/v1/custom/" + in.ID + "/sessions/"
			auth := "apikey " + in.Key
			var n atomic.Int64
			b.SetParallelism(32) // requests waiting for a commit leave their CPU to others
			cpu0, cpuOK := loadtest.SelfCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"input":{"text":"benchmark message %d"}}`, i)
					r := httptest.NewRequest("POST", prefix+sessions[i%int64(len(sessions))]+"/messages", strings.NewReader(body))
					r.Header.Set("Authorization", auth)
					r.Header.Set("Content-Type", "application/json")
					r.RemoteAddr = "127.0.0.1:40000"
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusAccepted {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
			b.StopTimer()
			// CPU time per message (this process's, all goroutines): steadier than ns/op when
			// the machine is shared, and on PostgreSQL it leaves out the database's own work.
			if cpu1, ok := loadtest.SelfCPU(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
