package sqltx

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

const eventColumns = `seq, id, integration_id, session_id, session_seq, partition, event_type, body, state,
	attempts, next_attempt_at, last_error, attempt_log, created_at, finished_at`

func (t *Tx) InsertEvent(e *parley.Event) error {
	log := []byte("[]") // a new event has no attempts: skip encoding on the hot path
	if len(e.AttemptLog) > 0 {
		var err error
		if log, err = json.Marshal(e.AttemptLog); err != nil {
			return fmt.Errorf("store: encoding attempt log: %w", err)
		}
	}
	var err error
	e.Seq, err = t.insert(`INSERT INTO outbox (id, integration_id, session_id, session_seq, partition, event_type,
		body, state, attempts, next_attempt_at, last_error, attempt_log, created_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.IntegrationID, e.SessionID, e.SessionSeq, e.Partition, e.Type, e.Body, e.State, e.Attempts,
		ms(e.NextAttemptAt), e.LastError, string(log), ms(e.CreatedAt), ms(e.FinishedAt))
	if err != nil {
		return t.wrap("insert event", err, "event")
	}
	t.change.Events = append(t.change.Events, e)
	return nil
}

func (t *Tx) RecordAttempt(e *parley.Event) error {
	log, err := json.Marshal(e.AttemptLog)
	if err != nil {
		return fmt.Errorf("store: encoding attempt log: %w", err)
	}
	// By seq, the integer key: cheaper than the id index on the hottest write of delivery.
	res, err := t.exec(`UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?,
		finished_at = ?, attempt_log = ? WHERE seq = ?`,
		e.State, e.Attempts, ms(e.NextAttemptAt), e.LastError, ms(e.FinishedAt), string(log), e.Seq)
	if err != nil {
		return t.wrap("record attempt", err, "event")
	}
	return t.affected(res, "event")
}

func (t *Tx) ReplayEvents(integrationID, eventID string, now time.Time) ([]*parley.Event, error) {
	q := `UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, finished_at = 0
		WHERE integration_id = ? AND state = 'failed'`
	args := []any{ms(now), integrationID}
	if eventID != "" {
		q += ` AND id = ?`
		args = append(args, eventID)
	}
	rows, err := t.query(q+` RETURNING `+eventColumns, args...)
	if err != nil {
		return nil, t.wrap("replay events", err, "event")
	}
	events, err := collect(rows, scanEvent, t, "replay events")
	slices.SortFunc(events, func(a, b *parley.Event) int { return int(a.Seq - b.Seq) })
	// Watchers learn of them like of new events: the dispatcher owning them sends them at once.
	t.change.Events = append(t.change.Events, events...)
	return events, err
}

func (t *Tx) DeleteDeliveredEvents(before time.Time, limit int) (int, error) {
	res, err := t.exec(`DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
		WHERE state = 'delivered' AND finished_at < ? ORDER BY seq LIMIT ?)`, ms(before), limit)
	if err != nil {
		return 0, t.wrap("delete delivered events", err, "event")
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *Tx) Events(f store.EventFilter) ([]*parley.Event, error) {
	q := `SELECT ` + eventColumns + ` FROM outbox WHERE 1 = 1`
	var args []any
	if f.IntegrationID != "" {
		q += ` AND integration_id = ?`
		args = append(args, f.IntegrationID)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, f.State)
	}
	if f.EventID != "" {
		q += ` AND id = ?`
		args = append(args, f.EventID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)
	rows, err := t.queryShaped(q, args...)
	if err != nil {
		return nil, t.wrap("list events", err, "event")
	}
	return collect(rows, scanEvent, t, "list events")
}

func (t *Tx) PendingEvents(sessionID string) ([]*parley.Event, error) {
	rows, err := t.query(`SELECT `+eventColumns+` FROM outbox WHERE session_id = ? AND state = 'pending'
		ORDER BY session_seq`, sessionID)
	if err != nil {
		return nil, t.wrap("pending events", err, "event")
	}
	return collect(rows, scanEvent, t, "pending events")
}

func (t *Tx) PendingEventSessions(partitions []int, limit int) ([]string, error) {
	return t.pendingSessions("outbox", "session_id", "partition", `state = 'pending'`, partitions, limit)
}

// pendingSessions lists the distinct sessions (column session) of the rows of from that meet
// cond and whose column partition is one of partitions.
func (t *Tx) pendingSessions(from, session, partition, cond string, partitions []int, limit int) ([]string, error) {
	if len(partitions) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(partitions)+1)
	for _, p := range partitions {
		args = append(args, p)
	}
	args = append(args, limit)
	rows, err := t.queryShaped(pendingSessionsQuery(from, session, partition, cond, len(partitions)), args...)
	if err != nil {
		return nil, t.wrap("pending sessions", err, "session")
	}
	return collect(rows, scanString, t, "pending sessions")
}

func pendingSessionsQuery(from, session, partition, cond string, partitions int) string {
	return `SELECT DISTINCT ` + session + ` FROM ` + from + ` WHERE ` + cond + ` AND ` + partition +
		` IN (` + in(partitions) + `) LIMIT ?`
}

func scanEvent(r scanner) (*parley.Event, error) {
	var e parley.Event
	var log string
	var next, created, finished int64
	err := r.Scan(&e.Seq, &e.ID, &e.IntegrationID, &e.SessionID, &e.SessionSeq, &e.Partition, &e.Type, &e.Body,
		&e.State, &e.Attempts, &next, &e.LastError, &log, &created, &finished)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(log), &e.AttemptLog); err != nil {
		return nil, fmt.Errorf("decoding attempt log of event %s: %w", e.ID, err)
	}
	if len(e.AttemptLog) == 0 {
		e.AttemptLog = nil // one representation of "no attempts"
	}
	e.NextAttemptAt, e.CreatedAt, e.FinishedAt = fromMS(next), fromMS(created), fromMS(finished)
	return &e, nil
}

// A brain job lives in its message's row while job_seq > 0 (see InsertMessageWithJob); the
// session gives it its integration and partition. Waiting jobs are indexed by seq (migration 6):
// a session's are read through messages_session from the oldest waiting job on, so the read
// covers the session's messages since then, not its whole history.

// waitingJobs selects the messages m that wait for the brain. The bound on seq is what every
// waiting job meets; it is there for the planner: a range on messages_jobs, which SQLite would
// otherwise pass over for a scan of messages_session in session order.
const waitingJobs = `m.job_seq > 0 AND m.seq >= (SELECT min(seq) FROM messages WHERE job_seq > 0)`

func (t *Tx) DeleteJob(seq int64) error {
	res, err := t.exec(`UPDATE messages SET job_seq = 0 WHERE seq = ? AND job_seq > 0`, seq)
	if err != nil {
		return t.wrap("delete brain job", err, "brain job")
	}
	return t.affected(res, "brain job")
}

const pendingJobsQuery = `SELECT m.seq, s.integration_id, m.session_id, m.job_seq, s.partition,
	m.conversation_id, m.id, m.job_start, m.created_at FROM sessions s JOIN messages m ON m.session_num = s.num
	WHERE s.id = ? AND ` + waitingJobs + ` ORDER BY m.job_seq`

func (t *Tx) PendingJobs(sessionID string) ([]*parley.BrainJob, error) {
	rows, err := t.query(pendingJobsQuery, sessionID)
	if err != nil {
		return nil, t.wrap("pending brain jobs", err, "brain job")
	}
	return collect(rows, func(r scanner) (*parley.BrainJob, error) {
		var j parley.BrainJob
		var created, start int64
		err := r.Scan(&j.Seq, &j.IntegrationID, &j.SessionID, &j.SessionSeq, &j.Partition, &j.ConversationID,
			&j.MessageID, &start, &created)
		j.ConversationStart, j.CreatedAt = start != 0, fromMS(created)
		return &j, err
	}, t, "pending brain jobs")
}

// The jobs' side of pendingSessions.
const jobsFrom, jobsSession, jobsPartition = `messages m JOIN sessions s ON s.id = m.session_id`, "m.session_id", "s.partition"

func (t *Tx) PendingJobSessions(partitions []int, limit int) ([]string, error) {
	return t.pendingSessions(jobsFrom, jobsSession, jobsPartition, waitingJobs, partitions, limit)
}

func (t *Tx) IdempotentResponse(integrationID, key string, since time.Time) (int, []byte, error) {
	var status int
	var body []byte
	err := t.queryRow(`SELECT status, response FROM idempotency_keys WHERE integration_id = ? AND idem_key = ?
		AND created_at >= ?`, integrationID, key, ms(since)).Scan(&status, &body)
	return status, body, t.wrap("read idempotent response", err, "idempotency key")
}

func (t *Tx) SaveIdempotentResponse(integrationID, key string, status int, body []byte, at, since time.Time) error {
	if body == nil {
		body = []byte{} // a response without a body (204); nil would be NULL
	}
	// A row from before the window is replaced; a row inside it is a conflict (a concurrent
	// request with the same key won).
	res, err := t.exec(`INSERT INTO idempotency_keys (integration_id, idem_key, status, response, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (integration_id, idem_key) DO UPDATE SET status = excluded.status,
		response = excluded.response, created_at = excluded.created_at WHERE idempotency_keys.created_at < ?`,
		integrationID, key, status, body, ms(at), ms(since))
	if err != nil {
		return t.wrap("save idempotent response", err, "idempotency key")
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return parley.Errorf(parley.EConflict, "idempotency key already used")
	}
	return nil
}

func (t *Tx) DeleteIdempotentResponses(before time.Time, limit int) (int, error) {
	res, err := t.exec(`DELETE FROM idempotency_keys WHERE created_at < ? AND (integration_id, idem_key) IN
		(SELECT integration_id, idem_key FROM idempotency_keys WHERE created_at < ? LIMIT ?)`, ms(before), ms(before), limit)
	if err != nil {
		return 0, t.wrap("delete idempotent responses", err, "idempotency key")
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// boolInt stores a flag as 0 or 1, one representation for both dialects.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
