package httpapi

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/store"
)

// Page is one page request of a message history: at most Limit messages after the message
// After (a message ID; empty from the start).
type Page struct {
	Limit int
	After string
}

// ParsePage reads ?limit= (1..max, default def) and ?after= (a message ID).
func ParsePage(q url.Values, def, max int) (Page, error) {
	p := Page{Limit: def}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return p, parley.Errorf(parley.EInvalid, "limit must be a number from 1 to %d", max)
		}
		p.Limit = n
	}
	if v := q.Get("after"); v != "" {
		id, ok := parley.ParseID(v)
		if !ok {
			return p, errBadCursor
		}
		p.After = id
	}
	return p, nil
}

var errBadCursor = parley.Errorf(parley.EInvalid, "after must be a message_id of this session")

// History reads one page of a session's messages, oldest first, as they are shown: with
// uploaded files resolved to download URLs. next is the cursor of the following page, nil on
// the last.
func History(tx store.ReadTx, engine *chat.Engine, sessionID string, p Page) (msgs []*MessageView, next *string, err error) {
	var afterSeq int64
	if p.After != "" {
		m, err := tx.Message(sessionID, p.After)
		if parley.IsCode(err, parley.ENotFound) {
			return nil, nil, errBadCursor
		}
		if err != nil {
			return nil, nil, err
		}
		afterSeq = m.Seq
	}
	// One more than asked tells whether there is a next page.
	rows, err := tx.Messages(sessionID, afterSeq, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	if len(rows) > p.Limit {
		rows = rows[:p.Limit]
		next = &rows[p.Limit-1].ID
	}
	msgs = make([]*MessageView, 0, len(rows))
	for _, m := range rows {
		v, err := ShowMessage(tx, engine, m)
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, v)
	}
	return msgs, next, nil
}

// ShowMessage returns how a message is shown, its uploaded files resolved to download URLs.
func ShowMessage(tx store.ReadTx, engine *chat.Engine, m *parley.Message) (*MessageView, error) {
	v := NewMessageView(m)
	if len(m.Attachments) > 0 {
		atts, err := engine.OutboundAttachments(tx, m.Attachments)
		if err != nil {
			return nil, err
		}
		v.Attachments = atts
	}
	return v, nil
}

// View runs fn in a read transaction of st and answers 200 with what it returns, or the error.
func View(w http.ResponseWriter, r *http.Request, st store.Store, log *slog.Logger, fn func(tx store.ReadTx) (any, error)) {
	var v any
	err := st.View(r.Context(), func(tx store.ReadTx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		WriteError(w, r, log, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}
