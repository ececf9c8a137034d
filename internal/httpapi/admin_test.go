package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/config"
)

const bearer = "Bearer " + apptest.AdminToken

// adminRoutes are the admin API's routes with a valid body each.
func adminRoutes(id string) []endpoint {
	return []endpoint{
		{name: "list", method: "GET", path: "/admin/v1/integrations"},
		{name: "create", method: "POST", path: "/admin/v1/integrations", body: map[string]any{"webhook_url": "http://127.0.0.1:9/hook"}},
		{name: "get", method: "GET", path: "/admin/v1/integrations/" + id},
		{name: "update", method: "PATCH", path: "/admin/v1/integrations/" + id, body: map[string]any{"name": "x"}},
		{name: "add key", method: "POST", path: "/admin/v1/integrations/" + id + "/keys"},
		{name: "revoke key", method: "DELETE", path: "/admin/v1/integrations/" + id + "/keys/" + parley.NewID()},
	}
}

// TestAdminAuth checks the admin API refuses anything but the admin bearer token, and is
// closed altogether when no token is configured.
func TestAdminAuth(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		open := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		closed := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Configure: func(c *config.Config) { c.AdminToken = "" }})
		in := open.NewIntegration(t, noSpec)
		for _, tc := range []struct {
			name string
			srv  *apptest.Server
			auth string
		}{
			{"no header", open, "-"},
			{"empty", open, ""},
			{"wrong token", open, "Bearer nope"},
			{"token with a suffix", open, bearer + "x"},
			{"token cut short", open, bearer[:len(bearer)-1]},
			{"empty token", open, "Bearer "},
			{"no scheme", open, apptest.AdminToken},
			{"apikey scheme", open, "apikey " + apptest.AdminToken},
			{"an integration's key", open, "apikey " + in.Key},
			{"an integration's key as bearer", open, "Bearer " + in.Key},
			{"closed: the test token", closed, bearer},
			{"closed: empty token", closed, "Bearer "},
			{"closed: no header", closed, "-"},
		} {
			for _, r := range adminRoutes(in.ID) {
				var headers []string
				if tc.auth != "-" {
					headers = []string{"Authorization", tc.auth}
				}
				resp := tc.srv.Do(t, r.method, r.path, r.body, headers...)
				if resp.Status != http.StatusUnauthorized {
					t.Errorf("%s, %s: %d %s", tc.name, r.name, resp.Status, resp.Body)
					continue
				}
				expectError(t, resp, http.StatusUnauthorized, parley.EUnauthorized)
			}
		}
		// Nothing was created or changed by the refused calls.
		list := open.Do(t, "GET", "/admin/v1/integrations", nil, "Authorization", bearer).Expect(t, http.StatusOK).JSON(t)["integrations"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["name"] != "" || len(list[0].(map[string]any)["keys"].([]any)) != 1 {
			t.Errorf("after refused calls: %v", list)
		}
	})
}

// TestAdminIntegrations creates, lists, reads, updates an integration and adds a key through
// the admin API: keys are shown once, the webhook secret never.
func TestAdminIntegrations(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		const secret = "whsec-very-secret-value"
		call := func(method, path string, body any) *apptest.Response {
			t.Helper()
			r := srv.Do(t, method, path, body, "Authorization", bearer)
			if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), `"webhook_secret":`) {
				t.Errorf("%s %s shows the webhook secret: %s", method, path, r.Body)
			}
			return r
		}
		rcv := apptest.NewReceiver(t, secret)
		created := call("POST", "/admin/v1/integrations", map[string]any{
			"name": "  Shop  ", "webhook_url": rcv.URL, "webhook_secret": secret, "allowed_ips": []string{"127.0.0.1/32", "::1"},
			"subscribed_events": []string{"session:closed"}, "session_timeout": 120, "desk_id": "desk-1", "rate_limit": 100,
		}).Expect(t, http.StatusCreated).JSON(t)
		id, _ := created["id"].(string)
		key, _ := created["api_key"].(string)
		if _, ok := parley.ParseID(id); !ok || !strings.HasPrefix(key, "prl_") || len(key) < 40 {
			t.Fatalf("created = %v", created)
		}
		if created["name"] != "Shop" || created["webhook_url"] != rcv.URL || created["webhook_secret_set"] != true ||
			created["session_timeout"] != float64(120) || created["desk_id"] != "desk-1" || created["rate_limit"] != float64(100) ||
			len(created["keys"].([]any)) != 1 || !jsonEqual(created["allowed_ips"], []string{"127.0.0.1/32", "::1"}) ||
			!jsonEqual(created["subscribed_events"], []string{"session:closed"}) {
			t.Errorf("created = %v", created)
		}
		if p := created["keys"].([]any)[0].(map[string]any)["prefix"].(string); !strings.HasPrefix(key, p) || len(p) >= len(key) {
			t.Errorf("key prefix %q", p)
		}
		// The key works on the inbound API.
		r := srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+key)
		r.Expect(t, http.StatusCreated)

		// Read back: never the key again.
		got := call("GET", "/admin/v1/integrations/"+id, nil).Expect(t, http.StatusOK)
		if strings.Contains(string(got.Body), key) || got.JSON(t)["api_key"] != nil {
			t.Errorf("get shows the key: %s", got.Body)
		}
		list := call("GET", "/admin/v1/integrations", nil).Expect(t, http.StatusOK)
		if strings.Contains(string(list.Body), key) || !strings.Contains(string(list.Body), id) {
			t.Errorf("list: %s", list.Body)
		}

		// Update changes only what it names.
		upd := call("PATCH", "/admin/v1/integrations/"+id, map[string]any{"name": "Shop 2", "webhook_secret": "whsec-other"}).Expect(t, http.StatusOK).JSON(t)
		if upd["name"] != "Shop 2" || upd["desk_id"] != "desk-1" || upd["session_timeout"] != float64(120) || upd["webhook_secret_set"] != true ||
			!jsonEqual(upd["allowed_ips"], []string{"127.0.0.1/32", "::1"}) {
			t.Errorf("updated = %v", upd)
		}
		if strings.Contains(string(call("GET", "/admin/v1/integrations/"+id, nil).Body), "whsec-other") {
			t.Error("the new secret is shown")
		}

		// A second key: shown once, both work.
		k2 := call("POST", "/admin/v1/integrations/"+id+"/keys", nil).Expect(t, http.StatusCreated).JSON(t)
		key2, _ := k2["api_key"].(string)
		if !strings.HasPrefix(key2, "prl_") || key2 == key || k2["integration_id"] != id || k2["id"] == nil || k2["prefix"] == nil {
			t.Errorf("new key = %v", k2)
		}
		got = call("GET", "/admin/v1/integrations/"+id, nil).Expect(t, http.StatusOK)
		if len(got.JSON(t)["keys"].([]any)) != 2 || strings.Contains(string(got.Body), key2) {
			t.Errorf("after a second key: %s", got.Body)
		}
		for _, k := range []string{key, key2} {
			srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+k).Expect(t, http.StatusCreated)
		}

		// Rotation: the first key revoked is refused at once, the second goes on working.
		keys := call("GET", "/admin/v1/integrations/"+id, nil).Expect(t, http.StatusOK).JSON(t)["keys"].([]any)
		var firstID string
		for _, k := range keys {
			if k := k.(map[string]any); k["id"] != k2["id"] {
				firstID, _ = k["id"].(string)
			}
		}
		if r := call("DELETE", "/admin/v1/integrations/"+id+"/keys/"+firstID, nil); r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		r = srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+key)
		expectError(t, r, http.StatusUnauthorized, parley.EUnauthorized)
		srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+key2).Expect(t, http.StatusCreated)
		expectError(t, call("DELETE", "/admin/v1/integrations/"+id+"/keys/"+firstID, nil), http.StatusNotFound, parley.ENotFound)
		if got := call("GET", "/admin/v1/integrations/"+id, nil).JSON(t)["keys"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != k2["id"] {
			t.Errorf("keys after the revocation: %v", got)
		}
		key = key2

		// A change of allowed_ips takes effect at once.
		call("PATCH", "/admin/v1/integrations/"+id, map[string]any{"allowed_ips": []string{"10.0.0.0/8"}}).Expect(t, http.StatusOK)
		r = srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+key)
		expectError(t, r, http.StatusUnauthorized, parley.EUnauthorized)
		call("PATCH", "/admin/v1/integrations/"+id, map[string]any{"allowed_ips": []string{}}).Expect(t, http.StatusOK)
		srv.Do(t, "POST", "/v1/custom/"+id+"/sessions", map[string]any{}, "Authorization", "apikey "+key).Expect(t, http.StatusCreated)
	})
}

// TestAdminValidation checks the admin API refuses bad settings with 400 (and unknown
// integrations with 404), and creates or changes nothing.
func TestAdminValidation(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b})
		in := srv.NewIntegration(t, noSpec)
		view := func() string {
			return string(srv.Do(t, "GET", "/admin/v1/integrations", nil, "Authorization", bearer).Expect(t, http.StatusOK).Body)
		}
		other := srv.NewIntegration(t, noSpec)
		otherKey := srv.Do(t, "GET", "/admin/v1/integrations/"+other.ID, nil, "Authorization", bearer).Expect(t, http.StatusOK).JSON(t)["keys"].([]any)[0].(map[string]any)["id"].(string)
		before := view()
		hook := "http://127.0.0.1:9/hook"
		for _, body := range []string{
			`{}`, `{"name":"x"}`, `{"webhook_url":""}`, `{"webhook_url":"ftp://x/y"}`, `{"webhook_url":"not a url"}`,
			`{"webhook_url":"http://"}`, `{"webhook_url":5}`,
			`{"webhook_url":"` + hook + `","subscribed_events":["message:everything"]}`,
			`{"webhook_url":"` + hook + `","subscribed_events":"session:closed"}`,
			`{"webhook_url":"` + hook + `","session_timeout":59}`, `{"webhook_url":"` + hook + `","session_timeout":1296001}`,
			`{"webhook_url":"` + hook + `","session_timeout":"60"}`, `{"webhook_url":"` + hook + `","session_timeout":60.5}`,
			`{"webhook_url":"` + hook + `","allowed_ips":["nope"]}`, `{"webhook_url":"` + hook + `","allowed_ips":["10.0.0.0/33"]}`,
			`{"webhook_url":"` + hook + `","allowed_ips":"10.0.0.0/8"}`,
			`{"webhook_url":"` + hook + `","rate_limit":-1}`, `{"webhook_url":"` + hook + `","brain":"dialog"}`,
			`{"webhook_url":"` + hook + `","brain":[]}`, `{"webhook_url":"` + hook + `","name":"` + strings.Repeat("n", 201) + `"}`,
			`{"webhook_url":"` + hook + `","delivery":{"timeout_ms":-1}}`, `{"webhook_url":"` + hook + `","delivery":{"retries":3}}`,
			`{"webhook_url":"` + hook + `","extra":1}`, `{"Webhook_URL":"` + hook + `"}`, `{"webhook_url":"` + hook + `"} {}`,
			`{not json`, `[]`, `null`,
		} {
			for _, target := range []struct{ method, path string }{
				{"POST", "/admin/v1/integrations"},
				{"PATCH", "/admin/v1/integrations/" + in.ID},
			} {
				if target.method == "PATCH" && (body == `{}` || body == `{"name":"x"}`) {
					continue // valid updates
				}
				r := srv.Do(t, target.method, target.path, body, "Authorization", bearer)
				expectError(t, r, http.StatusBadRequest, parley.EInvalid)
			}
		}
		r := srv.Do(t, "POST", "/admin/v1/integrations", `{"webhook_url":"`+hook+`"}`, "Authorization", bearer, "Content-Type", "text/plain")
		expectError(t, r, http.StatusBadRequest, parley.EInvalid)
		for _, id := range []string{parley.NewID(), "nope"} {
			expectError(t, srv.Do(t, "GET", "/admin/v1/integrations/"+id, nil, "Authorization", bearer), http.StatusNotFound, parley.ENotFound)
			expectError(t, srv.Do(t, "PATCH", "/admin/v1/integrations/"+id, map[string]any{"name": "x"}, "Authorization", bearer), http.StatusNotFound, parley.ENotFound)
			expectError(t, srv.Do(t, "POST", "/admin/v1/integrations/"+id+"/keys", nil, "Authorization", bearer), http.StatusNotFound, parley.ENotFound)
		}
		// Revoking: an unknown or malformed key ID, and another integration's key, are not found.
		for _, path := range []string{in.ID + "/keys/" + parley.NewID(), in.ID + "/keys/nope", in.ID + "/keys/" + otherKey,
			parley.NewID() + "/keys/" + otherKey, "nope/keys/" + otherKey} {
			expectError(t, srv.Do(t, "DELETE", "/admin/v1/integrations/"+path, nil, "Authorization", bearer), http.StatusNotFound, parley.ENotFound)
		}
		if after := view(); after != before {
			t.Errorf("refused admin calls changed integrations:\nbefore %s\nafter  %s", before, after)
		}
	})
}
