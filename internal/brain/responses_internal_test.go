package brain

import (
	"bytes"
	"testing"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/jsontest"
)

var responseTypes = []string{TypeText, TypeImage, TypeVideo, TypeAudio, TypeFile, TypeCarousel, TypeWebview,
	TypeHandover, TypePause, "made-up", ""}

// TestResponseJSON holds the hand-written encoding of responses to encoding/json's of typed,
// which defines it, for every type and every escape case.
func TestResponseJSON(t *testing.T) {
	for _, typ := range responseTypes {
		for _, s := range jsontest.OddStrings {
			for _, r := range []Response{
				{Type: typ, Text: s, URL: s, Name: s, Label: s, Height: s, Size: int64(len(s)) - 3, Duration: len(s), ShowTyping: len(s)%2 == 0},
				{Type: typ, Text: s, Options: []Option{{Label: s, Text: s}}, Cards: []Card{{Title: s, Buttons: []Button{{Type: ButtonURL, URL: s}}}}},
				{Type: typ},
			} {
				checkResponse(t, r)
			}
		}
	}
	rs := []Response{Text("a <b>"), {Type: TypeImage, URL: "https://x/a.png", Size: 1 << 40}, {Type: TypeHandover},
		{Type: TypeCarousel, Cards: []Card{{Title: "c"}}}, {Type: TypePause, Duration: 500}}
	want, err := parley.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	if got := EncodeResponses(rs); !bytes.Equal(got, want) {
		t.Errorf("EncodeResponses:\n got %s\nwant %s", got, want)
	}
	if got := EncodeResponses(nil); string(got) != "[]" {
		t.Errorf("EncodeResponses(nil) = %s, want []", got)
	}
}

// FuzzResponseJSON holds the hand-written encoding of responses to encoding/json's for any
// strings.
//
// Seeds are in testdata/fuzz/FuzzResponseJSON; run with go test -fuzz=FuzzResponseJSON.
func FuzzResponseJSON(f *testing.F) {
	for i, s := range jsontest.OddStrings {
		f.Add(uint8(i), s, s+"x", int64(i), i)
	}
	f.Fuzz(func(t *testing.T, typ uint8, s1, s2 string, size int64, duration int) {
		r := Response{Type: responseTypes[int(typ)%len(responseTypes)], Text: s1, URL: s2, Name: s1, Label: s2,
			Height: s1, Size: size, Duration: duration, ShowTyping: size%2 == 0}
		if typ >= 128 {
			r.Type = s2
		}
		checkResponse(t, r)
	})
}

func checkResponse(t *testing.T, r Response) {
	t.Helper()
	want, err := parley.Marshal(r.typed())
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.appendJSON([]byte("prefix"))
	if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("%#v:\n got %s (%v)\nwant prefix%s", r, got, err, want)
	}
}
