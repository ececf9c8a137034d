package blob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley"
)

// FilesPath is the path of parley's own file URLs: FilesPath + file ID.
const FilesPath = "/files/"

// Signer makes and checks the URLs parley serves itself: the upload URL of every file, and the
// download URLs of the local store. A URL is
//
//	{public URL}/files/{id}?expires={Unix seconds}&signature={base64url(HMAC-SHA256(key, method "\n" id "\n" expires))}
//
// so it is good for one method on one file until one instant, and nothing else: changing any
// part of it, or using a GET URL to PUT, breaks the signature.
type Signer struct {
	key  []byte
	base string
}

// NewSigner returns a Signer with the secret key whose URLs start with publicURL, the address
// clients reach this server at.
func NewSigner(key []byte, publicURL string) *Signer {
	return &Signer{key: key, base: strings.TrimSuffix(publicURL, "/")}
}

// URL returns the signed URL for method on the file id, valid until expires (to the second).
func (s *Signer) URL(method, id string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return s.base + FilesPath + id + "?expires=" + exp + "&signature=" + s.sign(method, id, exp)
}

func (s *Signer) sign(method, id, expires string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(method + "\n" + id + "\n" + expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks that query (of a request for method on the file id) carries a signature made
// by this Signer and that it has not expired at now. Every failure is a *parley.Error with
// code EForbidden. The signature is compared in constant time.
func (s *Signer) Verify(method, id string, query url.Values, now time.Time) error {
	exps, sigs := query["expires"], query["signature"]
	if len(exps) != 1 || len(sigs) != 1 {
		return parley.Errorf(parley.EForbidden, "the URL is not signed: it needs one expires and one signature")
	}
	exp, sig := exps[0], sigs[0]
	unix, ok := parseUnix(exp)
	got, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if !ok || err != nil || len(got) != sha256.Size {
		return parley.Errorf(parley.EForbidden, "the URL's signature is not valid")
	}
	want, _ := base64.RawURLEncoding.DecodeString(s.sign(method, id, exp))
	if !hmac.Equal(got, want) {
		return parley.Errorf(parley.EForbidden, "the URL's signature is not valid")
	}
	if now.Unix() >= unix {
		return parley.Errorf(parley.EForbidden, "the URL has expired")
	}
	return nil
}

// parseUnix parses a positive decimal number of seconds written the one way URL writes it: no
// sign, no leading zeros, no spaces. Any other spelling would let one signed value be sent as
// many strings.
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > 12 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
