package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/webhook"
)

// demo runs a server on a fresh SQLite database with a demo integration (the bundled demo
// dialog) whose webhooks go to a receiver inside this process that verifies and prints each
// one, plus a console agent, and prints the curl commands to talk to it. Nothing to install,
// nothing left behind: the database lives in a temporary directory unless one is named.
func demo(ctx context.Context, env *Env, args []string) error {
	fs, cfg := flags(env, "demo")
	if _, err := parse(env, fs, cfg, args); err != nil {
		return err
	}
	if cfg.DatabaseURL == config.Default().DatabaseURL {
		dir, err := os.MkdirTemp("", "parley-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.DatabaseURL = "sqlite://" + filepath.Join(dir, "demo.db")
	}
	secret := randomHex(16)
	hook, err := startReceiver(env.Stdout, secret)
	if err != nil {
		return err
	}
	defer hook.Close()

	m := &app.Main{Config: *cfg, Log: cfg.Logger(env.Stderr)}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()
	adm := admin.New(m.DB, nil)
	name, url := "demo", hook.URL
	in, key, err := adm.CreateIntegration(ctx, admin.IntegrationSpec{Name: &name, WebhookURL: &url, WebhookSecret: &secret})
	if err != nil {
		return err
	}
	password := randomHex(6)
	if _, err := adm.CreateAgent(ctx, admin.AgentSpec{Email: "demo@parley.local", Name: "Demo Agent", Password: password}); err != nil {
		return err
	}
	base := m.URL() + "/v1/custom/" + in.ID
	fmt.Fprintf(env.Stdout, demoText, m.URL(), in.ID, key, hook.URL, password, base)
	<-ctx.Done()
	return nil
}

const demoText = `
parley demo is running at %[1]s with the bundled demo dialog.

  integration  %[2]s
  api key      %[3]s
  webhooks     go to %[4]s, printed below with their signature checked
  console      %[1]s/console   (demo@parley.local / %[5]s)

Talk to it from another terminal:

  export P=%[6]s K='%[3]s'
  S=$(curl -s -X POST $P/sessions -H "Authorization: apikey $K" -H 'Content-Type: application/json' \
        -d '{"context":{"user":{"display_name":"Ada"}}}' | sed 's/.*"session_id":"\([^"]*\)".*/\1/')
  curl -s -X POST $P/sessions/$S/messages -H "Authorization: apikey $K" -H 'Content-Type: application/json' -d '{"input":{"text":"hi"}}'
  curl -s -X POST $P/sessions/$S/messages -H "Authorization: apikey $K" -H 'Content-Type: application/json' -d '{"input":{"text":"See our plans"}}'
  curl -s -X POST $P/sessions/$S/messages -H "Authorization: apikey $K" -H 'Content-Type: application/json' -d '{"input":{"text":"talk to a human"}}'
  curl -s $P/sessions/$S/messages -H "Authorization: apikey $K"

Each answer arrives here as a signed message:brain_send. Ctrl-C stops the demo.

`

// receiver is the demo's webhook endpoint: it checks each event's signature and prints it.
type receiver struct {
	URL    string
	server *http.Server
}

func (r *receiver) Close() error { return r.server.Close() }

func startReceiver(out io.Writer, secret string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // one event printed at a time
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 4<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		check := "signature verified"
		if !webhook.Verify(secret, body, req.Header.Get(webhook.SignatureHeader)) {
			check = "BAD SIGNATURE"
		}
		var pretty bytes.Buffer
		if json.Indent(&pretty, body, "  ", "  ") != nil {
			pretty.Reset()
			pretty.Write(body)
		}
		mu.Lock()
		fmt.Fprintf(out, "── %s %s (%s)\n  %s\n\n", time.Now().Format("15:04:05.000"),
			req.Header.Get(webhook.EventHeader), check, pretty.String())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	r := &receiver{URL: "http://" + ln.Addr().String() + "/webhook",
		server: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go r.server.Serve(ln)
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
