package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley"
)

// VersityGWEnv names the variable holding the path of the versitygw binary, for when it is
// neither on PATH nor in the Go bin directory (where `go install` puts it).
const VersityGWEnv = "PARLEY_TEST_VERSITYGW"

// VersityGWModule is the pinned version of the S3 server the tests run, installed with
// `go install` + VersityGWModule.
const VersityGWModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Server is a real S3-compatible server on loopback, with one empty bucket for the test.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	Dir       string // the directory it keeps buckets in (posix backend: one directory each)
}

// S3 starts versitygw (github.com/versity/versitygw, pinned in VersityGWModule) on a free
// loopback port, keeping its buckets in a temporary directory, with one bucket, and stops it
// when the test ends. It skips the test (fails it under PARLEY_TEST_STRICT) when the binary
// cannot be found.
func S3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := findVersityGW()
	if err != nil {
		Missing(t, "versitygw S3 server (go install "+VersityGWModule+")", err)
	}
	s := &S3Server{Region: "us-east-1", Bucket: "parley-test", Dir: t.TempDir(),
		AccessKey: "test" + strings.ReplaceAll(parley.NewRandomID(), "-", "")[:16],
		SecretKey: strings.ReplaceAll(parley.NewRandomID(), "-", "")}
	// With the posix backend a bucket is a directory of the root.
	if err := os.Mkdir(filepath.Join(s.Dir, s.Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		stop, err := s.start(bin)
		if err == nil {
			t.Cleanup(stop)
			return s
		}
		errs = append(errs, err) // most likely another process took the port meanwhile
	}
	t.Fatalf("starting versitygw: %v", errors.Join(errs...))
	return nil
}

var (
	vgwOnce sync.Once
	vgwBin  string
	vgwErr  error
)

func findVersityGW() (string, error) {
	vgwOnce.Do(func() {
		if p := os.Getenv(VersityGWEnv); p != "" {
			vgwBin, vgwErr = exec.LookPath(p)
			return
		}
		if p, err := exec.LookPath("versitygw"); err == nil {
			vgwBin = p
			return
		}
		var dirs []string
		if gobin := os.Getenv("GOBIN"); gobin != "" {
			dirs = append(dirs, gobin)
		}
		for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
		if home, err := os.UserHomeDir(); err == nil {
			dirs = append(dirs, filepath.Join(home, "go", "bin"))
		}
		for _, d := range dirs {
			if p, err := exec.LookPath(filepath.Join(d, "versitygw")); err == nil {
				vgwBin = p
				return
			}
		}
		vgwErr = fmt.Errorf("versitygw is not on PATH nor in %s; set %s to its path", strings.Join(dirs, ", "), VersityGWEnv)
	})
	return vgwBin, vgwErr
}

// start runs the server on a free port and waits until it accepts connections.
func (s *S3Server) start(bin string) (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--port", addr, "--region", s.Region, "--quiet", "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("versitygw exited (%v): %s", err, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			s.Endpoint = "http://" + addr
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not listen on %s within 15s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
