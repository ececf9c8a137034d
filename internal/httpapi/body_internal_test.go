package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/metrics"
)

// TestBodyTimeout checks, through Observe as the server runs it, that a client which sends its
// headers and then trickles its body is answered once bodyTimeout has passed, whether the
// handler reads the body (400) or answers without it (here 401, as to a wrong key), while a body
// that arrived in time leaves no deadline behind: a handler that runs longer than bodyTimeout
// keeps its request and answers.
func TestBodyTimeout(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 300 * time.Millisecond
	t.Cleanup(func() { bodyTimeout = old })

	log := slog.New(slog.DiscardHandler)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /read", func(w http.ResponseWriter, r *http.Request) {
		b, err := ReadBody(w, r, 1<<20)
		if err != nil {
			WriteError(w, r, log, err)
			return
		}
		select {
		case <-time.After(3 * bodyTimeout): // the handler's own work, longer than the body's time
		case <-r.Context().Done():
			t.Errorf("the request ended while its handler ran: %v", context.Cause(r.Context()))
			return
		}
		fmt.Fprintf(w, "read %d bytes", len(b))
	})
	mux.HandleFunc("POST /refuse", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, parley.Errorf(parley.EUnauthorized, "no"))
	})
	srv := httptest.NewServer(Observe(mux, log, metrics.NewRegistry()))
	defer srv.Close()

	// send writes the headers, then the body's parts with a pause before each, and returns the
	// answer and how many parts had been sent when it came.
	send := func(t *testing.T, path string, parts []string, pause time.Duration) (*http.Response, int) {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			path, len(strings.Join(parts, "")))
		var sent atomic.Int64
		go func() { // the answer may come before the body is all sent
			for _, part := range parts {
				time.Sleep(pause)
				if _, err := fmt.Fprint(c, part); err != nil {
					return // the server hung up
				}
				sent.Add(1)
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, int(sent.Load())
	}
	trickle := strings.Split("0123456789", "") // a part every 200 ms: 2 s for the whole

	t.Run("trickled, read", func(t *testing.T) {
		resp, sent := send(t, "/read", trickle, 200*time.Millisecond)
		defer resp.Body.Close()
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"error_message"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusBadRequest ||
			e.Code != parley.EInvalid || !strings.Contains(e.Message, "did not arrive") {
			t.Errorf("answer %d %+v (%v)", resp.StatusCode, e, err)
		}
		if sent == len(trickle) || !resp.Close {
			t.Errorf("answered after %d of %d parts, closing %v: the deadline did not cut the body", sent, len(trickle), resp.Close)
		}
	})
	t.Run("trickled, not read", func(t *testing.T) {
		resp, sent := send(t, "/refuse", trickle, 200*time.Millisecond)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || sent == len(trickle) {
			t.Errorf("answer %d after %d of %d parts: the deadline did not cut the body", resp.StatusCode, sent, len(trickle))
		}
	})
	t.Run("in time", func(t *testing.T) {
		resp, _ := send(t, "/read", []string{"{}"}, 0)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})
}
