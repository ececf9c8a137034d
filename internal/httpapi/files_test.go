package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/admin"
	"github.com/parleyhq/parley/internal/app/apptest"
	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/clock"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/store"
)

// fileEnv is a running parley with one integration, keeping files in one of the stores.
type fileEnv struct {
	t     *testing.T
	srv   *apptest.Server
	in    *apptest.Integration
	clock *clock.Fake
	fb    apptest.FileBackend
}

func startFiles(t *testing.T, b apptest.Backend, fb apptest.FileBackend, configure ...func(*config.Config)) *fileEnv {
	t.Helper()
	files := apptest.ConfigureFiles(t, fb)
	clk := clock.NewFake(time.Now())
	srv := apptest.Start(t, apptest.Options{NoBrain: true, Backend: b, Clock: clk, Configure: func(c *config.Config) {
		files(c)
		for _, f := range configure {
			f(c)
		}
	}})
	return &fileEnv{t: t, srv: srv, in: srv.NewIntegration(t, admin.IntegrationSpec{}), clock: clk, fb: fb}
}

// uploadURL asks for an upload URL and returns the file ID and the URL.
func (e *fileEnv) uploadURL(in *apptest.Integration, sid, filename, contentType string) (string, string) {
	e.t.Helper()
	body := in.Call("POST", "/sessions/"+sid+"/files/upload-url", map[string]any{"filename": filename, "content_type": contentType}).
		Expect(e.t, http.StatusOK).JSON(e.t)
	id, _ := body["file_id"].(string)
	u, _ := body["upload_url"].(string)
	if _, ok := parley.ParseID(id); !ok || !strings.HasPrefix(u, e.srv.URL+"/files/"+id+"?") || body["request_id"] == "" {
		e.t.Fatalf("upload-url answered %v", body)
	}
	return id, u
}

// send makes an HTTP request to a file URL, as a client with no credentials would.
func (e *fileEnv) send(method, u, contentType string, body io.Reader, size int64) *apptest.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (e *fileEnv) put(u, contentType string, data []byte) *apptest.Response {
	e.t.Helper()
	return e.send("PUT", u, contentType, bytes.NewReader(data), int64(len(data)))
}

func (e *fileEnv) get(u string) *apptest.Response {
	e.t.Helper()
	return e.send("GET", u, "", nil, 0)
}

// upload makes a file of the session with the bytes and returns its ID.
func (e *fileEnv) upload(in *apptest.Integration, sid, filename, contentType string, data []byte) string {
	e.t.Helper()
	id, u := e.uploadURL(in, sid, filename, contentType)
	r := e.put(u, contentType, data).Expect(e.t, http.StatusOK).JSON(e.t)
	if r["file_id"] != id || r["size"] != float64(len(data)) {
		e.t.Fatalf("PUT answered %v", r)
	}
	return id
}

func (e *fileEnv) downloadURL(in *apptest.Integration, sid, fileID string) *apptest.Response {
	e.t.Helper()
	return in.Call("POST", "/sessions/"+sid+"/files/download-url", map[string]any{"file_id": fileID})
}

// stored reports whether the file store holds bytes for the file, asking the store itself.
func (e *fileEnv) stored(id string) bool {
	e.t.Helper()
	st := e.srv.Main.Files.Blobs()
	if o, ok := st.(blob.Opener); ok {
		f, err := o.Open(id)
		if err == nil {
			f.Close()
			return true
		}
		if !parley.IsCode(err, parley.EFileNotFound) {
			e.t.Fatal(err)
		}
		return false
	}
	u, err := st.DownloadURL(id, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	switch r := e.get(u); r.Status {
	case http.StatusOK:
		return true
	case http.StatusNotFound:
		return false
	default:
		e.t.Fatalf("GET %s from the store: %d %s", u, r.Status, r.Body)
	}
	return false
}

func (e *fileEnv) file(id string) (*parley.File, error) {
	var f *parley.File
	err := e.srv.Main.DB.View(e.t.Context(), func(tx store.ReadTx) (err error) {
		f, err = tx.File(id)
		return err
	})
	return f, err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func attachment(typ, mimeType, fileID string) map[string]any {
	return map[string]any{"type": typ, "mime_type": mimeType, "file_id": fileID}
}

// messageAttachments returns the attachments of the history's messages, in order.
func messageAttachments(t *testing.T, in *apptest.Integration, sid string) [][]map[string]any {
	t.Helper()
	page := in.Call("GET", "/sessions/"+sid+"/messages", nil).Expect(t, http.StatusOK).JSON(t)
	var out [][]map[string]any
	for _, m := range page["messages"].([]any) {
		var atts []map[string]any
		if list, ok := m.(map[string]any)["attachments"].([]any); ok {
			for _, a := range list {
				atts = append(atts, a.(map[string]any))
			}
		}
		out = append(out, atts)
	}
	return out
}

// TestFilesRoundTrip follows Moveo's documented flow: a user sends a screenshot, the
// integrator's agent sends a PDF back, and both can be read back from the history and fetched.
func TestFilesRoundTrip(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid := e.in.NewSession()

		png := append([]byte("\x89PNG\r\n\x1a\n"), randomBytes(300_000)...)
		shot := e.upload(e.in, sid, "screen shot.png", "image/png", png)
		e.in.Call("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{
			"text": "look", "attachments": []any{attachment("image", "image/png", shot)}}}).Expect(t, http.StatusAccepted)

		pdf := append([]byte("%PDF-1.7\n"), randomBytes(50_000)...)
		doc := e.upload(e.in, sid, `C:\fakepath\résumé "final".pdf`, "application/pdf", pdf)
		e.in.Call("POST", "/sessions/"+sid+"/messages/agent", map[string]any{
			"input": map[string]any{"attachments": []any{attachment("file", "application/pdf", doc)}},
			"agent": map[string]any{"agent_id": "a1", "agent_name": "Ann"}}).Expect(t, http.StatusAccepted)

		check := func(att map[string]any, id, mimeType, filename, disposition string, data []byte) {
			t.Helper()
			if att["file_id"] != id || att["mime_type"] != mimeType || att["filename"] != filename {
				t.Errorf("attachment %v, want file %s %s %q", att, id, mimeType, filename)
			}
			u, _ := att["url"].(string)
			if u == "" {
				t.Fatalf("attachment %v has no download url", att)
			}
			r := e.get(u).Expect(t, http.StatusOK)
			if !bytes.Equal(r.Body, data) {
				t.Errorf("downloaded %d bytes, uploaded %d (equal: false)", len(r.Body), len(data))
			}
			if ct := r.Header.Get("Content-Type"); ct != mimeType {
				t.Errorf("Content-Type %q, want %q", ct, mimeType)
			}
			if cd := r.Header.Get("Content-Disposition"); cd != disposition {
				t.Errorf("Content-Disposition %q, want %q", cd, disposition)
			}
		}
		history := messageAttachments(t, e.in, sid)
		if len(history) != 2 || len(history[0]) != 1 || len(history[1]) != 1 {
			t.Fatalf("history attachments %v", history)
		}
		check(history[0][0], shot, "image/png", "screen shot.png", `inline; filename="screen shot.png"`, png)
		check(history[1][0], doc, "application/pdf", `résumé "final".pdf`,
			`attachment; filename="r_sum_ _final_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.pdf`, pdf)

		r := e.downloadURL(e.in, sid, strings.ToUpper(shot)).Expect(t, http.StatusOK).JSON(t)
		if r["file_id"] != shot || r["request_id"] == "" {
			t.Errorf("download-url answered %v", r)
		}
		if got := e.get(r["download_url"].(string)).Expect(t, http.StatusOK); !bytes.Equal(got.Body, png) {
			t.Errorf("download-url's URL served other bytes")
		}

		// Closing the session keeps its files: the history still resolves them.
		e.in.Call("POST", "/sessions/"+sid+"/close", nil).Expect(t, http.StatusOK)
		history = messageAttachments(t, e.in, sid)
		check(history[0][0], shot, "image/png", "screen shot.png", `inline; filename="screen shot.png"`, png)
		// download-url is one of the calls a closed session no longer takes.
		e.downloadURL(e.in, sid, shot).ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
	})
}

// TestFilesExpiry moves parley's clock past the URLs' expiry. (An S3 store's download URLs
// are checked by the S3 server on its own clock; the blob tests cover their expiry.)
func TestFilesExpiry(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid := e.in.NewSession()
		_, late := e.uploadURL(e.in, sid, "a.txt", "text/plain")
		e.clock.Advance(files.DefaultUploadExpiry - time.Second)
		id := e.upload(e.in, sid, "b.txt", "text/plain", []byte("in time"))
		e.clock.Advance(time.Second)
		e.put(late, "text/plain", []byte("too late")).ExpectError(t, http.StatusForbidden, parley.EForbidden)

		if fb == apptest.LocalFiles {
			u := e.downloadURL(e.in, sid, id).Expect(t, http.StatusOK).Str(t, "download_url")
			e.clock.Advance(files.DefaultDownloadExpiry - time.Second)
			e.get(u).Expect(t, http.StatusOK)
			e.clock.Advance(time.Second)
			e.get(u).ExpectError(t, http.StatusForbidden, parley.EForbidden)
		}
	})
}

// TestFilesTampering changes every part of signed URLs.
func TestFilesTampering(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid := e.in.NewSession()
		other, _ := e.uploadURL(e.in, sid, "other.txt", "text/plain")
		id, put := e.uploadURL(e.in, sid, "a.txt", "text/plain")
		pu, _ := url.Parse(put)
		q := pu.Query()
		with := func(change func(u *url.URL, q url.Values)) string {
			u := *pu
			q2 := url.Values{}
			for k, v := range q {
				q2[k] = append([]string(nil), v...)
			}
			change(&u, q2)
			u.RawQuery = q2.Encode()
			return u.String()
		}
		flipped := []byte(q.Get("signature"))
		flipped[0] ^= 1
		tampered := map[string]string{
			"signature": with(func(u *url.URL, q url.Values) { q.Set("signature", string(flipped)) }),
			"expiry":    with(func(u *url.URL, q url.Values) { q.Set("expires", q.Get("expires")+"0") }),
			"file":      with(func(u *url.URL, q url.Values) { u.Path = "/files/" + other }),
			"unsigned":  with(func(u *url.URL, q url.Values) { q.Del("signature") }),
			"not an ID": with(func(u *url.URL, q url.Values) { u.Path = "/files/..%2f..%2fetc%2fpasswd" }),
		}
		for name, u := range tampered {
			if r := e.put(u, "text/plain", []byte("x")); r.Status != http.StatusForbidden || r.Str(t, "error_code") != parley.EForbidden {
				t.Errorf("PUT with a tampered %s: %d %s", name, r.Status, r.Body)
			}
		}
		// An upload URL does not download, nor a download URL upload.
		e.put(put, "text/plain", []byte("hello")).Expect(t, http.StatusOK)
		e.get(put).ExpectError(t, http.StatusForbidden, parley.EForbidden)
		if fb == apptest.LocalFiles {
			get := e.downloadURL(e.in, sid, id).Expect(t, http.StatusOK).Str(t, "download_url")
			e.put(get, "text/plain", []byte("x")).ExpectError(t, http.StatusForbidden, parley.EForbidden)
			gu, _ := url.Parse(get)
			gq := gu.Query()
			gq.Set("expires", "1"+gq.Get("expires"))
			gu.RawQuery = gq.Encode()
			e.get(gu.String()).ExpectError(t, http.StatusForbidden, parley.EForbidden)
		}
	})
}

// TestFilesTypesAndSize: the declared type is the only one accepted, the allow-list is
// enforced, and a body over the limit is refused whether its length is announced or not,
// keeping nothing and leaving the URL usable.
func TestFilesTypesAndSize(t *testing.T) {
	const limit = 64 << 10
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb, func(c *config.Config) { c.Files.MaxSize = limit })
		sid := e.in.NewSession()
		path := "/sessions/" + sid + "/files/upload-url"
		for name, body := range map[string]any{
			"HTML":                  map[string]any{"filename": "x.html", "content_type": "text/html"},
			"SVG":                   map[string]any{"filename": "x.svg", "content_type": "image/svg+xml"},
			"a malformed type":      map[string]any{"filename": "x", "content_type": "image"},
			"no content type":       map[string]any{"filename": "x.png"},
			"no filename":           map[string]any{"content_type": "image/png"},
			"an empty filename":     map[string]any{"filename": "dir/", "content_type": "image/png"},
			"a control character":   map[string]any{"filename": "a\nb.png", "content_type": "image/png"},
			"a filename too long":   map[string]any{"filename": strings.Repeat("a", 256), "content_type": "image/png"},
			"a filename not a text": map[string]any{"filename": 7, "content_type": "image/png"},
		} {
			if r := e.in.Call("POST", path, body); r.Status != http.StatusBadRequest || r.Str(t, "error_code") != parley.EInvalid {
				t.Errorf("upload-url with %s: %d %s", name, r.Status, r.Body)
			}
		}

		id, u := e.uploadURL(e.in, sid, "pic.png", "image/png")
		e.put(u, "image/jpeg", []byte("x")).ExpectError(t, http.StatusBadRequest, parley.EInvalid)
		e.put(u, "", []byte("x")).ExpectError(t, http.StatusBadRequest, parley.EInvalid)

		big := randomBytes(limit + 1)
		e.put(u, "image/png", big).ExpectError(t, http.StatusRequestEntityTooLarge, parley.ETooLarge)
		// The same body without Content-Length (chunked): refused while streaming.
		e.send("PUT", u, "image/png", io.MultiReader(bytes.NewReader(big)), -1).
			ExpectError(t, http.StatusRequestEntityTooLarge, parley.ETooLarge)
		if f, err := e.file(id); err != nil || f.State != parley.FilePending {
			t.Fatalf("after refused uploads the file is %+v, %v; want pending", f, err)
		}
		if e.stored(id) {
			t.Fatal("a refused upload left bytes in the store")
		}
		e.in.Call("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{
			"attachments": []any{attachment("image", "image/png", id)}}}).ExpectError(t, http.StatusBadRequest, parley.EInvalid)

		// The URL still takes one good upload, exactly at the limit, with parameters on the type.
		exact := randomBytes(limit)
		e.put(u, "image/PNG; foo=bar", exact).Expect(t, http.StatusOK)
		e.put(u, "image/png", exact).ExpectError(t, http.StatusConflict, parley.EConflict)
		e.downloadURL(e.in, sid, id).Expect(t, http.StatusOK)

		// Whole types can be allowed.
		e2 := startFiles(t, b, apptest.LocalFiles, func(c *config.Config) { c.Files.AllowedTypes = []string{"image/*"} })
		sid2 := e2.in.NewSession()
		e2.uploadURL(e2.in, sid2, "x.tiff", "image/tiff")
		e2.in.Call("POST", "/sessions/"+sid2+"/files/upload-url", map[string]any{"filename": "x.pdf", "content_type": "application/pdf"}).
			ExpectError(t, http.StatusBadRequest, parley.EInvalid)
	})
}

// TestFilesAccess: a file belongs to its session; another session, another integration, an
// unfinished upload and an unknown ID all get the same answers.
func TestFilesAccess(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid, sid2 := e.in.NewSession(), e.in.NewSession()
		id := e.upload(e.in, sid, "a.txt", "text/plain", []byte("mine"))
		pending, _ := e.uploadURL(e.in, sid, "b.txt", "text/plain")
		stranger := e.srv.NewIntegration(t, admin.IntegrationSpec{})
		theirs := stranger.NewSession()

		send := func(in *apptest.Integration, sid, fileID string) *apptest.Response {
			return in.Call("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{
				"attachments": []any{attachment("file", "text/plain", fileID)}}})
		}
		for name, r := range map[string]*apptest.Response{
			"another session":     send(e.in, sid2, id),
			"another integration": send(stranger, theirs, id),
			"an unfinished file":  send(e.in, sid, pending),
			"an unknown file":     send(e.in, sid, parley.NewID()),
		} {
			if r.Status != http.StatusBadRequest || r.Str(t, "error_code") != parley.EInvalid {
				t.Errorf("message with %s: %d %s", name, r.Status, r.Body)
			}
		}
		for name, r := range map[string]*apptest.Response{
			"another session":     e.downloadURL(e.in, sid2, id),
			"another integration": e.downloadURL(stranger, theirs, id),
			"an unfinished file":  e.downloadURL(e.in, sid, pending),
			"an unknown file":     e.downloadURL(e.in, sid, parley.NewID()),
			"a malformed file ID": e.downloadURL(e.in, sid, "../a.txt"),
		} {
			if r.Status != http.StatusNotFound || r.Str(t, "error_code") != parley.EFileNotFound {
				t.Errorf("download-url of %s: %d %s", name, r.Status, r.Body)
			}
		}
		// Another integration cannot reach the session at all.
		stranger.Call("POST", "/sessions/"+sid+"/files/download-url", map[string]any{"file_id": id}).
			ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
		stranger.Call("POST", "/sessions/"+sid+"/files/upload-url", map[string]any{"filename": "x.txt", "content_type": "text/plain"}).
			ExpectError(t, http.StatusNotFound, parley.ESessionNotFound)
		e.in.Call("POST", "/sessions/"+sid+"/files/download-url", map[string]any{}).ExpectError(t, http.StatusBadRequest, parley.EInvalid)

		// The message that failed referenced nothing; the file's own session can use it, twice.
		for range 2 {
			send(e.in, sid, id).Expect(t, http.StatusAccepted)
		}
		if f, _ := e.file(id); f.ReferencedAt.IsZero() {
			t.Error("a file used in a message is not marked referenced")
		}
	})
}

// TestFilesConcurrentUploads sends the same upload URL many bodies at once: one wins.
func TestFilesConcurrentUploads(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid := e.in.NewSession()
		id, u := e.uploadURL(e.in, sid, "race.bin", "application/pdf")
		const n = 8
		bodies := make([][]byte, n)
		answers := make([]*apptest.Response, n)
		for i := range bodies {
			bodies[i] = randomBytes(1 << 20)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = e.put(u, "application/pdf", bodies[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, r := range answers {
			switch {
			case r.Status == http.StatusOK && winner < 0:
				winner = i
			case r.Status == http.StatusConflict && r.Str(t, "error_code") == parley.EConflict:
			default:
				t.Errorf("PUT %d: %d %s", i, r.Status, r.Body)
			}
		}
		if winner < 0 {
			t.Fatal("no PUT won")
		}
		got := e.get(e.downloadURL(e.in, sid, id).Expect(t, http.StatusOK).Str(t, "download_url")).Expect(t, http.StatusOK)
		if !bytes.Equal(got.Body, bodies[winner]) {
			t.Error("the stored bytes are not the winner's")
		}
	})
}

// TestFilesRetention: files no message references are removed after the retention period,
// the rest stay, also when their session is closed.
func TestFilesRetention(t *testing.T) {
	apptest.FileBackends(t, func(t *testing.T, b apptest.Backend, fb apptest.FileBackend) {
		e := startFiles(t, b, fb)
		sid := e.in.NewSession()
		unused := e.upload(e.in, sid, "unused.txt", "text/plain", []byte("nobody needs me"))
		used := e.upload(e.in, sid, "used.txt", "text/plain", []byte("keep me"))
		never, _ := e.uploadURL(e.in, sid, "never.txt", "text/plain")
		e.in.Call("POST", "/sessions/"+sid+"/messages", map[string]any{"input": map[string]any{
			"attachments": []any{attachment("file", "text/plain", used)}}}).Expect(t, http.StatusAccepted)
		e.in.Call("POST", "/sessions/"+sid+"/close", nil).Expect(t, http.StatusOK)

		// Before the period ends nothing goes, closed session or not.
		e.clock.Advance(files.DefaultRetention - files.SweepInterval)
		e.clock.Advance(files.SweepInterval / 2)
		if _, err := e.srv.Main.Files.Sweeper(e.clock, apptest.Logger(t)).Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{unused, used, never} {
			if _, err := e.file(id); err != nil {
				t.Fatalf("file %s gone before its time: %v", id, err)
			}
		}

		// The sweeper waits on the fake clock; it may not be waiting yet when the clock moves,
		// so the clock keeps moving until the sweeper has seen it.
		deadline := time.Now().Add(10 * time.Second)
		for {
			e.clock.Advance(files.SweepInterval)
			_, err1 := e.file(unused)
			_, err2 := e.file(never)
			if parley.IsCode(err1, parley.ENotFound) && parley.IsCode(err2, parley.ENotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("unreferenced files still there after the retention period: %v, %v", err1, err2)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if e.stored(unused) {
			t.Error("the bytes of a removed file are still stored")
		}
		if _, err := e.file(used); err != nil || !e.stored(used) {
			t.Fatalf("a referenced file was removed: %v", err)
		}
		att := messageAttachments(t, e.in, sid)[0][0]
		if r := e.get(att["url"].(string)).Expect(t, http.StatusOK); string(r.Body) != "keep me" {
			t.Errorf("the referenced file serves %q", r.Body)
		}
	})
}
