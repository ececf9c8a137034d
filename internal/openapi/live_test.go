package openapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/clock"
)

// live calls a running server and checks every answer against the document: its status is one
// the operation lists, and its headers and body are what that response describes.
type live struct {
	t       *testing.T
	srv     *apptest.Server
	doc     *document
	mu      sync.Mutex
	checked map[string]bool // operationIds answered with a success
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// do sends a request (as apptest.Server.Do) and checks the answer.
func (l *live) do(method, path string, body any, headers ...string) *apptest.Response {
	l.t.Helper()
	r := l.srv.Do(l.t, method, path, body, headers...)
	l.check(method, path, r)
	return r
}

func (l *live) check(method, path string, r *apptest.Response) {
	t := l.t
	t.Helper()
	u, err := url.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	op, ok := l.doc.route(method, u.Path)
	if !ok {
		t.Fatalf("%s %s: no documented route", method, u.Path)
	}
	where := method + " " + op.Path
	resp, ok := l.doc.response(t, op, r.Status)
	if !ok {
		t.Errorf("%s answered %d, which the document does not list: %s", where, r.Status, r.Body)
		return
	}
	if id := r.Header.Get("X-Request-Id"); !uuidRE.MatchString(id) {
		t.Errorf("%s %d: X-Request-Id %q is not a UUID", where, r.Status, id)
	}
	headers, _ := resp["headers"].(map[string]any)
	for name, h := range headers {
		if h := l.doc.deref(t, h); h["required"] == true && r.Header.Get(name) == "" {
			t.Errorf("%s %d: no %s header", where, r.Status, name)
		}
	}
	if r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		t.Errorf("%s 429 without Retry-After", where)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Body) > 0 {
			t.Errorf("%s %d: a body where the document describes none: %s", where, r.Status, r.Body)
		}
	} else {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		media, ok := content[mt].(map[string]any)
		if !ok {
			media, ok = content["*/*"].(map[string]any)
		}
		switch {
		case !ok:
			t.Errorf("%s %d: Content-Type %q, the document has %v", where, r.Status, mt, slices.Collect(maps.Keys(content)))
		case mt == "application/json":
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Errorf("%s %d: the body is not JSON: %v", where, r.Status, err)
			} else if errs := l.doc.validate(media["schema"], v, "body"); len(errs) > 0 {
				t.Errorf("%s %d does not match the document:\n\t%s\nbody: %s", where, r.Status, strings.Join(errs, "\n\t"), r.Body)
			}
		}
	}
	if r.Status < 300 {
		l.mu.Lock()
		l.checked[op.Op["operationId"].(string)] = true
		l.mu.Unlock()
	}
}

// TestLiveAnswersMatchDocument walks through every operation of the document against a real
// server, as an integrator, an operator and agents would, and checks each answer (successes and
// the errors met on the way) and every webhook it sends against the document: the schemas, the
// headers, and the order of the webhook body's fields.
func TestLiveAnswersMatchDocument(t *testing.T) {
	clk := clock.NewFake(time.Now().Truncate(time.Millisecond))
	srv := apptest.Start(t, apptest.Options{Clock: clk})
	l := &live{t: t, srv: srv, doc: loadDocument(t), checked: map[string]bool{}}
	rcv := apptest.NewReceiver(t, "openapi-secret")
	adm := []string{"Authorization", "Bearer " + apptest.AdminToken}

	// The operator configures an integration.
	in := l.do("POST", "/admin/v1/integrations", map[string]any{"name": "openapi", "webhook_url": rcv.URL,
		"webhook_secret": rcv.Secret, "session_timeout": 3600, "delivery": map[string]any{"retry_delays_ms": []int{}}},
		adm...).Expect(t, http.StatusCreated).JSON(t)
	iid := in["id"].(string)
	l.do("GET", "/admin/v1/integrations", nil, adm...).Expect(t, http.StatusOK)
	l.do("GET", "/admin/v1/integrations/"+iid, nil, adm...).Expect(t, http.StatusOK)
	l.do("PATCH", "/admin/v1/integrations/"+iid, map[string]any{"name": "openapi, renamed"}, adm...).Expect(t, http.StatusOK)
	spareKey := l.do("POST", "/admin/v1/integrations/"+iid+"/keys", nil, adm...).Expect(t, http.StatusCreated).Str(t, "id")
	l.do("DELETE", "/admin/v1/integrations/"+iid+"/keys/"+spareKey, nil, adm...).Expect(t, http.StatusNoContent)
	l.do("DELETE", "/admin/v1/integrations/"+iid+"/keys/"+spareKey, nil, adm...).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	key := l.do("POST", "/admin/v1/integrations/"+iid+"/keys", nil, adm...).Expect(t, http.StatusCreated).Str(t, "api_key")
	l.do("GET", "/admin/v1/integrations/"+parley.NewID(), nil, adm...).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	l.do("PATCH", "/admin/v1/integrations/"+iid, map[string]any{"webhook_url": "ftp://x"}, adm...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	l.do("GET", "/admin/v1/integrations", nil).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)

	// The integrator's calls.
	api := []string{"Authorization", "apikey " + key}
	base := "/v1/custom/" + iid + "/sessions"
	sid := l.do("POST", base, map[string]any{"external_session_id": "order-1", "channel_user_id": "user-1",
		"context": map[string]any{"user": map[string]any{"display_name": "Ann Lee", "location": map[string]any{"city": "Lisbon", "latitude": 38.7}},
			"tags": []string{"vip"}, "order_id": "ORD-1"}}, api...).Expect(t, http.StatusCreated).Str(t, "session_id")
	sess := base + "/" + sid
	l.do("GET", sess, nil, api...).Expect(t, http.StatusOK)
	l.do("PATCH", sess+"/context", map[string]any{"tags": []string{"vip", "new"}, "order_id": nil}, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/messages", map[string]any{"input": map[string]any{"text": "hello"},
		"context": map[string]any{"global": map[string]any{"ref": "ad"}}}, append(api, "Idempotency-Key", "first")...).
		Expect(t, http.StatusAccepted)
	l.do("POST", sess+"/messages", map[string]any{"input": map[string]any{"text": "hello"}}, append(api, "Idempotency-Key", "first")...).
		Expect(t, http.StatusAccepted)
	l.do("POST", sess+"/messages", map[string]any{"input": map[string]any{}}, api...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	l.do("POST", sess+"/messages", `{"input": {"text": "`+strings.Repeat("x", 1<<20)+`"}}`, api...).
		ExpectError(t, http.StatusRequestEntityTooLarge, parley.ETooLarge)
	l.do("GET", base+"/"+parley.NewID(), nil, api...).ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
	l.do("GET", sess, nil).ExpectError(t, http.StatusUnauthorized, parley.EUnauthorized)

	// Files: upload, use, download.
	up := l.do("POST", sess+"/files/upload-url", map[string]any{"filename": "dot.png", "content_type": "image/png"}, api...).
		Expect(t, http.StatusOK).JSON(t)
	put := strings.TrimPrefix(up["upload_url"].(string), srv.URL)
	fileID := up["file_id"].(string)
	png := []byte("\x89PNG\r\n\x1a\n not really a picture")
	tampered := regexp.MustCompile(`signature=[^&]+`).ReplaceAllString(put, "signature=AAAA")
	l.do("PUT", tampered, png, "Content-Type", "image/png").ExpectError(t, http.StatusForbidden, parley.EForbidden)
	l.do("PUT", put, png, "Content-Type", "image/jpeg").ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	l.do("PUT", put, png, "Content-Type", "image/png").Expect(t, http.StatusOK)
	l.do("PUT", put, png, "Content-Type", "image/png").ExpectError(t, http.StatusConflict, parley.EConflict)
	l.do("POST", sess+"/messages", map[string]any{"input": map[string]any{"text": "two pictures", "attachments": []any{
		map[string]any{"type": "image", "mime_type": "image/png", "file_id": fileID},
		map[string]any{"type": "image", "mime_type": "image/png", "url": "https://example.com/b.png", "title": "b"},
	}}}, api...).Expect(t, http.StatusAccepted)
	down := l.do("POST", sess+"/files/download-url", map[string]any{"file_id": fileID}, api...).Expect(t, http.StatusOK).Str(t, "download_url")
	l.do("GET", strings.TrimPrefix(down, srv.URL), nil).Expect(t, http.StatusOK)
	l.do("GET", strings.TrimPrefix(down, srv.URL), nil, "Range", "bytes=0-3").Expect(t, http.StatusPartialContent)
	l.do("POST", sess+"/files/download-url", map[string]any{"file_id": parley.NewID()}, api...).
		ExpectError(t, http.StatusNotFound, parley.EFileNotFound)

	// The history, receipts, the integrator's own agent, the conversation's lifecycle.
	next := l.do("GET", sess+"/messages?limit=2", nil, api...).Expect(t, http.StatusOK).Str(t, "next")
	l.do("GET", sess+"/messages?after="+next, nil, api...).Expect(t, http.StatusOK)
	l.do("GET", sess+"/messages?limit=0", nil, api...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	ext := l.do("POST", sess+"/messages/agent", map[string]any{"input": map[string]any{"text": "a person here"},
		"agent": map[string]any{"agent_id": "crm-7", "agent_name": "Bea"}}, api...).Expect(t, http.StatusAccepted).Str(t, "message_id")
	l.do("POST", sess+"/messages/delivered", map[string]any{"message_ids": []string{ext}}, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/messages/read", map[string]any{"timestamp": clk.Now().UnixMilli()}, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/messages/read", map[string]any{}, api...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	l.do("POST", sess+"/conversation/close", nil, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/conversation/reopen", nil, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/handover", nil, api...).Expect(t, http.StatusOK) // external already: a no-op
	l.do("POST", sess+"/close", nil, api...).Expect(t, http.StatusOK)
	l.do("POST", sess+"/messages", map[string]any{"input": map[string]any{"text": "late"}}, api...).
		ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
	l.do("GET", sess+"/messages", nil, api...).Expect(t, http.StatusOK)

	// A second session goes to the human queue.
	sid2 := l.do("POST", base, nil, api...).Expect(t, http.StatusCreated).Str(t, "session_id")
	sess2 := base + "/" + sid2
	l.do("POST", sess2+"/messages", map[string]any{"input": map[string]any{"text": "a human, please"}}, api...).Expect(t, http.StatusAccepted)
	l.do("POST", sess2+"/handover", nil, api...).Expect(t, http.StatusOK)

	// Agents.
	ann := l.do("POST", "/admin/v1/agents", map[string]any{"email": "ann@example.com", "name": "Ann",
		"password": "password-of-ann", "token": true}, adm...).Expect(t, http.StatusCreated).JSON(t)
	bob := l.do("POST", "/admin/v1/agents", map[string]any{"email": "bob@example.com", "name": "Bob",
		"avatar": "https://example.com/bob.png", "token": true, "integrations": []string{iid}}, adm...).Expect(t, http.StatusCreated).JSON(t)
	l.do("POST", "/admin/v1/agents", map[string]any{"email": "ann@example.com", "name": "Ann again", "token": true}, adm...).
		ExpectError(t, http.StatusConflict, parley.EConflict)
	spareToken := l.do("POST", "/admin/v1/agents/"+ann["id"].(string)+"/tokens", nil, adm...).Expect(t, http.StatusCreated).Str(t, "id")
	l.do("DELETE", "/admin/v1/agents/"+ann["id"].(string)+"/tokens/"+spareToken, nil, adm...).Expect(t, http.StatusNoContent)
	l.do("GET", "/admin/v1/agents", nil, adm...).Expect(t, http.StatusOK)
	asAnn := []string{"Authorization", "Bearer " + ann["token"].(string)}
	asBob := []string{"Authorization", "Bearer " + bob["token"].(string)}

	stream := openStream(t, srv, ann["token"].(string))
	l.do("GET", "/agent/v1/me", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/integrations", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/agents", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/agents?integration_id="+iid, nil, asBob...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/conversations?view=mine", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/conversations?view=all", nil, asAnn...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	queue := l.do("GET", "/agent/v1/conversations?view=queue", nil, asAnn...).Expect(t, http.StatusOK).JSON(t)["conversations"].([]any)
	if len(queue) != 1 {
		t.Fatalf("the queue holds %d conversations, want 1", len(queue))
	}
	conv := "/agent/v1/conversations/" + queue[0].(map[string]any)["id"].(string)
	l.do("GET", conv, nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", conv+"/messages?limit=1", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("GET", "/agent/v1/conversations/"+parley.NewID(), nil, asAnn...).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	l.do("POST", conv+"/join", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("POST", sess2+"/messages", map[string]any{"input": map[string]any{"text": "thanks"}}, api...).Expect(t, http.StatusAccepted)
	l.do("POST", conv+"/typing", map[string]any{"action": "start"}, asAnn...).Expect(t, http.StatusNoContent)
	l.do("POST", conv+"/messages", map[string]any{"input": map[string]any{"text": "Ann here", "attachments": []any{
		map[string]any{"type": "file", "mime_type": "application/pdf", "url": "https://example.com/terms.pdf", "filename": "terms.pdf"}}}},
		asAnn...).Expect(t, http.StatusCreated)
	l.do("POST", conv+"/read", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("POST", conv+"/files/upload-url", map[string]any{"filename": "notes.txt", "content_type": "text/plain"}, asAnn...).Expect(t, http.StatusOK)
	l.do("POST", conv+"/transfer", map[string]any{"agent_id": bob["id"]}, asAnn...).Expect(t, http.StatusOK)
	l.do("POST", conv+"/leave", nil, asAnn...).ExpectError(t, http.StatusConflict, parley.EConflict)
	l.do("POST", conv+"/leave", nil, asBob...).Expect(t, http.StatusOK)
	l.do("POST", conv+"/join", nil, asAnn...).Expect(t, http.StatusOK)
	l.do("POST", conv+"/resolve", nil, asAnn...).Expect(t, http.StatusOK)

	// Webhooks, then the operator's view of them.
	wantEvents := slices.DeleteFunc(slices.Clone(parley.EventTypes), func(e string) bool {
		return e == parley.EventSessionExpired // below
	})
	waitEvents(t, rcv, wantEvents)
	list := l.do("GET", "/admin/v1/deliveries?integration_id="+iid+"&status=delivered&limit=5", nil, adm...).Expect(t, http.StatusOK).JSON(t)
	eventID := list["deliveries"].([]any)[0].(map[string]any)["event_id"].(string)
	l.do("GET", "/admin/v1/deliveries?event_id="+eventID, nil, adm...).Expect(t, http.StatusOK)
	l.do("GET", "/admin/v1/deliveries?status=lost", nil, adm...).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	l.do("POST", "/admin/v1/integrations/"+iid+"/deliveries/replay", nil, adm...).Expect(t, http.StatusOK)
	l.do("POST", "/admin/v1/integrations/"+iid+"/deliveries/replay", map[string]any{"event_id": eventID}, adm...).
		ExpectError(t, http.StatusNotFound, parley.ENotFound)

	// The second session expires.
	clk.Advance(2 * time.Hour)
	waitEvents(t, rcv, []string{parley.EventSessionExpired})
	for _, d := range rcv.Deliveries() {
		checkWebhook(t, l.doc, d)
	}

	// An integration over its rate limit.
	limited := l.do("POST", "/admin/v1/integrations", map[string]any{"webhook_url": rcv.URL, "rate_limit": 1}, adm...).
		Expect(t, http.StatusCreated).JSON(t)
	for i := 0; ; i++ {
		r := l.do("GET", "/v1/custom/"+limited["id"].(string)+"/sessions/"+parley.NewID(), nil, "Authorization", "apikey "+limited["api_key"].(string))
		if r.Status == http.StatusTooManyRequests {
			break
		}
		if i == 20 {
			t.Fatal("20 requests in a row were not rate-limited at 1 per second")
		}
	}

	// Operations.
	l.do("GET", "/healthz", nil).Expect(t, http.StatusOK)
	l.do("GET", "/readyz", nil).Expect(t, http.StatusOK)
	l.do("GET", "/metrics", nil).Expect(t, http.StatusOK)
	l.do("GET", "/openapi.json", nil).Expect(t, http.StatusOK)

	// The stream said what the document says it says.
	events := stream.close()
	media := l.doc.deref(t, l.doc.root["paths"].(map[string]any)["/agent/v1/stream"].(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)["200"])["content"].(map[string]any)["text/event-stream"].(map[string]any)
	schemas := media["x-parley-events"].(map[string]any)
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.name] = true
		schema, ok := schemas[e.name]
		if !ok {
			t.Errorf("the stream sent event %q, which the document does not list", e.name)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(e.data), &v); err != nil {
			t.Errorf("stream event %s: data is not JSON: %s", e.name, e.data)
		} else if errs := l.doc.validate(schema, v, e.name); len(errs) > 0 {
			t.Errorf("stream event %s does not match the document:\n\t%s\ndata: %s", e.name, strings.Join(errs, "\n\t"), e.data)
		}
	}
	for _, name := range []string{"ready", "conversation", "message", "typing"} {
		if !seen[name] {
			t.Errorf("the stream sent no %q event", name)
		}
	}
	l.checked["agentStream"] = stream.ok

	for _, op := range l.doc.operations() {
		if id := op.Op["operationId"].(string); !op.Webhook && !l.checked[id] {
			t.Errorf("%s (%s %s) was never answered with a success here: add it to this walk", id, op.Method, op.Path)
		}
	}
}

// checkWebhook checks a delivery against its webhook in the document: the headers, the body's
// schema, and the order of the body's fields (the base fields in order, then the event's own).
func checkWebhook(t *testing.T, d *document, dl *apptest.Delivery) {
	t.Helper()
	typ := dl.Type()
	hook, ok := d.root["webhooks"].(map[string]any)[typ].(map[string]any)
	if !ok {
		t.Errorf("a webhook of type %q, which the document does not list", typ)
		return
	}
	op := hook["post"].(map[string]any)
	for _, p := range list(op["parameters"]) {
		p := d.deref(t, p)
		name := p["name"].(string)
		v := dl.Header.Get(name)
		if v == "" {
			if p["required"] == true {
				t.Errorf("%s: no %s header", typ, name)
			}
			continue
		}
		var val any = v
		if s := d.deref(t, p["schema"]); s["type"] == "integer" {
			var n float64
			json.Unmarshal([]byte(v), &n)
			val = n
		}
		if errs := d.validate(p["schema"], val, typ+" header "+name); len(errs) > 0 {
			t.Error(strings.Join(errs, "; "))
		}
	}
	if dl.Header.Get("X-Moveo-Event") != typ || dl.Header.Get("X-Moveo-Request-Id") != dl.RequestID() ||
		dl.Header.Get("X-Moveo-Session-Id") != dl.SessionID() {
		t.Errorf("%s: headers %v do not repeat the body's event_type, request_id and session_id", typ, dl.Header)
	}
	if !dl.SignatureOK {
		t.Errorf("%s: the signature does not verify", typ)
	}
	schema := op["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
	if errs := d.validate(schema, dl.Event, typ); len(errs) > 0 {
		t.Errorf("webhook %s does not match the document:\n\t%s\nbody: %s", typ, strings.Join(errs, "\n\t"), dl.Body)
	}

	// The order: EventBase's properties, then the event's own, as the document lists them.
	ref := schema.(map[string]any)["$ref"].(string)
	var event struct {
		AllOf []json.RawMessage `json:"allOf"`
	}
	json.Unmarshal(rawAt(t, "components", "schemas", strings.TrimPrefix(ref, "#/components/schemas/")), &event)
	var own struct {
		Properties json.RawMessage `json:"properties"`
	}
	json.Unmarshal(event.AllOf[1], &own)
	baseOrder, _ := orderedKeys(rawAt(t, "components", "schemas", "EventBase", "properties"))
	ownOrder, _ := orderedKeys(own.Properties)
	var want []string
	for _, k := range append(baseOrder, ownOrder...) {
		if _, ok := dl.Event[k]; ok && !slices.Contains(want, k) {
			want = append(want, k)
		}
	}
	got, err := orderedKeys(dl.Body)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("webhook %s: fields %v, want them as the document orders them: %v", typ, got, want)
	}
}

// waitEvents waits until the receiver got every type of event in want.
func waitEvents(t *testing.T, rcv *apptest.Receiver, want []string) {
	t.Helper()
	rcv.Wait(10*time.Second, "webhooks "+strings.Join(want, ", "), func(ds []*apptest.Delivery) bool {
		for _, w := range want {
			if !slices.ContainsFunc(ds, func(d *apptest.Delivery) bool { return d.Type() == w }) {
				return false
			}
		}
		return true
	})
}

type sse struct{ name, data string }

// stream is an agent's open live stream, read in the background.
type stream struct {
	cancel context.CancelFunc
	done   chan struct{}
	events []sse
	ok     bool // answered 200 text/event-stream
}

func openStream(t *testing.T, srv *apptest.Server, token string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/agent/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &stream{cancel: cancel, done: make(chan struct{})}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	s.ok = resp.StatusCode == http.StatusOK && mt == "text/event-stream" && uuidRE.MatchString(resp.Header.Get("X-Request-Id"))
	if !s.ok {
		t.Errorf("the stream answered %d %q", resp.StatusCode, mt)
	}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && e.name != "":
				s.events = append(s.events, e)
				e = sse{}
			case strings.HasPrefix(line, "event: "):
				e.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(cancel)
	return s
}

// close waits a moment for events in flight, ends the stream and returns what it said.
func (s *stream) close() []sse {
	time.Sleep(300 * time.Millisecond)
	s.cancel()
	<-s.done
	return s.events
}
