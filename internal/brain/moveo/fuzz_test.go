package moveo_test

import (
	"encoding/json"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/moveo"
)

// FuzzConvert feeds webhook answers to the decoder and converter. The seed corpus is in
// testdata/fuzz/FuzzConvert. Whatever a webhook sends, Convert must not panic, and what it
// accepts must be responses a client can be given: known types, their required fields set,
// only http(s) links, valid UTF-8, and an output the context can take.
func FuzzConvert(f *testing.F) {
	f.Add([]byte(`{"output":{"a":1},"responses":[{"type":"text","texts":["x","y"]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := moveo.Convert(body)
		if err != nil {
			if a != nil {
				t.Fatalf("Convert returned both an answer and %v", err)
			}
			return
		}
		if a.Output != nil {
			if err := parley.ValidateContext(a.Output); err != nil {
				t.Fatalf("accepted output fails ValidateContext: %v", err)
			}
			parley.EncodeObject(a.Output) // panics if it cannot encode
		}
		handover := false
		for i, r := range a.Responses {
			checkResponse(t, i, r)
			handover = handover || r.Type == brain.TypeHandover
		}
		if handover != a.Handover {
			t.Fatalf("Handover = %v with responses %#v", a.Handover, a.Responses)
		}
		enc := brain.EncodeResponses(a.Responses)
		if !json.Valid(enc) || !utf8.Valid(enc) {
			t.Fatalf("responses encode to invalid JSON: %s", enc)
		}
	})
}

func checkResponse(t *testing.T, i int, r brain.Response) {
	t.Helper()
	fail := func(why string) { t.Fatalf("response %d %#v: %s", i, r, why) }
	switch r.Type {
	case brain.TypeText:
		if r.Text == "" {
			fail("empty text")
		}
		for _, o := range r.Options {
			if o.Label == "" || o.Text == "" {
				fail("an option without label or text")
			}
		}
	case brain.TypeImage, brain.TypeVideo, brain.TypeFile, brain.TypeAudio, brain.TypeWebview:
		if !isWebURL(r.URL) {
			fail("not an http(s) URL")
		}
		if r.Size < 0 {
			fail("negative size")
		}
	case brain.TypeCarousel:
		if len(r.Cards) == 0 {
			fail("no cards")
		}
		for _, c := range r.Cards {
			if c.Title == "" && c.Subtitle == "" && c.Media == nil {
				fail("an empty card")
			}
			if c.Media != nil && (!isWebURL(c.Media.URL) || (c.Media.Type != "image" && c.Media.Type != "video")) {
				fail("bad media")
			}
			bs := c.Buttons
			if c.DefaultAction != nil {
				bs = append(bs, *c.DefaultAction)
			}
			for _, b := range bs {
				switch b.Type {
				case brain.ButtonURL, brain.ButtonWebview:
					if !isWebURL(b.URL) {
						fail("a link button without an http(s) URL")
					}
				case brain.ButtonPostback, brain.ButtonPhone:
					if b.Value == "" {
						fail("a button without a value")
					}
				default:
					fail("a button of unknown type " + b.Type)
				}
			}
		}
	case brain.TypePause:
		if r.Duration < 0 {
			fail("negative duration")
		}
	case brain.TypeHandover:
	default:
		fail("unknown type")
	}
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
