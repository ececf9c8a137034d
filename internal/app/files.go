package app

import (
	"context"
	"fmt"
	"net"

	"github.com/parleyhq/parley/internal/blob"
	"github.com/parleyhq/parley/internal/files"
)

// openFiles builds the file service: the URL signer with the deployment's key, and the blob
// store the configuration names (checked now, so a wrong bucket or key stops the start).
func (m *Main) openFiles(ctx context.Context) (*files.Service, error) {
	c := m.Config.Files
	public := m.Config.PublicURL
	if public == "" {
		public = defaultPublicURL(m.listener.Addr())
	}
	key, err := files.SigningKey(ctx, m.DB)
	if err != nil {
		return nil, err
	}
	signer := blob.NewSigner(key, public)
	var store blob.Store
	switch c.Backend {
	case "s3":
		s3, err := blob.NewS3(blob.S3Config{Endpoint: c.S3Endpoint, Region: c.S3Region, Bucket: c.S3Bucket,
			AccessKey: c.S3AccessKey, SecretKey: c.S3SecretKey, PathStyle: c.S3PathStyle})
		if err != nil {
			return nil, err
		}
		if err := s3.Check(ctx); err != nil {
			return nil, fmt.Errorf("S3 bucket %q: %w", c.S3Bucket, err)
		}
		store = s3
	default:
		local, err := blob.NewLocal(m.Config.FilesDirectory(), signer, m.Clock.Now)
		if err != nil {
			return nil, err
		}
		store = local
	}
	m.Log.Info("files", "backend", c.Backend, "public_url", public)
	return files.New(files.Config{MaxSize: c.MaxSize, AllowedTypes: c.AllowedTypes, UploadExpiry: c.UploadExpiry,
		DownloadExpiry: c.DownloadExpiry, Retention: c.Retention}, m.DB, store, signer, m.Clock.Now), nil
}

// defaultPublicURL is http:// and the address the server listens on; an unspecified address
// (0.0.0.0, ::) becomes loopback, the one address of it that is sure to reach this machine.
// Behind a proxy or on another host, set public-url.
func defaultPublicURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
