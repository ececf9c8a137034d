package app_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
)

// A server whose port is taken fails to start, and says so, instead of hanging in its own
// clean-up.
func TestRunFailsOnTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := config.Default()
	cfg.Addr = ln.Addr().String()
	cfg.DatabaseURL = "sqlite://" + filepath.Join(t.TempDir(), "parley.db")
	m := &app.Main{Config: cfg}
	errc := make(chan error, 1)
	go func() { errc <- m.Run(t.Context()) }()
	select {
	case err := <-errc:
		if err == nil {
			m.Close()
			t.Fatal("Run succeeded on a taken port")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after a failed Run: %v", err)
	}
}
