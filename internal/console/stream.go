package console

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/live"
	"github.com/parleyhq/parley/internal/store"
)

// Stream event types (text/event-stream "event:" names).
const (
	EventReady        = "ready"        // first on every connection: read everything now
	EventConversation = "conversation" // a ConversationView that changed (status, holder, last message, unread)
	EventMessage      = "message"      // a message added, or whose receipts changed: {session_id, message}
	EventTyping       = "typing"       // {conversation_id, session_id, agent, action}
	EventReset        = live.EventReset
)

// Stream timing; the heartbeat is Config.Heartbeat.
const (
	writeTimeout    = 10 * time.Second // a client that takes longer for one event is dropped
	credentialCheck = 2 * time.Second  // the longest a heartbeat waits to check the stream's credential
	retryMS         = 1500             // how soon EventSource reconnects
)

// stream is the live event stream (Server-Sent Events) of everything that changes what the
// agent sees. It starts with "ready": the client then reads what it shows (lists, the open
// conversation) and applies the events that follow. Events carry no IDs: a stream is not
// resumed (Last-Event-ID is ignored); after any reconnect the client gets "ready" again and
// reads everything again, which is also what makes a reconnect to another process behind a
// load balancer correct.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	sub, err := s.hub.Subscribe(a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var buf bytes.Buffer
	send := func() bool {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	ready, _ := json.Marshal(map[string]any{"agent": agentView(a), "heartbeat_ms": s.cfg.Heartbeat.Milliseconds()})
	buf.WriteString("retry: " + strconv.Itoa(retryMS) + "\n")
	writeEvent(&buf, EventReady, ready)
	if !send() {
		return
	}
	tick := time.NewTicker(s.cfg.Heartbeat) // a comment keeps proxies from closing an idle stream
	defer tick.Stop()
	for {
		select {
		case e := <-sub.Events():
			writeEvent(&buf, e.Type, e.Data)
			// Send what else is waiting in one write.
			for more := true; more && buf.Len() < 64<<10; {
				select {
				case e := <-sub.Events():
					writeEvent(&buf, e.Type, e.Data)
				default:
					more = false
				}
			}
			if !send() {
				return
			}
		case <-tick.C:
			buf.WriteString(": ping\n\n")
			if !send() {
				return
			}
			// Then the credential is checked again: a revoked token or an ended login closes the
			// stream. A slow or failed read of the store does not, and holds the stream back at
			// most credentialCheck.
			ctx, cancel := context.WithTimeout(r.Context(), credentialCheck)
			_, _, err := s.credential(ctx, r)
			cancel()
			if parley.IsCode(err, parley.EUnauthorized) {
				return
			}
		case <-sub.Ended():
			return // dropped, or the server is stopping: the client reconnects and reloads
		case <-r.Context().Done():
			return
		}
	}
}

// writeEvent writes one event; data is JSON, which holds no raw newline.
func writeEvent(b *bytes.Buffer, typ string, data []byte) {
	b.WriteString("event: " + typ + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
}

// source reads what commits touched and renders it as stream events, for the live hub. It
// remembers, per session, the newest messages it has sent and their receipts, so that each
// event carries only what changed: a new message, or one whose receipts moved.
type source struct {
	store store.Store
	chat  *chat.Engine
	tails *tails
}

// tailSize is how many of a session's newest messages are compared for receipt changes.
const tailSize = 50

func newSource(st store.Store, engine *chat.Engine) *source {
	return &source{store: st, chat: engine, tails: newTails(10_000)}
}

func (src *source) Forget() { src.tails.clear() }

// MessageEvent is the data of a "message" event.
type MessageEvent struct {
	SessionID string               `json:"session_id"`
	Message   *httpapi.MessageView `json:"message"`
}

// TypingEvent is the data of a "typing" event.
type TypingEvent struct {
	ConversationID string           `json:"conversation_id"`
	SessionID      string           `json:"session_id"`
	Agent          *parley.AgentRef `json:"agent"`
	Action         string           `json:"action"`
}

// maxIDs bounds the conversations read in one query.
const maxIDs = 500

func (src *source) Events(ctx context.Context, touched []store.ConversationRef, signals []store.Signal) ([]live.Event, error) {
	var out []live.Event
	err := src.store.View(ctx, func(tx store.ReadTx) error {
		out = out[:0]                        // View may not run twice, but a reader must not depend on it
		integrationOf := map[string]string{} // conversation -> integration, for signals
		seen := map[string]bool{}            // sessions whose messages are done
		for start := 0; start < len(touched); start += maxIDs {
			ids := make([]string, 0, maxIDs)
			for _, r := range touched[start:min(start+maxIDs, len(touched))] {
				ids = append(ids, r.ConversationID)
			}
			sums, err := tx.ConversationList(store.ConversationFilter{IDs: ids})
			if err != nil {
				return err
			}
			for _, sum := range sums {
				c := sum.Conversation
				integrationOf[c.ID] = c.IntegrationID
				if !seen[c.SessionID] {
					seen[c.SessionID] = true
					if out, err = src.messages(tx, out, c.SessionID, c.IntegrationID); err != nil {
						return err
					}
				}
				out = append(out, live.Event{Type: EventConversation, IntegrationID: c.IntegrationID,
					Data: mustJSON(conversationView(sum, false))})
			}
		}
		for _, sg := range signals {
			if sg.Kind != chat.SignalTyping {
				continue
			}
			in, ok := integrationOf[sg.ConversationID]
			if !ok {
				c, err := tx.Conversation(sg.ConversationID)
				if parley.IsCode(err, parley.ENotFound) {
					continue
				}
				if err != nil {
					return err
				}
				in = c.IntegrationID
				integrationOf[c.ID] = in
			}
			var t chat.Typing
			if json.Unmarshal([]byte(sg.Data), &t) != nil {
				continue
			}
			out = append(out, live.Event{Type: EventTyping, IntegrationID: in, Data: mustJSON(TypingEvent{
				ConversationID: sg.ConversationID, SessionID: sg.SessionID, Agent: t.Agent, Action: t.Action})})
		}
		return nil
	})
	return out, err
}

// messages appends events for the session's messages that are new or whose receipts changed
// since the source last looked.
func (src *source) messages(tx store.ReadTx, out []live.Event, sessionID, integrationID string) ([]live.Event, error) {
	msgs, err := tx.RecentMessages(sessionID, tailSize)
	if err != nil {
		return out, err
	}
	t := src.tails.get(sessionID)
	if t.known && len(msgs) == tailSize && msgs[0].Seq > t.newest {
		// More messages arrived at once than the tail holds: read all the new ones.
		if msgs, err = tx.Messages(sessionID, t.newest, 10*tailSize); err != nil {
			return out, err
		}
	}
	kept := make(map[string]receipts, len(msgs))
	for _, m := range msgs {
		r := receipts{m.DeliveredAt.UnixMilli(), m.ReadAt.UnixMilli()}
		kept[m.ID] = r
		old, ok := t.sent[m.ID]
		if ok && old == r {
			continue
		}
		if t.known && !ok && m.Seq <= t.newest {
			continue // older than the tail it was compared with: a receipt nobody shows any more
		}
		v, err := httpapi.ShowMessage(tx, src.chat, m)
		if err != nil {
			return out, err
		}
		out = append(out, live.Event{Type: EventMessage, IntegrationID: integrationID,
			Data: mustJSON(MessageEvent{SessionID: sessionID, Message: v})})
	}
	t.sent, t.known = kept, true
	if n := len(msgs); n > 0 {
		t.newest = max(t.newest, msgs[n-1].Seq)
	}
	return out, nil
}

func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("console: encoding an event: " + err.Error()) // plain data cannot fail to encode
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// receipts are a message's receipt times, Unix ms (0: not yet).
type receipts struct{ delivered, read int64 }

// tail is what the source last sent of a session.
type tail struct {
	known  bool
	newest int64               // the newest message's Seq
	sent   map[string]receipts // the messages of the tail, by ID
	elem   *list.Element
}

// tails remembers the tails of the sessions most recently touched, up to a bound: a forgotten
// session's next change sends its whole tail again, which clients merge by message ID.
type tails struct {
	max   int
	m     map[string]*tail
	order *list.List // of session IDs, most recent first
}

func newTails(max int) *tails { return &tails{max: max, m: map[string]*tail{}, order: list.New()} }

func (ts *tails) get(sessionID string) *tail {
	if t, ok := ts.m[sessionID]; ok {
		ts.order.MoveToFront(t.elem)
		return t
	}
	t := &tail{elem: ts.order.PushFront(sessionID)}
	ts.m[sessionID] = t
	if ts.order.Len() > ts.max {
		oldest := ts.order.Back()
		ts.order.Remove(oldest)
		delete(ts.m, oldest.Value.(string))
	}
	return t
}

func (ts *tails) clear() {
	clear(ts.m)
	ts.order.Init()
}
