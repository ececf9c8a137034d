package config

import (
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/files"
	"github.com/parleyhq/parley/internal/store/sqlite"
)

// Files is the settings of uploaded files (SPEC §2, Files) and of where their bytes are kept.
type Files struct {
	Backend        string // local or s3
	Dir            string // local: the directory; empty means beside the SQLite file, or ./parley-files
	MaxSize        int64
	AllowedTypes   []string
	UploadExpiry   time.Duration
	DownloadExpiry time.Duration
	Retention      time.Duration

	S3Endpoint  string
	S3Region    string
	S3Bucket    string
	S3AccessKey string
	S3SecretKey string
	S3PathStyle bool
}

// DefaultFiles returns the file defaults: local disk, 25 MiB, 15-minute URLs, 24-hour
// retention of files no message references.
func DefaultFiles() Files {
	return Files{
		Backend:        "local",
		MaxSize:        files.DefaultMaxSize,
		AllowedTypes:   files.DefaultAllowedTypes,
		UploadExpiry:   files.DefaultUploadExpiry,
		DownloadExpiry: files.DefaultDownloadExpiry,
		Retention:      files.DefaultRetention,
		S3Region:       "us-east-1",
	}
}

func (f *Files) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.Backend, "files-backend", f.Backend, "where uploaded files are kept: local or s3 (PARLEY_FILES_BACKEND)")
	fs.StringVar(&f.Dir, "files-dir", f.Dir, "directory of uploaded files with files-backend=local; default: parley-files beside the SQLite database, else ./parley-files (PARLEY_FILES_DIR)")
	fs.Int64Var(&f.MaxSize, "files-max-size", f.MaxSize, "largest upload in bytes (PARLEY_FILES_MAX_SIZE)")
	fs.Func("files-allowed-types", "comma-separated media types that may be uploaded, type/* for a whole type; default: common image, audio, video, PDF, text and office types (PARLEY_FILES_ALLOWED_TYPES)", func(s string) error {
		f.AllowedTypes = splitList(strings.ToLower(s))
		return nil
	})
	fs.DurationVar(&f.UploadExpiry, "files-upload-expiry", f.UploadExpiry, "how long an upload URL is valid (PARLEY_FILES_UPLOAD_EXPIRY)")
	fs.DurationVar(&f.DownloadExpiry, "files-download-expiry", f.DownloadExpiry, "how long a download URL is valid (PARLEY_FILES_DOWNLOAD_EXPIRY)")
	fs.DurationVar(&f.Retention, "files-retention", f.Retention, "how long a file no message references is kept (PARLEY_FILES_RETENTION)")
	fs.StringVar(&f.S3Endpoint, "s3-endpoint", f.S3Endpoint, "S3 service URL, reachable by clients too (download URLs point at it); empty: AWS in s3-region (PARLEY_S3_ENDPOINT)")
	fs.StringVar(&f.S3Region, "s3-region", f.S3Region, "S3 region (PARLEY_S3_REGION)")
	fs.StringVar(&f.S3Bucket, "s3-bucket", f.S3Bucket, "S3 bucket of uploaded files (PARLEY_S3_BUCKET)")
	fs.StringVar(&f.S3AccessKey, "s3-access-key", f.S3AccessKey, "S3 access key ID (PARLEY_S3_ACCESS_KEY)")
	fs.StringVar(&f.S3SecretKey, "s3-secret-key", f.S3SecretKey, "S3 secret access key (PARLEY_S3_SECRET_KEY)")
	fs.BoolVar(&f.S3PathStyle, "s3-path-style", f.S3PathStyle, "address the bucket as ENDPOINT/BUCKET (most self-hosted S3 servers) instead of BUCKET.ENDPOINT (PARLEY_S3_PATH_STYLE)")
}

// Limits of S3: the longest a presigned URL may be valid, the largest object one PUT stores.
const (
	maxPresign = 7 * 24 * time.Hour
	maxUpload  = 5 << 30
)

func (f *Files) validate() error {
	switch {
	case f.Backend != "local" && f.Backend != "s3":
		return fmt.Errorf("files-backend must be local or s3, not %q", f.Backend)
	case f.MaxSize < 1 || f.MaxSize > maxUpload:
		return fmt.Errorf("files-max-size must be from 1 byte to %d (5 GiB, the largest single S3 upload)", int64(maxUpload))
	case len(f.AllowedTypes) == 0:
		return fmt.Errorf("files-allowed-types must name at least one media type")
	case f.UploadExpiry < time.Second || f.DownloadExpiry < time.Second:
		return fmt.Errorf("files-upload-expiry and files-download-expiry must be at least 1s")
	case f.DownloadExpiry > maxPresign:
		return fmt.Errorf("files-download-expiry must be at most %v (the longest S3 allows)", maxPresign)
	case f.Retention <= f.UploadExpiry:
		return fmt.Errorf("files-retention must be longer than files-upload-expiry")
	}
	for _, t := range f.AllowedTypes {
		if err := files.CheckAllowedType(t); err != nil {
			return fmt.Errorf("files-allowed-types: %v", err)
		}
	}
	if f.Backend == "s3" {
		if f.S3Bucket == "" || f.S3Region == "" || f.S3AccessKey == "" || f.S3SecretKey == "" {
			return fmt.Errorf("files-backend=s3 needs s3-bucket, s3-region, s3-access-key and s3-secret-key")
		}
		if f.S3Endpoint != "" {
			if err := checkBaseURL(f.S3Endpoint); err != nil {
				return fmt.Errorf("s3-endpoint: %v", err)
			}
		}
	}
	return nil
}

// FilesDirectory returns the directory of the local file store: files-dir, or parley-files beside
// the SQLite database, or ./parley-files with PostgreSQL.
func (c *Config) FilesDirectory() string {
	if c.Files.Dir != "" {
		return c.Files.Dir
	}
	if path, ok := sqlite.PathFromURL(c.DatabaseURL); ok {
		return filepath.Join(filepath.Dir(path), "parley-files")
	}
	return "parley-files"
}

// checkBaseURL accepts an absolute http(s) URL without query or fragment.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an http(s) URL without query", s)
	}
	return nil
}
