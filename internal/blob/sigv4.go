package blob

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sigv4 signs S3 requests with AWS Signature Version 4, header-based for parley's own requests
// and query-based for the presigned download URLs it hands out. It implements exactly what
// those need (SigV4 as the S3 documentation describes it, checked against its published
// examples in the tests), nothing of AWS's wider protocol.
type sigv4 struct {
	accessKey, secretKey, region string
}

const (
	sigAlgorithm    = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func (s *sigv4) scope(t time.Time) string {
	return t.Format("20060102") + "/" + s.region + "/s3/aws4_request"
}

func (s *sigv4) signature(t time.Time, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	toSign := sigAlgorithm + "\n" + t.Format(amzDateFormat) + "\n" + s.scope(t) + "\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+s.secretKey), t.Format("20060102"))
	k = hmacSHA256(k, s.region)
	k = hmacSHA256(k, "s3")
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sign adds X-Amz-Date, X-Amz-Content-Sha256 and Authorization to req. It signs the host and
// every header req carries, so the caller sets all its headers first.
func (s *sigv4) sign(req *http.Request, payloadHash string, t time.Time) {
	t = t.UTC()
	req.Header.Set("X-Amz-Date", t.Format(amzDateFormat))
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	headers := map[string]string{"host": req.URL.Host}
	for name, values := range req.Header {
		lower := strings.ToLower(name)
		if lower == "authorization" || lower == "user-agent" {
			continue
		}
		trimmed := make([]string, len(values))
		for i, v := range values {
			trimmed[i] = strings.Join(strings.Fields(v), " ")
		}
		headers[lower] = strings.Join(trimmed, ",")
	}
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	slices.Sort(names)
	var canon strings.Builder
	for _, n := range names {
		canon.WriteString(n + ":" + headers[n] + "\n")
	}
	signed := strings.Join(names, ";")
	creq := req.Method + "\n" + canonicalURI(req.URL.Path) + "\n" + canonicalQuery(req.URL.Query()) + "\n" +
		canon.String() + "\n" + signed + "\n" + payloadHash
	req.Header.Set("Authorization", sigAlgorithm+" Credential="+s.accessKey+"/"+s.scope(t)+
		", SignedHeaders="+signed+", Signature="+s.signature(t, creq))
}

// presign returns u with the query parameters that let anyone make the request method on it
// until t+expires, without credentials. Only the host header is signed.
func (s *sigv4) presign(method string, u *url.URL, t time.Time, expires time.Duration) string {
	t = t.UTC()
	q := u.Query()
	q.Set("X-Amz-Algorithm", sigAlgorithm)
	q.Set("X-Amz-Credential", s.accessKey+"/"+s.scope(t))
	q.Set("X-Amz-Date", t.Format(amzDateFormat))
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	q.Set("X-Amz-SignedHeaders", "host")
	query := canonicalQuery(q)
	creq := method + "\n" + canonicalURI(u.Path) + "\n" + query + "\n" +
		"host:" + u.Host + "\n\n" + "host\n" + unsignedPayload
	out := *u
	out.RawQuery = query + "&X-Amz-Signature=" + s.signature(t, creq)
	return out.String()
}

// canonicalURI encodes every byte of the path but the unreserved ones and '/', once.
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, true)
}

// canonicalQuery sorts the parameters by name, then value, each name and value encoded.
func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{uriEncode(k, false), uriEncode(v, false)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// uriEncode is SigV4's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ (and '/' when
// keepSlash) as %XY with upper-case hex.
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
