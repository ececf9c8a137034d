// Package blob keeps the bytes of uploaded files, behind one small interface with two
// implementations: Local, a directory on this machine (the default), and S3, any S3-compatible
// object store (for deployments of several processes, which must all see every file).
//
// Keys are chosen by parley (file IDs), never by users: a filename never becomes a path or an
// object key. It must never keep part of a file: a Put either stores every byte or leaves
// nothing behind.
package blob

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/parleyhq/parley"
)

// Store keeps files' bytes.
type Store interface {
	// Put stores the bytes r yields under key and returns how many there were. It stores all or
	// nothing: when reading r fails (the body is too large, the client went away) or ctx ends,
	// nothing is left behind and the error is returned, wrapping r's.
	Put(ctx context.Context, key string, r io.Reader, meta Meta) (int64, error)
	// DownloadURL returns a URL that serves key's bytes to whoever holds it, for ttl. (A
	// duration, not an instant: each store counts it on the clock that will check it.)
	DownloadURL(key string, ttl time.Duration) (string, error)
	// Delete removes key. A key that is not there is not an error.
	Delete(ctx context.Context, key string) error
}

// Opener is a Store whose download URLs parley serves itself (Local): its file route opens the
// bytes here.
type Opener interface {
	// Open opens key's bytes; a missing key is a *parley.Error with code EFileNotFound.
	Open(key string) (*os.File, error)
}

// Meta is what is served with a file's bytes.
type Meta struct {
	ContentType string
	Filename    string
}

// ValidKey reports whether k is a key parley would choose: 3 to 128 characters of a-z, 0-9 and
// '-'. Anything else is refused before it reaches a path or a URL.
func ValidKey(k string) bool {
	if len(k) < 3 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func badKey(k string) error {
	return parley.Errorf(parley.EInvalid, "blob: %q is not a valid key", k)
}
