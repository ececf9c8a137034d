package blob_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/blob"
)

var (
	testKey = []byte("0123456789abcdef0123456789abcdef")
	t0      = time.Unix(1_780_000_000, 0)
	fileID  = "01900000-0000-7000-8000-0000000000ab"
)

func signed(t *testing.T, s *blob.Signer, method, id string, expires time.Time) *url.URL {
	t.Helper()
	u, err := url.Parse(s.URL(method, id, expires))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignerURL(t *testing.T) {
	s := blob.NewSigner(testKey, "https://chat.example.com/parley/")
	u := signed(t, s, "PUT", fileID, t0.Add(15*time.Minute))
	if u.Scheme != "https" || u.Host != "chat.example.com" || u.Path != "/parley/files/"+fileID {
		t.Errorf("URL %s", u)
	}
	if got := u.Query().Get("expires"); got != "1780000900" {
		t.Errorf("expires = %q", got)
	}
	if err := s.Verify("PUT", fileID, u.Query(), t0); err != nil {
		t.Errorf("a fresh URL: %v", err)
	}
}

func TestSignerRefuses(t *testing.T) {
	s := blob.NewSigner(testKey, "http://127.0.0.1:8080")
	good := signed(t, s, "PUT", fileID, t0.Add(time.Minute)).Query()
	sig, exp := good.Get("signature"), good.Get("expires")
	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		method string
		id     string
		query  string
		now    time.Time
	}{
		{"expired", "PUT", fileID, good.Encode(), t0.Add(time.Minute)},
		{"long expired", "PUT", fileID, good.Encode(), t0.Add(time.Hour)},
		{"another method", "GET", fileID, good.Encode(), t0},
		{"another file", "PUT", "01900000-0000-7000-8000-0000000000ac", good.Encode(), t0},
		{"tampered signature", "PUT", fileID, "expires=" + exp + "&signature=" + flip(sig), t0},
		{"later expiry", "PUT", fileID, "expires=1780000961&signature=" + sig, t0},
		{"expiry with a leading zero", "PUT", fileID, "expires=0" + exp + "&signature=" + sig, t0},
		{"expiry with a sign", "PUT", fileID, "expires=%2B" + exp + "&signature=" + sig, t0},
		{"no signature", "PUT", fileID, "expires=" + exp, t0},
		{"no expiry", "PUT", fileID, "signature=" + sig, t0},
		{"nothing", "PUT", fileID, "", t0},
		{"two signatures", "PUT", fileID, good.Encode() + "&signature=" + sig, t0},
		{"padded signature", "PUT", fileID, "expires=" + exp + "&signature=" + sig + "=", t0},
		{"signature of another key", "PUT", fileID,
			blob.NewSigner([]byte("another key"), "http://x").URL("PUT", fileID, t0.Add(time.Minute))[len("http://x/files/"+fileID+"?"):], t0},
		{"empty signature", "PUT", fileID, "expires=" + exp + "&signature=", t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Verify(tc.method, tc.id, q, tc.now)
			if !parley.IsCode(err, parley.EForbidden) {
				t.Errorf("Verify = %v, want forbidden", err)
			}
		})
	}
}

// FuzzSignerVerify feeds Verify arbitrary query strings: it must never panic, and it must
// accept nothing but a URL the signer made.
func FuzzSignerVerify(f *testing.F) {
	s := blob.NewSigner(testKey, "http://127.0.0.1:8080")
	good := s.URL("GET", fileID, t0.Add(time.Minute))
	f.Add(good[strings.IndexByte(good, '?')+1:], "GET", fileID)
	f.Add("expires=1&signature=AAAA", "PUT", fileID)
	f.Add("expires=99999999999999999999&signature=%ff", "GET", "x")
	f.Add("signature=;;;&&expires", "", "")
	f.Fuzz(func(t *testing.T, query, method, id string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		if s.Verify(method, id, q, t0) != nil {
			return
		}
		// Accepted: it must be exactly what the signer makes for these.
		want, _ := url.Parse(s.URL(method, id, time.Unix(mustUnix(t, q.Get("expires")), 0)))
		if q.Get("signature") != want.Query().Get("signature") {
			t.Fatalf("accepted %q for %s %s", query, method, id)
		}
	})
}

func mustUnix(t *testing.T, s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("accepted expires %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
