package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// S3Config says where an S3 store keeps files and how to reach it.
type S3Config struct {
	// Endpoint is the service's base URL (http://127.0.0.1:7070, https://s3.eu-west-1.amazonaws.com).
	// Empty means AWS in Region. Download URLs point at it, so clients must reach it too.
	Endpoint  string
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket as {endpoint}/{bucket}/{key} instead of
	// {bucket}.{endpoint host}/{key}; most self-hosted S3 servers need it.
	PathStyle bool
	// SpoolDir is where an upload is held until it is complete; empty means the system's
	// temporary directory.
	SpoolDir string
}

// S3 keeps files in a bucket of an S3-compatible object store. Its download URLs are the
// store's own presigned URLs, so bytes go from the store to the client without passing
// through parley.
//
// Uploads do pass through parley (the upload URL is parley's, on every store): a presigned S3
// PUT can neither cap the size nor refuse a second PUT, and parley would not learn that an
// upload finished. Put holds the upload in a temporary file until it is complete and within
// the limit, then sends it in one PutObject with its SHA-256 signed, so a partial or refused
// upload never reaches the bucket.
type S3 struct {
	cfg    S3Config
	base   *url.URL
	signer sigv4
	client *http.Client
	// Now is the time requests and presigned URLs are signed with. It is the real clock, not
	// parley's injected one: the S3 server checks signatures against its own clock.
	Now func() time.Time
}

// NewS3 returns an S3 store. It does not contact the service; Check does.
func NewS3(cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" || cfg.Region == "" || cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("blob: S3 needs a bucket, a region, an access key and a secret key")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "https://s3." + cfg.Region + ".amazonaws.com"
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.Endpoint, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" {
		return nil, fmt.Errorf("blob: S3 endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	if !cfg.PathStyle {
		base.Host = cfg.Bucket + "." + base.Host
	}
	return &S3{
		cfg:    cfg,
		base:   base,
		signer: sigv4{accessKey: cfg.AccessKey, secretKey: cfg.SecretKey, region: cfg.Region},
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: time.Minute,
			},
			// A redirect would need signing anew for another host; S3 errors say where to go.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Now: time.Now,
	}, nil
}

// objectURL returns the URL of key (or of the bucket when key is "").
func (s *S3) objectURL(key string) *url.URL {
	u := *s.base
	if s.cfg.PathStyle {
		u.Path += "/" + s.cfg.Bucket
	}
	u.Path += "/" + key
	return &u
}

// Check makes sure the bucket is there and the credentials open it (HEAD bucket).
func (s *S3) Check(ctx context.Context) error {
	resp, err := s.do(ctx, http.MethodHead, "", nil, 0, emptySHA256, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Put spools r to a temporary file, hashing it, and stores it with one signed PutObject.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, meta Meta) (int64, error) {
	if !ValidKey(key) {
		return 0, badKey(key)
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "parley-upload-*")
	if err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return 0, fmt.Errorf("blob: reading %s: %w", key, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	header := http.Header{}
	if meta.ContentType != "" {
		header.Set("Content-Type", meta.ContentType)
	}
	header.Set("Content-Disposition", ContentDisposition(meta.ContentType, meta.Filename))
	var body io.Reader = f
	if n == 0 {
		body = nil
	}
	resp, err := s.do(ctx, http.MethodPut, key, body, n, hex.EncodeToString(h.Sum(nil)), header)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return n, nil
}

// Delete removes key (DeleteObject, which succeeds for a missing key too).
func (s *S3) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return badKey(key)
	}
	resp, err := s.do(ctx, http.MethodDelete, key, nil, 0, emptySHA256, nil)
	if err != nil {
		if e, ok := errors.AsType[*S3Error](err); ok && e.Status == http.StatusNotFound && e.Code == "NoSuchKey" {
			return nil
		}
		return err
	}
	resp.Body.Close()
	return nil
}

// maxPresign is the longest validity S3 accepts for a presigned URL.
const maxPresign = 7 * 24 * time.Hour

// DownloadURL returns a presigned GetObject URL. The object carries its Content-Type and
// Content-Disposition from Put, and S3 serves them with it.
func (s *S3) DownloadURL(key string, ttl time.Duration) (string, error) {
	if !ValidKey(key) {
		return "", badKey(key)
	}
	ttl = min(max(ttl.Round(time.Second), time.Second), maxPresign)
	return s.signer.presign(http.MethodGet, s.objectURL(key), s.Now(), ttl), nil
}

// S3Error is an error answer of the S3 service.
type S3Error struct {
	Method, Key string
	Status      int
	Code        string
	Message     string
}

func (e *S3Error) Error() string {
	return fmt.Sprintf("s3: %s %q: %d %s: %s", e.Method, e.Key, e.Status, e.Code, e.Message)
}

// do sends one signed request and returns the response when it is a success; otherwise an
// *S3Error (or the transport's error).
func (s *S3) do(ctx context.Context, method, key string, body io.Reader, size int64, payloadHash string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.objectURL(key).String(), body)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	s.signer.sign(req, payloadHash, s.Now())
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("blob: s3 %s %q: %w", method, key, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	e := &S3Error{Method: method, Key: key, Status: resp.StatusCode}
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if xml.Unmarshal(b, &doc) == nil {
		e.Code, e.Message = doc.Code, doc.Message
	}
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode) // HEAD answers have no body
	}
	return nil, e
}
