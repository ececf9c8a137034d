package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/parleyhq/parley"
)

// Router is one http.ServeMux route table that answers a known path with the wrong method
// 405 method-not-allowed (with Allow) and an unknown path 404 not-found, both in the API's
// error shape instead of the mux's plain text.
type Router struct {
	mux     *http.ServeMux
	log     *slog.Logger
	methods map[string][]string // path pattern -> methods
	order   []string
	mounts  []string
}

// NewRouter returns an empty Router.
func NewRouter(log *slog.Logger) *Router {
	return &Router{mux: http.NewServeMux(), log: log, methods: map[string][]string{}}
}

// Handle routes method and path (a ServeMux pattern path) to h.
func (rt *Router) Handle(method, path string, h http.Handler) {
	rt.mux.Handle(method+" "+path, h)
	if _, ok := rt.methods[path]; !ok {
		rt.order = append(rt.order, path)
	}
	rt.methods[path] = append(rt.methods[path], method)
}

// HandleFunc routes method and path to f.
func (rt *Router) HandleFunc(method, path string, f http.HandlerFunc) { rt.Handle(method, path, f) }

// Mount routes everything under prefix (a pattern ending in /) to h, whatever the method.
func (rt *Router) Mount(prefix string, h http.Handler) {
	rt.mux.Handle(prefix, h)
	rt.mounts = append(rt.mounts, prefix)
}

// Route is one entry of the route table: a method and a ServeMux pattern path. Method is empty
// for a Mount.
type Route struct{ Method, Path string }

// Routes lists what was registered, in order: the OpenAPI document's test holds it to the
// document, so no route goes undocumented.
func (rt *Router) Routes() []Route {
	var out []Route
	for _, path := range rt.order {
		for _, m := range rt.methods[path] {
			out = append(out, Route{m, path})
		}
	}
	for _, p := range rt.mounts {
		out = append(out, Route{"", p})
	}
	return out
}

// Handler returns the finished route table. Call it once, after every Handle.
func (rt *Router) Handler() http.Handler {
	for _, path := range rt.order {
		allow := slices.Clone(rt.methods[path])
		if slices.Contains(allow, http.MethodGet) && !slices.Contains(allow, http.MethodHead) {
			allow = append(allow, http.MethodHead)
		}
		allowed := strings.Join(allow, ", ")
		// A pattern without a method matches only when no method-specific one does.
		rt.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed)
			WriteError(w, r, rt.log, parley.Errorf(parley.EMethodNotAllowed, "method %s is not allowed here; use %s", r.Method, allowed))
		})
	}
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, rt.log, parley.Errorf(parley.ENotFound, "no such endpoint: %s", r.URL.Path))
	})
	return rt.mux
}
