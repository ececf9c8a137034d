package main

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/dialog"
	"github.com/parleyhq/parley/internal/loadtest"
	"github.com/parleyhq/parley/webhook"
)

// The relay is the brain scenario's second ceiling: what this machine can do for a message that
// comes in over HTTP and goes out as one signed webhook, with nothing in between. It is the
// harness re-executed (as the bare server is): every POST is read and answered 202 at once, and
// a message:brain_send with the demo dialog's answer to it, rendered and signed as parley renders
// and signs one, is posted to the receiver by one of relayWorkers senders (a session always by
// the same one, so its answers arrive in order). Nothing is stored, no dialog runs per message,
// and nothing is retried: parley can only be slower, so an answered rate the relay cannot reach
// is beyond this machine, not beyond parley.
const (
	roleRelay      = "relay"
	relayTargetEnv = "PARLEY_LOAD_RELAY_WEBHOOK" // the receiver's URL
	relayTextEnv   = "PARLEY_LOAD_RELAY_TEXT"    // what the users say, as parley-load brain --text
	relayWorkers   = 64
)

// relay is the re-executed harness as the relay. It runs until SIGTERM or SIGINT.
func relay(stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	target := os.Getenv(relayTargetEnv)
	if err := loadtest.CheckLoopback(strings.TrimPrefix(target, "http://")); err != nil {
		log.Error("relay", "err", err)
		return 1
	}
	text := os.Getenv(relayTextEnv)
	if text == "" {
		text = demoText
	}
	r, err := newRelayHandler(target, text)
	if err != nil {
		log.Error("relay", "err", err)
		return 1
	}
	r.start()
	return serveRole(log, "relay", r)
}

type relayHandler struct {
	target    string
	client    *http.Client
	in        *parley.Integration
	context   []byte          // each session's context, as parley's is at creation
	responses json.RawMessage // the demo dialog's answer to the users' text, encoded as parley encodes it
	queues    [relayWorkers]chan string
	mu        sync.Mutex
	greeted   map[string]bool
	greeting  json.RawMessage // the first answer of a session: greeting and answer
}

func newRelayHandler(target, text string) (*relayHandler, error) {
	d := dialog.Demo()
	reply := func(start bool) (json.RawMessage, error) {
		rep, err := d.Reply(context.Background(), &brain.Request{
			Context:           map[string]any{"user": map[string]any{"user_id": parley.NewID()}},
			Message:           &parley.Message{Text: text},
			ConversationStart: start,
		})
		if err != nil {
			return nil, err
		}
		return brain.EncodeResponses(rep.Responses), nil
	}
	r := &relayHandler{
		target:  target,
		client:  loadtest.NewClient(relayWorkers, 30*time.Second),
		in:      &parley.Integration{ID: parley.NewID(), DeskID: parley.NewID(), WebhookSecret: webhookSecret},
		context: []byte(`{"user":{"user_id":"` + parley.NewID() + `"}}`),
		greeted: map[string]bool{},
	}
	var err error
	if r.responses, err = reply(false); err != nil {
		return nil, err
	}
	if r.greeting, err = reply(true); err != nil {
		return nil, err
	}
	for i := range r.queues {
		r.queues[i] = make(chan string, 4096)
	}
	return r, nil
}

// start starts the senders.
func (r *relayHandler) start() {
	for _, q := range r.queues {
		go r.send(q)
	}
}

// ServeHTTP answers a message 202 and queues its answer on its session's sender.
func (r *relayHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20)); err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return
	}
	// .../sessions/{session_id}/messages
	sid := strings.TrimSuffix(req.URL.Path, "/messages")
	sid = sid[strings.LastIndexByte(sid, '/')+1:]
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(ceilingBody))}
	w.WriteHeader(http.StatusAccepted)
	w.Write(ceilingBody)
	f := fnv.New32a()
	f.Write([]byte(sid))
	r.queues[f.Sum32()%relayWorkers] <- sid
}

// send posts the answers of its sessions, one at a time, as parley's dispatcher posts an event.
func (r *relayHandler) send(q <-chan string) {
	for sid := range q {
		r.mu.Lock()
		first := !r.greeted[sid]
		r.greeted[sid] = true
		r.mu.Unlock()
		responses := r.responses
		if first {
			responses = r.greeting
		}
		s := &parley.Session{ID: sid, Context: r.context}
		e := parley.NewEvent(r.in, s, parley.EventBrainSend, time.Now(),
			parley.EventFields{MessageID: parley.NewID(), Output: &parley.Output{Responses: responses}})
		req, err := http.NewRequest(http.MethodPost, r.target, bytes.NewReader(e.Body))
		if err != nil {
			continue
		}
		h := req.Header
		h.Set("Content-Type", "application/json")
		h.Set("User-Agent", "parley-webhooks/1")
		h.Set(webhook.SignatureHeader, webhook.Sign(r.in.WebhookSecret, e.Body))
		h.Set(webhook.EventHeader, e.Type)
		h.Set(webhook.RequestIDHeader, e.ID)
		h.Set(webhook.SessionIDHeader, e.SessionID)
		h.Set(webhook.AttemptHeader, "1")
		resp, err := r.client.Do(req)
		if err != nil {
			continue // the receiver counts what is missing
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// startRelay starts the relay as a separate process, as parley is one, posting to target.
func startRelay(logPath, target, text string) (*loadtest.Process, error) {
	return startRole("relay", roleRelay, logPath, relayTargetEnv+"="+target, relayTextEnv+"="+text)
}
