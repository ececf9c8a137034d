package console

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/agents"
)

// Cookie, header and form names, and where the cookies go.
const (
	loginCookie      = "parley_login"      // a console login
	loginCSRFCookie  = "parley_login_csrf" // the login form's double-submit token
	csrfHeader       = "X-CSRF-Token"      // the login's CSRF token, on every change the console asks
	csrfField        = "csrf_token"        // the same, in forms
	loginFormTimeout = 30 * time.Minute    // how long a login form may be filled in
	loginCookiePath  = "/"                 // the API and the console share the login
	loginFormPath    = "/console/login"    // the login form's token goes only there
)

// agentHandler is a handler of the agent API, called with the authenticated agent.
type agentHandler func(w http.ResponseWriter, r *http.Request, a *parley.Agent)

// agentOnly authenticates the caller, by API token (Authorization: Bearer) or by console login
// (its cookie), before h. A change asked with the cookie must carry the login's CSRF token and,
// when the browser says where it comes from, come from this origin: a cookie is sent by the
// browser whoever asks, a token only by a page parley served.
func (s *Server) agentOnly(h agentHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, cookie, err := s.credential(r.Context(), r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if cookie != "" && !safeMethod(r.Method) {
			if err := checkCSRF(r, agents.CSRFToken(cookie), r.Header.Get(csrfHeader)); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		h(w, r, a)
	})
}

// credential returns the agent whose API token or console login the request carries, and the
// login's cookie when that is what it carries. A stream asks again while it runs, so a token
// revoked or a login ended closes it.
func (s *Server) credential(ctx context.Context, r *http.Request) (a *parley.Agent, cookie string, err error) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		// A request that names a credential is judged by it alone, never by a cookie too.
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			return nil, "", parley.Errorf(parley.EUnauthorized, "use Authorization: Bearer <agent token>")
		}
		a, err := s.agents.ByToken(ctx, strings.TrimSpace(token))
		return a, "", err
	}
	cookie = cookieValue(r, loginCookie)
	a, err = s.agents.ByLogin(ctx, cookie)
	return a, cookie, err
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

var errCSRF = parley.Errorf(parley.EForbidden, "missing or invalid CSRF token; reload the console")

// checkCSRF checks a change asked by a browser: the token it sent must be want, and the page
// that asked must be of this origin when the browser says which (Origin, or Sec-Fetch-Site).
func checkCSRF(r *http.Request, want, got string) error {
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return errCSRF
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errCSRF
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return errCSRF
		}
	}
	return nil
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// secure reports whether the browser reached parley over HTTPS, directly or through a proxy
// that says so. Believing any X-Forwarded-Proto is safe here: it can only make cookies stricter.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie sets a cookie scripts cannot read (HttpOnly), not sent on cross-site subrequests
// (SameSite), and only over HTTPS when the console is served so.
func setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge time.Duration, site http.SameSite) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: secure(r), SameSite: site}
	switch {
	case value == "":
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}
