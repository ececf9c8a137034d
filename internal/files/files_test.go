package files_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

var now = time.UnixMilli(1_780_000_000_000).UTC()

func config() files.Config {
	return files.Config{MaxSize: files.DefaultMaxSize, AllowedTypes: []string{"image/png", "text/*"},
		UploadExpiry: files.DefaultUploadExpiry, DownloadExpiry: files.DefaultDownloadExpiry, Retention: files.DefaultRetention}
}

func TestCheckUpload(t *testing.T) {
	svc := files.New(config(), nil, nil, nil, func() time.Time { return now })
	tests := []struct {
		filename, contentType string
		wantName, wantType    string // "" = refused
	}{
		{"a.png", "image/png", "a.png", "image/png"},
		{"a.png", "IMAGE/PNG; q=1", "a.png", "image/png"},
		{`C:\fakepath\shot.png`, "image/png", "shot.png", "image/png"},
		{"../../etc/passwd", "text/plain", "passwd", "text/plain"},
		{"notes.md", "text/markdown", "notes.md", "text/markdown"},
		{"résumé 写真.png", "image/png", "résumé 写真.png", "image/png"},
		{"a.jpg", "image/jpeg", "", ""},
		{"a.html", "text/html ", "a.html", "text/html"}, // allowed by text/*
		{"a.png", "image", "", ""},
		{"a.png", "", "", ""},
		{"", "image/png", "", ""},
		{"dir/", "image/png", "", ""},
		{"..", "image/png", "", ""},
		{"a\x00.png", "image/png", "", ""},
		{"a\u0085.png", "image/png", "", ""},
		{"bad\xff.png", "image/png", "", ""},
		{strings.Repeat("é", 128) + ".png", "image/png", "", ""},
	}
	for _, tc := range tests {
		up, err := svc.CheckUpload(tc.filename, tc.contentType)
		if tc.wantName == "" {
			if !parley.IsCode(err, parley.EInvalid) {
				t.Errorf("CheckUpload(%q, %q) = %+v, %v; want invalid", tc.filename, tc.contentType, up, err)
			}
			continue
		}
		if err != nil || up.Filename != tc.wantName || up.ContentType != tc.wantType {
			t.Errorf("CheckUpload(%q, %q) = %+v, %v; want %q %q", tc.filename, tc.contentType, up, err, tc.wantName, tc.wantType)
		}
	}
}

func TestCheckAllowedType(t *testing.T) {
	for p, ok := range map[string]bool{
		"image/png": true, "image/*": true, "application/vnd.ms-excel": true,
		"*/*": false, "image": false, "image/": false, "/png": false, "image/p*": false, "image/png/x": false, "image /png": false,
	} {
		if err := files.CheckAllowedType(p); (err == nil) != ok {
			t.Errorf("CheckAllowedType(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

// TestResolve gives file attachments fresh URLs and leaves the rest alone.
func TestResolve(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "parley.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	signer := blob.NewSigner([]byte("0123456789abcdef0123456789abcdef"), "http://parley.test")
	clock := func() time.Time { return now }
	local, err := blob.NewLocal(t.TempDir(), signer, clock)
	if err != nil {
		t.Fatal(err)
	}
	svc := files.New(config(), db, local, signer, clock)

	in := &parley.Integration{ID: parley.NewID(), WebhookURL: "http://127.0.0.1:9/", CreatedAt: now, UpdatedAt: now}
	if err := in.Normalize(); err != nil {
		t.Fatal(err)
	}
	sess := &parley.Session{ID: parley.NewID(), IntegrationID: in.ID, Status: parley.SessionActive, Context: []byte(`{}`),
		ConversationID: parley.NewID(), CreatedAt: now, LastActivityAt: now, ExpiresAt: now.Add(time.Hour)}
	ready := &parley.File{ID: parley.NewID(), IntegrationID: in.ID, SessionID: sess.ID, Filename: "shot.png",
		ContentType: "image/png", Size: 3, State: parley.FileReady, CreatedAt: now, UploadedAt: now}
	pending := &parley.File{ID: parley.NewID(), IntegrationID: in.ID, SessionID: sess.ID, Filename: "later.png",
		ContentType: "image/png", State: parley.FilePending, CreatedAt: now}
	err = db.Update(t.Context(), func(tx store.Tx) error {
		if err := tx.CreateIntegration(in); err != nil {
			return err
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		if err := tx.CreateFile(ready); err != nil {
			return err
		}
		return tx.CreateFile(pending)
	})
	if err != nil {
		t.Fatal(err)
	}
	atts := []parley.Attachment{
		{Type: "image", MimeType: "image/jpeg", FileID: ready.ID},
		{Type: "image", MimeType: "image/png", URL: "https://cdn.example.com/a.png", Title: "a"},
		{Type: "image", MimeType: "image/png", FileID: ready.ID, Filename: "given.png"},
		{Type: "image", MimeType: "image/png", FileID: pending.ID},
		{Type: "file", MimeType: "text/plain", FileID: parley.NewID()},
	}
	before := append([]parley.Attachment(nil), atts...)
	var out []parley.Attachment
	err = db.View(t.Context(), func(tx store.ReadTx) (err error) {
		out, err = svc.Resolve(tx, atts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ url, mime, name string }{
		{"http://parley.test/files/" + ready.ID + "?", "image/png", "shot.png"},
		{"https://cdn.example.com/a.png", "image/png", ""},
		{"http://parley.test/files/" + ready.ID + "?", "image/png", "given.png"},
		{"", "image/png", ""},
		{"", "text/plain", ""},
	} {
		a := out[i]
		if !strings.HasPrefix(a.URL, want.url) || (want.url == "" && a.URL != "") || a.MimeType != want.mime || a.Filename != want.name {
			t.Errorf("attachment %d: %+v, want url %q… mime %q filename %q", i, a, want.url, want.mime, want.name)
		}
	}
	u, _ := url.Parse(out[0].URL)
	if err := signer.Verify("GET", ready.ID, u.Query(), now.Add(files.DefaultDownloadExpiry-time.Second)); err != nil {
		t.Errorf("resolved URL: %v", err)
	}
	for i := range atts {
		if atts[i] != before[i] {
			t.Errorf("Resolve changed its input %d: %+v", i, atts[i])
		}
	}
}
