package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// BuildParley returns the path of a parley binary built from this module (go build
// ./cmd/parley), building it once per test process. Call RemoveBuilds from TestMain to
// delete it afterwards.
func BuildParley(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			build.err = err
			return
		}
		if build.dir, err = os.MkdirTemp("", "parley-test-bin-"); err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "parley")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/parley")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/parley: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// RemoveBuilds deletes the binary BuildParley made, if any.
func RemoveBuilds() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// moduleRoot returns the directory of the go.mod of the module under test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// Process is a `parley serve` running as a real process on a loopback port, its output
// going to the test log.
type Process struct {
	URL  string // http://127.0.0.1:PORT
	Addr string

	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained
	err  error         // of cmd.Wait, once done
	out  *logWriter
}

// StartProcess runs bin with args (normally "serve" and its flags) plus --addr on a free
// loopback port, with env (NAME=value) added to the test's environment minus its PARLEY_
// variables, and waits until /healthz answers. The process is killed when the test ends if
// it still runs.
func StartProcess(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	var lastErr error
	for range 3 { // a free port can be taken between finding it and the server binding it
		p, err := startProcess(t, bin, args, env)
		if err == nil {
			return p
		}
		lastErr = err
	}
	t.Fatalf("starting parley: %v", lastErr)
	return nil
}

func startProcess(t testing.TB, bin string, args, env []string) (*Process, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &Process{URL: "http://" + addr, Addr: addr, t: t, done: make(chan struct{}), out: &logWriter{t: t, prefix: "parley: "}}
	p.cmd = exec.Command(bin, append(append([]string{}, args...), "--addr", addr)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		p.out.flush()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.Exited() {
			p.cmd.Process.Signal(syscall.SIGKILL)
		}
		<-p.done // nothing may log once the test is over
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("parley exited before it was healthy: %v\n%s", p.err, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
			return nil, fmt.Errorf("parley not healthy after 30 s\n%s", p.out.String())
		}
	}
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Kill9 kills the process with SIGKILL, as a crash or the OOM killer would, and waits for it
// to be gone.
func (p *Process) Kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !p.Exited() {
		p.t.Fatalf("kill -9: %v", err)
	}
	<-p.done
}

// Terminate sends SIGTERM, asking for a graceful shutdown. It does not wait; see Wait.
func (p *Process) Terminate() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
}

// Wait waits for the process to exit and returns how it exited (nil for status 0). It fails
// the test if that takes longer than timeout.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Fatalf("parley did not exit within %v", timeout)
		return nil
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Logs returns everything the process wrote so far.
func (p *Process) Logs() string { return p.out.String() }

// logWriter passes a process's output to the test log line by line and keeps a copy.
type logWriter struct {
	t      testing.TB
	prefix string
	mu     sync.Mutex
	all    bytes.Buffer
	line   []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(b)
	w.line = append(w.line, b...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.line[:i]))
		w.line = w.line[i+1:]
	}
	return len(b), nil
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.line) > 0 {
		w.t.Log(w.prefix + string(w.line))
		w.line = nil
	}
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}
