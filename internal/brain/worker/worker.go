// Package worker runs the brains (SPEC §6). Every user message in a brain-handled conversation
// left a brain job in the transaction that stored it; the Worker takes the jobs of the
// partitions this process owns, asks the integration's brain, and commits the answer (the
// brain's message, its message:brain_send, any context change, handover or resolve) with the
// job's removal in one transaction.
//
// Jobs of a session are answered one at a time in the order of their messages; sessions do not
// wait for each other. A brain that fails or runs out of time gets the configured fallback
// reply sent instead: never silence, never a stuck session. It must never answer a job of a
// partition this process does not own, nor answer a conversation the brain no longer handles.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/sessionq"
	"github.com/parleyhq/parley/internal/store"
)

// Options tune the worker. Zero fields take the defaults.
type Options struct {
	MaxInFlight int           // brain calls in flight across all sessions (default 1024)
	Grace       time.Duration // how long Stop lets replies in flight finish (default 30s)
	Queues      sessionq.Options
}

// Worker answers the brain jobs of the partitions this process owns.
type Worker struct {
	store  store.Store
	chat   *chat.Engine
	clock  clock.Clock
	log    *slog.Logger
	opt    Options
	brains *brains
	queues *sessionq.Queues[*parley.BrainJob]
	slots  chan struct{}

	replies *metrics.CounterVec
	latency *metrics.HistogramVec
}

// New returns a Worker. It answers nothing until it owns partitions (Acquired) and sees
// commits (Start).
func New(st store.Store, engine *chat.Engine, clk clock.Clock, log *slog.Logger, reg *metrics.Registry, opt Options) *Worker {
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 1024
	}
	if opt.Grace <= 0 {
		opt.Grace = 30 * time.Second
	}
	client := &http.Client{
		// A webhook or model answers; it does not send parley elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment, // a hosted model may sit behind the operator's proxy
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
	}
	w := &Worker{
		store: st, chat: engine, clock: clk, log: log, opt: opt,
		brains: newBrains(log, client),
		slots:  make(chan struct{}, opt.MaxInFlight),
		replies: reg.NewCounterVec("parley_brain_replies_total",
			"Brain jobs finished, by outcome (answered, fallback, dropped).", "outcome"),
		latency: reg.NewHistogramVec("parley_brain_reply_seconds",
			"From a user message's commit to its brain reply's commit.", "outcome"),
	}
	w.queues = sessionq.New[*parley.BrainJob](w, clk, log, opt.Queues)
	return w
}

// Start makes the worker see every commit's new jobs.
func (w *Worker) Start(ctx context.Context) error {
	w.store.Watch(w.changed)
	return nil
}

// Stop lets replies in flight finish (within the grace period) and leaves the other jobs in
// the database for whoever owns their partitions next.
func (w *Worker) Stop() { w.queues.Stop(w.opt.Grace) }

// Acquired and Released make the worker a lease.Owner.
func (w *Worker) Acquired(partitions []int) { w.queues.Acquired(partitions) }
func (w *Worker) Released(partitions []int) { w.queues.Released(partitions) }

func (w *Worker) changed(c *store.Change) {
	if c.Rescan {
		w.queues.Rescan()
	}
	for _, j := range c.Jobs {
		w.queues.Notify(j, !c.Remote && j.MessageID != "")
	}
}

// Key, Pending, PendingSessions and Run make the worker a sessionq.Handler.

func (w *Worker) Key(j *parley.BrainJob) sessionq.Key {
	return sessionq.Key{ID: strconv.FormatInt(j.Seq, 10), Session: j.SessionID, Seq: j.SessionSeq, Partition: j.Partition}
}

func (w *Worker) Pending(ctx context.Context, session string) ([]*parley.BrainJob, error) {
	var jobs []*parley.BrainJob
	err := w.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		jobs, err = tx.PendingJobs(session)
		return err
	})
	return jobs, err
}

func (w *Worker) PendingSessions(ctx context.Context, partitions []int) ([]string, error) {
	var ids []string
	err := w.store.View(ctx, func(tx store.ReadTx) error {
		var err error
		ids, err = tx.PendingJobSessions(partitions, 1000)
		return err
	})
	return ids, err
}

// Run answers one job. It returns zero once the job is answered or dropped, or when to try
// again after the database failed.
func (w *Worker) Run(ctx context.Context, job *parley.BrainJob) time.Time {
	if in := w.brains.integration(job.IntegrationID); in != nil {
		if b, cfg := w.brains.get(in); immediate(b) {
			return w.runImmediate(ctx, job, in, b, cfg)
		}
	}
	req, in, err := w.request(ctx, job)
	if err != nil {
		w.log.Warn("brain: reading a job's message failed; retrying", "session_id", job.SessionID, "err", err)
		return w.clock.Now().Add(time.Second)
	}
	if req == nil {
		// Nothing to answer any more (an agent took the conversation, it was handed over or
		// resolved, the session ended): drop the job.
		if err := w.store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error { return w.chat.DropBrainJob(tx, job) }); err != nil {
			w.log.Warn("brain: dropping a job failed; retrying", "session_id", job.SessionID, "err", err)
			return w.clock.Now().Add(time.Second)
		}
		w.replies.Inc("dropped")
		return time.Time{}
	}

	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return w.clock.Now() // shutting down: the job stays for the next owner
	}
	reply, outcome := w.ask(ctx, in, req)
	<-w.slots
	if ctx.Err() != nil && outcome == "fallback" {
		// The answer was cut short by shutdown, not by the brain: leave the job to be asked
		// again rather than send an apology for parley's own restart.
		return w.clock.Now()
	}

	encoded := encode(reply)
	for {
		var m *parley.Message
		err := w.store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
			var err error
			m, err = w.chat.CommitBrainReply(tx, in, job, encoded)
			return err
		})
		switch {
		case err == nil && m == nil:
			outcome = "dropped"
		case parley.IsCode(err, parley.ENotFound):
			outcome = "dropped" // answered by another process that held the partition before
		case err != nil:
			// The brain's answer is kept and committing retried, so a webhook brain is not
			// asked twice for one message; on shutdown the job stays and is asked again.
			w.log.Error("brain: committing a reply failed; retrying", "session_id", job.SessionID, "err", err)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
				return w.clock.Now()
			}
		}
		break
	}
	w.replies.Inc(outcome)
	w.latency.Observe(w.clock.Now().Sub(job.CreatedAt), outcome)
	return time.Time{}
}

// runImmediate answers a job with a brain that needs no I/O (brain.Immediate) in one write
// transaction: read what the brain is asked, ask it, commit its answer. It saves the read
// transaction of the general path, a fifth of parley's CPU per answered message (measured with
// parley-load brain), and the session comes from the writer's cache. The brain may be asked
// again if the transaction is retried, which is harmless for a brain without effects.
func (w *Worker) runImmediate(ctx context.Context, job *parley.BrainJob, in *parley.Integration, b brain.Brain, cfg *Config) time.Time {
	var outcome string
	committing := false // past reading: a missing row now means the job was answered elsewhere
	err := w.store.Update(context.WithoutCancel(ctx), func(tx store.Tx) error {
		committing = false
		s, err := tx.LockSession(job.SessionID)
		if err != nil && !parley.IsCode(err, parley.ENotFound) {
			return err
		}
		req, err := w.requestFrom(tx, job, in, s)
		if err != nil {
			return err
		}
		committing = true
		if req == nil {
			outcome = "dropped"
			return w.chat.DropBrainJob(tx, job)
		}
		reply, asked := w.askBrain(ctx, in, b, cfg, req)
		m, err := w.chat.CommitBrainReply(tx, in, job, encode(reply))
		outcome = asked
		if err == nil && m == nil {
			outcome = "dropped"
		}
		return err
	})
	switch {
	case committing && parley.IsCode(err, parley.ENotFound):
		outcome = "dropped" // answered by another process that held the partition before
	case err != nil:
		w.log.Warn("brain: answering a job failed; retrying", "session_id", job.SessionID, "err", err)
		return w.clock.Now().Add(time.Second)
	}
	w.replies.Inc(outcome)
	w.latency.Observe(w.clock.Now().Sub(job.CreatedAt), outcome)
	return time.Time{}
}

// immediate reports whether b may be asked inside a write transaction.
func immediate(b brain.Brain) bool {
	i, ok := b.(brain.Immediate)
	return ok && i.Immediate()
}

// encode turns a brain's reply into what is committed.
func encode(reply *brain.Reply) chat.BrainReply {
	if reply.Handover && !slices.ContainsFunc(reply.Responses, func(r brain.Response) bool { return r.Type == brain.TypeHandover }) {
		// The integrator learns of a handover from the reply itself, whichever brain decided it.
		reply.Responses = append(reply.Responses, brain.Response{Type: brain.TypeHandover})
	}
	return chat.BrainReply{Responses: brain.EncodeResponses(reply.Responses), Context: reply.Context,
		Handover: reply.HandsOver(), Resolve: reply.Resolve}
}

// request reads what the brain is asked. It returns a nil request when the brain no longer
// answers the job's conversation.
func (w *Worker) request(ctx context.Context, job *parley.BrainJob) (*brain.Request, *parley.Integration, error) {
	var req *brain.Request
	in := w.brains.integration(job.IntegrationID)
	read := in == nil
	err := w.store.View(ctx, func(tx store.ReadTx) error {
		s, err := tx.Session(job.SessionID)
		if err != nil && !parley.IsCode(err, parley.ENotFound) {
			return err
		}
		if read && err == nil {
			if in, err = tx.Integration(s.IntegrationID); err != nil {
				return err
			}
		}
		req, err = w.requestFrom(tx, job, in, s)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if read && req != nil {
		w.brains.remember(in)
	}
	return req, in, nil
}

// requestFrom builds what the brain is asked about a job of session s, or nil when s is gone or
// the brain no longer answers its conversation.
func (w *Worker) requestFrom(tx store.ReadTx, job *parley.BrainJob, in *parley.Integration, s *parley.Session) (*brain.Request, error) {
	if s == nil || !w.chat.BrainAnswers(s, job) {
		return nil, nil
	}
	m, err := jobMessage(tx, job)
	if err != nil {
		return nil, err
	}
	if m.Attachments, err = w.chat.OutboundAttachments(tx, m.Attachments); err != nil {
		return nil, err
	}
	c, err := parley.DecodeObject(s.Context)
	if err != nil {
		return nil, err
	}
	return &brain.Request{Integration: in, SessionID: s.ID, ExternalSessionID: s.ExternalSessionID,
		ConversationID: s.ConversationID, Context: c, Message: m, ConversationStart: job.ConversationStart,
		History: w.history(s.ID, s.ConversationID, m.Seq)}, nil
}

// jobMessage returns the job's message as stored: from memory when this process stored it
// (reading it back was a tenth of the writer's time per answer), else from the database. The
// copy is the caller's to change.
func jobMessage(tx store.ReadTx, job *parley.BrainJob) (*parley.Message, error) {
	if m := job.Message; m != nil && m.ID == job.MessageID {
		c := *m
		return &c, nil
	}
	return tx.Message(job.SessionID, job.MessageID)
}

// history reads the latest messages of the job's conversation up to the job's message, for
// brains that want them. Messages after it (a backlog the brain has not reached) are read and
// skipped: up to historySlack of them are allowed for.
func (w *Worker) history(sessionID, conversationID string, upTo int64) func(context.Context, int) ([]*parley.Message, error) {
	return func(ctx context.Context, limit int) ([]*parley.Message, error) {
		var out []*parley.Message
		err := w.store.View(ctx, func(tx store.ReadTx) error {
			ms, err := tx.RecentMessages(sessionID, limit+historySlack)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.Seq <= upTo && m.ConversationID == conversationID {
					out = append(out, m)
				}
			}
			if len(out) > limit {
				out = out[len(out)-limit:]
			}
			return nil
		})
		return out, err
	}
}

// historySlack is how many messages newer than a job's the history read allows for.
const historySlack = 64

// ask runs the integration's brain within its time limit; a failure becomes the fallback.
func (w *Worker) ask(ctx context.Context, in *parley.Integration, req *brain.Request) (*brain.Reply, string) {
	b, cfg := w.brains.get(in)
	return w.askBrain(ctx, in, b, cfg, req)
}

// askBrain asks b, the integration's brain (nil when its configuration is unusable).
func (w *Worker) askBrain(ctx context.Context, in *parley.Integration, b brain.Brain, cfg *Config, req *brain.Request) (*brain.Reply, string) {
	if b != nil {
		actx, cancel := context.WithTimeout(ctx, cfg.Timeout())
		reply, err := safeReply(actx, b, req)
		cancel()
		// Every message gets a message:brain_send with something in it (SPEC §6).
		if err == nil && reply != nil && (len(reply.Responses) > 0 || reply.HandsOver() || reply.Resolve) {
			return reply, "answered"
		}
		if err == nil && reply != nil {
			// The brain answered but said nothing (a dialog step that only stores an answer):
			// its context changes stand, since its state may live there, and the fallback
			// speaks for it.
			reply.Responses = fallback(cfg)
			return reply, "fallback"
		}
		w.log.Warn("brain: no answer; sending the fallback", "integration_id", in.ID, "session_id", req.SessionID, "kind", cfg.Kind, "err", err)
	}
	return &brain.Reply{Responses: fallback(cfg)}, "fallback"
}

// fallback returns the integration's fallback responses, a copy the caller may append to (the
// configured slice is shared by every session).
func fallback(cfg *Config) []brain.Response {
	if len(cfg.Fallback) > 0 {
		return slices.Clone(cfg.Fallback)
	}
	return slices.Clone(DefaultFallback)
}

// safeReply runs a brain, turning a panic into an error: a bug in one brain must not take the
// process, and every other session, down with it.
func safeReply(ctx context.Context, b brain.Brain, req *brain.Request) (reply *brain.Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("brain panicked: %v", p)
		}
	}()
	return b.Reply(ctx, req)
}
