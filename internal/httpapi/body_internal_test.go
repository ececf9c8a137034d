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
	"testing"
	"time"

	"github.com/parleyhq/parley"
)

// TestReadBodyTimeout checks a client that sends its headers and then trickles its body is
// answered 400 once bodyTimeout has passed, while a body that arrived in time leaves no deadline
// behind: a handler that runs longer than bodyTimeout keeps its request and answers.
func TestReadBodyTimeout(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 300 * time.Millisecond
	t.Cleanup(func() { bodyTimeout = old })

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := ReadBody(w, r, 1<<20)
		if err != nil {
			WriteError(w, r, slog.New(slog.DiscardHandler), err)
			return
		}
		select {
		case <-time.After(3 * bodyTimeout): // the handler's own work, longer than the body's time
		case <-r.Context().Done():
			t.Errorf("the request ended while its handler ran: %v", context.Cause(r.Context()))
			return
		}
		fmt.Fprintf(w, "read %d bytes", len(b))
	}))
	defer srv.Close()

	send := func(t *testing.T, head string, body []string, pause time.Duration) (*http.Response, time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprint(c, head)
		go func() { // the answer may come before the body is all sent
			for _, part := range body {
				time.Sleep(pause)
				if _, err := fmt.Fprint(c, part); err != nil {
					return // the server hung up
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp, time.Since(start)
	}

	t.Run("trickled", func(t *testing.T) {
		// 10 bytes announced, one sent every 200 ms: the whole would take 2 s.
		head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n"
		resp, took := send(t, head, strings.Split("0123456789", ""), 200*time.Millisecond)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
		var e struct {
			Code    string `json:"error_code"`
			Message string `json:"error_message"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != parley.EInvalid || !strings.Contains(e.Message, "did not arrive") {
			t.Errorf("answer %+v (%v)", e, err)
		}
		if took > 1500*time.Millisecond {
			t.Errorf("answered after %v: the body's deadline did not cut it", took)
		}
	})
	t.Run("in time", func(t *testing.T) {
		head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
		resp, _ := send(t, head, []string{"{}"}, 0)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})
}
