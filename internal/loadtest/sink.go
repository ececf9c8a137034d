package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/webhook"
)

// Sink is the least an HTTP endpoint can do: read the whole body and answer. It is the bare
// server whose throughput is the machine's ceiling, and the webhook receiver of scenarios
// that measure deliveries: with a Secret it checks every signature as an integrator would.
type Sink struct {
	Status int    // answered to every request; 0 means 202
	Body   []byte // the JSON answered
	Secret string // when set, X-Moveo-Signature is checked and a bad one answers 401
	Limit  int64  // largest body read; 0 means 1 MiB
	// Observe, when set, is called with every body that passed the checks, on the request's
	// goroutine; it must be quick.
	Observe func(r *http.Request, body []byte)

	requests, badSignatures, bytes atomic.Int64
}

// ServeHTTP reads the body, checks it and answers.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limit := s.Limit
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.bytes.Add(int64(len(body)))
	if s.Secret != "" && !webhook.Verify(s.Secret, body, r.Header.Get(webhook.SignatureHeader)) {
		s.badSignatures.Add(1)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if s.Observe != nil {
		s.Observe(r, body)
	}
	status := s.Status
	if status == 0 {
		status = http.StatusAccepted
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(s.Body))}
	w.WriteHeader(status)
	w.Write(s.Body)
}

// SinkStats counts what a Sink received.
type SinkStats struct {
	Requests, BadSignatures, Bytes int64
}

// Stats returns what the sink received so far.
func (s *Sink) Stats() SinkStats {
	return SinkStats{Requests: s.requests.Load(), BadSignatures: s.badSignatures.Load(), Bytes: s.bytes.Load()}
}

// Serve serves h on a new loopback port until ctx ends, and returns the base URL. The server is
// configured like parley's (keep-alive, header timeout), so a comparison with parley is fair.
func Serve(ctx context.Context, addr string, h http.Handler) (url string, done <-chan error, err error) {
	if err := CheckLoopback(addr); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String(), errc, nil
}

// CheckLoopback refuses an address (host:port) that is not on loopback: load is only ever aimed
// at this machine.
func CheckLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("loadtest: address %q: %w", hostport, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("loadtest: %q is not a loopback address; load is only aimed at this machine", hostport)
	}
	return nil
}
