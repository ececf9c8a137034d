package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/testenv"
)

// chrome is a headless Chromium driven over the DevTools protocol, with what its pages logged.
type chrome struct {
	t         *testing.T
	ctx       context.Context
	artifacts string // where a failure's screenshot goes

	mu       sync.Mutex
	problems []string // console errors, uncaught exceptions, failed loads
}

// startChrome starts a fresh headless Chromium (its own profile) with a 1280×800 window.
func startChrome(t *testing.T) *chrome {
	path := testenv.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 800),
	}
	// A fresh profile, removed once the browser is gone (t.TempDir would fail the test when
	// Chromium's last processes still write into it as it is removed).
	profile, err := os.MkdirTemp("", "parley-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, chromedp.UserDataDir(profile))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		for range 20 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the browser profile %s", profile)
	})
	c := &chrome{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				c.problem("console.%s: %s", e.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			c.problem("uncaught exception: %s (%s:%d)", msg, d.URL, d.LineNumber)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError {
				c.problem("browser log: %s %s", e.Entry.Text, e.Entry.URL)
			}
		}
	})
	if err := chromedp.Run(ctx, runtime.Enable(), log.Enable(), chromedp.EmulateViewport(1280, 800)); err != nil {
		testenv.Missing(t, "a working headless Chromium at "+path, err)
	}
	return c
}

func (c *chrome) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// run runs actions with a timeout, failing the test with what was being done.
func (c *chrome) run(what string, timeout time.Duration, actions ...chromedp.Action) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var buf []byte
		if chromedp.Run(c.ctx, chromedp.CaptureScreenshot(&buf)) == nil {
			p := filepath.Join(c.artifacts, "failure.png")
			os.WriteFile(p, buf, 0o644)
			c.t.Logf("screenshot at the failure: %s", p)
		}
		c.t.Fatalf("browser: %s: %v (page problems: %v)", what, err, c.problems)
	}
}

// screenshot saves the viewport as a PNG in the test's artifacts.
func (c *chrome) screenshot(dir, name string) {
	c.t.Helper()
	var buf []byte
	c.run("screenshot "+name, 10*time.Second, chromedp.Sleep(150*time.Millisecond), chromedp.CaptureScreenshot(&buf))
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot: %s", p)
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	var s string
	c.run("read "+sel, 5*time.Second, chromedp.Text(sel, &s, chromedp.ByQuery))
	return s
}

// waitText waits until the element's text contains want.
func (c *chrome) waitText(sel, want string, timeout time.Duration) {
	c.t.Helper()
	c.run(fmt.Sprintf("wait for %q in %s", want, sel), timeout, chromedp.Poll(
		fmt.Sprintf(`(document.querySelector(%q)?.textContent || '').includes(%q)`, sel, want), nil,
		chromedp.WithPollingInterval(20*time.Millisecond)))
}

// pressEnter presses Enter as a person does. (chromedp.KeyEvent also types a "\r" character,
// which a page cannot prevent: it would leave a new line in the composer after sending.)
var pressEnter = chromedp.ActionFunc(func(ctx context.Context) error {
	key := func(t input.KeyType) error {
		return input.DispatchKeyEvent(t).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).Do(ctx)
	}
	if err := key(input.KeyRawDown); err != nil {
		return err
	}
	return key(input.KeyUp)
})

// files serves what users attach: a picture and a PDF, on loopback (the page must not reach out).
func files(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 480, 320))
	for y := range 320 {
		for x := range 480 {
			img.Set(x, y, color.RGBA{uint8(60 + x/4), uint8(90 + y/4), 200, 255})
		}
	}
	var pic bytes.Buffer
	png.Encode(&pic, img)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/parcel.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pic.Bytes())
		case "/invoice-2291.pdf":
			w.Header().Set("Content-Type", "application/pdf")
			w.Write([]byte("%PDF-1.4\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// waitEvent waits for the session's first webhook of a type.
func waitEvent(t *testing.T, in *apptest.Integration, sid, eventType string) *apptest.Delivery {
	t.Helper()
	var found *apptest.Delivery
	in.Receiver.Wait(5*time.Second, "a "+eventType+" event of the session", func(ds []*apptest.Delivery) bool {
		i := slices.IndexFunc(ds, func(d *apptest.Delivery) bool { return d.SessionID() == sid && d.Type() == eventType })
		if i >= 0 {
			found = ds[i]
		}
		return i >= 0
	})
	return found
}

// TestConsoleInBrowser is an agent's day in a real browser: log in, see a handed-over
// conversation arrive live, open it, join, reply, see the user's answer arrive live, resolve,
// and follow the user into their next conversation, with the integrator receiving every
// webhook. It saves screenshots of the inbox and of a conversation, and fails on any console
// error.
func TestConsoleInBrowser(t *testing.T) {
	c := startChrome(t)
	artifacts := testenv.Artifacts(t)
	c.artifacts = artifacts
	srv := apptest.Start(t, apptest.Options{Backend: apptest.SQLite})
	in := srv.NewIntegration(t, admin.IntegrationSpec{Name: ptr("Acme Shop")})
	support := srv.NewIntegration(t, admin.IntegrationSpec{Name: ptr("Acme Mobile")})
	ann, bob := newAgent(t, srv, "Ann Lee"), newAgent(t, srv, "Bob Stone")
	fileURL := files(t)

	// An inbox with some life in it: waiting users, Bob's conversations, a brain at work.
	for _, u := range []struct {
		in         *apptest.Integration
		name, text string
		bob        bool
	}{
		{in, "Maria Garcia", "Hi, I was charged twice for order #4471", false},
		{support, "Kenji Watanabe", "The app logs me out every time I switch tabs", false},
		{in, "Priya Natarajan", "Can I change the delivery address?", true},
		{support, "Lucas Martin", "Thanks, that fixed it!", true},
	} {
		_, cid := handedOver(t, u.in, u.name, u.text)
		if u.bob {
			bob.call("POST", "/conversations/"+cid+"/messages", map[string]any{"input": map[string]any{"text": "On it, give me a minute."}}).
				Expect(t, http.StatusCreated)
		}
	}
	brainSID := in.Call("POST", "/sessions", map[string]any{"context": map[string]any{"user": map[string]any{"display_name": "Olivia Brown"}}}).
		Expect(t, http.StatusCreated).Str(t, "session_id")
	in.Send(brainSID, "What are your opening hours?")

	c.run("open the console", 15*time.Second, chromedp.Navigate(srv.URL+"/console"), chromedp.WaitVisible(`#email`, chromedp.ByQuery))
	c.screenshot(artifacts, "login")
	c.run("log in", 15*time.Second,
		chromedp.SendKeys(`#email`, ann.Email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, ann.Password, chromedp.ByQuery),
		chromedp.Submit(`#password`, chromedp.ByQuery),
		chromedp.WaitVisible(`#app`, chromedp.ByQuery),
	)
	c.waitText("#live", "Live", 10*time.Second)
	c.waitText(`[data-count="queue"]`, "2", 5*time.Second)

	// A user asks for a human: the conversation appears in the queue without a reload.
	sid := in.Call("POST", "/sessions", map[string]any{"external_session_id": "order-12345", "context": map[string]any{
		"user": map[string]any{"display_name": "John Doe", "email": "john.doe@example.com", "language": "en", "phone": "+1 555 0100"},
		"tags": []string{"vip", "returning-customer"}, "order_id": "ORD-12345", "subscription_tier": "premium",
		"global": map[string]any{"client_url": "https://example.com/support"}}}).Expect(t, http.StatusCreated).Str(t, "session_id")
	in.Send(sid, "My parcel arrived damaged, the box was crushed.")
	start := time.Now()
	in.Call("POST", "/sessions/"+sid+"/handover", nil).Expect(t, http.StatusOK)
	cid := conversationOf(t, in, sid)["id"].(string)
	item := fmt.Sprintf(`.item[data-id=%q]`, cid)
	c.run("see the handed-over conversation", 5*time.Second, chromedp.WaitVisible(item, chromedp.ByQuery))
	t.Logf("handover → visible in the queue in %v", time.Since(start))
	c.waitText(`[data-count="queue"]`, "3", time.Second)
	c.screenshot(artifacts, "inbox-queue")
	c.run("show all open conversations", 5*time.Second, chromedp.KeyEvent("3"), chromedp.WaitVisible(`.tab[data-view="open"][aria-selected="true"]`, chromedp.ByQuery))
	c.screenshot(artifacts, "inbox-all")

	// Open it: reading is not joining.
	c.run("open the conversation", 10*time.Second, clickItem(item),
		chromedp.WaitVisible(`.conv-head`, chromedp.ByQuery), chromedp.WaitVisible(`.msg[data-author="user"]`, chromedp.ByQuery))
	c.waitText(".conv-head h1", "John Doe", time.Second)
	c.waitText(".context", "ORD-12345", time.Second)
	if got := conversationOf(t, in, sid)["handled_by"]; got != "queue" {
		t.Errorf("opening the conversation changed it: handled_by %v", got)
	}

	// Join (with the keyboard), reply.
	c.run("join", 10*time.Second, chromedp.KeyEvent("J"))
	c.waitText(".conv-head .chip", "You", 5*time.Second)
	waitEvent(t, in, sid, parley.EventMemberJoin)
	c.run("reply", 10*time.Second,
		chromedp.Click(`.composer textarea`, chromedp.ByQuery),
		chromedp.SendKeys(`.composer textarea`, "I'm sorry to hear that, John. Could you send me a photo of the parcel?", chromedp.ByQuery),
		pressEnter)
	send := waitEvent(t, in, sid, parley.EventAgentSend)
	if got := fmt.Sprint(send.Event["output"]); !strings.Contains(got, "Could you send me a photo") {
		t.Errorf("message:send output = %s", got)
	}
	waitEvent(t, in, sid, parley.EventCompose)

	// The user answers with a picture and a file: they appear live, and are read.
	in.Call("POST", "/sessions/"+sid+"/messages/read", map[string]any{"message_ids": []string{send.Event["message_id"].(string)}}).Expect(t, http.StatusOK)
	start = time.Now()
	m := in.Call("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{
		"text": "Sure, here it is. The invoice is attached too.",
		"attachments": []map[string]any{
			{"type": "image", "mime_type": "image/png", "url": fileURL + "/parcel.png", "filename": "parcel.png"},
			{"type": "file", "mime_type": "application/pdf", "url": fileURL + "/invoice-2291.pdf", "filename": "invoice-2291.pdf"},
		}}}).Expect(t, http.StatusAccepted).Str(t, "message_id")
	c.run("see the user's answer", 5*time.Second, chromedp.WaitVisible(fmt.Sprintf(`.msg[data-id=%q] img.media`, m), chromedp.ByQuery))
	t.Logf("user message → visible in the open conversation in %v", time.Since(start))
	in.Receiver.Wait(5*time.Second, "message:read of the answer", func(ds []*apptest.Delivery) bool {
		return slices.ContainsFunc(ds, func(d *apptest.Delivery) bool {
			return d.Type() == parley.EventRead && strings.Contains(fmt.Sprint(d.Event["message_ids"]), m)
		})
	})
	c.waitText(".ticks.read", "✓✓", 5*time.Second)
	c.run("a second reply", 10*time.Second,
		chromedp.SendKeys(`.composer textarea`, "Thank you! I've issued a replacement, it ships today.", chromedp.ByQuery),
		pressEnter)
	in.Receiver.Wait(5*time.Second, "the second message:send", func(ds []*apptest.Delivery) bool {
		n := 0
		for _, d := range ds {
			if d.Type() == parley.EventAgentSend && d.SessionID() == sid {
				n++
			}
		}
		return n == 2
	})
	c.run("the reply shows", 5*time.Second, chromedp.Poll(`document.querySelectorAll('.msg.agent').length === 2`, nil))
	c.screenshot(artifacts, "conversation")

	// Resolve: the integrator hears it; the user's next message starts a brain conversation.
	c.run("resolve", 10*time.Second, chromedp.Click(`.conv-head .btn-ok`, chromedp.ByQuery))
	closed := waitEvent(t, in, sid, parley.EventConversationClosed)
	if closed.Event["closed_by"] != "agent" || closed.Event["agent"].(map[string]any)["agent_id"] != ann.ID {
		t.Errorf("conversation:closed = %v", closed.Event)
	}
	c.waitText(".conv-head .chip", "Resolved", 5*time.Second)
	brainSends := func(ds []*apptest.Delivery) []*apptest.Delivery {
		var out []*apptest.Delivery
		for _, d := range ds {
			if d.SessionID() == sid && d.Type() == parley.EventBrainSend {
				out = append(out, d)
			}
		}
		return out
	}
	before := len(brainSends(in.Receiver.Deliveries()))
	in.Send(sid, "One more question: can I get it gift-wrapped?")
	c.waitText(".conv-head .chip", "Brain", 5*time.Second)
	// The brain answers, live; wait for it to settle before clicking elsewhere, or the click
	// may land on an inbox item being redrawn.
	ds := brainSends(in.Receiver.Wait(10*time.Second, "the brain's answer", func(ds []*apptest.Delivery) bool {
		return len(brainSends(ds)) > before
	}))
	c.run("the brain's answer shows", 5*time.Second,
		chromedp.WaitVisible(fmt.Sprintf(`.msg[data-id=%q]`, ds[len(ds)-1].Event["message_id"]), chromedp.ByQuery))
	if next := conversationOf(t, in, sid); next["id"] == cid || next["handled_by"] != "brain" {
		t.Errorf("after the next message: %v", next)
	}

	// A conversation Bob holds: Ann sees him typing, and cannot write in it.
	priya := ""
	for _, c := range bob.list("mine") {
		if c["user"].(map[string]any)["name"] == "Priya Natarajan" {
			priya = c["id"].(string)
		}
	}
	c.run("open Bob's conversation", 10*time.Second, chromedp.KeyEvent("3"),
		clickItem(fmt.Sprintf(`.item[data-id=%q]`, priya)),
		chromedp.WaitVisible(`.notice:not(.hidden)`, chromedp.ByQuery))
	c.waitText(".notice", "Bob Stone has this conversation", 5*time.Second)
	bob.call("POST", "/conversations/"+priya+"/typing", map[string]any{"action": "start"}).Expect(t, http.StatusNoContent)
	c.waitText(".typing", "Bob Stone is typing", 5*time.Second)
	c.screenshot(artifacts, "conversation-of-another-agent")
	bob.call("POST", "/conversations/"+priya+"/typing", map[string]any{"action": "stop"}).Expect(t, http.StatusNoContent)
	c.run("Bob stops typing", 5*time.Second, chromedp.Poll(`document.querySelector('.typing').textContent === ''`, nil))

	// The events of the session, in order.
	got := types(sessionEvents(t, in, sid, 9))
	// Typing starts and stops around each reply (how often depends on the agent's pace); the
	// other events must come exactly in this order.
	var life []string
	for _, typ := range got {
		if typ != parley.EventCompose {
			life = append(life, typ)
		}
	}
	// Joining while looking at the conversation reads the user's first message.
	wantLife := []string{parley.EventDelivered, parley.EventMemberJoin, parley.EventRead, parley.EventAgentSend,
		parley.EventDelivered, parley.EventRead, parley.EventAgentSend, parley.EventConversationClosed}
	if strings.Join(life, " ") != strings.Join(wantLife, " ") || !slices.Contains(got, parley.EventCompose) {
		t.Errorf("webhooks of the session: %v", got)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.problems {
		t.Errorf("page problem: %s", p)
	}
}

// clickItem clicks an inbox item. The inbox redraws on every live update (the brain answers
// other users meanwhile), and a click through the protocol can find the node it resolved moved
// by then; a click from inside the page is one step.
func clickItem(sel string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click()`, sel), nil),
	}
}
