package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley"
)

// Local keeps files in a directory of this machine: dir/xx/KEY, where xx is the key's last two
// characters (the random end of a UUIDv7, so files spread evenly over 256 directories). Its
// download URLs are parley's own signed URLs; parley's file route serves them from Open.
//
// Several processes can share it only if they share the directory.
type Local struct {
	dir    string
	tmp    string
	signer *Signer
	now    func() time.Time
}

// staleTemp is how old a temporary file must be before NewLocal removes it as the leftover of
// a process that died mid-upload.
const staleTemp = 24 * time.Hour

// NewLocal returns a Local keeping files in dir, creating it if needed, and removes leftovers
// of uploads a crash interrupted. Its URLs expire on clock now (parley's, which checks them).
func NewLocal(dir string, signer *Signer, now func() time.Time) (*Local, error) {
	if now == nil {
		now = time.Now
	}
	l := &Local{dir: dir, tmp: filepath.Join(dir, "tmp"), signer: signer, now: now}
	if err := os.MkdirAll(l.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	entries, err := os.ReadDir(l.tmp)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(l.tmp, e.Name()))
		}
	}
	return l, nil
}

func (l *Local) path(key string) string {
	return filepath.Join(l.dir, key[len(key)-2:], key)
}

// Put writes the bytes to a temporary file beside their final place, flushes them to disk and
// renames the file into place: a reader sees the whole file or none, also after a crash.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, meta Meta) (n int64, err error) {
	if !ValidKey(key) {
		return 0, badKey(key)
	}
	f, err := os.CreateTemp(l.tmp, "put-*")
	if err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if n, err = io.Copy(f, ctxReader{ctx, r}); err != nil {
		return 0, fmt.Errorf("blob: writing %s: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	dst := l.path(key)
	if err = os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	if err = os.Rename(f.Name(), dst); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	// The rename is durable once the directory holding the new name is.
	if err = syncDir(filepath.Dir(dst)); err != nil {
		return 0, fmt.Errorf("blob: %w", err)
	}
	return n, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens key's bytes.
func (l *Local) Open(key string) (*os.File, error) {
	if !ValidKey(key) {
		return nil, parley.Errorf(parley.EFileNotFound, "file not found")
	}
	f, err := os.Open(l.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, parley.Errorf(parley.EFileNotFound, "file not found")
	}
	return f, err
}

// DownloadURL returns parley's own signed GET URL for key.
func (l *Local) DownloadURL(key string, ttl time.Duration) (string, error) {
	if !ValidKey(key) {
		return "", badKey(key)
	}
	return l.signer.URL("GET", key, l.now().Add(ttl)), nil
}

// Delete removes key's file.
func (l *Local) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return badKey(key)
	}
	if err := os.Remove(l.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob: %w", err)
	}
	return nil
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
