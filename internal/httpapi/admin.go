package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/store"
)

// adminOnly admits requests bearing the admin token. With no token configured the admin API is
// closed: every request is unauthorized.
func (s *Server) adminOnly(h http.HandlerFunc) http.Handler {
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Hashing both sides makes the comparison constant-time whatever the lengths.
		got := sha256.Sum256([]byte(token))
		if s.cfg.AdminToken == "" || !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.fail(w, r, parley.Errorf(parley.EUnauthorized, "admin API: missing or invalid bearer token (it is closed unless PARLEY_ADMIN_TOKEN is set)"))
			return
		}
		h(w, r)
	})
}

// pathID returns the path value name as an ID; a malformed one names nothing: what not found.
func pathID(r *http.Request, name, what string) (string, error) {
	id, ok := parley.ParseID(r.PathValue(name))
	if !ok {
		return "", parley.Errorf(parley.ENotFound, "%s not found", what)
	}
	return id, nil
}

func (s *Server) listIntegrations(w http.ResponseWriter, r *http.Request) {
	list, err := s.admin.Integrations(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*admin.IntegrationView{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"integrations": list})
}

func (s *Server) createIntegration(w http.ResponseWriter, r *http.Request) {
	var spec admin.IntegrationSpec
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &spec); err != nil {
		s.fail(w, r, err)
		return
	}
	in, key, err := s.admin.CreateIntegration(r.Context(), spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.admin.Integration(r.Context(), in.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.APIKey = key
	WriteJSON(w, http.StatusCreated, v)
}

func (s *Server) getIntegration(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "integration")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.admin.Integration(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) updateIntegration(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "integration")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var spec admin.IntegrationSpec
	if err := DecodeJSON(w, r, s.cfg.BodyLimit, &spec); err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.admin.UpdateIntegration(r.Context(), id, spec); err != nil {
		s.fail(w, r, err)
		return
	}
	s.Forget(id)
	v, err := s.admin.Integration(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, v)
}

func (s *Server) addKey(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "integration")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	key, plain, err := s.admin.AddKey(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Forget(id)
	WriteJSON(w, http.StatusCreated, map[string]any{"id": key.ID, "integration_id": id, "prefix": key.Prefix,
		"api_key": plain, "created_at": key.CreatedAt.UnixMilli()})
}

// revokeKey answers 204 once the key is gone; this server refuses it from the next request.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "integration")
	var keyID string
	if err == nil {
		keyID, err = pathID(r, "key_id", "api key")
	}
	if err == nil {
		err = s.admin.RevokeKey(r.Context(), id, keyID)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Forget(id)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.EventFilter{State: q.Get("status")}
	for name, dst := range map[string]*string{"integration_id": &f.IntegrationID, "event_id": &f.EventID} {
		if v := q.Get(name); v != "" {
			id, ok := parley.ParseID(v)
			if !ok {
				s.fail(w, r, parley.Errorf(parley.EInvalid, "%s must be a UUID", name))
				return
			}
			*dst = id
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, parley.Errorf(parley.EInvalid, "limit must be a number from 1 to 1000"))
			return
		}
		f.Limit = n
	}
	list, err := s.admin.Deliveries(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deliveries": list})
}

func (s *Server) replayDeliveries(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "integration")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req struct {
		EventID string `json:"event_id"`
	}
	if r.ContentLength != 0 {
		if err := DecodeJSON(w, r, s.cfg.BodyLimit, &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.EventID != "" {
		var ok bool
		if req.EventID, ok = parley.ParseID(req.EventID); !ok {
			s.fail(w, r, parley.Errorf(parley.EInvalid, "event_id must be a UUID"))
			return
		}
	}
	list, err := s.admin.Replay(r.Context(), id, req.EventID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"replayed": list})
}
