package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/parleyhq/parley/internal/loadtest"
)

const roleBareServer = "bare-server"

// ceilingBody is what the bare server answers: the size and shape of parley's answer to a
// message, {request_id, message_id}, so the clients do the same work reading it.
var ceilingBody = []byte(`{"request_id":"00000000-0000-4000-8000-000000000000","message_id":"00000000-0000-4000-8000-000000000000"}`)

// bareServer is the harness re-executed as the ceiling: a net/http server on loopback whose
// only handler reads the body and answers 202. It runs until SIGTERM or SIGINT.
func bareServer(stderr io.Writer) int {
	return serveRole(slog.New(slog.NewJSONHandler(stderr, nil)), "bare server", &loadtest.Sink{Body: ceilingBody})
}

// startBareServer starts the ceiling server as a separate process, as parley is one.
func startBareServer(logPath string) (*loadtest.Process, error) {
	return startRole("bare server", roleBareServer, logPath)
}

// serveRole is the body of a re-executed role (the bare server, the relay): it serves h on
// loopback until SIGTERM or SIGINT, and logs its address for startRole to read.
func serveRole(log *slog.Logger, name string, h http.Handler) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	url, done, err := loadtest.Serve(ctx, "127.0.0.1:0", h)
	if err != nil {
		log.Error(name, "err", err)
		return 1
	}
	log.Info("serving", "addr", url[len("http://"):])
	<-ctx.Done()
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(name, "err", err)
		return 1
	}
	return 0
}

// startRole re-executes the harness as role, with env added to its environment, and waits until
// it serves.
func startRole(name, role, logPath string, env ...string) (*loadtest.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return loadtest.Start(loadtest.Command{
		Name:  name,
		Path:  self,
		Env:   append(append(os.Environ(), roleEnv+"="+role), env...),
		Log:   logPath,
		Ready: loadtest.LogAddr("serving"),
	})
}
