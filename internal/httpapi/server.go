// Package httpapi is parley's HTTP surface for integrators and operators: the Moveo-compatible
// inbound API with its read extensions, the admin API, and the operational endpoints. Handlers
// parse, validate, call the domain (chat for the lifecycle, admin for configuration) and write;
// they decide nothing about sessions themselves.
//
// It must never answer an error outside the {error_code, error_message} shape, nor show an
// internal error's cause to a caller.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
)

// Config is what the HTTP surface needs from parley's configuration.
type Config struct {
	BodyLimit      int64          // largest JSON body accepted
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	AdminToken     string         // bearer token of the admin API; empty closes it
	AuthCacheTTL   time.Duration  // how long an integration's keys are cached
	Files          *files.Service // uploads and downloads; nil answers 501 on the file routes
}

// IdempotencyWindow is how long an Idempotency-Key is remembered (SPEC §2).
const IdempotencyWindow = 24 * time.Hour

// Server is the inbound and admin API.
type Server struct {
	cfg   Config
	store store.Store
	chat  *chat.Engine
	admin *admin.Service
	log   *slog.Logger
	auth  *authenticator
}

// New returns a Server.
func New(cfg Config, st store.Store, engine *chat.Engine, adm *admin.Service, log *slog.Logger) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	if cfg.AuthCacheTTL <= 0 {
		cfg.AuthCacheTTL = time.Second
	}
	return &Server{cfg: cfg, store: st, chat: engine, admin: adm, log: log,
		auth: newAuthenticator(st, cfg.AuthCacheTTL, cfg.TrustedProxies)}
}

// Register adds the inbound and admin routes to rt. Read top to bottom, it is the API.
func (s *Server) Register(rt *Router) {
	const base = "/v1/custom/{integration_id}/sessions"
	const sess = base + "/{session_id}"
	in := s.inbound
	rt.Handle("POST", base, in(s.createSession))
	rt.Handle("GET", sess, in(s.getSession))
	rt.Handle("PATCH", sess+"/context", in(s.updateContext))
	rt.Handle("POST", sess+"/close", in(s.closeSession))
	rt.Handle("GET", sess+"/messages", in(s.listMessages))
	rt.Handle("POST", sess+"/messages", in(s.postMessage))
	rt.Handle("POST", sess+"/messages/agent", in(s.postAgentMessage))
	rt.Handle("POST", sess+"/messages/read", in(s.markReceipts(parley.ReceiptRead)))
	rt.Handle("POST", sess+"/messages/delivered", in(s.markReceipts(parley.ReceiptDelivered)))
	rt.Handle("POST", sess+"/conversation/close", in(s.closeConversation))
	rt.Handle("POST", sess+"/conversation/reopen", in(s.reopenConversation))
	rt.Handle("POST", sess+"/handover", in(s.handover))
	rt.Handle("POST", sess+"/files/upload-url", in(s.uploadURL))
	rt.Handle("POST", sess+"/files/download-url", in(s.downloadURL))
	// parley's own signed file URLs: the signature is the credential.
	rt.HandleFunc("PUT", blob.FilesPath+"{file_id}", s.putFile)
	rt.HandleFunc("GET", blob.FilesPath+"{file_id}", s.getFile)

	const adm = "/admin/v1"
	a := s.adminOnly
	rt.Handle("GET", adm+"/integrations", a(s.listIntegrations))
	rt.Handle("POST", adm+"/integrations", a(s.createIntegration))
	rt.Handle("GET", adm+"/integrations/{id}", a(s.getIntegration))
	rt.Handle("PATCH", adm+"/integrations/{id}", a(s.updateIntegration))
	rt.Handle("POST", adm+"/integrations/{id}/keys", a(s.addKey))
	rt.Handle("DELETE", adm+"/integrations/{id}/keys/{key_id}", a(s.revokeKey))
	rt.Handle("GET", adm+"/deliveries", a(s.listDeliveries))
	rt.Handle("POST", adm+"/integrations/{id}/deliveries/replay", a(s.replayDeliveries))
	rt.Handle("GET", adm+"/agents", a(s.listAgents))
	rt.Handle("POST", adm+"/agents", a(s.createAgent))
	rt.Handle("POST", adm+"/agents/{id}/tokens", a(s.addAgentToken))
	rt.Handle("DELETE", adm+"/agents/{id}/tokens/{token_id}", a(s.revokeAgentToken))
}

// inboundHandler is a handler of the inbound API, called with the authenticated integration.
type inboundHandler func(w http.ResponseWriter, r *http.Request, in *parley.Integration)

// inbound authenticates the caller and applies the integration's rate limit before h.
func (s *Server) inbound(h inboundHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, err := s.auth.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if e.limiter != nil {
			if ok, wait := e.limiter.allow(time.Now()); !ok {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				s.fail(w, r, parley.Errorf(parley.ERateLimited, "over the integration's limit of %d requests per second", e.in.RateLimit))
				return
			}
		}
		h(w, r, e.in)
	})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, s.log, err)
}

// sessionID returns the path's session ID. A malformed one names no session.
func sessionID(r *http.Request) (string, error) {
	id, ok := parley.ParseID(r.PathValue("session_id"))
	if !ok {
		return "", parley.Errorf(parley.ESessionNotFound, "session not found")
	}
	return id, nil
}

// errIdempotencyRace marks a request that lost a race for its Idempotency-Key.
var errIdempotencyRace = errors.New("idempotency key taken by a concurrent request")

// exec runs fn in a write transaction and answers status with the body fn returns. With an
// Idempotency-Key, a key the integration already used within the window gets the first
// response again, and fn does not run: nothing changes. The response is stored in the same
// transaction as the change, so a crash cannot separate them.
func (s *Server) exec(w http.ResponseWriter, r *http.Request, in *parley.Integration, status int, fn func(tx store.Tx) (any, error)) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		s.fail(w, r, parley.Errorf(parley.EInvalid, "Idempotency-Key is longer than 255 bytes"))
		return
	}
	if !utf8.ValidString(key) {
		// Refused on both stores alike: PostgreSQL text cannot hold it (as with bodies).
		s.fail(w, r, parley.Errorf(parley.EInvalid, "Idempotency-Key is not valid UTF-8"))
		return
	}
	var outStatus int
	var body []byte
	run := func(tx store.Tx) error {
		now := s.chat.Now()
		since := now.Add(-IdempotencyWindow)
		if key != "" {
			st, b, err := tx.IdempotentResponse(in.ID, key, since)
			if err == nil {
				outStatus, body = st, b
				return nil
			}
			if !parley.IsCode(err, parley.ENotFound) {
				return err
			}
		}
		v, err := fn(tx)
		if err != nil {
			return err
		}
		if body, err = parley.Marshal(v); err != nil {
			return err
		}
		outStatus = status
		if key == "" {
			return nil
		}
		if err := tx.SaveIdempotentResponse(in.ID, key, status, body, now, since); err != nil {
			if parley.IsCode(err, parley.EConflict) {
				return errIdempotencyRace
			}
			return err
		}
		return nil
	}
	err := s.store.Update(r.Context(), run)
	if errors.Is(err, errIdempotencyRace) {
		// Another request with the key committed first: this one rolled back, and now finds
		// that request's response.
		err = s.store.Update(r.Context(), run)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeRaw(w, outStatus, body)
}

// view runs fn in a read transaction and answers 200 with what it returns.
func (s *Server) view(w http.ResponseWriter, r *http.Request, fn func(tx store.ReadTx) (any, error)) {
	View(w, r, s.store, s.log, fn)
}

// Forget drops cached credentials of an integration (after an operator changed it).
func (s *Server) Forget(integrationID string) { s.auth.forget(integrationID) }

// Ready reports whether the store answers.
func (s *Server) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// notYet answers a route whose feature is not built yet.
func (s *Server) notYet(what string) inboundHandler {
	return func(w http.ResponseWriter, r *http.Request, in *parley.Integration) {
		s.fail(w, r, parley.Errorf(parley.ENotImplemented, "%s are not available yet", what))
	}
}

// RegisterOps adds /healthz, /readyz and /metrics.
func RegisterOps(rt *Router, ready func(context.Context) error, reg *metrics.Registry, log *slog.Logger) {
	rt.HandleFunc("GET", "/healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.HandleFunc("GET", "/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.Warn("not ready", "err", err)
			WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.HandleFunc("GET", "/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		reg.Write(w)
	})
}
