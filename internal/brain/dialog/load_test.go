package dialog_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/brain/dialog"
)

// TestLoadErrors loads every file of testdata/bad, each of which says in "# want:" lines the
// exact error it must give.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no bad files", err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data := readFile(t, path)
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatal("the file has no # want: line")
			}
			d, err := dialog.Load(name, data)
			if err == nil {
				t.Fatalf("loaded (%s), want an error", d.Summary())
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
			var de *dialog.Error
			if !errors.As(err, &de) || de.File != name || len(de.Problems) != len(want) {
				t.Errorf("the error is not an *Error naming %s with %d problems: %#v", name, len(want), err)
			}
		})
	}
}

func TestLoadGoodFiles(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"triggers.yaml":   "8 dialogs, 0 webhooks",
		"conditions.yaml": "5 dialogs, 0 webhooks",
		"actions.yaml":    "18 dialogs, 0 webhooks",
		"ask.yaml":        "8 dialogs, 0 webhooks",
		"fallback.yaml":   "3 dialogs, 0 webhooks",
		"minimal.yaml":    "1 dialog, 0 webhooks",
		"start.yaml":      "3 dialogs, 0 webhooks",
	}
	for file, want := range tests {
		if got := load(t, file).Summary(); got != want {
			t.Errorf("%s: Summary() = %q, want %q", file, got, want)
		}
	}
}

func TestLoadLimits(t *testing.T) {
	t.Parallel()
	big := append([]byte("description: "), bytes.Repeat([]byte("x"), dialog.MaxFileBytes)...)
	if _, err := dialog.Load("big.yaml", big); err == nil || err.Error() != "big.yaml: the file is larger than 1048576 bytes (1 MiB)" {
		t.Errorf("a file over the limit: %v", err)
	}
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dialog.LoadFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("LoadFile of a file over the limit: %v", err)
	}

	var b strings.Builder
	b.WriteString("dialogs:\n")
	for i := range dialog.MaxDialogs + 1 {
		b.WriteString("  - {name: d" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ", steps: [resolve]}\n")
	}
	if _, err := dialog.Load("many.yaml", []byte(b.String())); err == nil || err.Error() != "many.yaml:2: more than 1000 dialogs" {
		t.Errorf("too many dialogs: %v", err)
	}

	// A file wrong everywhere lists its first problems, and says how many more.
	b.Reset()
	b.WriteString("dialogs:\n")
	for range 30 {
		b.WriteString("  - {name: x, stepz: []}\n")
	}
	_, err := dialog.Load("wrong.yaml", []byte(b.String()))
	var de *dialog.Error
	if !errors.As(err, &de) || len(de.Problems) != 21 || de.Problems[20].Msg != "and 69 more problems" {
		t.Errorf("a file wrong everywhere: %v", err)
	}

	if _, err := dialog.LoadFile("testdata/nothere.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// TestManyDialogs: with more dialogs than the keyword bit mask holds, keywords still match, in
// file order.
func TestManyDialogs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("dialogs:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - {name: d%d, keywords: [kw%d, shared %d], steps: [{text: d%d}]}\n", i, i, i/100, i)
	}
	b.WriteString("  - {name: multi, keywords: [\"kw1 kw2 kw3\"], steps: [{text: multi}]}\n")
	d, err := dialog.Load("many.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for say, want := range map[string]string{
		"kw5":                   "d5",
		"KW150!":                "d150",
		"x kw199 y kw70":        "d70",
		"shared 1":              "d100",
		"shared 0 and shared 1": "d0",
		"kw1 kw2 kw3":           "d1",
		"kw1kw2":                "Sorry, I didn't understand that.",
	} {
		r := newSession(t, d, "").say(say, false)
		if len(r.Responses) != 1 || r.Responses[0].Text != want {
			t.Errorf("say %q: got %s, want %s", say, replyJSON(t, r), want)
		}
	}
}

// TestDocExamples loads every whole dialog file docs/dialog.md shows, so the documentation
// cannot drift from what loads.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	doc := string(readFile(t, "../../../docs/dialog.md"))
	n := 0
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains("\n"+block, "\ndialogs:") {
			continue // a fragment
		}
		n++
		d, err := dialog.Load("dialog.md", []byte(block))
		if err != nil {
			t.Errorf("an example does not load:\n%v\n%s", err, block)
			continue
		}
		s := newSession(t, d, "")
		for i, m := range []string{"hello", "Talk to a human", "something odd"} {
			if r := s.say(m, i == 0); len(r.Responses) == 0 {
				t.Errorf("say %q: no response", m)
			}
		}
	}
	if n == 0 {
		t.Error("docs/dialog.md shows no whole dialog file")
	}
}
