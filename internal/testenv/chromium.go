package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ChromiumEnv names the variable that points tests at a Chromium (or Chrome) binary.
const ChromiumEnv = "PARLEY_TEST_CHROMIUM"

// ArtifactsEnv names the directory where tests keep what a person should look at afterwards
// (screenshots); without it they go to a temporary directory the test logs.
const ArtifactsEnv = "PARLEY_TEST_ARTIFACTS"

// Chromium returns the path of a headless-capable Chromium, or skips (fails under
// PARLEY_TEST_STRICT). It looks at PARLEY_TEST_CHROMIUM, then for Debian's chromium package and
// the usual names on PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(ChromiumEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			Missing(t, "Chromium at "+ChromiumEnv+"="+p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "Chromium (apt-get install chromium, or set "+ChromiumEnv+")", errors.New("not found"))
	return ""
}

// Artifacts returns a directory for the test's artifacts: $PARLEY_TEST_ARTIFACTS/<test name>,
// kept after the test, or a temporary directory. It logs where.
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv(ArtifactsEnv); base != "" {
		dir = filepath.Join(base, filepath.FromSlash(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("artifacts: %v", err)
		}
	}
	t.Logf("artifacts of %s: %s", t.Name(), dir)
	return dir
}
