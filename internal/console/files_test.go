package console_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
)

// TestAgentSendsAFile: an agent uploads a PDF for a conversation and sends it; the integrator's
// message:send carries a file response whose URL serves the bytes, the user's history shows it,
// and a user's uploaded screenshot reaches the agent with a URL too.
func TestAgentSendsAFile(t *testing.T) {
	apptest.Backends(t, func(t *testing.T, b apptest.Backend) {
		srv := apptest.Start(t, apptest.Options{Backend: b})
		in := srv.NewIntegration(t, admin.IntegrationSpec{})
		ann := newAgent(t, srv, "Ann Lee")
		sid, cid := handedOver(t, in, "Mia Wong", "can you send me the invoice?")

		pdf := []byte("%PDF-1.4 invoice #42")
		up := ann.call("POST", "/conversations/"+cid+"/files/upload-url",
			map[string]any{"filename": "invoice 42.pdf", "content_type": "application/pdf"}).Expect(t, http.StatusOK).JSON(t)
		req, _ := http.NewRequest("PUT", up["upload_url"].(string), bytes.NewReader(pdf))
		req.Header.Set("Content-Type", "application/pdf")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT the file: %v %v", resp.Status, err)
		}
		resp.Body.Close()
		ann.call("POST", "/conversations/"+cid+"/messages", map[string]any{"input": map[string]any{
			"text": "Here it is", "attachments": []map[string]any{{"type": "file", "mime_type": "application/pdf", "file_id": up["file_id"]}}}}).
			Expect(t, http.StatusCreated)

		send := in.Receiver.WaitType(parley.EventAgentSend, 10*time.Second)
		rs := send.Event["output"].(map[string]any)["responses"].([]any)
		if len(rs) != 2 || rs[0].(map[string]any)["text"] != "Here it is" {
			t.Fatalf("responses %v, want the text then the file", rs)
		}
		file := rs[1].(map[string]any)
		if file["type"] != "file" || file["name"] != "invoice 42.pdf" {
			t.Fatalf("file response %v", file)
		}
		if got := fetch(t, file["url"].(string)); !bytes.Equal(got, pdf) {
			t.Fatalf("the webhook's URL serves %q", got)
		}

		// The user's history shows it with a URL of its own.
		msgs := in.Call("GET", "/sessions/"+sid+"/messages", nil).Expect(t, http.StatusOK).JSON(t)["messages"].([]any)
		last := msgs[len(msgs)-1].(map[string]any)
		att := last["attachments"].([]any)[0].(map[string]any)
		if att["file_id"] != up["file_id"] || !bytes.Equal(fetch(t, att["url"].(string)), pdf) {
			t.Fatalf("history attachment %v", att)
		}

		// Another integration's agent cannot upload into the conversation.
		other := srv.NewIntegration(t, admin.IntegrationSpec{})
		bob := newAgent(t, srv, "Bob Stone", other.ID)
		bob.call("POST", "/conversations/"+cid+"/files/upload-url",
			map[string]any{"filename": "x.pdf", "content_type": "application/pdf"}).ExpectError(t, http.StatusNotFound, parley.ENotFound)
	})
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return b
}
