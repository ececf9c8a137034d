package sqltx

import (
	"slices"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

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
	// The session's newest message comes in the same row (a LEFT JOIN on its seq), its uuid
	// columns cast to text so one COALESCE works on both databases.
	q := `SELECT c.id, c.session_id, c.integration_id, c.status, c.handled_by, c.assignee_id, c.created_at,
		c.updated_at, c.resolved_at, i.name, s.external_session_id, s.status, s.context,
		COALESCE(a.name, ''), COALESCE(a.avatar, ''),
		(SELECT COUNT(*) FROM messages u WHERE u.session_num = s.num AND u.conversation_id = c.id
			AND u.author = 'user' AND u.read_at = 0),
		COALESCE(m.seq, 0), COALESCE(CAST(m.id AS TEXT), ''), COALESCE(CAST(m.conversation_id AS TEXT), ''),
		COALESCE(m.author, ''), COALESCE(m.agent, ''), COALESCE(m.text, ''), COALESCE(m.attachments, ''),
		COALESCE(m.responses, ''), COALESCE(m.created_at, 0), COALESCE(m.delivered_at, 0), COALESCE(m.read_at, 0)
		FROM conversations c
		JOIN sessions s ON s.id = c.session_id
		JOIN integrations i ON i.id = c.integration_id
		LEFT JOIN agents a ON c.assignee_id <> '' AND CAST(a.id AS TEXT) = c.assignee_id
		LEFT JOIN messages m ON m.seq = (SELECT MAX(x.seq) FROM messages x WHERE x.session_num = s.num)
		WHERE ` + strings.Join(where, " AND ") + order
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := t.queryShaped(q, args...)
	if err != nil {
		return nil, t.wrap("list conversations", err, "conversation")
	}
	return collect(rows, func(r scanner) (*store.ConversationSummary, error) {
		var c parley.Conversation
		var m parley.Message
		sum := store.ConversationSummary{Conversation: &c}
		var created, updated, resolved, mCreated, mDelivered, mRead int64
		var context, agentName, agentAvatar, mAgent, mAttachments, mResponses string
		err := r.Scan(&c.ID, &c.SessionID, &c.IntegrationID, &c.Status, &c.HandledBy, &c.AssigneeID, &created,
			&updated, &resolved, &sum.IntegrationName, &sum.ExternalSessionID, &sum.SessionStatus, &context,
			&agentName, &agentAvatar, &sum.Unread,
			&m.Seq, &m.ID, &m.ConversationID, &m.Author, &mAgent, &m.Text, &mAttachments, &mResponses,
			&mCreated, &mDelivered, &mRead)
		if err != nil {
			return nil, err
		}
		c.CreatedAt, c.UpdatedAt, c.ResolvedAt = fromMS(created), fromMS(updated), fromMS(resolved)
		sum.Context = []byte(context)
		if c.AssigneeID != "" {
			// An assignee whose agent row is gone is still named by ID.
			sum.Assignee = &parley.AgentRef{ID: c.AssigneeID, Name: agentName, Avatar: agentAvatar}
		}
		if m.Seq != 0 {
			m.SessionID = c.SessionID
			if err := decodeMessage(&m, mAgent, mAttachments, mResponses, mCreated, mDelivered, mRead); err != nil {
				return nil, err
			}
			sum.Last = &m
		}
		return &sum, nil
	}, t, "list conversations")
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

const recentMessagesQuery = `SELECT ` + messageColumns + ` FROM messages WHERE session_num = (` + numOf + `)
	ORDER BY seq DESC LIMIT ?`

func (t *Tx) RecentMessages(sessionID string, limit int) ([]*parley.Message, error) {
	rows, err := t.query(recentMessagesQuery, sessionID, limit)
	if err != nil {
		return nil, t.wrap("recent messages", err, "message")
	}
	msgs, err := collect(rows, scanMessage, t, "recent messages")
	slices.Reverse(msgs)
	return msgs, err
}
