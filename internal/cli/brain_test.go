package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/cli"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestBrainFlag sets an integration's brain with the shorthands of --brain; what the worker
// could not run is refused with the problem named.
func TestBrainFlag(t *testing.T) {
	env := map[string]string{"PARLEY_DATABASE_URL": dbURL(t)}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("dialogs:\n  - name: hi\n    keywords: [hi]\n    steps:\n      - text: Hello\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("dialogs:\n  - name: hi\n    keywords: [hi]\n    stepz: []\n"), 0o644)
	llmFile := filepath.Join(dir, "llm.json")
	os.WriteFile(llmFile, []byte(`{"base_url":"http://127.0.0.1:11434/v1","model":"llama3.2"}`), 0o644)

	var in struct {
		ID    string         `json:"id"`
		Brain map[string]any `json:"brain"`
	}
	hook := "--webhook-url=https://example.com/hook"
	ok(t, env, &in, "integration", "create", hook, "--brain", "dialog:"+good, "--json")
	if in.Brain["kind"] != "dialog" || in.Brain["file"] != good {
		t.Fatalf("brain = %v", in.Brain)
	}
	ok(t, env, &in, "integration", "update", "--id", in.ID, "--brain", "http:https://bot.example.com/moveo", "--json")
	if in.Brain["kind"] != "http" || in.Brain["url"] != "https://bot.example.com/moveo" {
		t.Fatalf("brain = %v", in.Brain)
	}
	ok(t, env, &in, "integration", "update", "--id", in.ID, "--brain", "llm:"+llmFile, "--json")
	if l, _ := in.Brain["llm"].(map[string]any); in.Brain["kind"] != "llm" || l["model"] != "llama3.2" {
		t.Fatalf("brain = %v", in.Brain)
	}

	for _, c := range []struct{ brain, want string }{
		{"dialog:" + bad, "bad.yaml:4"},
		{"dialog:" + filepath.Join(dir, "missing.yaml"), "missing.yaml"},
		{"http:ftp://bot.example.com", "absolute http(s) URL"},
		{"llm:{\"model\":\"x\"}", "base_url"},
		{"robot", "brain must be"},
		{`{"kind":"dialog","flie":"x"}`, "unknown field"},
	} {
		code, _, errOut := run(t, env, "integration", "create", hook, "--brain", c.brain)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("--brain %s: exit %d, %q; want an error naming %q", c.brain, code, errOut, c.want)
		}
	}
}

// TestDialogCheck checks dialog files as the server would load them.
func TestDialogCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("dialogs:\n  - name: hi\n    keywords: [hi]\n    steps:\n      - text: Hello\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("dialogs:\n  - name: hi\n    regex: '(['\n    steps:\n      - text: Hello\n"), 0o644)
	if code, out, errOut := run(t, nil, "dialog", "check", good); code != 0 || !strings.Contains(out, "good.yaml: ok") {
		t.Errorf("check good: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, nil, "dialog", "check", bad); code != 1 || !strings.Contains(errOut, "bad.yaml:3") {
		t.Errorf("check bad: %d %q", code, errOut)
	}
	// The demo dialog printed is a valid dialog file.
	_, demo, _ := run(t, nil, "dialog", "demo")
	path := filepath.Join(dir, "demo.yaml")
	os.WriteFile(path, []byte(demo), 0o644)
	if code, out, errOut := run(t, nil, "dialog", "check", path); code != 0 {
		t.Errorf("check demo: %d %q %q", code, out, errOut)
	}
}

// TestDemo runs `parley demo` as a user would: it prints how to talk to it, and a message sent
// the way it says comes back as a signed message:brain_send printed by its receiver.
func TestDemo(t *testing.T) {
	var stdout, stderr testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- cli.Run(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, &cli.Env{Stdout: &stdout, Stderr: &stderr,
			Getenv: func(string) string { return "" }})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("parley demo exited %d\n%s", code, stderr.String())
		}
	}()
	var base, key string
	re := regexp.MustCompile(`export P=(\S+) K='(\S+)'`)
	for deadline := time.Now().Add(20 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base, key = m[1], m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not print its commands:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
	post := func(path, body string) map[string]any {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "apikey "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		json.Unmarshal(b, &v)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return v
	}
	sid := post("/sessions", `{"context":{"user":{"display_name":"Ada"}}}`)["session_id"].(string)
	post("/sessions/"+sid+"/messages", `{"input":{"text":"hi"}}`)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stdout.String(), "message:brain_send (signature verified)"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no brain reply printed:\n%s", stdout.String())
		}
	}
	if !strings.Contains(stdout.String(), "Hi Ada!") {
		t.Errorf("the printed event lacks the greeting:\n%s", stdout.String())
	}
}
