package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/config"
)

// TestIntegrationLimits checks that an agent limited to some integrations sees and touches
// nothing of the others: their conversations are not found (404, as if they did not exist),
// never listed, never counted, never streamed.
func TestIntegrationLimits(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		shop := srv.NewIntegration(t, admin.IntegrationSpec{Name: ptr("Shop")})
		bank := srv.NewIntegration(t, admin.IntegrationSpec{Name: ptr("Bank")})
		sam := newAgent(t, srv, "Sam Shop", shop.ID)
		all := newAgent(t, srv, "Alex All")
		samStream := sam.openStream()

		_, shopConv := handedOver(t, shop, "Shop User", "hi")
		bankSID, bankConv := handedOver(t, bank, "Bank User", "hi")
		samStream.wait("the shop's conversation", eventWait, conversationEvent(shopConv, nil))

		for _, view := range []string{"queue", "open"} {
			if l := sam.list(view); len(l) != 1 || l[0]["id"] != shopConv {
				t.Errorf("Sam's %s: %v", view, l)
			}
			if l := all.list(view); len(l) != 2 {
				t.Errorf("Alex's %s: %d conversations, want 2", view, len(l))
			}
		}
		counts := sam.call("GET", "/conversations", nil).Expect(t, http.StatusOK).JSON(t)["counts"].(map[string]any)
		if counts["open"] != 1.0 || counts["queue"] != 1.0 {
			t.Errorf("Sam's counts: %v", counts)
		}
		if l := sam.call("GET", "/conversations?integration_id="+bank.ID, nil).Expect(t, http.StatusOK).JSON(t)["conversations"].([]any); len(l) != 0 {
			t.Errorf("Sam filtering on the bank: %v", l)
		}
		ints := sam.call("GET", "/integrations", nil).Expect(t, http.StatusOK).JSON(t)["integrations"].([]any)
		if len(ints) != 1 || ints[0].(map[string]any)["id"] != shop.ID {
			t.Errorf("Sam's integrations: %v", ints)
		}

		// Every read and every action on the bank's conversation: not found, and nothing changes.
		for _, c := range []struct{ method, path string }{
			{"GET", ""}, {"GET", "/messages"}, {"POST", "/join"}, {"POST", "/leave"}, {"POST", "/resolve"},
			{"POST", "/read"}, {"POST", "/messages"}, {"POST", "/typing"}, {"POST", "/transfer"},
		} {
			var body any
			switch c.path {
			case "/messages":
				if c.method == "POST" {
					body = map[string]any{"input": map[string]any{"text": "peek"}}
				}
			case "/typing":
				body = map[string]any{"action": "start"}
			case "/transfer":
				body = map[string]any{"agent_id": sam.ID}
			}
			sam.call(c.method, "/conversations/"+bankConv+c.path, body).ExpectError(t, http.StatusNotFound, parley.ENotFound)
		}
		if got := conversationOf(t, bank, bankSID); got["handled_by"] != "queue" {
			t.Errorf("the bank's conversation changed: %v", got)
		}
		// Nor can a conversation of the shop go to an agent of the bank only.
		bart := newAgent(t, srv, "Bart Bank", bank.ID)
		sam.call("POST", "/conversations/"+shopConv+"/transfer", map[string]any{"agent_id": bart.ID}).
			ExpectError(t, http.StatusBadRequest, parley.EInvalid)
		agents := sam.call("GET", "/agents?integration_id="+shop.ID, nil).Expect(t, http.StatusOK).JSON(t)["agents"].([]any)
		for _, a := range agents {
			if a.(map[string]any)["agent_id"] == bart.ID {
				t.Errorf("Bart is offered for a shop conversation: %v", agents)
			}
		}
		sam.call("GET", "/agents?integration_id="+bank.ID, nil).ExpectError(t, http.StatusNotFound, parley.ENotFound)

		// What happens in the bank never reaches Sam's stream.
		all.call("POST", "/conversations/"+bankConv+"/join", nil).Expect(t, http.StatusOK)
		m := bank.Send(bankSID, "secret")
		all.call("POST", "/conversations/"+shopConv+"/join", nil).Expect(t, http.StatusOK)
		samStream.wait("a later shop change", eventWait, conversationEvent(shopConv, func(c map[string]any) bool { return c["handled_by"] == "agent" }))
		samStream.none("anything of the bank", func(e event) bool {
			return e.Data["integration_id"] == bank.ID || e.Data["id"] == bankConv || e.Data["session_id"] == bankSID ||
				messageEvent(m, nil)(e)
		})

		// No token, a wrong one, or an integration's API key: unauthorized.
		for _, auth := range []string{"", "Bearer prla_wrong", "Bearer " + shop.Key, "apikey " + shop.Key, sam.Token} {
			srv.Do(t, "GET", "/agent/v1/conversations", nil, "Authorization", auth).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)
		}
	})
}

// browser is an HTTP client with a cookie jar, as a browser keeps cookies.
type browser struct {
	t      *testing.T
	srv    *apptest.Server
	client *http.Client
	base   *url.URL
}

func newBrowser(t *testing.T, srv *apptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(srv.URL)
	return &browser{t: t, srv: srv, base: u, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, body io.Reader, headers ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.srv.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func (b *browser) form(path string, values url.Values, headers ...string) (*http.Response, string) {
	return b.do("POST", path, strings.NewReader(values.Encode()), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)...)
}

var tokenField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// loginForm opens the login form and returns its CSRF token.
func (b *browser) loginForm() string {
	b.t.Helper()
	resp, page := b.do("GET", "/console/login", nil)
	m := tokenField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("login form: status %d, token %v", resp.StatusCode, m)
	}
	return m[1]
}

// login signs in and returns the answer.
func (b *browser) login(email, password string) *http.Response {
	b.t.Helper()
	resp, _ := b.form("/console/login", url.Values{"email": {email}, "password": {password}, "csrf_token": {b.loginForm()}})
	return resp
}

var pageToken = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)

// csrfToken opens the console, as a signed-in agent, and returns the login's CSRF token.
func (b *browser) csrfToken() string {
	b.t.Helper()
	_, page := b.do("GET", "/console", nil)
	m := pageToken.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatal("the console page holds no CSRF token")
	}
	return m[1]
}

func (b *browser) cookie(name string) *http.Cookie {
	for _, c := range b.client.Jar.Cookies(b.base) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func setCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestConsoleLogin checks the console's login: the cookie's flags, CSRF on every change, a new
// session ID at every login (fixation), and the limit on failed attempts.
func TestConsoleLogin(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{Backend: apptest.SQLite})
	in := srv.NewIntegration(t, admin.IntegrationSpec{})
	ann := newAgent(t, srv, "Ann Lee")
	_, cid := handedOver(t, in, "John Doe", "hi")

	t.Run("cookie flags", func(t *testing.T) {
		b := newBrowser(t, srv)
		resp := b.login(ann.Email, ann.Password)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
			t.Fatalf("login: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		c := setCookie(resp, "parley_login")
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure || c.MaxAge <= 0 || len(c.Value) < 40 {
			t.Errorf("login cookie over http: %+v", c)
		}
		// Behind a TLS-terminating proxy the cookie is Secure.
		b2 := newBrowser(t, srv)
		token := b2.loginForm()
		resp, _ = b2.form("/console/login", url.Values{"email": {ann.Email}, "password": {ann.Password}, "csrf_token": {token}},
			"X-Forwarded-Proto", "https")
		if c := setCookie(resp, "parley_login"); c == nil || !c.Secure || !c.HttpOnly {
			t.Errorf("login cookie over https: %+v", c)
		}
		resp, page := b.do("GET", "/console", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="csrf-token"`) {
			t.Fatalf("console after login: status %d", resp.StatusCode)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("console page without %s", h)
			}
		}
		if resp, _ := newBrowser(t, srv).do("GET", "/console", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Errorf("console without login: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("csrf", func(t *testing.T) {
		b := newBrowser(t, srv)
		// The login form itself: without its token, or with another form's, nothing happens.
		b.loginForm()
		resp, _ := b.form("/console/login", url.Values{"email": {ann.Email}, "password": {ann.Password}})
		if resp.StatusCode != http.StatusForbidden || setCookie(resp, "parley_login") != nil {
			t.Errorf("login without its token: status %d", resp.StatusCode)
		}
		other := newBrowser(t, srv).loginForm()
		resp, _ = b.form("/console/login", url.Values{"email": {ann.Email}, "password": {ann.Password}, "csrf_token": {other}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("login with another form's token: status %d", resp.StatusCode)
		}

		if resp := b.login(ann.Email, ann.Password); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		token := b.csrfToken()
		join := "/agent/v1/conversations/" + cid + "/join"
		// Reading needs no token; changing does.
		if resp, _ := b.do("GET", "/agent/v1/me", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET with the cookie: %d", resp.StatusCode)
		}
		for name, headers := range map[string][]string{
			"no token":               nil,
			"a wrong token":          {"X-CSRF-Token", token + "x"},
			"another site's origin":  {"X-CSRF-Token", token, "Origin", "https://evil.example"},
			"a cross-site fetch":     {"X-CSRF-Token", token, "Sec-Fetch-Site", "cross-site"},
			"the token in the query": nil,
		} {
			path := join
			if name == "the token in the query" {
				path += "?csrf_token=" + token
			}
			resp, body := b.do("POST", path, nil, headers...)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, parley.EForbidden) {
				t.Errorf("join with %s: status %d %s", name, resp.StatusCode, body)
			}
		}
		if got := conversationOf(t, in, cidSession(t, ann, cid)); got["handled_by"] != "queue" {
			t.Fatalf("a refused join changed the conversation: %v", got)
		}
		if resp, body := b.do("POST", join, nil, "X-CSRF-Token", token, "Origin", srv.URL, "Sec-Fetch-Site", "same-origin"); resp.StatusCode != http.StatusOK {
			t.Errorf("join with the token: status %d %s", resp.StatusCode, body)
		}
		// Logging out needs the token too.
		if resp, _ := b.form("/console/logout", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("logout without the token: %d", resp.StatusCode)
		}
		resp, _ = b.form("/console/logout", url.Values{"csrf_token": {token}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("logout: %d", resp.StatusCode)
		}
		if resp, _ := b.do("GET", "/agent/v1/me", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after logout: %d", resp.StatusCode)
		}
	})

	t.Run("session fixation", func(t *testing.T) {
		b := newBrowser(t, srv)
		// An attacker plants a cookie value of their choosing, then the victim logs in.
		planted := "attacker-chosen-value-0123456789abcdefghijklmnopqrstu"
		b.client.Jar.SetCookies(b.base, []*http.Cookie{{Name: "parley_login", Value: planted, Path: "/"}})
		if resp := b.login(ann.Email, ann.Password); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		if c := b.cookie("parley_login"); c == nil || c.Value == planted {
			t.Fatalf("the login kept the planted value: %+v", c)
		}
		attacker := newBrowser(t, srv)
		attacker.client.Jar.SetCookies(attacker.base, []*http.Cookie{{Name: "parley_login", Value: planted, Path: "/"}})
		if resp, _ := attacker.do("GET", "/agent/v1/me", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the planted value works: %d", resp.StatusCode)
		}

		// An attacker plants their own valid login: the victim's login replaces and ends it.
		mallory := newAgent(t, srv, "Mallory")
		m := newBrowser(t, srv)
		m.login(mallory.Email, mallory.Password)
		stolen := m.cookie("parley_login").Value
		v := newBrowser(t, srv)
		v.client.Jar.SetCookies(v.base, []*http.Cookie{{Name: "parley_login", Value: stolen, Path: "/"}})
		v.login(ann.Email, ann.Password)
		if resp, body := v.do("GET", "/agent/v1/me", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, ann.ID) {
			t.Errorf("the victim is not Ann after logging in: %d %s", resp.StatusCode, body)
		}
		if resp, _ := m.do("GET", "/agent/v1/me", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the planted login still works after the victim logged in over it: %d", resp.StatusCode)
		}
	})

	t.Run("failed logins", func(t *testing.T) {
		bea := newAgent(t, srv, "Bea Brute")
		b := newBrowser(t, srv)
		for i := range 10 {
			if resp := b.login(bea.Email, "wrong password"); resp.StatusCode != http.StatusUnauthorized || setCookie(resp, "parley_login") != nil {
				t.Fatalf("wrong password %d: status %d", i+1, resp.StatusCode)
			}
		}
		if resp := b.login(bea.Email, bea.Password); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("after 10 failures the right password gets %d, want 429", resp.StatusCode)
		}
		if resp := b.login("nobody@example.com", "whatever1"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("an unknown email: %d", resp.StatusCode)
		}
	})
}

// cidSession returns the session of a conversation, as the agent API says.
func cidSession(t *testing.T, a *agent, cid string) string {
	t.Helper()
	return a.call("GET", "/conversations/"+cid, nil).Expect(t, http.StatusOK).JSON(t)["conversation"].(map[string]any)["session_id"].(string)
}

// TestStreamEndsWithItsCredential checks a live stream checks its credential again at every
// heartbeat: revoking the token it was opened with, or ending the login, closes it, and the
// reconnect is refused; other agents' streams go on.
func TestStreamEndsWithItsCredential(t *testing.T) {
	const beat = time.Second // the shortest config allows
	srv := apptest.Start(t, apptest.Options{Backend: apptest.SQLite, NoBrain: true,
		Configure: func(c *config.Config) { c.StreamHeartbeat = beat }})
	ann, bob := newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Ray")
	annStream, bobStream := ann.openStream(), bob.openStream()
	if hb := annStream.wait("ready", eventWait, func(e event) bool { return e.Type == "ready" }).Data["heartbeat_ms"]; hb != float64(beat.Milliseconds()) {
		t.Errorf("ready says heartbeat_ms %v, want %d", hb, beat.Milliseconds())
	}
	ended := func(what string, done <-chan struct{}) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(eventWait):
			t.Fatalf("%s: the stream is still open after %v", what, eventWait)
		}
	}

	v, err := srv.Admin.AgentByEmail(t.Context(), ann.Email)
	if err != nil || len(v.Tokens) != 1 {
		t.Fatalf("ann's tokens: %+v, %v", v, err)
	}
	if err := srv.Admin.RevokeAgentToken(t.Context(), ann.ID, v.Tokens[0].ID); err != nil {
		t.Fatal(err)
	}
	ended("ann's token revoked", annStream.done)
	ann.call("GET", "/stream", nil).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)
	time.Sleep(beat + beat/2) // bob's stream has had a heartbeat since
	select {
	case <-bobStream.done:
		t.Fatal("bob's stream ended with ann's token")
	default:
	}

	// A stream opened with a console login ends when the login does.
	b := newBrowser(t, srv)
	if resp := b.login(bob.Email, bob.Password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/agent/v1/stream", nil)
	client := &http.Client{Jar: b.client.Jar}
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream by login: %v %v", resp, err)
	}
	loginDone := make(chan struct{})
	go func() {
		defer close(loginDone)
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
	}()
	if resp, _ := b.form("/console/logout", url.Values{"csrf_token": {b.csrfToken()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	ended("bob's login ended", loginDone)
	select {
	case <-bobStream.done:
		t.Fatal("bob's token stream ended with his login")
	default:
	}
}
