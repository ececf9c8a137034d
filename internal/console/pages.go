package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/agents"
	"github.com/parleyhq/parley/internal/httpapi"
)

// The console's files are embedded in the binary: there is nothing to build or deploy beside it.
//
//go:embed assets
var assetFS embed.FS

var (
	pages  = template.Must(template.ParseFS(assetFS, "assets/*.html"))
	assets = loadAssets()
)

// asset is a static file with the ETag of its content.
type asset struct {
	body []byte
	etag string
	mime string
}

func loadAssets() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".html") {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path.Base(p)] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, mime: mime.TypeByExtension(path.Ext(p))}
		return nil
	})
	if err != nil {
		panic("console: reading embedded assets: " + err.Error()) // they are compiled in
	}
	return out
}

// pageHeaders are the headers of every console page: only parley's own scripts and styles run,
// and no other site may frame it. Pictures may come from anywhere (attachments, avatars).
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: http: data:; media-src 'self' https: http:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("name")]
	if !ok {
		s.fail(w, r, parley.Errorf(parley.ENotFound, "no such file"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.mime)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: an upgraded binary serves new files at once
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Write(a.body)
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("console: rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// index serves the console to a logged-in agent, and sends anyone else to the login form.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	cookie := cookieValue(r, loginCookie)
	a, err := s.agents.ByLogin(r.Context(), cookie)
	if parley.IsCode(err, parley.EUnauthorized) {
		http.Redirect(w, r, loginFormPath, http.StatusSeeOther)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, http.StatusOK, "index.html", map[string]any{
		"CSRF": agents.CSRFToken(cookie), "Agent": agentView(a), "Assets": assets,
	})
}

// loginForm is what the login page shows.
type loginForm struct {
	CSRF  string
	Email string
	Error string
}

// loginPage shows the login form, with a fresh double-submit token: the same random value in a
// cookie and in the form, which a page of another site can neither read nor set. It shows it
// even to a browser that has a login (which may not be its user's): signing in replaces it.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, http.StatusOK, loginForm{})
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, status int, f loginForm) {
	var b [32]byte
	rand.Read(b[:])
	f.CSRF = base64.RawURLEncoding.EncodeToString(b[:])
	setCookie(w, r, loginCSRFCookie, f.CSRF, loginFormPath, loginFormTimeout, http.SameSiteStrictMode)
	s.render(w, status, "login.html", f)
}

// maxFormBytes bounds a login or logout form.
const maxFormBytes = 8 << 10

// login checks the form and starts a login. The login's cookie is always a new value: one the
// browser already had (perhaps planted by someone else) is ended, never adopted.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.showLogin(w, r, http.StatusBadRequest, loginForm{Error: "The form could not be read. Try again."})
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if checkCSRF(r, cookieValue(r, loginCSRFCookie), r.PostForm.Get(csrfField)) != nil {
		s.showLogin(w, r, http.StatusForbidden, loginForm{Email: email, Error: "The form expired. Please sign in again."})
		return
	}
	ip := httpapi.ClientIP(r, s.cfg.TrustedProxies).String()
	plain, _, err := s.agents.Login(r.Context(), email, r.PostForm.Get("password"), ip)
	if err != nil {
		status, msg := http.StatusInternalServerError, "Something went wrong. Try again in a moment."
		switch parley.ErrorCode(err) {
		case parley.EUnauthorized:
			status, msg = http.StatusUnauthorized, "Wrong email or password."
		case parley.ERateLimited:
			m := parley.ErrorMessage(err)
			status, msg = http.StatusTooManyRequests, strings.ToUpper(m[:1])+m[1:]+"."
		default:
			s.log.Error("console: login failed", "request_id", httpapi.RequestID(r.Context()), "err", err)
		}
		s.showLogin(w, r, status, loginForm{Email: email, Error: msg})
		return
	}
	if old := cookieValue(r, loginCookie); old != "" {
		if err := s.agents.Logout(r.Context(), old); err != nil {
			s.log.Warn("console: ending a previous login", "err", err)
		}
	}
	setCookie(w, r, loginCSRFCookie, "", loginFormPath, 0, http.SameSiteStrictMode)
	setCookie(w, r, loginCookie, plain, loginCookiePath, agents.DefaultLoginTTL, http.SameSiteLaxMode)
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// logout ends the login. It needs the login's CSRF token, so no other site can sign an agent out.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	cookie := cookieValue(r, loginCookie)
	if err := r.ParseForm(); err != nil || cookie == "" ||
		checkCSRF(r, agents.CSRFToken(cookie), r.PostForm.Get(csrfField)) != nil {
		s.fail(w, r, errCSRF)
		return
	}
	if err := s.agents.Logout(r.Context(), cookie); err != nil {
		s.fail(w, r, err)
		return
	}
	setCookie(w, r, loginCookie, "", loginCookiePath, 0, http.SameSiteLaxMode)
	http.Redirect(w, r, loginFormPath, http.StatusSeeOther)
}
