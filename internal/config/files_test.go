package config_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/config"
)

func loadValid(t *testing.T, env map[string]string, args ...string) (config.Config, error) {
	t.Helper()
	c := config.Default()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.Bind(fs)
	if _, err := config.Load(fs, args, func(k string) string { return env[k] }); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestFilesSettings(t *testing.T) {
	c, err := loadValid(t, nil)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Files.Backend != "local" || c.Files.MaxSize != 25<<20 || c.Files.UploadExpiry != 15*time.Minute ||
		c.Files.DownloadExpiry != 15*time.Minute || c.Files.Retention != 24*time.Hour || c.PublicURL != "" {
		t.Errorf("defaults %+v", c.Files)
	}
	if got := c.FilesDirectory(); got != "parley-files" {
		t.Errorf("files directory beside ./parley.db = %q", got)
	}

	c, err = loadValid(t, map[string]string{
		"PARLEY_FILES_BACKEND":       "s3",
		"PARLEY_S3_BUCKET":           "b",
		"PARLEY_S3_ACCESS_KEY":       "a",
		"PARLEY_S3_SECRET_KEY":       "s",
		"PARLEY_S3_ENDPOINT":         "http://127.0.0.1:7070",
		"PARLEY_S3_PATH_STYLE":       "true",
		"PARLEY_FILES_ALLOWED_TYPES": "image/*, Application/PDF",
		"PARLEY_PUBLIC_URL":          "https://chat.example.com/parley",
	}, "--files-max-size", "1000", "--database-url", "sqlite:///var/lib/parley/parley.db")
	if err != nil {
		t.Fatal(err)
	}
	if c.Files.Backend != "s3" || !c.Files.S3PathStyle || c.Files.MaxSize != 1000 || strings.Join(c.Files.AllowedTypes, ",") != "image/*,application/pdf" {
		t.Errorf("loaded %+v", c.Files)
	}
	if got := c.FilesDirectory(); got != "/var/lib/parley/parley-files" {
		t.Errorf("files directory = %q", got)
	}

	for name, env := range map[string]map[string]string{
		"unknown backend":       {"PARLEY_FILES_BACKEND": "ftp"},
		"s3 without bucket":     {"PARLEY_FILES_BACKEND": "s3", "PARLEY_S3_ACCESS_KEY": "a", "PARLEY_S3_SECRET_KEY": "s"},
		"s3 with a bad URL":     {"PARLEY_FILES_BACKEND": "s3", "PARLEY_S3_BUCKET": "b", "PARLEY_S3_ACCESS_KEY": "a", "PARLEY_S3_SECRET_KEY": "s", "PARLEY_S3_ENDPOINT": "127.0.0.1:7070"},
		"zero size":             {"PARLEY_FILES_MAX_SIZE": "0"},
		"a size over S3's":      {"PARLEY_FILES_MAX_SIZE": "9223372036854775807"},
		"a bad type":            {"PARLEY_FILES_ALLOWED_TYPES": "image/png,*/*"},
		"no types":              {"PARLEY_FILES_ALLOWED_TYPES": " , "},
		"retention too short":   {"PARLEY_FILES_RETENTION": "10m"},
		"download URL too long": {"PARLEY_FILES_DOWNLOAD_EXPIRY": "200h"},
		"public URL with query": {"PARLEY_PUBLIC_URL": "https://x.example/?a=b"},
		"public URL not http":   {"PARLEY_PUBLIC_URL": "x.example"},
	} {
		if _, err := loadValid(t, env); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
