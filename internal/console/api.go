package console

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/store"
)

// Request bodies of the agent API. Unknown fields are refused.
type (
	// sendRequest has the shape of the inbound API's messages (SPEC §2).
	sendRequest struct {
		Input *struct {
			Text        string              `json:"text"`
			Attachments []parley.Attachment `json:"attachments"`
		} `json:"input"`
	}
	transferRequest struct {
		AgentID string `json:"agent_id"`
	}
	typingRequest struct {
		Action string `json:"action"`
	}
)

// AgentView is an agent as other agents see them.
type AgentView struct {
	parley.AgentRef
	Email        string   `json:"email"`
	Integrations []string `json:"integrations"` // [] = all
}

func agentView(a *parley.Agent) AgentView {
	v := AgentView{AgentRef: *a.Ref(), Email: a.Email, Integrations: a.Integrations}
	if v.Integrations == nil {
		v.Integrations = []string{}
	}
	return v
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"agent": agentView(a)})
}

// view runs fn in a read transaction and answers 200 with what it returns.
func (s *Server) view(w http.ResponseWriter, r *http.Request, fn func(tx store.ReadTx) (any, error)) {
	httpapi.View(w, r, s.store, s.log, fn)
}

// IntegrationView names an integration an agent works in.
type IntegrationView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		ins, err := tx.Integrations()
		out := []IntegrationView{}
		for _, in := range ins {
			if a.CanAccess(in.ID) {
				out = append(out, IntegrationView{ID: in.ID, Name: in.Name})
			}
		}
		return map[string]any{"integrations": out}, err
	})
}

// listAgents lists the agents who share an integration with the caller; with integration_id,
// those who may work in that one (whom a conversation of it can be transferred to).
func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	var only string
	if v := r.URL.Query().Get("integration_id"); v != "" {
		id, ok := parley.ParseID(v)
		if !ok || !a.CanAccess(id) {
			s.fail(w, r, parley.Errorf(parley.ENotFound, "integration not found"))
			return
		}
		only = id
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		list, err := tx.Agents()
		out := []AgentView{}
		for _, b := range list {
			if (only != "" && b.CanAccess(only)) || (only == "" && shareIntegration(a, b)) {
				out = append(out, agentView(b))
			}
		}
		return map[string]any{"agents": out}, err
	})
}

func shareIntegration(a, b *parley.Agent) bool {
	if len(a.Integrations) == 0 || len(b.Integrations) == 0 {
		return true
	}
	return slices.ContainsFunc(a.Integrations, b.CanAccess)
}

// Views of the inbox.
const (
	viewQueue = "queue" // waiting for an agent, oldest first
	viewMine  = "mine"  // the caller's, newest first
	viewOpen  = "open"  // every open conversation, newest first
)

// Inbox paging.
const (
	defaultList = 200
	maxList     = 1000
)

func (s *Server) listConversations(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	q := r.URL.Query()
	f := store.ConversationFilter{Limit: defaultList}
	switch q.Get("view") {
	case viewQueue:
		f.HandledBy, f.OldestFirst = parley.HandledByQueue, true
	case viewMine:
		f.HandledBy, f.AssigneeID = parley.HandledByAgent, a.ID
	case viewOpen, "":
	default:
		s.fail(w, r, parley.Errorf(parley.EInvalid, "view must be queue, mine or open"))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxList {
			s.fail(w, r, parley.Errorf(parley.EInvalid, "limit must be a number from 1 to %d", maxList))
			return
		}
		f.Limit = n
	}
	f.IntegrationIDs = a.Integrations
	if v := q.Get("integration_id"); v != "" {
		id, ok := parley.ParseID(v)
		if !ok || !a.CanAccess(id) {
			// A filter on an integration the agent cannot see finds nothing, as on one without
			// conversations: the answer tells nothing about it.
			httpapi.WriteJSON(w, http.StatusOK, map[string]any{"conversations": []any{}, "counts": store.ConversationCounts{}})
			return
		}
		f.IntegrationIDs = []string{id}
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		list, err := tx.ConversationList(f)
		if err != nil {
			return nil, err
		}
		counts, err := tx.ConversationCounts(f.IntegrationIDs, a.ID)
		out := make([]*ConversationView, 0, len(list))
		for _, sum := range list {
			out = append(out, conversationView(sum, false))
		}
		return map[string]any{"conversations": out, "counts": counts}, err
	})
}

// conversationID returns the path's conversation ID. A malformed one names no conversation.
func conversationID(r *http.Request) (string, error) {
	id, ok := parley.ParseID(r.PathValue("id"))
	if !ok {
		return "", errNotFound
	}
	return id, nil
}

var errNotFound = parley.Errorf(parley.ENotFound, "conversation not found")

// readable returns the summary of a conversation the agent may see, whatever its status.
func readable(tx store.ReadTx, a *parley.Agent, id string) (*store.ConversationSummary, error) {
	list, err := tx.ConversationList(store.ConversationFilter{IDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 || !a.CanAccess(list[0].Conversation.IntegrationID) {
		return nil, errNotFound
	}
	return list[0], nil
}

func (s *Server) getConversation(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		sum, err := readable(tx, a, id)
		if err != nil {
			return nil, err
		}
		return map[string]any{"conversation": conversationView(sum, true)}, nil
	})
}

// History paging.
const (
	defaultPage = 100
	maxPage     = 500
)

// listMessages returns the history of the conversation's session, every conversation of it,
// oldest first, cursor-paged as the inbound API's read extension. Reading is not joining and
// marks nothing read (POST read does).
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := httpapi.ParsePage(r.URL.Query(), defaultPage, maxPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		sum, err := readable(tx, a, id)
		if err != nil {
			return nil, err
		}
		msgs, next, err := httpapi.History(tx, s.chat, sum.Conversation.SessionID, p)
		if err != nil {
			return nil, err
		}
		return map[string]any{"messages": msgs, "next": next}, nil
	})
}

// act runs an agent operation on the path's conversation and answers status: with the
// conversation's view as it then is, or nothing for 204.
func (s *Server) act(w http.ResponseWriter, r *http.Request, a *parley.Agent, status int,
	op func(tx store.Tx, id string) error) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.Update(r.Context(), func(tx store.Tx) error { return op(tx, id) }); err != nil {
		s.fail(w, r, err)
		return
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	s.view(w, r, func(tx store.ReadTx) (any, error) {
		sum, err := readable(tx, a, id)
		if err != nil {
			return nil, err
		}
		return map[string]any{"conversation": conversationView(sum, false)}, nil
	})
}

func (s *Server) join(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	s.act(w, r, a, http.StatusOK, func(tx store.Tx, id string) error { return s.chat.Join(tx, a, id) })
}

func (s *Server) leave(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	s.act(w, r, a, http.StatusOK, func(tx store.Tx, id string) error { return s.chat.Leave(tx, a, id) })
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	s.act(w, r, a, http.StatusOK, func(tx store.Tx, id string) error { return s.chat.Resolve(tx, a, id) })
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	var req transferRequest
	if err := httpapi.DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	to, ok := parley.ParseID(req.AgentID)
	if !ok {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "agent_id must be an agent's ID"))
		return
	}
	s.act(w, r, a, http.StatusOK, func(tx store.Tx, id string) error { return s.chat.Transfer(tx, a, id, to) })
}

func (s *Server) typing(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	var req typingRequest
	if err := httpapi.DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.act(w, r, a, http.StatusNoContent, func(tx store.Tx, id string) error { return s.chat.SetTyping(tx, a, id, req.Action) })
}

func (s *Server) markRead(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var ids []string
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		var err error
		ids, err = s.chat.MarkRead(tx, a, id)
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"message_ids": ids})
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req sendRequest
	if err := httpapi.DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Input == nil {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "input is required"))
		return
	}
	if err := parley.CheckMessage(req.Input.Text, req.Input.Attachments); err != nil {
		s.fail(w, r, err)
		return
	}
	var m *parley.Message
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		var err error
		m, err = s.chat.PostAgentMessage(tx, a, id, chat.AgentMessage{Text: req.Input.Text, Attachments: req.Input.Attachments})
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var v *httpapi.MessageView
	err = s.store.View(r.Context(), func(tx store.ReadTx) error {
		var err error
		v, err = httpapi.ShowMessage(tx, s.chat, m)
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, map[string]any{"message": v})
}

// uploadURL gives an agent a URL to PUT a file to, for the conversation's session: the agent
// then names its file_id in a message's attachments, and the user and the integrator get a
// download URL. The same rules as the inbound API's upload-url apply (type allow-list, size,
// one PUT, expiry).
func (s *Server) uploadURL(w http.ResponseWriter, r *http.Request, a *parley.Agent) {
	id, err := conversationID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		Filename    *string `json:"filename"`
		ContentType *string `json:"content_type"`
	}
	if err := httpapi.DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Filename == nil || req.ContentType == nil {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "filename and content_type are required"))
		return
	}
	if s.cfg.Files == nil {
		s.fail(w, r, parley.Errorf(parley.ENotImplemented, "files are not available on this server"))
		return
	}
	up, err := s.cfg.Files.CheckUpload(*req.Filename, *req.ContentType)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var fileID, url string
	err = s.store.Update(r.Context(), func(tx store.Tx) error {
		sess, err := s.chat.AgentSession(tx, a, id)
		if err != nil {
			return err
		}
		f, u, err := s.cfg.Files.NewUpload(tx, sess, up)
		if err == nil {
			fileID, url = f.ID, u
		}
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"upload_url": url, "file_id": fileID})
}
