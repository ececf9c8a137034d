package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// BenchmarkPostUserMessage is the store's side of POST .../messages: many goroutines each record
// a user message in their own Update, and the writer commits them in groups, fsync included.
// Everything the writer does is serial, so its cost per message bounds the API's throughput.
//
//	go test ./internal/store/sqlite -run '^$' -bench PostUserMessage -cpuprofile cpu.out
func BenchmarkPostUserMessage(b *testing.B) {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "parley.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	engine := chat.New(nil)
	in := &parley.Integration{ID: parley.NewID(), Name: "bench", WebhookURL: "http://127.0.0.1:9/hook",
		CreatedAt: engine.Now(), UpdatedAt: engine.Now()}
	if err := in.Normalize(); err != nil {
		b.Fatal(err)
	}
	sessions := make([]string, 1000)
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		for i := range sessions {
			sess, err := engine.CreateSession(tx, in, chat.NewSession{})
			if err != nil {
				return err
			}
			sessions[i] = sess.ID
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(32)
	cpu0, cpuOK := loadtest.SelfCPU()
	io0 := selfIO()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sid := sessions[n.Add(1)%int64(len(sessions))]
			err := s.Update(ctx, func(tx store.Tx) error {
				_, err := engine.PostUserMessage(tx, in, sid, chat.UserMessage{Text: "a benchmark message of some length"})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	io1 := selfIO()
	for k, v := range io1 {
		b.ReportMetric(float64(v-io0[k])/float64(b.N), k+"/op")
	}
	if cpu1, ok := loadtest.SelfCPU(); ok && cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// selfIO reads what this process wrote through system calls (Linux only; elsewhere nothing):
// bytes (the WAL's frames, the checkpoints' pages) and calls. Pages a batch dirties are what
// its COMMIT writes, so these say what a change to the schema or the batching costs.
func selfIO() map[string]int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil
	}
	names := map[string]string{"wchar": "written-B", "syscw": "writes"}
	m := map[string]int64{}
	for l := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(strings.TrimSpace(l), ": ")
		if name, ok := names[k]; ok {
			m[name], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return m
}
