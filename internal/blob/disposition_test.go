package blob_test

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/blob"
)

func TestContentDisposition(t *testing.T) {
	tests := []struct{ contentType, filename, want string }{
		{"image/png", "screenshot.png", `inline; filename="screenshot.png"`},
		{"video/mp4", "clip.mp4", `inline; filename="clip.mp4"`},
		{"application/pdf", "invoice 2026.pdf", `attachment; filename="invoice 2026.pdf"`},
		{"image/svg+xml", "logo.svg", `attachment; filename="logo.svg"`},
		{"text/plain", "", `attachment`},
		{"application/pdf", `a"b\c.pdf`, `attachment; filename="a_b_c.pdf"; filename*=UTF-8''a%22b%5Cc.pdf`},
		{"application/pdf", "résumé.pdf", `attachment; filename="r_sum_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`},
		{"image/jpeg", "写真.jpg", `inline; filename="__.jpg"; filename*=UTF-8''%E5%86%99%E7%9C%9F.jpg`},
		{"text/plain", "x\r\nSet-Cookie: a=b", `attachment; filename="x__Set-Cookie: a=b"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20a%3Db`},
		{"text/plain", "100% (final);v2.txt", `attachment; filename="100% (final);v2.txt"`},
		{"application/pdf", "bad\xffutf8.pdf", `attachment; filename="bad_utf8.pdf"; filename*=UTF-8''bad%EF%BF%BDutf8.pdf`},
	}
	for _, tc := range tests {
		if got := blob.ContentDisposition(tc.contentType, tc.filename); got != tc.want {
			t.Errorf("ContentDisposition(%q, %q)\n got %s\nwant %s", tc.contentType, tc.filename, got, tc.want)
		}
	}
}

// FuzzContentDisposition checks, for any filename, that the header is printable ASCII on one
// line and that a standard parser reads the exact filename back from it.
func FuzzContentDisposition(f *testing.F) {
	for _, s := range []string{"a.png", "résumé.pdf", `"quoted"\`, "\x00\r\n", "写真.jpg", "100%;x=y", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		h := blob.ContentDisposition("application/pdf", name)
		for i := 0; i < len(h); i++ {
			if h[i] < 0x20 || h[i] >= 0x7f {
				t.Fatalf("header %q holds byte %#x", h, h[i])
			}
		}
		if name == "" {
			return
		}
		_, params, err := mime.ParseMediaType(h)
		if err != nil {
			t.Fatalf("mime.ParseMediaType(%q): %v", h, err)
		}
		want := name
		if !utf8.ValidString(want) {
			want = strings.ToValidUTF8(want, "\uFFFD")
		}
		if params["filename"] != want {
			t.Fatalf("filename read back %q, want %q (header %q)", params["filename"], want, h)
		}
	})
}
