package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/metrics"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	integrationKey
)

// RequestID returns the ID of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flushing for streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bodyTimeout bounds how long a client may take to send a request's body once its headers are
// in, so that one trickling bytes cannot hold a request open: whether the handler reads the body
// (ReadBody answers 400) or not (net/http reads it before answering, to keep the connection). The
// server has no ReadTimeout: it would also end the console's event streams, which read nothing
// for hours. net/http lifts the deadline when the body ends; an upload sets a longer one.
var bodyTimeout = 30 * time.Second

// Observe gives every request an ID (returned as X-Request-Id), bounds the time its body may
// take, recovers panics into a 500 in the error shape, counts requests and their durations per
// route, and logs each request at debug level. Errors are logged where they are answered
// (WriteError).
func Observe(next http.Handler, log *slog.Logger, reg *metrics.Registry) http.Handler {
	requests := reg.NewCounterVec("parley_http_requests_total", "HTTP requests answered, by route and status.", "route", "code")
	durations := reg.NewHistogramVec("parley_http_request_duration_seconds", "Time to answer HTTP requests, by route.", "route")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := parley.NewRandomID()
		w.Header().Set("X-Request-Id", id)
		if r.ContentLength != 0 { // a body, announced or chunked
			http.NewResponseController(w).SetReadDeadline(start.Add(bodyTimeout))
		}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // the server's own way to abort a response
				}
				err := fmt.Errorf("panic: %v\n%s", p, debug.Stack())
				if sw.status == 0 {
					WriteError(sw, r, log, err)
				} else {
					log.Error("panic after the response started", "request_id", id, "err", err)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			requests.Inc(route, statusText(sw.status))
			durations.Observe(elapsed, route)
			if log.Enabled(r.Context(), slog.LevelDebug) {
				log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("request_id", id),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Int("status", sw.status), slog.Duration("duration", elapsed))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

var statusTexts = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = fmt.Sprint(c)
	}
	return m
}()

func statusText(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return fmt.Sprint(code)
}
