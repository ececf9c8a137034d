package httpapi

import (
	"net/http"

	"github.com/parleyhq/parley/internal/admin"
)

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	list, err := s.admin.Agents(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"agents": list})
}

func (s *Server) createAgent(w http.ResponseWriter, r *http.Request) {
	var spec admin.AgentSpec
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &spec); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.admin.CreateAgent(r.Context(), spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) addAgentToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "agent")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k, plain, err := s.admin.AddAgentToken(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]any{"id": k.ID, "agent_id": id, "prefix": k.Prefix,
		"token": plain, "created_at": k.CreatedAt})
}

func (s *Server) revokeAgentToken(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "agent")
	var tokenID string
	if err == nil {
		tokenID, err = pathID(r, "token_id", "agent token")
	}
	if err == nil {
		err = s.admin.RevokeAgentToken(r.Context(), id, tokenID)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
