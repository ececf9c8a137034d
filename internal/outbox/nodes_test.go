package outbox_test

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// TestThreeNodesOnePostgres: three parley processes share one PostgreSQL database behind a
// (random) load balancer. Every event is delivered, each session's in order, while one of them
// stops half-way and the others take its partitions over.
func TestThreeNodesOnePostgres(t *testing.T) {
	url := apptest.NewDatabase(t, apptest.Postgres)
	nodes := []*apptest.Server{
		apptest.Start(t, apptest.Options{DatabaseURL: url}),
		apptest.Start(t, apptest.Options{DatabaseURL: url}),
		apptest.Start(t, apptest.Options{DatabaseURL: url}),
	}
	in := nodes[0].NewIntegration(t, admin.IntegrationSpec{})
	through := in.On
	sessions := make([]string, 60)
	for i := range sessions {
		sessions[i] = through(nodes[i%3]).NewSession()
	}
	const n = 10
	var wg sync.WaitGroup
	var stopOnce sync.Once
	for i, sid := range sessions {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range n {
				if i == 0 && j == n/2 {
					stopOnce.Do(func() { nodes[2].Main.Close() })
				}
				op := "close"
				if j%2 == 1 {
					op = "reopen"
				}
				for {
					node := nodes[rng.IntN(3)]
					if node == nodes[2] && j >= n/2 {
						continue // the stopped node takes no more requests
					}
					r := through(node).Call("POST", "/sessions/"+sid+"/conversation/"+op, nil)
					if r.Status == http.StatusOK {
						break
					}
					if node != nodes[2] {
						t.Errorf("node answered %d: %s", r.Status, r.Body)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	ds := in.Receiver.Wait(60*time.Second, "every event", func(ds []*apptest.Delivery) bool {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.RequestID()] = true
		}
		return len(seen) == len(sessions)*n
	})
	checkOrderByAttempts(t, ds, sessions, n)
	dup := len(ds) - len(sessions)*n
	t.Logf("%d events over 3 nodes, one stopped half-way: %d deliveries (%d repeated at the handover)", len(sessions)*n, len(ds), dup)
}
