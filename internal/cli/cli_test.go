package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/cli"
)

// run runs the parley command line with an environment and returns its exit status and output.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), args, &cli.Env{Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return env[k] }})
	return code, stdout.String(), stderr.String()
}

// ok runs a command that must succeed and decodes its --json output into v.
func ok(t *testing.T, env map[string]string, v any, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, env, args...)
	if code != 0 {
		t.Fatalf("parley %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("parley %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return out
}

type integrationJSON struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	WebhookURL       string   `json:"webhook_url"`
	WebhookSecretSet bool     `json:"webhook_secret_set"`
	AllowedIPs       []string `json:"allowed_ips"`
	SessionTimeout   int      `json:"session_timeout"`
	APIKey           string   `json:"api_key"`
	Keys             []struct {
		ID     string `json:"id"`
		Prefix string `json:"prefix"`
	} `json:"keys"`
}

func dbURL(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "parley.db") }

// TestIntegrationCommands creates, lists, updates an integration and adds a key with the CLI
// on a temporary SQLite database.
func TestIntegrationCommands(t *testing.T) {
	db := dbURL(t)
	env := map[string]string{"PARLEY_DATABASE_URL": db}
	var in integrationJSON
	out := ok(t, env, &in, "integration", "create", "--webhook-url", "http://127.0.0.1:9/hook", "--name", "Shop",
		"--webhook-secret", "whsec-cli-secret", "--allowed-ips", "127.0.0.1, ::1", "--session-timeout", "120", "--json")
	if _, valid := parley.ParseID(in.ID); !valid || !strings.HasPrefix(in.APIKey, "prl_") || in.Name != "Shop" ||
		!in.WebhookSecretSet || in.SessionTimeout != 120 || len(in.Keys) != 1 || strings.Join(in.AllowedIPs, ",") != "127.0.0.1,::1" {
		t.Fatalf("created: %s", out)
	}
	if strings.Contains(out, "whsec-cli-secret") {
		t.Errorf("create prints the webhook secret: %s", out)
	}

	// Text output for people: the key, said to be shown once.
	code, text, _ := run(t, nil, "integration", "create", "--database-url", db, "--webhook-url", "https://example.com/hook")
	if code != 0 || !strings.Contains(text, "api_key: prl_") || !strings.Contains(text, "shown once") {
		t.Errorf("text create: %d %s", code, text)
	}

	var list []integrationJSON
	out = ok(t, env, &list, "integration", "list", "--json")
	if len(list) != 2 || list[0].ID != in.ID || list[0].APIKey != "" || strings.Contains(out, in.APIKey) || strings.Contains(out, "whsec-cli-secret") {
		t.Fatalf("list: %s", out)
	}
	if text := ok(t, env, nil, "integration", "list"); !strings.Contains(text, in.ID) || !strings.Contains(text, "Shop") {
		t.Errorf("text list: %s", text)
	}

	var upd integrationJSON
	ok(t, env, &upd, "integration", "update", "--id", in.ID, "--name", "Shop 2", "--allowed-ips", "", "--json")
	if upd.Name != "Shop 2" || upd.SessionTimeout != 120 || len(upd.AllowedIPs) != 0 || upd.WebhookURL != in.WebhookURL {
		t.Errorf("updated: %+v", upd)
	}
	if text := ok(t, env, nil, "integration", "update", "--id", strings.ToUpper(in.ID), "--session-timeout", "60"); !strings.Contains(text, "updated") {
		t.Errorf("text update: %s", text)
	}

	var key struct {
		APIKey        string `json:"api_key"`
		IntegrationID string `json:"integration_id"`
		Prefix        string `json:"prefix"`
	}
	ok(t, env, &key, "integration", "key", "--id", in.ID, "--json")
	if !strings.HasPrefix(key.APIKey, key.Prefix) || key.APIKey == in.APIKey || key.IntegrationID != in.ID {
		t.Errorf("key: %+v", key)
	}
	if text := ok(t, env, nil, "integration", "key", "--id", in.ID); !strings.Contains(text, "api_key: prl_") {
		t.Errorf("text key: %s", text)
	}
	ok(t, env, &list, "integration", "list", "--json")
	if len(list[0].Keys) != 3 || list[0].Name != "Shop 2" || list[0].SessionTimeout != 60 {
		t.Errorf("after update and keys: %+v", list[0])
	}
}

// TestCLIErrors checks mistakes exit non-zero with a message that says what is wrong, and
// change nothing.
func TestCLIErrors(t *testing.T) {
	db := dbURL(t)
	env := map[string]string{"PARLEY_DATABASE_URL": db}
	var in integrationJSON
	ok(t, env, &in, "integration", "create", "--webhook-url", "http://127.0.0.1:9/hook", "--json")
	hook := "--webhook-url=http://127.0.0.1:9/hook"
	for _, tc := range []struct {
		args []string
		code int    // 0: any non-zero
		msg  string // in stderr
	}{
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"integration"}, 2, "usage: parley integration"},
		{[]string{"integration", "frob"}, 2, "usage: parley integration"},
		{[]string{"integration", "create"}, 1, "--webhook-url is required"},
		{[]string{"integration", "create", "--webhook-url", "ftp://x/y"}, 1, "webhook_url must be an http or https URL"},
		{[]string{"integration", "create", hook, "--session-timeout", "5"}, 1, "session_timeout must be between 60 and 1296000"},
		{[]string{"integration", "create", hook, "--session-timeout", "soon"}, 0, "not a number of seconds"},
		{[]string{"integration", "create", hook, "--rate-limit", "-1"}, 1, "rate_limit"},
		{[]string{"integration", "create", hook, "--subscribed-events", "message:everything"}, 1, `unknown event "message:everything"`},
		{[]string{"integration", "create", hook, "--allowed-ips", "10.0.0.0/8,nope"}, 1, `"nope" is not an IP address`},
		{[]string{"integration", "create", hook, "--brain", "{not json"}, 1, "brain must be a JSON object"},
		{[]string{"integration", "create", hook, "--no-such-flag"}, 0, "no-such-flag"},
		{[]string{"integration", "create", hook, "--database-url", "mysql://x/y"}, 1, "database-url must start with"},
		{[]string{"integration", "create", hook, "--log-level", "loud"}, 1, "log-level"},
		{[]string{"integration", "update"}, 1, "--id must be an integration ID"},
		{[]string{"integration", "update", "--id", "nope"}, 1, "--id must be an integration ID"},
		{[]string{"integration", "update", "--id", parley.NewID(), "--name", "x"}, 1, "integration not found"},
		{[]string{"integration", "update", "--id", in.ID, "--webhook-url", ""}, 1, "webhook_url must be an http or https URL"},
		{[]string{"integration", "update", "--id", in.ID, "--session-timeout", "1296001"}, 1, "session_timeout"},
		{[]string{"integration", "key", "--id", parley.NewID()}, 1, "integration not found"},
		{[]string{"integration", "key"}, 1, "--id must be an integration ID"},
		{[]string{"integration", "key", "--id", in.ID, "--revoke", "prl_abc"}, 1, "--revoke must be a key ID"},
		{[]string{"integration", "key", "--id", in.ID, "--revoke", parley.NewID()}, 1, "api key not found"},
		{[]string{"integration", "key", "--id", parley.NewID(), "--revoke", parley.NewID()}, 1, "integration not found"},
		{[]string{"integration", "create", "-h"}, 2, "-webhook-url"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, env, tc.args...)
			if code == 0 || (tc.code != 0 && code != tc.code) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if !strings.Contains(errOut, tc.msg) {
				t.Errorf("stderr does not say %q:\n%s", tc.msg, errOut)
			}
		})
	}
	var list []integrationJSON
	ok(t, env, &list, "integration", "list", "--json")
	if len(list) != 1 || list[0].Name != "" || list[0].SessionTimeout != 86400 || len(list[0].Keys) != 1 {
		t.Errorf("failed commands changed the database: %+v", list)
	}
	if code, out, _ := run(t, nil, "help"); code != 0 || !strings.Contains(out, "integration") {
		t.Errorf("help: %d %s", code, out)
	}
	if code, out, _ := run(t, nil, "version"); code != 0 || !strings.HasPrefix(out, "parley ") {
		t.Errorf("version: %d %s", code, out)
	}
}

// TestCLIWhileServing runs the CLI on the SQLite file a server is using: the server sees a
// new integration at once, and a new key or allowlist within its credential cache's second.
func TestCLIWhileServing(t *testing.T) {
	db := dbURL(t)
	srv := apptest.Start(t, apptest.Options{DatabaseURL: db})
	env := map[string]string{"PARLEY_DATABASE_URL": db}
	var in integrationJSON
	ok(t, env, &in, "integration", "create", "--webhook-url", "http://127.0.0.1:9/hook", "--json")
	call := func(key string) int {
		return srv.Do(t, "POST", "/v1/custom/"+in.ID+"/sessions", map[string]any{}, "Authorization", "apikey "+key).Status
	}
	if s := call(in.APIKey); s != http.StatusCreated {
		t.Fatalf("the server does not know the integration the CLI created: %d", s)
	}
	// eventually polls until the server answers want, for at most 10 s (the cache holds
	// credentials for 1 s).
	eventually := func(what, key string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := call(key)
			if s == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d after 10 s, want %d", what, s, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var key struct {
		APIKey string `json:"api_key"`
	}
	ok(t, env, &key, "integration", "key", "--id", in.ID, "--json")
	eventually("the key the CLI added", key.APIKey, http.StatusCreated)
	if s := call(in.APIKey); s != http.StatusCreated {
		t.Errorf("the first key stopped working: %d", s)
	}
	ok(t, env, nil, "integration", "update", "--id", in.ID, "--allowed-ips", "10.0.0.0/8")
	eventually("the allowlist the CLI set", in.APIKey, http.StatusUnauthorized)
	ok(t, env, nil, "integration", "update", "--id", in.ID, "--allowed-ips", "")
	eventually("the allowlist the CLI cleared", key.APIKey, http.StatusCreated)

	// Rotation completed: the first key revoked, by its ID, while the server runs.
	var list []integrationJSON
	ok(t, env, &list, "integration", "list", "--json")
	var revoked struct {
		ID      string `json:"id"`
		Revoked bool   `json:"revoked"`
	}
	for _, k := range list[0].Keys {
		if strings.HasPrefix(in.APIKey, k.Prefix) && !strings.HasPrefix(key.APIKey, k.Prefix) {
			ok(t, env, &revoked, "integration", "key", "--id", in.ID, "--revoke", k.ID, "--json")
		}
	}
	if !revoked.Revoked {
		t.Fatalf("no key revoked: %+v", list[0].Keys)
	}
	eventually("the key the CLI revoked", in.APIKey, http.StatusUnauthorized)
	if s := call(key.APIKey); s != http.StatusCreated {
		t.Errorf("the key left stopped working: %d", s)
	}
	code, _, errOut := run(t, env, "integration", "key", "--id", in.ID, "--revoke", revoked.ID)
	if code != 1 || !strings.Contains(errOut, "api key not found") {
		t.Errorf("revoking again: exit %d, %s", code, errOut)
	}
}
