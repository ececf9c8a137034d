package console

import (
	"encoding/json"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// ConversationView is a conversation as the agent API shows it, in lists, in the stream and on
// its own (then with the session's context).
type ConversationView struct {
	ID                string           `json:"id"`
	SessionID         string           `json:"session_id"`
	IntegrationID     string           `json:"integration_id"`
	IntegrationName   string           `json:"integration_name"`
	ExternalSessionID string           `json:"external_session_id,omitempty"`
	SessionStatus     string           `json:"session_status"`
	Status            string           `json:"status"`
	HandledBy         string           `json:"handled_by"`
	Assignee          *parley.AgentRef `json:"assignee"`
	User              UserView         `json:"user"`
	CreatedAt         int64            `json:"created_at"`
	UpdatedAt         int64            `json:"updated_at"`
	LastMessage       *LastMessageView `json:"last_message"`
	Unread            int              `json:"unread"` // user messages no agent has read
	Context           json.RawMessage  `json:"context,omitempty"`
}

// UserView is who the end user is, as far as the session's context says.
type UserView struct {
	Name   string `json:"name"`
	Email  string `json:"email,omitempty"`
	Avatar string `json:"avatar,omitempty"`
}

// LastMessageView is the newest message of a conversation's session, for an inbox line.
type LastMessageView struct {
	ID        string           `json:"id"`
	Author    string           `json:"author"`
	Agent     *parley.AgentRef `json:"agent,omitempty"`
	Preview   string           `json:"preview"`
	CreatedAt int64            `json:"created_at"`
}

func conversationView(sum *store.ConversationSummary, withContext bool) *ConversationView {
	c := sum.Conversation
	v := &ConversationView{ID: c.ID, SessionID: c.SessionID, IntegrationID: c.IntegrationID,
		IntegrationName: sum.IntegrationName, ExternalSessionID: sum.ExternalSessionID, SessionStatus: sum.SessionStatus,
		Status: c.Status, HandledBy: c.HandledBy, Assignee: sum.Assignee, User: userOf(sum.Context, c.SessionID),
		CreatedAt: c.CreatedAt.UnixMilli(), UpdatedAt: c.UpdatedAt.UnixMilli(), Unread: sum.Unread}
	if withContext {
		v.Context = sum.Context
	}
	if m := sum.Last; m != nil {
		v.LastMessage = &LastMessageView{ID: m.ID, Author: m.Author, Agent: m.Agent, Preview: preview(m), CreatedAt: m.CreatedAt.UnixMilli()}
	}
	return v
}

// userOf reads who the user is from a session's context: user.display_name (else a name made
// from the session ID, so every line of an inbox has one), email and avatar.
func userOf(context []byte, sessionID string) UserView {
	var c struct {
		User map[string]any `json:"user"`
	}
	json.Unmarshal(context, &c) // a context is always an object; a wrong type just names nobody
	str := func(k string) string { s, _ := c.User[k].(string); return strings.TrimSpace(s) }
	u := UserView{Name: str("display_name"), Email: str("email"), Avatar: str("avatar")}
	if u.Name == "" {
		u.Name = "Visitor " + strings.ToUpper(sessionID[len(sessionID)-4:])
	}
	if !strings.HasPrefix(u.Avatar, "https://") && !strings.HasPrefix(u.Avatar, "http://") {
		u.Avatar = "" // only web pictures: the console will not load other schemes
	}
	return u
}

const previewRunes = 140

// preview is a line of text for a message: its text, the first text of a brain's responses, or
// what it carries.
func preview(m *parley.Message) string {
	text := m.Text
	if text == "" && len(m.Responses) > 0 {
		var rs []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		json.Unmarshal(m.Responses, &rs)
		for _, r := range rs {
			if r.Text != "" {
				text = r.Text
				break
			}
		}
		if text == "" && len(rs) > 0 {
			text = "[" + rs[0].Type + "]"
		}
	}
	if text == "" && len(m.Attachments) > 0 {
		text = "[" + m.Attachments[0].Type + "]"
		if n := m.Attachments[0].Filename; n != "" {
			text += " " + n
		}
	}
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > previewRunes {
		text = string(r[:previewRunes-1]) + "…"
	}
	return text
}
