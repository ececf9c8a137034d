package sqltx

import (
	"database/sql"
	"slices"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// queryShaped runs a query whose text depends on its arguments (IN lists, optional filters).
// It is not prepared: the SQLite writer's statement cache would keep every shape.
func (t *Tx) queryShaped(q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, t.d.rebind(q), args...)
}

// ConversationList reads the conversations, then the newest message of each one's session by
// its seq: two plain queries rather than one with a nullable join of every message column.
func (t *Tx) ConversationList(f store.ConversationFilter) ([]*store.ConversationSummary, error) {
	var where []string
	var args []any
	if len(f.IDs) > 0 {
		where = append(where, `c.id IN (`+in(len(f.IDs))+`)`)
		for _, id := range f.IDs {
			args = append(args, id)
		}
	} else {
		where = append(where, `c.status = 'open'`)
	}
	if len(f.IntegrationIDs) > 0 {
		where = append(where, `c.integration_id IN (`+in(len(f.IntegrationIDs))+`)`)
		for _, id := range f.IntegrationIDs {
			args = append(args, id)
		}
	}
	if f.HandledBy != "" {
		where = append(where, `c.handled_by = ?`)
		args = append(args, f.HandledBy)
	}
	if f.AssigneeID != "" {
		where = append(where, `c.assignee_id = ?`)
		args = append(args, f.AssigneeID)
	}
	order := ` ORDER BY c.updated_at DESC, c.id DESC`
	if f.OldestFirst {
		order = ` ORDER BY c.updated_at, c.id`
	}
	q := `SELECT c.id, c.session_id, c.integration_id, c.status, c.handled_by, c.assignee_id, c.created_at,
		c.updated_at, c.resolved_at, i.name, s.external_session_id, s.status, s.context,
		COALESCE(a.name, ''), COALESCE(a.avatar, ''),
		(SELECT MAX(x.seq) FROM messages x WHERE x.session_id = c.session_id),
		(SELECT COUNT(*) FROM messages u WHERE u.session_id = c.session_id AND u.conversation_id = c.id
			AND u.author = 'user' AND u.read_at = 0)
		FROM conversations c
		JOIN sessions s ON s.id = c.session_id
		JOIN integrations i ON i.id = c.integration_id
		LEFT JOIN agents a ON c.assignee_id <> '' AND CAST(a.id AS TEXT) = c.assignee_id
		WHERE ` + strings.Join(where, " AND ") + order
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := t.queryShaped(q, args...)
	if err != nil {
		return nil, t.wrap("list conversations", err, "conversation")
	}
	lastSeq := map[int64][]*store.ConversationSummary{} // two conversations of a session share one
	list, err := collect(rows, func(r scanner) (*store.ConversationSummary, error) {
		var c parley.Conversation
		sum := store.ConversationSummary{Conversation: &c}
		var created, updated, resolved int64
		var context, agentName, agentAvatar string
		var last sql.NullInt64
		err := r.Scan(&c.ID, &c.SessionID, &c.IntegrationID, &c.Status, &c.HandledBy, &c.AssigneeID, &created,
			&updated, &resolved, &sum.IntegrationName, &sum.ExternalSessionID, &sum.SessionStatus, &context,
			&agentName, &agentAvatar, &last, &sum.Unread)
		if err != nil {
			return nil, err
		}
		c.CreatedAt, c.UpdatedAt, c.ResolvedAt = fromMS(created), fromMS(updated), fromMS(resolved)
		sum.Context = []byte(context)
		if c.AssigneeID != "" {
			// An assignee whose agent row is gone is still named by ID.
			sum.Assignee = &parley.AgentRef{ID: c.AssigneeID, Name: agentName, Avatar: agentAvatar}
		}
		if last.Valid {
			lastSeq[last.Int64] = append(lastSeq[last.Int64], &sum)
		}
		return &sum, nil
	}, t, "list conversations")
	if err != nil || len(lastSeq) == 0 {
		return list, err
	}
	seqs := make([]any, 0, len(lastSeq))
	for seq := range lastSeq {
		seqs = append(seqs, seq)
	}
	rows, err = t.queryShaped(`SELECT `+messageColumns+` FROM messages WHERE seq IN (`+in(len(seqs))+`)`, seqs...)
	if err != nil {
		return nil, t.wrap("list conversations", err, "message")
	}
	msgs, err := collect(rows, scanMessage, t, "list conversations")
	for _, m := range msgs {
		for _, sum := range lastSeq[m.Seq] {
			sum.Last = m
		}
	}
	return list, err
}

func (t *Tx) ConversationCounts(integrationIDs []string, agentID string) (store.ConversationCounts, error) {
	var n store.ConversationCounts
	q := `SELECT c.handled_by, c.assignee_id, COUNT(*) FROM conversations c WHERE c.status = 'open'`
	args := []any{}
	if len(integrationIDs) > 0 {
		q += ` AND c.integration_id IN (` + in(len(integrationIDs)) + `)`
		for _, id := range integrationIDs {
			args = append(args, id)
		}
	}
	rows, err := t.queryShaped(q+` GROUP BY c.handled_by, c.assignee_id`, args...)
	if err != nil {
		return n, t.wrap("count conversations", err, "conversation")
	}
	defer rows.Close()
	for rows.Next() {
		var by, assignee string
		var k int
		if err := rows.Scan(&by, &assignee, &k); err != nil {
			return n, t.wrap("count conversations", err, "conversation")
		}
		n.Open += k
		switch {
		case by == parley.HandledByQueue:
			n.Queue += k
		case by == parley.HandledByAgent && assignee == agentID:
			n.Mine += k
		}
	}
	return n, t.wrap("count conversations", rows.Err(), "conversation")
}

func (t *Tx) RecentMessages(sessionID string, limit int) ([]*parley.Message, error) {
	rows, err := t.query(`SELECT `+messageColumns+` FROM messages WHERE session_id = ? ORDER BY seq DESC LIMIT ?`,
		sessionID, limit)
	if err != nil {
		return nil, t.wrap("recent messages", err, "message")
	}
	msgs, err := collect(rows, scanMessage, t, "recent messages")
	slices.Reverse(msgs)
	return msgs, err
}
