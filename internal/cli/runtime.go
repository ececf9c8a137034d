package cli

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// serverGCPercent is the collector's target in a server. A server's live heap is small (tens of
// MB) beside what it allocates (~70 MB/s at 15,000 messages/s), so at Go's default of 100 the
// collector ran several times a second; at 400 the heap may grow to five times what is live.
// Measured with parley-load messages: +8-10% throughput.
const serverGCPercent = 400

// tuneRuntime sets the Go runtime for a server, where the process's environment does not (GOGC,
// GOMAXPROCS: the runtime reads the real environment, not the command's), and logs what it set.
// A process sets it once: tests serve many times.
//
// On SQLite, the writer and the syncer spend most of their time in C calls and fsync, and each
// holds its P (the runtime's right to run Go code) until sysmon takes it back, 20 µs or more
// later; with one P per core the HTTP handlers then wait for a P while a core is free. One P
// more than the cores keeps them running. Measured with parley-load messages: +8%. Only where
// the runtime's default is every CPU: under a CPU quota (a container's limit) the default is
// already the quota rounded up, and one more P would only be throttled.
func tuneRuntime(sqlite bool, log *slog.Logger) {
	tuned.Do(func() {
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(serverGCPercent)
			log.Info("runtime: GOGC set", "gogc", serverGCPercent)
		}
		if sqlite && os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == runtime.NumCPU() {
			n := runtime.GOMAXPROCS(0) + 1
			runtime.GOMAXPROCS(n)
			log.Info("runtime: GOMAXPROCS set to the CPUs available plus one, for SQLite's C calls", "gomaxprocs", n)
		}
	})
}

var tuned sync.Once
