// Package dialog is the built-in dialog engine, the default brain (SPEC §6): a declarative file
// of dialogs, each a set of triggers (keywords, regular expressions, quick replies, the start of
// a conversation, no match), conditions on the context and a list of steps (responses, context
// and tag changes, questions, jumps, handover, resolve, dialog webhooks). docs/dialog.md is the
// file format.
//
// A file is checked completely when it is loaded: every problem is reported with its file and
// line. A file that loads fails at run time only when a webhook without a fallback fails or a
// chain of gotos through conditions passes MaxJumps; then the worker sends its fallback. A
// loaded Dialog never changes, so one value serves any number of sessions at once.
//
// The engine must never keep a session's state in memory: a pending question, the no-match
// counter and the rotation of variants live in the session's context under "sys-" keys, so a
// session can move between processes and survive restarts. It must never do I/O other than the
// webhook steps a file names, and nothing per message that could be done once at load
// (compiling a regular expression, parsing a template).
package dialog

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Limits against broken or hostile files.
const (
	MaxFileBytes = 1 << 20 // a dialog file, in bytes
	MaxDepth     = 32      // nesting of YAML mappings and sequences
	MaxDialogs   = 1000    // dialogs in a file
	MaxSteps     = 1000    // steps in one list
	MaxJumps     = 32      // gotos while answering one message; more is a loop
)

// DefaultWebhookTimeout bounds a webhook step without timeout_ms. It is half the worker's
// default time for a whole reply, so that the step's fallback, not the worker's, answers a
// webhook that does not.
const DefaultWebhookTimeout = 5 * time.Second

// Keys of the session context the engine owns (docs/dialog.md, "State"). A file may read them in
// conditions and templates but not write them.
const (
	KeyUnknownCounter = "sys-unknown_counter" // misses in a row
	KeyPending        = "sys-pending"         // the question waiting for an answer
	KeyRotate         = "sys-rotate"          // the next variant of rotating texts
)

// Dialog is a loaded dialog file. It is safe for concurrent use; set HTTP and Log before the
// first Reply.
type Dialog struct {
	// HTTP is the client of webhook steps. Nil means a default client that uses no proxy, does
	// not follow redirects (a signed POST must not be sent elsewhere) and bounds connecting;
	// each step's timeout_ms bounds the whole call.
	HTTP *http.Client
	// Log receives a line when a webhook step fails and its fallback is used; nil is silent.
	Log *slog.Logger

	file     string
	dialogs  []*dlg
	byName   map[string]*dlg
	start    []*dlg               // on: start, in file order
	noMatch  []*dlg               // on: no_match, in file order
	quick    map[string][]*dlg    // quickKey of a quick reply → dialogs, in file order
	matchers []*dlg               // dialogs with keywords or regexes, in file order
	keywords map[string][]keyword // the first word of every keyword → the keywords
	webhooks int
}

// keyword is a keyword in the index of first words: the words after the first (" w2 w3 ", or
// "" for a one-word keyword) and its dialog's index in matchers. Looking up each word of a
// message costs the same for a file of 10 keywords as for one of 10,000; testing each keyword
// against the message would not.
type keyword struct {
	rest   string
	dialog int
}

// dlg is one dialog of a file.
type dlg struct {
	name     string
	line     int
	start    bool
	noMatch  bool
	index    int      // in Dialog.matchers
	keywords []string // folded: " see our plans "
	regexes  []*regexp.Regexp
	quick    []string // quickKeys
	cond     *cond    // nil: always
	steps    []*step
	// handoverAfter > 0 (no_match dialogs only): the miss that brings the counter to it runs
	// handoverSteps and hands over instead of running steps.
	handoverAfter int
	handoverSteps []*step
	rotating      int // steps with pick: rotate, while loading
}

// Load parses and checks a dialog file. name is the file's name as errors should show it. The
// error, if any, is an *Error listing every problem with its line.
func Load(name string, data []byte) (*Dialog, error) {
	l := &loader{file: name}
	d := l.load(data)
	if err := l.err(); err != nil {
		return nil, err
	}
	return d, nil
}

// LoadFile loads the dialog file at path. A file over MaxFileBytes is refused without being
// read whole.
func LoadFile(path string) (*Dialog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Load(path, data)
}

//go:embed demo.yaml
var demoSource []byte

var demo = sync.OnceValue(func() *Dialog {
	d, err := Load("demo.yaml", demoSource)
	if err != nil {
		panic("dialog: the bundled demo does not load: " + err.Error()) // TestDemo keeps it loading
	}
	return d
})

// Demo returns the bundled demo dialog (demo.yaml). It is shared: it calls no webhook, so its
// HTTP client is never used and must not be set.
func Demo() *Dialog { return demo() }

// DemoSource returns the demo file's text, a starting point for an operator's own file.
func DemoSource() []byte { return bytes.Clone(demoSource) }

// Immediate reports that the dialog calls no webhook: it answers from memory, so the worker may
// ask it inside the transaction that commits its answer (see brain.Immediate).
func (d *Dialog) Immediate() bool { return d.webhooks == 0 }

// Summary describes the file in a few words, as "parley dialog check" prints it: "7 dialogs,
// 2 webhooks".
func (d *Dialog) Summary() string {
	return plural(len(d.dialogs), "dialog") + ", " + plural(d.webhooks, "webhook")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// Error is a dialog file that does not load: every problem found, in file order.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one problem of a file. Line 0 is a problem of the whole file.
type Problem struct {
	Line int
	Msg  string
}

// maxProblems bounds the list: a file that is wrong everywhere needs its first few fixed first.
const maxProblems = 20

// Error lists the problems one per line, each as "file:line: problem".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.In(e.File))
	}
	return b.String()
}

// In is the problem as "file:line: problem", for the file named file.
func (p Problem) In(file string) string {
	if p.Line <= 0 {
		return file + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", file, p.Line, p.Msg)
}

// defaultClient is the client of webhook steps when Dialog.HTTP is nil.
var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment, // as every brain call: see docs/brain.md
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       2 * time.Minute, // a backstop: each step's timeout bounds its call
}
