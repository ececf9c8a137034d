package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley"
)

// run runs the parley command against a database and returns its output and exit status.
func runDB(t *testing.T, db string, args ...string) (string, string, int) {
	t.Helper()
	code, stdout, stderr := run(t, map[string]string{"PARLEY_DATABASE_URL": db}, args...)
	return stdout, stderr, code
}

func TestAgentCommands(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "parley.db")
	out, stderr, code := runDB(t, db, "integration", "create", "--name", "Shop", "--webhook-url", "http://127.0.0.1:9/hook", "--json")
	if code != 0 {
		t.Fatalf("integration create: %d %s", code, stderr)
	}
	var in struct{ ID string }
	json.Unmarshal([]byte(out), &in)

	out, stderr, code = runDB(t, db, "agent", "create", "--email", "Ann@Example.com", "--name", "Ann Lee", "--password", "s3cret-pass",
		"--token", "--integrations", in.ID, "--json")
	if code != 0 {
		t.Fatalf("agent create: %d %s", code, stderr)
	}
	var ann struct {
		ID, Email, Token string
		HasPassword      bool     `json:"has_password"`
		Integrations     []string `json:"integrations"`
		Tokens           []struct{ Prefix string }
	}
	if err := json.Unmarshal([]byte(out), &ann); err != nil {
		t.Fatalf("agent create --json: %v\n%s", err, out)
	}
	if ann.Email != "ann@example.com" || !ann.HasPassword || !strings.HasPrefix(ann.Token, "prla_") ||
		len(ann.Tokens) != 1 || !strings.HasPrefix(ann.Token, ann.Tokens[0].Prefix) || len(ann.Integrations) != 1 {
		t.Errorf("agent create: %s", out)
	}

	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("from-a-file-1\n"), 0o600)
	if _, stderr, code := runDB(t, db, "agent", "create", "--email", "bob@example.com", "--name", "Bob", "--password-file", pw); code != 0 {
		t.Fatalf("agent create --password-file: %d %s", code, stderr)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", []string{"--email", "c@example.com", "--name", "C"}, "password, a token or both"},
		{"short password", []string{"--email", "c@example.com", "--name", "C", "--password", "short"}, "password must be"},
		{"taken email", []string{"--email", "ANN@example.com", "--name", "A", "--token"}, "already exists"},
		{"bad email", []string{"--email", "not an email", "--name", "A", "--token"}, "email must be"},
		{"unknown integration", []string{"--email", "d@example.com", "--name", "D", "--token", "--integrations", "01a2190f-a43d-7fec-a27a-36a6ecb4b242"}, "no integration"},
		{"no name", []string{"--email", "e@example.com", "--token"}, "--name are required"},
	} {
		_, stderr, code := runDB(t, db, append([]string{"agent", "create"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q (want %q)", tc.name, code, stderr, tc.want)
		}
	}

	out, _, code = runDB(t, db, "agent", "list")
	if code != 0 || !strings.Contains(out, "ann@example.com") || !strings.Contains(out, "bob@example.com") || !strings.Contains(out, in.ID) {
		t.Errorf("agent list:\n%s", out)
	}
	out, _, code = runDB(t, db, "agent", "list", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || strings.Contains(out, "argon2") {
		t.Errorf("agent list --json:\n%s", out)
	}
	out, _, code = runDB(t, db, "agent", "token", "--email", "bob@example.com")
	if code != 0 || !strings.Contains(out, "prla_") {
		t.Errorf("agent token: %d %s", code, out)
	}
	if _, stderr, code := runDB(t, db, "agent", "token", "--email", "nobody@example.com"); code != 1 || !strings.Contains(stderr, "no agent") {
		t.Errorf("agent token of nobody: %d %s", code, stderr)
	}

	// Revoking the token just added, by its ID.
	out, _, _ = runDB(t, db, "agent", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	var bob struct {
		Tokens []struct {
			ID string `json:"id"`
		} `json:"tokens"`
	}
	for _, a := range list {
		if a["email"] == "bob@example.com" {
			b, _ := json.Marshal(a)
			json.Unmarshal(b, &bob)
		}
	}
	if len(bob.Tokens) != 1 {
		t.Fatalf("bob's tokens before: %+v", bob)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--email", "bob@example.com", "--revoke", "prla_x"}, "--revoke must be a token ID"},
		{[]string{"--email", "bob@example.com", "--revoke", parley.NewID()}, "agent token not found"},
		{[]string{"--email", "ann@example.com", "--revoke", bob.Tokens[0].ID}, "agent token not found"},
		{[]string{"--email", "nobody@example.com", "--revoke", bob.Tokens[0].ID}, "no agent"},
	} {
		if _, stderr, code := runDB(t, db, append([]string{"agent", "token"}, tc.args...)...); code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("agent token %v: exit %d, stderr %q (want %q)", tc.args, code, stderr, tc.want)
		}
	}
	out, _, code = runDB(t, db, "agent", "token", "--email", "bob@example.com", "--revoke", bob.Tokens[0].ID)
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Errorf("agent token --revoke: %d %s", code, out)
	}
	out, _, _ = runDB(t, db, "agent", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a["email"] == "bob@example.com" {
			if toks, _ := a["tokens"].([]any); len(toks) != 0 {
				t.Errorf("bob's tokens after the revocation: %v", toks)
			}
		}
	}
}
