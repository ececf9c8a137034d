package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The examples of the S3 documentation ("Signature Calculations for the Authorization Header"
// and "Authenticating Requests: Using Query Parameters"), with the signatures it prints.
var (
	docSigner = sigv4{accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1"}
	docTime   = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
)

func TestSigV4DocumentedExamples(t *testing.T) {
	welcome := sha256.Sum256([]byte("Welcome to Amazon S3."))
	tests := []struct {
		name, method, url string
		header            map[string]string
		payload           string
		signedHeaders     string
		signature         string
	}{
		{"GET object with Range", "GET", "https://examplebucket.s3.amazonaws.com/test.txt",
			map[string]string{"Range": "bytes=0-9"}, emptySHA256,
			"host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
		{"PUT object", "PUT", "https://examplebucket.s3.amazonaws.com/test$file.text",
			map[string]string{"Date": "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY"},
			hex.EncodeToString(welcome[:]),
			"date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
		{"GET bucket lifecycle", "GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", nil, emptySHA256,
			"host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		{"GET bucket, query out of order", "GET", "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2", nil, emptySHA256,
			"host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			docSigner.sign(req, tc.payload, docTime)
			want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=" +
				tc.signedHeaders + ", Signature=" + tc.signature
			if got := req.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestSigV4DocumentedPresignedURL(t *testing.T) {
	u, _ := url.Parse("https://examplebucket.s3.amazonaws.com/test.txt")
	got := docSigner.presign("GET", u, docTime, 86400*time.Second)
	want := "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if got != want {
		t.Errorf("presigned URL\n got %s\nwant %s", got, want)
	}
}

func TestURIEncode(t *testing.T) {
	for _, tc := range []struct{ in, path, query string }{
		{"abc-._~XYZ09", "abc-._~XYZ09", "abc-._~XYZ09"},
		{"a/b c", "a/b%20c", "a%2Fb%20c"},
		{"été+1=2&x", "%C3%A9t%C3%A9%2B1%3D2%26x", "%C3%A9t%C3%A9%2B1%3D2%26x"},
	} {
		if got := uriEncode(tc.in, true); got != tc.path {
			t.Errorf("path %q: got %q, want %q", tc.in, got, tc.path)
		}
		if got := uriEncode(tc.in, false); got != tc.query {
			t.Errorf("query %q: got %q, want %q", tc.in, got, tc.query)
		}
	}
	if got := canonicalURI(""); got != "/" || !strings.HasPrefix(canonicalURI("/b/k"), "/b/") {
		t.Errorf("canonicalURI")
	}
}
