package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
)

// unauthorizedBody is the one answer to every refused credential: it must not tell which.
const unauthorizedBody = `{"error_code":"unauthorized","error_message":"missing or invalid credentials"}`

// TestAuthRefusals sends every kind of bad credential to several endpoints: each is 401 with
// the very same body, and changes nothing.
func TestAuthRefusals(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		a := srv.NewIntegration(t, noSpec)
		other := srv.NewIntegration(t, noSpec)
		sid := a.NewSession()
		a.Send(sid, "hello")
		type cred struct {
			name          string
			integrationID string
			auth          string // the Authorization header; "-" for none
		}
		creds := []cred{
			{"no header", a.ID, "-"},
			{"empty header", a.ID, ""},
			{"scheme only", a.ID, "apikey"},
			{"scheme and space", a.ID, "apikey "},
			{"wrong key", a.ID, "apikey prl_wrong"},
			{"key without scheme", a.ID, a.Key},
			{"bearer scheme", a.ID, "Bearer " + a.Key},
			{"basic scheme", a.ID, "Basic " + a.Key},
			{"key with a suffix", a.ID, "apikey " + a.Key + "x"},
			{"key cut short", a.ID, "apikey " + a.Key[:len(a.Key)-1]},
			{"another integration's key", a.ID, "apikey " + other.Key},
			{"unknown integration", parley.NewID(), "apikey " + a.Key},
			{"malformed integration id", "not-a-uuid", "apikey " + a.Key},
			{"integration id with braces", "{" + a.ID + "}", "apikey " + a.Key},
			{"the other integration's path", other.ID, "apikey " + a.Key},
		}
		calls := []endpoint{
			{name: "create session", method: "POST", path: "", body: map[string]any{}},
			{name: "get session", method: "GET", path: "/" + sid},
			{name: "history", method: "GET", path: "/" + sid + "/messages"},
			{name: "message", method: "POST", path: "/" + sid + "/messages", body: map[string]any{"input": map[string]any{"text": "x"}}},
			{name: "context", method: "PATCH", path: "/" + sid + "/context", body: map[string]any{"x": 1}},
			{name: "close", method: "POST", path: "/" + sid + "/close"},
			{name: "upload-url", method: "POST", path: "/" + sid + "/files/upload-url", body: map[string]any{}},
			{name: "bad body", method: "POST", path: "/" + sid + "/messages", body: "{not json"},
		}
		unchanged(t, srv, a, sid, func() {
			for _, c := range creds {
				for _, ep := range calls {
					var headers []string
					if c.auth != "-" {
						headers = []string{"Authorization", c.auth}
					}
					r := srv.Do(t, ep.method, "/v1/custom/"+c.integrationID+"/sessions"+ep.path, ep.body, headers...)
					if r.Status != http.StatusUnauthorized || string(r.Body) != unauthorizedBody {
						t.Errorf("%s, %s: %d %s; want 401 %s", c.name, ep.name, r.Status, r.Body, unauthorizedBody)
					}
				}
			}
		})
		// Spellings that are the same credentials.
		for _, tc := range []struct{ name, id, auth string }{
			{"upper-case integration id", strings.ToUpper(a.ID), "apikey " + a.Key},
			{"upper-case scheme", a.ID, "APIKEY " + a.Key},
			{"extra spaces", a.ID, "apikey   " + a.Key + " "},
		} {
			r := srv.Do(t, "GET", "/v1/custom/"+tc.id+"/sessions/"+sid, nil, "Authorization", tc.auth)
			if r.Status != http.StatusOK {
				t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
			}
		}
	})
}

// TestAuthSeveralKeys adds keys to an integration: old and new keys all work, each only for
// its own integration, and the keys are stored only as SHA-256 hashes.
func TestAuthSeveralKeys(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		a := srv.NewIntegration(t, noSpec)
		bi := srv.NewIntegration(t, noSpec)
		sid := a.NewSession()
		keys := []string{a.Key}
		// Through the admin API, which makes the server forget its cached keys at once.
		for range 2 {
			r := srv.Do(t, "POST", "/admin/v1/integrations/"+a.ID+"/keys", nil, "Authorization", "Bearer "+apptest.AdminToken)
			keys = append(keys, r.Expect(t, http.StatusCreated).Str(t, "api_key"))
		}
		for i, k := range keys {
			r := srv.Do(t, "GET", "/v1/custom/"+a.ID+"/sessions/"+sid, nil, "Authorization", "apikey "+k)
			if r.Status != http.StatusOK {
				t.Errorf("key %d: %d %s", i, r.Status, r.Body)
			}
			r = srv.Do(t, "POST", "/v1/custom/"+bi.ID+"/sessions", map[string]any{}, "Authorization", "apikey "+k)
			if r.Status != http.StatusUnauthorized || string(r.Body) != unauthorizedBody {
				t.Errorf("key %d of A on B's path: %d %s", i, r.Status, r.Body)
			}
		}
		var stored []*parley.APIKey
		err := srv.Main.DB.View(t.Context(), func(tx store.ReadTx) error {
			var err error
			stored, err = tx.APIKeys(a.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != len(keys) {
			t.Fatalf("%d keys stored, want %d", len(stored), len(keys))
		}
		// Keys made in the same millisecond may be listed in any order: match them by hash.
		for i, plain := range keys {
			sum := sha256.Sum256([]byte(plain))
			found := false
			for _, k := range stored {
				if bytes.Equal(k.Hash, sum[:]) {
					found = true
					if !strings.HasPrefix(plain, k.Prefix) || len(k.Prefix) > 12 {
						t.Errorf("key %d stored with prefix %q", i, k.Prefix)
					}
				}
			}
			if !found {
				t.Errorf("key %d is not stored as its SHA-256", i)
			}
		}
		// Not a byte of any key is in the database in clear.
		for _, k := range keys {
			if n := countMatches(t, srv, "api_keys", k[4:]); n != 0 {
				t.Errorf("a key is stored in clear")
			}
		}
	})
}

// countMatches counts rows of table whose columns, as text, contain s.
func countMatches(t testing.TB, srv *apptest.Server, table, s string) int {
	t.Helper()
	db, ph := rawDB(t, srv)
	q := "SELECT count(*) FROM " + table + " t WHERE t::text LIKE $1"
	if ph == "?" {
		q = "SELECT count(*) FROM " + table + " WHERE id || integration_id || hex(hash) || prefix || CAST(hash AS TEXT) LIKE ?"
	}
	var n int
	if err := db.QueryRowContext(t.Context(), q, "%"+s+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAllowedIPs checks allowed_ips against the TCP peer, over IPv4, IPv6 and a dual-stack
// listener, with single addresses, CIDR ranges and IPv4-mapped IPv6 spellings.
func TestAllowedIPs(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		v4 := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		v6 := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Configure: func(c *config.Config) { c.Addr = "[::1]:0" }})
		dual := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Configure: func(c *config.Config) { c.Addr = "[::]:0" }})
		_, port, _ := strings.Cut(dual.Main.Addr(), "]:")
		for _, tc := range []struct {
			name    string
			srv     *apptest.Server
			baseURL string // to reach srv from another address family; "" = srv.URL
			allowed []string
			ok      bool
		}{
			{"v4 all", v4, "", nil, true},
			{"v4 exact", v4, "", []string{"127.0.0.1"}, true},
			{"v4 /32", v4, "", []string{"127.0.0.1/32"}, true},
			{"v4 /8", v4, "", []string{"127.0.0.0/8"}, true},
			{"v4 other network", v4, "", []string{"10.0.0.0/8"}, false},
			{"v4 other address", v4, "", []string{"127.0.0.2"}, false},
			{"v4 one of several", v4, "", []string{"10.0.0.0/8", "192.168.0.0/16", "127.0.0.1/32"}, true},
			{"v4 mapped address", v4, "", []string{"::ffff:127.0.0.1"}, true},
			{"v4 mapped range", v4, "", []string{"::ffff:127.0.0.0/104"}, true},
			{"v4 not matched by ::1", v4, "", []string{"::1"}, false},
			{"v4 not matched by an IPv6 range", v4, "", []string{"2001:db8::/32"}, false},
			{"v6 exact", v6, "", []string{"::1"}, true},
			{"v6 /128", v6, "", []string{"::1/128"}, true},
			{"v6 /64 range", v6, "", []string{"::/64"}, true},
			{"v6 other range", v6, "", []string{"fd00::/8", "2001:db8::/32"}, false},
			{"v6 not matched by 127.0.0.1", v6, "", []string{"127.0.0.1", "::ffff:127.0.0.1"}, false},
			{"v6 among v4", v6, "", []string{"127.0.0.1", "::1"}, true},
			{"dual stack, v4 peer", dual, "http://127.0.0.1:" + port, []string{"127.0.0.1/32"}, true},
			{"dual stack, v4 peer refused", dual, "http://127.0.0.1:" + port, []string{"::1"}, false},
			{"dual stack, v6 peer", dual, "http://[::1]:" + port, []string{"::1"}, true},
			{"dual stack, v6 peer refused", dual, "http://[::1]:" + port, []string{"127.0.0.1"}, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				in := tc.srv.NewIntegration(t, admin.IntegrationSpec{AllowedIPs: ptr(tc.allowed)})
				base := tc.baseURL
				if base == "" {
					base = tc.srv.URL
				}
				for _, ep := range []struct{ method, path string }{{"POST", "/sessions"}, {"GET", "/sessions/" + parley.NewID()}} {
					status, body := rawCall(t, tc.srv.Client, ep.method, base+"/v1/custom/"+in.ID+ep.path, in.Key, nil)
					switch {
					case tc.ok && status == http.StatusUnauthorized:
						t.Errorf("%s %s: refused: %s", ep.method, ep.path, body)
					case !tc.ok && (status != http.StatusUnauthorized || body != unauthorizedBody):
						t.Errorf("%s %s: %d %s, want 401", ep.method, ep.path, status, body)
					}
				}
			})
		}
	})
}

// rawCall makes a request to an absolute URL with an API key and extra headers (added, so a
// header may repeat), and returns the status and body.
func rawCall(t testing.TB, c *http.Client, method, url, key string, headers [][2]string) (int, string) {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "apikey "+key)
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTrustedProxies checks X-Forwarded-For is believed only from a trusted proxy, and then
// only its right-most address that is not itself a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		proxied := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Configure: func(c *config.Config) {
			c.TrustedProxies = []string{"127.0.0.1", "10.0.0.0/8"}
		}})
		direct := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		xff := func(vs ...string) [][2]string {
			var h [][2]string
			for _, v := range vs {
				h = append(h, [2]string{"X-Forwarded-For", v})
			}
			return h
		}
		for _, tc := range []struct {
			name    string
			srv     *apptest.Server
			allowed []string
			headers [][2]string
			ok      bool
		}{
			{"no header: the proxy itself", proxied, []string{"203.0.113.0/24"}, nil, false},
			{"the client", proxied, []string{"203.0.113.0/24"}, xff("203.0.113.5"), true},
			{"a client outside", proxied, []string{"203.0.113.0/24"}, xff("198.51.100.1"), false},
			{"a spoofed left part is not believed", proxied, []string{"203.0.113.0/24"}, xff("203.0.113.5, 198.51.100.1"), false},
			{"the right-most untrusted hop counts", proxied, []string{"203.0.113.0/24"}, xff("198.51.100.1, 203.0.113.5"), true},
			{"trusted hops are skipped", proxied, []string{"203.0.113.0/24"}, xff("203.0.113.5, 10.1.2.3, 127.0.0.1"), true},
			{"several headers are one list", proxied, []string{"203.0.113.0/24"}, xff("198.51.100.1", "203.0.113.5"), true},
			{"a malformed chain is ignored", proxied, []string{"203.0.113.0/24"}, xff("203.0.113.5, garbage"), false},
			{"a malformed chain falls back to the peer", proxied, []string{"127.0.0.1"}, xff("garbage"), true},
			{"only trusted hops: the peer", proxied, []string{"127.0.0.1"}, xff("10.0.0.1"), true},
			{"an IPv6 client", proxied, []string{"2001:db8::/32"}, xff("2001:db8::5"), true},
			{"an IPv4-mapped client", proxied, []string{"203.0.113.0/24"}, xff("::ffff:203.0.113.5"), true},
			{"without trusted proxies the header is ignored", direct, []string{"203.0.113.0/24"}, xff("203.0.113.5"), false},
			{"without trusted proxies the peer counts", direct, []string{"127.0.0.1"}, xff("203.0.113.5"), true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				in := tc.srv.NewIntegration(t, admin.IntegrationSpec{AllowedIPs: ptr(tc.allowed)})
				status, body := rawCall(t, tc.srv.Client, "POST", tc.srv.URL+"/v1/custom/"+in.ID+"/sessions", in.Key, tc.headers)
				if tc.ok && status != http.StatusCreated {
					t.Errorf("refused: %d %s", status, body)
				}
				if !tc.ok && (status != http.StatusUnauthorized || body != unauthorizedBody) {
					t.Errorf("%d %s, want 401", status, body)
				}
			})
		}
	})
}

// TestRateLimit checks an integration over its rate_limit gets 429 rate-limited with a
// Retry-After, that a refused request changes nothing, and that other integrations are not
// held back.
func TestRateLimit(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		limited := srv.NewIntegration(t, admin.IntegrationSpec{RateLimit: ptr(1)})
		free := srv.NewIntegration(t, noSpec)
		sid := free.NewSession()
		// The bucket starts full: one call passes.
		lsid := limited.NewSession()
		accepted := 0
		var refused *apptest.Response
		// One token a second: 50 calls in a row cannot all pass unless they take 49 s.
		for range 50 {
			r := limited.Call("POST", sp(lsid, "/messages"), map[string]any{"input": map[string]any{"text": "x"}})
			if r.Status == http.StatusTooManyRequests {
				refused = r
				break
			}
			r.Expect(t, http.StatusAccepted)
			accepted++
		}
		if refused == nil {
			t.Fatal("50 calls at rate_limit 1 were never refused")
		}
		// Reads would be limited too: count in the database.
		if n := rowCounts(t, srv, limited.ID)["messages"]; n != accepted {
			t.Errorf("%d messages stored, %d were accepted", n, accepted)
		}
		expectError(t, refused, http.StatusTooManyRequests, parley.ERateLimited)
		if ra, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q", refused.Header.Get("Retry-After"))
		}
		for range 20 {
			free.Send(sid, "unlimited")
		}
	})
}
