// Package outbox delivers webhook events (SPEC §3). Every event was written to the outbox table
// in the transaction of the change that caused it; the Dispatcher sends each to its
// integration's webhook_url, signed, at least once, in the order of its session, recording
// every attempt, retrying what may succeed later and keeping what failed for the operator to
// replay.
//
// Per session, the next event is not sent before the previous one is delivered or has failed
// and that outcome is committed: a crash can repeat an event (receivers dedupe on request_id)
// but never reorder a session. Integrations do not wait for each other: each has its own cap on
// deliveries in flight, below the shared cap, so one slow endpoint cannot take the pool.
//
// It must never send an event of a partition this process does not own, nor drop an event it
// could not record: what is not recorded as delivered is sent again.
package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/sessionq"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/webhook"
)

// Config tunes the dispatcher. Zero fields take the defaults.
type Config struct {
	MaxInFlight int           // deliveries in flight across all integrations (default 1024)
	Grace       time.Duration // how long Stop lets in-flight deliveries finish (default 30s)
	Queues      sessionq.Options
}

// Dispatcher delivers the outbox of the partitions this process owns.
type Dispatcher struct {
	store  store.Store
	clock  clock.Clock
	log    *slog.Logger
	cfg    Config
	client *http.Client
	queues *sessionq.Queues[*parley.Event]
	global chan struct{}

	mu           sync.Mutex
	integrations map[string]*integration

	delivered *metrics.CounterVec
	attempts  *metrics.CounterVec
	latency   *metrics.HistogramVec
}

// integration is what the dispatcher keeps of an integration: its settings, re-read now and
// then so an operator's change applies within seconds, and its cap on deliveries in flight.
type integration struct {
	in     *parley.Integration
	loaded time.Time
	slots  chan struct{}
}

// integrationTTL is how long an integration's settings are used before they are read again.
const integrationTTL = 2 * time.Second

// New returns a Dispatcher. It delivers nothing until it is told it owns partitions
// (Acquired) and sees commits (Start registers it as a store watcher).
func New(st store.Store, clk clock.Clock, log *slog.Logger, reg *metrics.Registry, cfg Config) *Dispatcher {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	d := &Dispatcher{
		store: st, clock: clk, log: log, cfg: cfg,
		global:       make(chan struct{}, cfg.MaxInFlight),
		integrations: map[string]*integration{},
		client: &http.Client{
			// Redirects are not followed: a 3xx is an answer, and it is not a 2xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:               nil, // webhooks go where the operator said, not via the environment's proxy
				DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:        4096,
				MaxIdleConnsPerHost: 512,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second,
				ForceAttemptHTTP2:   true,
			},
		},
		delivered: reg.NewCounterVec("parley_webhook_events_total", "Webhook events finished, by outcome (delivered, failed).", "outcome"),
		attempts:  reg.NewCounterVec("parley_webhook_attempts_total", "Webhook delivery attempts, by result (2xx, 4xx, 5xx, error).", "result"),
		latency:   reg.NewHistogramVec("parley_webhook_delivery_seconds", "From an event's commit to its delivery.", "outcome"),
	}
	d.queues = sessionq.New[*parley.Event](d, clk, log, cfg.Queues)
	reg.NewGauge("parley_webhook_sessions_pending", "Sessions with webhook events waiting in this process.", func() float64 {
		_, _, actors := d.queues.Stats()
		return float64(actors)
	})
	return d
}

// Start makes the dispatcher see every commit's new events.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.store.Watch(d.changed)
	return nil
}

// Stop lets in-flight deliveries finish (within the grace period) and leaves the rest pending
// in the database for whoever owns their partitions next.
func (d *Dispatcher) Stop() { d.queues.Stop(d.cfg.Grace) }

// Acquired and Released make the dispatcher a lease.Owner.
func (d *Dispatcher) Acquired(partitions []int) { d.queues.Acquired(partitions) }
func (d *Dispatcher) Released(partitions []int) { d.queues.Released(partitions) }

// Rescan makes the dispatcher look for pending events in the database now (after an operator
// replayed some, say).
func (d *Dispatcher) Rescan() { d.queues.Rescan() }

func (d *Dispatcher) changed(c *store.Change) {
	if c.Rescan {
		d.queues.Rescan()
	}
	for _, e := range c.Events {
		d.queues.Notify(e, !c.Remote && e.Body != nil)
	}
}

// Key, Pending, PendingSessions and Run make the dispatcher a sessionq.Handler.

func (d *Dispatcher) Key(e *parley.Event) sessionq.Key {
	return sessionq.Key{ID: e.ID, Session: e.SessionID, Seq: e.SessionSeq, Partition: e.Partition}
}

func (d *Dispatcher) Pending(ctx context.Context, session string) ([]*parley.Event, error) {
	var events []*parley.Event
	err := d.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		events, err = tx.PendingEvents(session)
		return err
	})
	return events, err
}

func (d *Dispatcher) PendingSessions(ctx context.Context, partitions []int) ([]string, error) {
	var ids []string
	err := d.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		ids, err = tx.PendingEventSessions(partitions, 1000)
		return err
	})
	return ids, err
}

// Run delivers one event once and records the attempt. It returns when to try again, or zero
// once the event is delivered or has failed for good.
func (d *Dispatcher) Run(ctx context.Context, e *parley.Event) time.Time {
	in, err := d.integration(ctx, e.IntegrationID)
	if err != nil {
		d.log.Warn("outbox: reading integration failed", "integration_id", e.IntegrationID, "err", err)
		return d.clock.Now().Add(time.Second)
	}
	select {
	case in.slots <- struct{}{}:
	case <-ctx.Done():
		return d.clock.Now()
	}
	select {
	case d.global <- struct{}{}:
	case <-ctx.Done():
		<-in.slots
		return d.clock.Now()
	}
	a, result := d.send(ctx, in.in, e)
	<-d.global
	<-in.slots

	next := d.apply(in.in.Delivery, e, a, result)
	for {
		err := d.store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error { return tx.RecordAttempt(e) })
		if err == nil {
			break
		}
		// Not recorded is not delivered: hold the session until the record is safe, or until
		// shutdown (the event stays pending and is sent again).
		d.log.Error("outbox: recording a delivery attempt failed; retrying", "event_id", e.ID, "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return d.clock.Now()
		}
	}
	d.attempts.Inc(result.class)
	if e.State != parley.DeliveryPending {
		d.delivered.Inc(e.State)
		d.latency.Observe(d.clock.Now().Sub(e.CreatedAt), e.State)
		return time.Time{}
	}
	return next
}

// outcome classifies an attempt's answer (SPEC §3).
type outcome struct {
	class      string        // for metrics: 2xx, 3xx, 4xx, 5xx, error
	retry      bool          // worth trying again
	retryAfter time.Duration // the receiver asked to wait this long (429, 503)
}

// send makes one attempt.
func (d *Dispatcher) send(ctx context.Context, in *parley.Integration, e *parley.Event) (parley.Attempt, outcome) {
	start := time.Now() // durations are real time, whatever clock schedules the retries
	a := parley.Attempt{At: d.clock.Now().UnixMilli()}
	ctx, cancel := context.WithTimeout(ctx, in.Delivery.Timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.WebhookURL, bytes.NewReader(e.Body))
	if err != nil {
		a.Error = "invalid webhook_url: " + err.Error()
		return a, outcome{class: "error"}
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "parley-webhooks/1")
	if in.WebhookSecret != "" {
		h.Set(webhook.SignatureHeader, webhook.Sign(in.WebhookSecret, e.Body))
	}
	h.Set(webhook.EventHeader, e.Type)
	h.Set(webhook.RequestIDHeader, e.ID)
	h.Set(webhook.SessionIDHeader, e.SessionID)
	h.Set(webhook.AttemptHeader, strconv.Itoa(e.Attempts+1))
	resp, err := d.client.Do(req)
	a.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		a.Error = describe(err, ctx)
		return a, outcome{class: "error", retry: true}
	}
	// Drain a little of the answer so the connection can be reused; its content is not used.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.Status = resp.StatusCode
	o := outcome{class: strconv.Itoa(resp.StatusCode/100) + "xx"}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
	case c == http.StatusRequestTimeout, c >= 500:
		o.retry = true
	case c == http.StatusTooManyRequests:
		o.retry = true
	default:
		a.Error = fmt.Sprintf("HTTP %d is not retried", c)
	}
	if o.retry && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		o.retryAfter = retryAfter(resp.Header.Get("Retry-After"), d.clock.Now())
	}
	if o.retry && a.Error == "" {
		a.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
	}
	return a, o
}

// apply records attempt a on e and decides what follows. It returns when to try again (zero
// when the event is finished).
func (d *Dispatcher) apply(p parley.DeliveryPolicy, e *parley.Event, a parley.Attempt, o outcome) time.Time {
	now := d.clock.Now()
	e.Attempts++
	e.AttemptLog = append(e.AttemptLog, a)
	e.LastError = a.Error
	delays := p.RetryDelays()
	switch {
	case a.Error == "" && a.Status >= 200 && a.Status < 300:
		e.State, e.FinishedAt = parley.DeliveryDone, now
		return time.Time{}
	case o.retry && e.Attempts-1 < len(delays):
		wait := delays[e.Attempts-1]
		if o.retryAfter > 0 {
			wait = min(o.retryAfter, p.MaxRetryAfter())
		}
		e.NextAttemptAt = now.Add(wait)
		return e.NextAttemptAt
	default:
		e.State, e.FinishedAt = parley.DeliveryFailed, now
		return time.Time{}
	}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// describe names a transport error for the attempt log, without the URL (it may hold secrets).
func describe(err error, ctx context.Context) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "cancelled by shutdown"
	}
	if op, ok := errors.AsType[*net.OpError](err); ok {
		return op.Op + ": " + op.Err.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without an answer"
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

// integration returns an integration's settings and delivery slots, read again when stale.
func (d *Dispatcher) integration(ctx context.Context, id string) (*integration, error) {
	d.mu.Lock()
	cur := d.integrations[id]
	d.mu.Unlock()
	if cur != nil && time.Since(cur.loaded) < integrationTTL {
		return cur, nil
	}
	var in *parley.Integration
	err := d.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		in, err = tx.Integration(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := &integration{in: in, loaded: time.Now()}
	// Compare with the entry now in the map, not the one seen before reading: many actors load
	// an integration at once, and they must all share one set of slots.
	if cur := d.integrations[id]; cur != nil && cap(cur.slots) == in.Delivery.Concurrency() {
		next.slots = cur.slots
	} else {
		next.slots = make(chan struct{}, in.Delivery.Concurrency())
	}
	d.integrations[id] = next
	return next, nil
}
