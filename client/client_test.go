package client_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/client"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// TestClient drives every call of the client against a real server.
func TestClient(t *testing.T) {
	srv := apptest.Start(t, apptest.Options{})
	in := srv.NewIntegration(t, admin.IntegrationSpec{})
	c := client.New(srv.URL, in.ID, in.Key)
	ctx := t.Context()

	s, err := c.CreateSession(ctx, client.NewSession{ExternalSessionID: "order-1", ChannelUserID: "u-1",
		Context: map[string]any{"user": map[string]any{"display_name": "Ada"}}})
	if err != nil || s.SessionID == "" {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := c.UpdateContext(ctx, s.SessionID, map[string]any{"plan": "pro"}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Send(ctx, s.SessionID, client.Message{Text: "hello"}, map[string]any{"tags": []string{"vip"}},
		client.IdempotencyKey("k-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Send(ctx, s.SessionID, client.Message{Text: "hello"}, nil, client.IdempotencyKey("k-1"))
	if err != nil || again != id {
		t.Fatalf("a repeated Idempotency-Key gave %q, %v; want the first message %q", again, err, id)
	}
	fileID, err := c.Upload(ctx, s.SessionID, "note.txt", "text/plain", bytes.NewReader([]byte("hi there")))
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if _, err := c.Send(ctx, s.SessionID, client.Message{Attachments: []parley.Attachment{
		{Type: "file", MimeType: "text/plain", FileID: fileID}}}, nil); err != nil {
		t.Fatalf("Send with a file: %v", err)
	}
	u, err := c.DownloadURL(ctx, s.SessionID, fileID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi there" {
		t.Errorf("downloaded %q", b)
	}
	if _, err := c.SendAsAgent(ctx, s.SessionID, client.Message{Text: "I'm Bob"}, parley.AgentRef{ID: "bob", Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkRead(ctx, s.SessionID, client.Receipts{Until: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MarkDelivered(ctx, s.SessionID, client.Receipts{MessageIDs: []string{id}}); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { return c.CloseConversation(ctx, s.SessionID) },
		func() error { return c.ReopenConversation(ctx, s.SessionID) },
		func() error { return c.Handover(ctx, s.SessionID) },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := c.GetSession(ctx, s.SessionID)
	if err != nil || info.Status != "active" || info.ExternalSessionID != "order-1" {
		t.Fatalf("GetSession: %+v %v", info, err)
	}
	var authors []string
	for m, err := range c.History(ctx, s.SessionID) {
		if err != nil {
			t.Fatal(err)
		}
		authors = append(authors, m.Author)
	}
	if len(authors) < 3 || authors[0] != "user" {
		t.Errorf("history authors %v", authors)
	}
	if err := c.CloseSession(ctx, s.SessionID); err != nil {
		t.Fatal(err)
	}
	err = c.Handover(ctx, s.SessionID)
	if !client.IsCode(err, "session-not-found") {
		t.Fatalf("a call on a closed session: %v, want session-not-found", err)
	}
	if e := err.(*client.Error); e.Status != 404 || e.RequestID == "" {
		t.Errorf("error %+v", e)
	}
	bad := client.New(srv.URL, in.ID, "prl_wrong")
	if _, err := bad.CreateSession(ctx, client.NewSession{}); !client.IsCode(err, "unauthorized") {
		t.Errorf("a wrong key: %v, want unauthorized", err)
	}
}
