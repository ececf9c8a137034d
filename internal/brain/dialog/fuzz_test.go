package dialog_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/brain/dialog"
)

// FuzzLoad feeds the loader any bytes: it must never panic, every refusal must be an *Error
// whose problems say something, and a file that loads must answer a few messages without
// panicking or changing the context it was given.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, path := range append(files, bad...) {
		f.Add(readFile(f, path), "hello")
	}
	f.Add(dialog.DemoSource(), "See our plans")
	f.Add([]byte(`{"dialogs":[{"name":"a","on":"start","steps":[{"ask":"q","store":"x","validate":"^y$"}]}]}`), "n")

	// Webhook steps go nowhere: the fuzzer must not call the network.
	noNet := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("no network in the fuzzer")
	})}

	f.Fuzz(func(t *testing.T, data []byte, msg string) {
		d, err := dialog.Load("fuzz.yaml", data)
		if err != nil {
			var de *dialog.Error
			if !errors.As(err, &de) || len(de.Problems) == 0 {
				t.Fatalf("not an *Error: %#v", err)
			}
			for _, p := range de.Problems {
				if strings.TrimSpace(p.Msg) == "" || p.Line < 0 {
					t.Fatalf("an empty problem: %#v", de.Problems)
				}
			}
			return
		}
		if d.Summary() == "" {
			t.Fatal("no summary")
		}
		d.HTTP = noNet
		s := newSession(t, d, `{"user":{"display_name":"Ann","plan":"gold"},"tags":["vip"]}`)
		for i, m := range []string{msg, msg, "hi", "", "yes", msg + " again", msg} {
			s.send(m, i == 0 || i == 5) // errors (a goto loop, a webhook without fallback) are allowed
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
