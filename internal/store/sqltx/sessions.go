package sqltx

import (
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// sessionSelect reads a session with its current conversation. Every request on a session runs
// it, inside the SQLite writer, so its cost is paid serially.
//
// It says "s.id IN (?)", not "s.id = ?", on purpose. For a join, SQLite's planner looks at the
// "= ?" term's bound value (is it 0 or 1?), which marks the statement as one to re-plan when
// that binding changes; the SQLite driver clears the bindings before every execution, and
// SQLite then re-parses and re-plans the statement on every call: about 25 µs instead of 6 µs.
// A one-element IN list is the same condition (SQLite turns it into "= +?", PostgreSQL into
// "= $1") without that mark. Measured with BenchmarkPostMessage.
const sessionSelect = `SELECT s.id, s.integration_id, s.external_session_id, s.status, s.context,
	s.conversation_id, s.partition, s.event_seq, s.job_seq, s.created_at, s.last_activity_at,
	s.expires_at, s.ended_at, s.num,
	c.status, c.handled_by, c.assignee_id, c.created_at, c.updated_at, c.resolved_at
	FROM sessions s JOIN conversations c ON c.id = s.conversation_id WHERE s.id IN (?)`

func (t *Tx) Session(id string) (*parley.Session, error) {
	s, err := scanSession(t.queryRow(sessionSelect, id))
	if err != nil {
		return nil, t.wrap("read session", err, "session")
	}
	t.knowNum(s)
	return s, nil
}

func (t *Tx) LockSession(id string) (*parley.Session, error) {
	if t.d.ForUpdate != "" {
		// Lock first, read after, in two statements. A row locked FOR UPDATE after waiting for
		// another transaction is re-read at its newest version, but the rows joined to it are
		// not (PostgreSQL's EvalPlanQual): one statement would return the conversation as it was
		// before the wait. The read that follows the lock starts a fresh snapshot (READ
		// COMMITTED) and sees what the other transaction committed.
		var locked string
		if err := t.queryRow(`SELECT id FROM sessions WHERE id = ?`+t.d.ForUpdate, id).Scan(&locked); err != nil {
			return nil, t.wrap("lock session", err, "session")
		}
	}
	if t.cache != nil {
		if s, ok := t.cachedSession(id); ok {
			t.knowNum(s)
			return s, nil
		}
	}
	s, err := scanSession(t.queryRow(sessionSelect, id))
	if err != nil {
		return nil, t.wrap("lock session", err, "session")
	}
	t.sessionRead(s)
	t.knowNum(s)
	return s, nil
}

// knowNum remembers the number of a session the transaction read or created. A session's
// number never changes, so what the transaction learns stays true until it ends.
func (t *Tx) knowNum(s *parley.Session) {
	if t.nums == nil {
		t.nums = make(map[string]int64)
	}
	t.nums[s.ID] = s.Num
}

// sessionNum returns the number session id's messages carry (see Session.Num). Writes look it
// up here, not in a subquery of their own: an INSERT with a subquery cost the SQLite writer 12
// µs more per message (BenchmarkPostUserMessage), and the session was read anyway.
func (t *Tx) sessionNum(id string) (int64, error) {
	if n, ok := t.nums[id]; ok {
		return n, nil
	}
	s := &parley.Session{ID: id}
	if err := t.queryRow(`SELECT num FROM sessions WHERE id = ?`, id).Scan(&s.Num); err != nil {
		return 0, err
	}
	t.knowNum(s)
	return s.Num, nil
}

func scanSession(r scanner) (*parley.Session, error) {
	var s parley.Session
	var c parley.Conversation
	var context string
	var created, activity, expires, ended, cCreated, cUpdated, cResolved int64
	err := r.Scan(&s.ID, &s.IntegrationID, &s.ExternalSessionID, &s.Status, &context,
		&s.ConversationID, &s.Partition, &s.EventSeq, &s.JobSeq, &created, &activity, &expires, &ended, &s.Num,
		&c.Status, &c.HandledBy, &c.AssigneeID, &cCreated, &cUpdated, &cResolved)
	if err != nil {
		return nil, err
	}
	s.Context = []byte(context)
	s.CreatedAt, s.LastActivityAt, s.ExpiresAt, s.EndedAt = fromMS(created), fromMS(activity), fromMS(expires), fromMS(ended)
	c.ID, c.SessionID, c.IntegrationID = s.ConversationID, s.ID, s.IntegrationID
	c.CreatedAt, c.UpdatedAt, c.ResolvedAt = fromMS(cCreated), fromMS(cUpdated), fromMS(cResolved)
	s.Conversation = &c
	return &s, nil
}

func (t *Tx) CreateSession(s *parley.Session) error {
	var num int64
	if err := t.queryRow(t.d.NextSessionNum).Scan(&num); err != nil {
		return t.wrap("number session", err, "session")
	}
	_, err := t.execTracked(`INSERT INTO sessions (num, id, integration_id, external_session_id, status, context,
		conversation_id, partition, event_seq, job_seq, created_at, last_activity_at, expires_at, ended_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		num, s.ID, s.IntegrationID, s.ExternalSessionID, s.Status, string(s.Context), s.ConversationID,
		s.Partition, s.EventSeq, s.JobSeq, ms(s.CreatedAt), ms(s.LastActivityAt), ms(s.ExpiresAt), ms(s.EndedAt))
	t.sessionDropped(s.ID) // read at its first use: its conversation is stored separately
	if err != nil {
		return t.wrap("create session", err, "session")
	}
	s.Num = num
	t.knowNum(s)
	return nil
}

func (t *Tx) UpdateSession(s *parley.Session) error {
	activity, expires, ended := ms(s.LastActivityAt), ms(s.ExpiresAt), ms(s.EndedAt)
	res, err := t.execTracked(`UPDATE sessions SET status = ?, conversation_id = ?, event_seq = ?, job_seq = ?,
		last_activity_at = ?, expires_at = ?, ended_at = ? WHERE id = ?`,
		s.Status, s.ConversationID, s.EventSeq, s.JobSeq, activity, expires, ended, s.ID)
	if err == nil {
		err = t.affected(res, "session")
	}
	if err != nil {
		t.sessionDropped(s.ID)
		return t.wrap("update session", err, "session")
	}
	t.sessionWritten(s.ID, func(c *parley.Session) bool {
		if c.ConversationID != s.ConversationID {
			return false // the cached conversation is the old one
		}
		c.Status, c.EventSeq, c.JobSeq = s.Status, s.EventSeq, s.JobSeq
		c.LastActivityAt, c.ExpiresAt, c.EndedAt = fromMS(activity), fromMS(expires), fromMS(ended)
		return true
	})
	return nil
}

func (t *Tx) SetSessionContext(sessionID string, context []byte) error {
	stored := string(context)
	res, err := t.execTracked(`UPDATE sessions SET context = ? WHERE id = ?`, stored, sessionID)
	if err == nil {
		err = t.affected(res, "session")
	}
	if err != nil {
		t.sessionDropped(sessionID)
		return t.wrap("set session context", err, "session")
	}
	t.sessionWritten(sessionID, func(c *parley.Session) bool {
		c.Context = []byte(stored)
		return true
	})
	return nil
}

func (t *Tx) ExpiringSessions(now time.Time, limit int) ([]string, error) {
	rows, err := t.query(`SELECT id FROM sessions WHERE status = 'active' AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`+t.d.ForUpdate+t.d.SkipLocked, ms(now), limit)
	if err != nil {
		return nil, t.wrap("expiring sessions", err, "session")
	}
	return collect(rows, scanString, t, "expiring sessions")
}

func scanString(r scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

const conversationColumns = `id, session_id, integration_id, status, handled_by, assignee_id, created_at, updated_at, resolved_at`

func (t *Tx) Conversation(id string) (*parley.Conversation, error) {
	c, err := scanConversation(t.queryRow(`SELECT `+conversationColumns+` FROM conversations WHERE id = ?`, id))
	return c, t.wrap("read conversation", err, "conversation")
}

func scanConversation(r scanner) (*parley.Conversation, error) {
	var c parley.Conversation
	var created, updated, resolved int64
	if err := r.Scan(&c.ID, &c.SessionID, &c.IntegrationID, &c.Status, &c.HandledBy, &c.AssigneeID, &created, &updated, &resolved); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.ResolvedAt = fromMS(created), fromMS(updated), fromMS(resolved)
	return &c, nil
}

func (t *Tx) CreateConversation(c *parley.Conversation) error {
	_, err := t.execTracked(`INSERT INTO conversations (`+conversationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SessionID, c.IntegrationID, c.Status, c.HandledBy, c.AssigneeID, ms(c.CreatedAt), ms(c.UpdatedAt), ms(c.ResolvedAt))
	t.sessionDropped(c.SessionID)
	if err == nil {
		t.touch(c.SessionID, c.ID)
	}
	return t.wrap("create conversation", err, "conversation")
}

func (t *Tx) UpdateConversation(c *parley.Conversation) error {
	res, err := t.execTracked(`UPDATE conversations SET status = ?, handled_by = ?, assignee_id = ?, updated_at = ?,
		resolved_at = ? WHERE id = ?`, c.Status, c.HandledBy, c.AssigneeID, ms(c.UpdatedAt), ms(c.ResolvedAt), c.ID)
	t.sessionDropped(c.SessionID)
	if err != nil {
		return t.wrap("update conversation", err, "conversation")
	}
	if err := t.affected(res, "conversation"); err != nil {
		return err // no watcher is told of a conversation that does not exist
	}
	t.touch(c.SessionID, c.ID)
	return nil
}

// touch records that a conversation's visible state changed, once per transaction.
func (t *Tx) touch(sessionID, conversationID string) {
	for _, r := range t.change.Conversations {
		if r.SessionID == sessionID && r.ConversationID == conversationID {
			return
		}
	}
	t.change.Conversations = append(t.change.Conversations, store.ConversationRef{SessionID: sessionID, ConversationID: conversationID})
}
