package apptest

import (
	"testing"

	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/testenv"
)

// FileBackend names where a test server keeps uploaded files.
type FileBackend string

// The file stores every file test runs on.
const (
	LocalFiles FileBackend = "local"
	S3Files    FileBackend = "s3" // a real S3-compatible server (versitygw) on loopback
)

// FileBackends runs fn as a parallel subtest on each database and each file store. S3 subtests
// skip (or fail, under PARLEY_TEST_STRICT) when versitygw is not installed.
func FileBackends(t *testing.T, fn func(t *testing.T, b Backend, fb FileBackend)) {
	Backends(t, func(t *testing.T, b Backend) {
		for _, fb := range []FileBackend{LocalFiles, S3Files} {
			t.Run(string(fb), func(t *testing.T) {
				t.Parallel()
				fn(t, b, fb)
			})
		}
	})
}

// ConfigureFiles returns a Configure function that makes a server keep files in fb: for S3, a
// new versitygw server for the test, with its own bucket.
func ConfigureFiles(t testing.TB, fb FileBackend) func(*config.Config) {
	t.Helper()
	if fb != S3Files {
		return func(c *config.Config) { c.Files.Backend = "local" }
	}
	s3 := testenv.S3(t)
	return func(c *config.Config) {
		c.Files.Backend = "s3"
		c.Files.S3Endpoint = s3.Endpoint
		c.Files.S3Region = s3.Region
		c.Files.S3Bucket = s3.Bucket
		c.Files.S3AccessKey = s3.AccessKey
		c.Files.S3SecretKey = s3.SecretKey
		c.Files.S3PathStyle = true
	}
}
