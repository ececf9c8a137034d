package loadtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a server the harness runs as a separate process, so that its CPU, memory and
// garbage collector are its own and it can be killed like a real server.
type Process struct {
	Name string
	Addr string // host:port it listens on
	Log  string // the file its stderr goes to

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it exited; read after exited is closed
}

// Command is how to start a server process.
type Command struct {
	Name string   // for messages
	Path string   // the executable
	Args []string // its arguments
	Env  []string // its environment; nil means the harness's
	Log  string   // file that receives its stderr (appended to)
	// Ready is called with each line the process writes to stderr until it returns the
	// address the process listens on.
	Ready func(line []byte) (addr string, ok bool)
	// Timeout bounds how long the start waits for Ready; 0 means 30 s.
	Timeout time.Duration
}

// Start starts c and waits until it is ready.
func Start(c Command) (*Process, error) {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	logf, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = c.Env
	cmd.Stdout = logf
	cmd.SysProcAttr = sysProcAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	p := &Process{Name: c.Name, Log: c.Log, cmd: cmd, exited: make(chan struct{})}
	addrc := make(chan string, 1)
	var copied sync.WaitGroup
	copied.Go(func() {
		// Keep draining stderr into the log for the whole life of the process: a full pipe
		// would block the server.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		found := false
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(line)
			logf.Write([]byte{'\n'})
			if !found {
				if addr, ok := c.Ready(line); ok {
					found = true
					addrc <- addr
				}
			}
		}
		io.Copy(logf, stderr)
	})
	go func() {
		copied.Wait() // Wait closes the pipe: read everything first
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	select {
	case p.Addr = <-addrc:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", c.Name, p.err, Tail(c.Log, 20))
	case <-time.After(c.Timeout):
		p.Kill()
		return nil, fmt.Errorf("%s was not ready within %s; its log:\n%s", c.Name, c.Timeout, Tail(c.Log, 20))
	}
}

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Kill kills the process with SIGKILL, as a crash or the OOM killer would, and waits for it
// to be gone.
func (p *Process) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}

// Stop asks the process to shut down (SIGTERM) and waits up to timeout before killing it.
// It returns an error if the process had to be killed or exited with an error.
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.exitErr()
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return p.exitErr()
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not stop within %s and was killed", p.Name, timeout)
	}
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

func (p *Process) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w (see %s)", p.Name, p.err, p.Log)
	}
	return nil
}

// LogAddr returns a Ready function for a process that logs with log/slog's JSON handler: it
// finds the record whose msg is msg and returns its "addr" attribute.
func LogAddr(msg string) func(line []byte) (string, bool) {
	return func(line []byte) (string, bool) {
		if !bytes.Contains(line, []byte(msg)) {
			return "", false
		}
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Msg != msg || rec.Addr == "" {
			return "", false
		}
		return rec.Addr, true
	}
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
