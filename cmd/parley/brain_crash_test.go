package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/testenv"
)

// TestBrainAfterKill9: users talk to the demo dialog while parley is killed with -9 and
// restarted on the same SQLite file. Every message accepted gets its brain reply.
func TestBrainAfterKill9(t *testing.T) {
	db := filepath.Join(t.TempDir(), "parley.db")
	srv := serve(t, db)
	var cur atomic.Pointer[server]
	cur.Store(srv)
	talkThroughKill(t, srv, cur.Load, func() {
		srv.Kill9()
		cur.Store(serve(t, db))
	})
}

// TestBrainThreeProcessesOneKilled: three processes on one PostgreSQL database answer users
// who talk to any of them; one is killed with -9. The others take its sessions over and every
// message accepted gets its reply.
func TestBrainThreeProcessesOneKilled(t *testing.T) {
	url := testenv.PostgresSchema(t)
	procs := make([]*server, 3)
	for i := range procs {
		procs[i] = serveURL(t, url)
	}
	pick, killed := picker(procs, 4)
	talkThroughKill(t, procs[0], pick, func() {
		killed.Store(true)
		procs[2].Kill9()
	})
}

// talkThroughKill has users of 20 sessions send 15 messages each to the servers pick()
// chooses, calls kill once 40% of them were accepted, and checks that every session ends with
// its 15 messages stored once and answered once, no reply before its message, and the
// webhooks carrying exactly the replies the history holds, in its order. Clients resend a
// message whose answer they did not get with the same Idempotency-Key, as Moveo's
// documentation suggests, so a resent message is never stored twice.
func talkThroughKill(t *testing.T, first *server, pick func() *server, kill func()) {
	const sessions, perSession = 20, 15
	rcv := apptest.NewReceiver(t, "brain-kill9")
	in := first.newIntegrationHook(t, rcv)
	sids := make([]string, sessions)
	for i := range sids {
		sids[i] = first.newSession(t, in)
	}
	var sent atomic.Int64
	var once sync.Once
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(s *server, sid string, i int) (int, error) {
		body, _ := json.Marshal(map[string]any{"input": map[string]any{"text": "thanks"}})
		req, _ := http.NewRequest("POST", s.URL+"/v1/custom/"+in.id+"/sessions/"+sid+"/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", in.auth)
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d", sid, i))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var killedAt time.Time
	var wg sync.WaitGroup
	for _, sid := range sids {
		wg.Go(func() {
			for i := range perSession {
				for attempt := 0; ; attempt++ {
					status, err := post(pick(), sid, i)
					if err == nil && status == http.StatusAccepted {
						break
					}
					if err == nil || attempt > 400 {
						t.Errorf("message %d: status %d, %v", i, status, err)
						return
					}
					time.Sleep(25 * time.Millisecond)
				}
				if sent.Add(1) == sessions*perSession*4/10 {
					once.Do(func() {
						t.Logf("killing with -9 after %d messages and %d webhooks", sent.Load(), len(rcv.Deliveries()))
						kill()
						killedAt = time.Now()
					})
				}
			}
		})
	}
	wg.Wait()

	replies := func(ds []*apptest.Delivery, sid string) []string {
		var ids []string
		seen := map[string]bool{}
		for _, d := range ds {
			if d.Type() == "message:brain_send" && d.SessionID() == sid && !seen[d.RequestID()] {
				seen[d.RequestID()] = true
				ids = append(ids, d.Event["message_id"].(string))
			}
		}
		return ids
	}
	rcv.Wait(60*time.Second, "every brain reply", func(ds []*apptest.Delivery) bool {
		for _, sid := range sids {
			if len(replies(ds, sid)) < perSession {
				return false
			}
		}
		return true
	})
	t.Logf("every reply arrived %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	last := pick()
	for _, sid := range sids {
		status, b, err := last.do("GET", "/v1/custom/"+in.id+"/sessions/"+sid+"/messages?limit=200", in.auth, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("history: %d %v", status, err)
		}
		var page struct {
			Messages []struct {
				ID     string `json:"id"`
				Author string `json:"author"`
			} `json:"messages"`
		}
		json.Unmarshal(b, &page)
		var authors []byte
		var brainIDs []string
		for _, m := range page.Messages {
			authors = append(authors, m.Author[0])
			if m.Author == "brain" {
				brainIDs = append(brainIDs, m.ID)
			}
		}
		// Every message stored once and answered once; a reply never comes before its message.
		if u, b := bytes.Count(authors, []byte("u")), bytes.Count(authors, []byte("b")); u != perSession || b != perSession {
			t.Errorf("session %s: %d user messages and %d replies (%s), want %d of each", sid, u, b, authors, perSession)
		}
		for i, pending := 0, 0; i < len(authors); i++ {
			if pending += map[byte]int{'u': 1, 'b': -1}[authors[i]]; pending < 0 {
				t.Errorf("session %s: a reply before its message: %s", sid, authors)
				break
			}
		}
		if got := replies(rcv.Deliveries(), sid); fmt.Sprint(got) != fmt.Sprint(brainIDs) {
			t.Errorf("session %s: webhooks carry replies %v, the history %v", sid, got, brainIDs)
		}
	}
}
