package sqltx

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley"
)

// numOf is a session's number (Session.Num) for a read that names the session by its ID.
const numOf = `SELECT num FROM sessions WHERE id = ?`

const messageColumns = `seq, id, session_id, conversation_id, author, agent, text, attachments, responses,
	created_at, delivered_at, read_at`

func (t *Tx) InsertMessage(m *parley.Message) error { return t.insertMessageWithJob(m, nil, nil) }

// InsertMessageWithJob stores the job in its message's row (job_seq and job_start), which is
// what makes a user's message cost one insert: see migration 005.
func (t *Tx) InsertMessageWithJob(m *parley.Message, j *parley.BrainJob) error {
	return t.insertMessageWithJob(m, j, nil)
}

// insertMessageWithJob inserts m, with job j unless j is nil, carrying the session's state st,
// or the state the transaction knows when st is nil.
func (t *Tx) insertMessageWithJob(m *parley.Message, j *parley.BrainJob, st *sessionState) error {
	if j == nil {
		return t.insertMessage(m, nil, st)
	}
	if j.SessionSeq <= 0 {
		return fmt.Errorf("store: brain job of message %s has session seq %d, want > 0", m.ID, j.SessionSeq)
	}
	if err := t.insertMessage(m, j, st); err != nil {
		return err
	}
	j.Seq, j.SessionID, j.ConversationID, j.MessageID, j.CreatedAt = m.Seq, m.SessionID, m.ConversationID, m.ID, m.CreatedAt
	j.Message = carried(m)
	t.change.Jobs = append(t.change.Jobs, j)
	return nil
}

// Jobs carry their message (BrainJob.Message) only when it is about this small, so jobs queued
// behind a slow brain hold little memory: a larger message is read back by the worker.
const (
	maxCarriedText        = 2 << 10
	maxCarriedAttachments = 4
)

// carried returns a copy of m exactly as Message would read it back, sharing nothing with m,
// or nil when m is too large to carry.
func carried(m *parley.Message) *parley.Message {
	if len(m.Text) > maxCarriedText || len(m.Attachments) > maxCarriedAttachments {
		return nil
	}
	c := *m
	c.CreatedAt, c.DeliveredAt, c.ReadAt = fromMS(ms(m.CreatedAt)), fromMS(ms(m.DeliveredAt)), fromMS(ms(m.ReadAt))
	c.Attachments = nil // stored as "" when empty, read back as nil
	if len(m.Attachments) > 0 {
		c.Attachments = slices.Clone(m.Attachments)
	}
	if m.Agent != nil {
		a := *m.Agent
		c.Agent = &a
	}
	c.Responses = nil // stored as "" when empty, read back as nil
	if len(m.Responses) > 0 {
		c.Responses = slices.Clone(m.Responses)
	}
	return &c
}

// insertMessage inserts m; its row carries the session's state (see UpdateSessionWithMessage):
// st, or what the transaction knows of the session when st is nil. Every message carries it,
// or a message after one that carried a newer state than the session's row would hide it.
func (t *Tx) insertMessage(m *parley.Message, j *parley.BrainJob, st *sessionState) error {
	var agent, attachments []byte
	var err error
	if m.Agent != nil {
		if agent, err = json.Marshal(m.Agent); err != nil {
			return fmt.Errorf("store: encoding agent: %w", err)
		}
	}
	if len(m.Attachments) > 0 {
		if attachments, err = json.Marshal(m.Attachments); err != nil {
			return fmt.Errorf("store: encoding attachments: %w", err)
		}
	}
	var jobSeq int64
	var jobStart bool
	if j != nil {
		jobSeq, jobStart = j.SessionSeq, j.ConversationStart
	}
	if st == nil {
		known, err := t.sessionState(m.SessionID)
		if err != nil {
			return t.wrap("insert message", err, "session")
		}
		st = &known
	}
	m.Seq, err = t.insert(`INSERT INTO messages (id, session_id, session_num, conversation_id, author, agent, text,
		attachments, responses, created_at, delivered_at, read_at, job_seq, job_start, session_job_seq,
		session_active_at, session_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.SessionID, st.num, m.ConversationID, m.Author, string(agent), m.Text, string(attachments),
		string(m.Responses), ms(m.CreatedAt), ms(m.DeliveredAt), ms(m.ReadAt), jobSeq, boolInt(jobStart),
		st.jobSeq, st.activeAt, st.expiresAt)
	if err == nil {
		t.touch(m.SessionID, m.ConversationID)
	}
	return t.wrap("insert message", err, "message")
}

const messagesQuery = `SELECT ` + messageColumns + ` FROM messages WHERE session_num = (` + numOf + `) AND seq > ?
	ORDER BY seq LIMIT ?`

func (t *Tx) Messages(sessionID string, afterSeq int64, limit int) ([]*parley.Message, error) {
	rows, err := t.query(messagesQuery, sessionID, afterSeq, limit)
	if err != nil {
		return nil, t.wrap("list messages", err, "message")
	}
	return collect(rows, scanMessage, t, "list messages")
}

func (t *Tx) Message(sessionID, messageID string) (*parley.Message, error) {
	m, err := scanMessage(t.queryRow(`SELECT `+messageColumns+` FROM messages WHERE id = ? AND session_id = ?`,
		messageID, sessionID))
	return m, t.wrap("read message", err, "message")
}

func scanMessage(r scanner) (*parley.Message, error) {
	var m parley.Message
	var agent, attachments, responses string
	var created, delivered, read int64
	err := r.Scan(&m.Seq, &m.ID, &m.SessionID, &m.ConversationID, &m.Author, &agent, &m.Text,
		&attachments, &responses, &created, &delivered, &read)
	if err != nil {
		return nil, err
	}
	return &m, decodeMessage(&m, agent, attachments, responses, created, delivered, read)
}

// decodeMessage fills in the columns of a message that are stored encoded.
func decodeMessage(m *parley.Message, agent, attachments, responses string, created, delivered, read int64) error {
	if agent != "" {
		m.Agent = new(parley.AgentRef)
		if err := json.Unmarshal([]byte(agent), m.Agent); err != nil {
			return fmt.Errorf("decoding agent of message %s: %w", m.ID, err)
		}
	}
	if attachments != "" {
		if err := json.Unmarshal([]byte(attachments), &m.Attachments); err != nil {
			return fmt.Errorf("decoding attachments of message %s: %w", m.ID, err)
		}
	}
	if responses != "" {
		m.Responses = json.RawMessage(responses)
	}
	m.CreatedAt, m.DeliveredAt, m.ReadAt = fromMS(created), fromMS(delivered), fromMS(read)
	return nil
}

func (t *Tx) MarkMessages(sessionID, kind string, authors []string, ids []string, until, at time.Time) ([]string, error) {
	if len(authors) == 0 || (len(ids) == 0 && until.IsZero()) {
		return nil, nil
	}
	var q string
	args := []any{ms(at)}
	switch kind {
	case parley.ReceiptRead:
		q = `UPDATE messages SET read_at = ?, delivered_at = CASE WHEN delivered_at = 0 THEN ? ELSE delivered_at END
			WHERE read_at = 0`
		args = append(args, ms(at))
	case parley.ReceiptDelivered:
		q = `UPDATE messages SET delivered_at = ? WHERE delivered_at = 0`
	default:
		return nil, fmt.Errorf("store: unknown receipt kind %q", kind)
	}
	st, err := t.sessionState(sessionID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // no session, no messages
	} else if err != nil {
		return nil, t.wrap("mark messages", err, "session")
	}
	q += ` AND session_num = ? AND author IN (` + in(len(authors)) + `) AND (id IN (` + in(len(ids)) + `)`
	args = append(args, st.num)
	for _, a := range authors {
		args = append(args, a)
	}
	for _, id := range ids {
		args = append(args, id)
	}
	if !until.IsZero() {
		q += ` OR created_at <= ?`
		args = append(args, ms(until))
	}
	q += `) RETURNING id, conversation_id`
	// Not prepared: the statement's shape depends on how many IDs there are.
	rows, err := t.queryShaped(q, args...)
	if err != nil {
		return nil, t.wrap("mark messages", err, "message")
	}
	defer rows.Close()
	var changed []string
	for rows.Next() {
		var id, conv string
		if err := rows.Scan(&id, &conv); err != nil {
			return nil, t.wrap("mark messages", err, "message")
		}
		changed = append(changed, id)
		t.touch(sessionID, conv)
	}
	return changed, t.wrap("mark messages", rows.Err(), "message")
}
