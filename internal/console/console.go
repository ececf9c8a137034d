// Package console is parley's live-chat side for human agents (SPEC §4): the agent REST API
// (token or console login), its live event stream (Server-Sent Events), and the console itself,
// a page served from assets embedded in the binary (HTML, CSS and a little JavaScript; nothing
// to build). The console is a client of the same agent API, so another front end can be built
// on it.
//
// Handlers authenticate, parse, call chat for every change and write; they decide nothing about
// conversations themselves. It must never let a request carried by the login cookie change
// anything without the login's CSRF token, nor show an agent anything of an integration they
// may not work in: such a conversation answers 404, as if it did not exist.
package console

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/parleyhq/parley/internal/agents"
	"github.com/parleyhq/parley/internal/chat"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/httpapi"
	"github.com/parleyhq/parley/internal/live"
	"github.com/parleyhq/parley/internal/store"
)

// Config tunes the console.
type Config struct {
	BodyLimit      int64          // largest JSON body accepted
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed (login rate limits)
	Files          *files.Service // uploads by agents; nil answers 501
	// Heartbeat is how often an idle stream is pinged and its credential checked again. It must
	// be positive (config.Validate).
	Heartbeat time.Duration
}

// Server serves the agent API, its stream and the console.
type Server struct {
	cfg    Config
	store  store.Store
	chat   *chat.Engine
	agents *agents.Service
	hub    *live.Hub
	log    *slog.Logger
}

// New returns a Server. Its Hub must be started (it is a background service) for streams to
// hear of anything.
func New(cfg Config, st store.Store, engine *chat.Engine, ag *agents.Service, log *slog.Logger) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = 1 << 20
	}
	s := &Server{cfg: cfg, store: st, chat: engine, agents: ag, log: log}
	s.hub = live.New(st, newSource(st, engine), log)
	return s
}

// Hub returns the live hub, a service to start and stop with the others.
func (s *Server) Hub() *live.Hub { return s.hub }

// Register adds the agent API and the console to rt. Read top to bottom, it is the surface.
func (s *Server) Register(rt *httpapi.Router) {
	const api = "/agent/v1"
	const conv = api + "/conversations/{id}"
	a := s.agentOnly
	rt.Handle("GET", api+"/me", a(s.me))
	rt.Handle("GET", api+"/integrations", a(s.listIntegrations))
	rt.Handle("GET", api+"/agents", a(s.listAgents))
	rt.Handle("GET", api+"/conversations", a(s.listConversations))
	rt.Handle("GET", conv, a(s.getConversation))
	rt.Handle("GET", conv+"/messages", a(s.listMessages))
	rt.Handle("POST", conv+"/messages", a(s.sendMessage))
	rt.Handle("POST", conv+"/join", a(s.join))
	rt.Handle("POST", conv+"/leave", a(s.leave))
	rt.Handle("POST", conv+"/transfer", a(s.transfer))
	rt.Handle("POST", conv+"/resolve", a(s.resolve))
	rt.Handle("POST", conv+"/typing", a(s.typing))
	rt.Handle("POST", conv+"/read", a(s.markRead))
	rt.Handle("POST", conv+"/files/upload-url", a(s.uploadURL))
	rt.Handle("GET", api+"/stream", a(s.stream))

	rt.HandleFunc("GET", "/console", s.index)
	rt.HandleFunc("GET", "/console/{$}", redirect("/console"))
	rt.HandleFunc("GET", "/console/login", s.loginPage)
	rt.HandleFunc("POST", "/console/login", s.login)
	rt.HandleFunc("POST", "/console/logout", s.logout)
	rt.HandleFunc("GET", "/console/assets/{name}", s.asset)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, s.log, err)
}

func redirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusSeeOther) }
}
