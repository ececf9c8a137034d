package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/testenv"
)

// failingReader yields n bytes, then fails the way a body over the limit does.
type failingReader struct{ n int }

var errTooLarge = errors.New("too large")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errTooLarge
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

// testStore holds a Store to the contract. read returns a key's bytes, or an error wrapping
// parley.EFileNotFound when the key holds nothing.
func testStore(t *testing.T, st blob.Store, read func(t *testing.T, key string) ([]byte, error)) {
	ctx := t.Context()
	data := bytes.Repeat([]byte("parley\x00\xff"), 100_000)
	key := parley.NewID()
	n, err := st.Put(ctx, key, bytes.NewReader(data), blob.Meta{ContentType: "application/pdf", Filename: "résumé.pdf"})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Put = %d, %v; want %d", n, err, len(data))
	}
	if got, err := read(t, key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v; want the %d put", len(got), err, len(data))
	}

	empty := parley.NewID()
	if n, err := st.Put(ctx, empty, strings.NewReader(""), blob.Meta{ContentType: "text/plain"}); err != nil || n != 0 {
		t.Fatalf("Put of nothing = %d, %v", n, err)
	}
	if got, err := read(t, empty); err != nil || len(got) != 0 {
		t.Fatalf("empty file read back %q, %v", got, err)
	}

	// A failed Put leaves nothing.
	partial := parley.NewID()
	if _, err := st.Put(ctx, partial, &failingReader{n: 3 << 20}, blob.Meta{}); !errors.Is(err, errTooLarge) {
		t.Fatalf("Put of a failing body: err = %v, want the body's error", err)
	}
	if _, err := read(t, partial); !parley.IsCode(err, parley.EFileNotFound) {
		t.Fatalf("after a failed Put: err = %v, want file not found", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Put(cancelled, partial, bytes.NewReader(data), blob.Meta{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: err = %v", err)
	}
	if _, err := read(t, partial); !parley.IsCode(err, parley.EFileNotFound) {
		t.Fatalf("after a cancelled Put: err = %v, want file not found", err)
	}

	for _, bad := range []string{"", "../../etc/passwd", "a/b/c", "UPPER-case", "x", "résumé.pdf", strings.Repeat("a", 129)} {
		if _, err := st.Put(ctx, bad, strings.NewReader("x"), blob.Meta{}); err == nil {
			t.Errorf("Put(%q) succeeded", bad)
		}
		if _, err := st.DownloadURL(bad, time.Minute); err == nil {
			t.Errorf("DownloadURL(%q) succeeded", bad)
		}
		if err := st.Delete(ctx, bad); err == nil {
			t.Errorf("Delete(%q) succeeded", bad)
		}
	}

	if err := st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := read(t, key); !parley.IsCode(err, parley.EFileNotFound) {
		t.Fatalf("after Delete: err = %v, want file not found", err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func TestLocal(t *testing.T) {
	dir := t.TempDir()
	signer := blob.NewSigner(testKey, "http://parley.test")
	st, err := blob.NewLocal(dir, signer, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st, func(t *testing.T, key string) ([]byte, error) {
		f, err := st.Open(key)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	})
	// Nothing is left in the temporary directory, and files sit under their key only.
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	key := parley.NewID()
	u, err := st.DownloadURL(key, time.Minute)
	if err != nil || !strings.HasPrefix(u, "http://parley.test/files/"+key+"?expires=") {
		t.Fatalf("DownloadURL = %q, %v", u, err)
	}
	parsed, _ := url.Parse(u)
	if err := signer.Verify("GET", key, parsed.Query(), t0.Add(59*time.Second)); err != nil {
		t.Errorf("download URL within its minute: %v", err)
	}
	if err := signer.Verify("GET", key, parsed.Query(), t0.Add(time.Minute)); err == nil {
		t.Errorf("download URL after its minute was accepted")
	}
	if _, err := st.Open("../../etc/passwd"); !parley.IsCode(err, parley.EFileNotFound) {
		t.Errorf("Open of a path: %v", err)
	}
}

func newS3(t *testing.T) (*blob.S3, *testenv.S3Server) {
	srv := testenv.S3(t)
	st, err := blob.NewS3(blob.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

func get(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestS3(t *testing.T) {
	st, _ := newS3(t)
	if err := st.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	testStore(t, st, func(t *testing.T, key string) ([]byte, error) {
		u, err := st.DownloadURL(key, time.Minute)
		if err != nil {
			return nil, err
		}
		resp, b := get(t, u)
		switch resp.StatusCode {
		case http.StatusOK:
			return b, nil
		case http.StatusNotFound:
			return nil, parley.Errorf(parley.EFileNotFound, "%s", b)
		}
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		return nil, nil
	})
}

func TestS3ServesMetadata(t *testing.T) {
	st, _ := newS3(t)
	key := parley.NewID()
	if _, err := st.Put(t.Context(), key, strings.NewReader("%PDF-1.7"), blob.Meta{ContentType: "application/pdf", Filename: "résumé.pdf"}); err != nil {
		t.Fatal(err)
	}
	u, _ := st.DownloadURL(key, time.Minute)
	resp, b := get(t, u)
	if resp.StatusCode != http.StatusOK || string(b) != "%PDF-1.7" {
		t.Fatalf("GET: %d %q", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd, want := resp.Header.Get("Content-Disposition"), blob.ContentDisposition("application/pdf", "résumé.pdf"); cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}

	// S3 refuses a presigned URL once it has expired, or once anything in it changed.
	expired := *st
	expired.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	old, _ := expired.DownloadURL(key, time.Minute)
	if resp, b := get(t, old); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired URL: %d %s", resp.StatusCode, b)
	}
	i := strings.Index(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
	tampered := u[:i] + strings.Map(func(r rune) rune {
		if r == '0' {
			return '1'
		}
		return '0'
	}, u[i:i+1]) + u[i+1:]
	if resp, b := get(t, tampered); resp.StatusCode != http.StatusForbidden {
		t.Errorf("tampered URL: %d %s", resp.StatusCode, b)
	}
	other := strings.Replace(u, key, parley.NewID(), 1)
	if resp, b := get(t, other); resp.StatusCode != http.StatusForbidden {
		t.Errorf("URL of another key: %d %s", resp.StatusCode, b)
	}
}

func TestS3Check(t *testing.T) {
	srv := testenv.S3(t)
	for name, cfg := range map[string]blob.S3Config{
		"wrong secret": {Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: "nope", PathStyle: true},
		"no bucket":    {Endpoint: srv.Endpoint, Region: srv.Region, Bucket: "missing", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true},
	} {
		st, err := blob.NewS3(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(t.Context()); err == nil {
			t.Errorf("%s: Check succeeded", name)
		}
	}
	if _, err := blob.NewS3(blob.S3Config{Endpoint: "ftp://x", Region: "r", Bucket: "b", AccessKey: "a", SecretKey: "s"}); err == nil {
		t.Error("an ftp endpoint was accepted")
	}
}
