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
//
// The session's job number, activity and deadline are the newer of its row's and those its last
// message carries (see UpdateSessionWithMessage).
const sessionSelect = `SELECT s.id, s.integration_id, s.external_session_id, s.status, s.context,
	s.conversation_id, s.partition, s.event_seq, s.created_at, s.ended_at,
	c.status, c.handled_by, c.assignee_id, c.created_at, c.updated_at, c.resolved_at, ` + stateColumns + `
	FROM sessions s JOIN conversations c ON c.id = s.conversation_id ` + lastMessageJoin + ` WHERE s.id IN (?)`

// stateColumns are a session's state as its row and its last message lm hold it (sessionState).
const stateColumns = `s.num, s.job_seq, s.last_activity_at, s.expires_at,
	COALESCE(lm.session_job_seq, 0), COALESCE(lm.session_active_at, 0), COALESCE(lm.session_expires_at, 0)`

// lastMessageJoin joins session s's last message as lm, if it has one.
const lastMessageJoin = `LEFT JOIN messages lm ON lm.seq = (SELECT max(x.seq) FROM messages x WHERE x.session_num = s.num)`

// stateSelect reads a session's state alone.
const stateSelect = `SELECT ` + stateColumns + ` FROM sessions s ` + lastMessageJoin + ` WHERE s.id IN (?)`

// sessionState is what a transaction knows of a session's number and of the state each of its
// messages carries: its job number, activity and deadline (milliseconds), as of the message.
type sessionState struct{ num, jobSeq, activeAt, expiresAt int64 }

func stateOf(s *parley.Session) sessionState {
	return sessionState{num: s.Num, jobSeq: s.JobSeq, activeAt: ms(s.LastActivityAt), expiresAt: ms(s.ExpiresAt)}
}

// scanState reads dest, then stateColumns: each of the three is the larger of the row's and the last
// message's. They only grow, so the larger is the newer. (A deadline moved earlier, by a shorter
// session timeout, takes effect once the later one passes.)
func scanState(r scanner, dest ...any) (sessionState, error) {
	var st sessionState
	var job, active, expires int64
	err := r.Scan(append(dest, &st.num, &st.jobSeq, &st.activeAt, &st.expiresAt, &job, &active, &expires)...)
	st.jobSeq, st.activeAt, st.expiresAt = max(st.jobSeq, job), max(st.activeAt, active), max(st.expiresAt, expires)
	return st, err
}

func (t *Tx) Session(id string) (*parley.Session, error) {
	s, err := scanSession(t.queryRow(sessionSelect, id))
	if err != nil {
		return nil, t.wrap("read session", err, "session")
	}
	t.knowState(s)
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
			t.knowState(s)
			return s, nil
		}
	}
	s, err := scanSession(t.queryRow(sessionSelect, id))
	if err != nil {
		return nil, t.wrap("lock session", err, "session")
	}
	t.sessionRead(s)
	t.knowState(s)
	return s, nil
}

// knowState remembers the state of a session the transaction read or wrote: what its next
// message carries.
func (t *Tx) knowState(s *parley.Session) { t.remember(s.ID, stateOf(s)) }

func (t *Tx) remember(id string, st sessionState) {
	if t.states == nil {
		t.states = make(map[string]sessionState)
	}
	t.states[id] = st
}

// sessionState returns session id's state as the transaction knows it, reading it if need be.
// Writes take it from here, not from a subquery of their own: an INSERT with a subquery cost
// the SQLite writer 12 µs more per message (BenchmarkPostUserMessage), and every write of a
// message follows a read of its session.
func (t *Tx) sessionState(id string) (sessionState, error) {
	if st, ok := t.states[id]; ok {
		return st, nil
	}
	st, err := scanState(t.queryRow(stateSelect, id))
	if err != nil {
		return st, err
	}
	t.remember(id, st)
	return st, nil
}

func scanSession(r scanner) (*parley.Session, error) {
	var s parley.Session
	var c parley.Conversation
	var context string
	var created, ended, cCreated, cUpdated, cResolved int64
	st, err := scanState(r, &s.ID, &s.IntegrationID, &s.ExternalSessionID, &s.Status, &context,
		&s.ConversationID, &s.Partition, &s.EventSeq, &created, &ended,
		&c.Status, &c.HandledBy, &c.AssigneeID, &cCreated, &cUpdated, &cResolved)
	if err != nil {
		return nil, err
	}
	s.Context = []byte(context)
	s.Num, s.JobSeq = st.num, st.jobSeq
	s.CreatedAt, s.LastActivityAt, s.ExpiresAt, s.EndedAt = fromMS(created), fromMS(st.activeAt), fromMS(st.expiresAt), fromMS(ended)
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
	t.knowState(s)
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
	t.knowState(s)
	return nil
}

// UpdateSessionWithMessage writes the session's row only when it must. A user's message changes
// its session's job number, activity and deadline, which the message's row carries anyway
// (session_job_seq, session_active_at, session_expires_at, migration 8), and reads take the
// newer of the row's and the last message's (sessionSelect). So when the transaction holds the
// session exactly as committed (the SQLite writer's cache) and nothing else of it changed, the
// row is left as it is. Measured: rewriting the row was a fifth of the writer's CPU per message
// (BenchmarkPostUserMessage). PostgreSQL, which holds no cache, writes both.
//
// The row's deadline may then lag behind the session's; ExpiringSessions brings it up to date
// when it comes due.
func (t *Tx) UpdateSessionWithMessage(s *parley.Session, m *parley.Message, j *parley.BrainJob) error {
	st := stateOf(s)
	if !t.onlyStateChanged(s) {
		if err := t.UpdateSession(s); err != nil {
			return err
		}
		return t.insertMessageWithJob(m, j, &st)
	}
	if err := t.insertMessageWithJob(m, j, &st); err != nil {
		return err
	}
	activity, expires := fromMS(ms(s.LastActivityAt)), fromMS(ms(s.ExpiresAt))
	t.sessionWritten(s.ID, func(c *parley.Session) bool {
		c.JobSeq, c.LastActivityAt, c.ExpiresAt = s.JobSeq, activity, expires
		return true
	})
	t.knowState(s)
	return nil
}

// onlyStateChanged reports whether s differs from the session as the transaction's cache holds
// it at most in what a message carries.
func (t *Tx) onlyStateChanged(s *parley.Session) bool {
	c, ok := t.peekSession(s.ID)
	return ok && c.Num == s.Num && c.Status == s.Status && c.ConversationID == s.ConversationID &&
		c.EventSeq == s.EventSeq && c.EndedAt.Equal(s.EndedAt)
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

// ExpiringSessions reads the sessions whose row's deadline is due; the row may lag behind the
// session (UpdateSessionWithMessage), so each comes with the deadline its last message carries.
// One that turns out not due has its row's deadline brought up to date, which takes it out of
// the range read for good: lagging rows cost one write per session each time they come due, and
// never hide a due session behind them for longer than the sweeps that bring them up to date,
// limit rows each.
func (t *Tx) ExpiringSessions(now time.Time, limit int) ([]string, error) {
	fixed := 0
	for {
		rows, err := t.query(`SELECT s.id, COALESCE((SELECT m.session_expires_at FROM messages m
			WHERE m.session_num = s.num ORDER BY m.seq DESC LIMIT 1), 0)
			FROM sessions s WHERE s.status = 'active' AND s.expires_at <= ?
			ORDER BY s.expires_at LIMIT ?`+t.d.ForUpdate+t.d.SkipLocked, ms(now), limit)
		if err != nil {
			return nil, t.wrap("expiring sessions", err, "session")
		}
		type candidate struct {
			id       string
			deadline int64 // as the last message carries it
		}
		candidates, err := collect(rows, func(r scanner) (candidate, error) {
			var c candidate
			return c, r.Scan(&c.id, &c.deadline)
		}, t, "expiring sessions")
		if err != nil {
			return nil, err
		}
		var due []string
		for _, c := range candidates {
			if c.deadline <= ms(now) {
				due = append(due, c.id)
				continue
			}
			// The session's deadline is unchanged (the newer one wins), so nothing cached is
			// stale; the row's moves past now, out of the range.
			if _, err := t.execTracked(`UPDATE sessions SET expires_at = ? WHERE id = ?`, c.deadline, c.id); err != nil {
				return nil, t.wrap("expiring sessions", err, "session")
			}
			fixed++
		}
		// At most limit rows brought up to date per call, so that one call (after a long
		// downtime, say) does not hold the SQLite writer for all of them: the rest are left to
		// the next sweep.
		if len(due) == len(candidates) || fixed >= limit {
			return due, nil
		}
		// Rows brought up to date left the range: read it again, for the due sessions they hid.
	}
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
