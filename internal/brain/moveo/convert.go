package moveo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
)

// How Moveo's actions become parley's responses (SPEC §6). An answer is
// {"output"?: {context vars}, "responses"?: [actions]}.
//
//	Moveo action                                      parley response
//	------------------------------------------------  -----------------------------------------------
//	text {texts: [..], options?: [{label, text}]}     text: one of texts at random; options kept
//	text {text: ".."}                                  text (texts wins when it has a string)
//	image | video | file {url, name?, size?}          the same; size in bytes
//	audio {url}                                       audio
//	carousel {cards: [{title, subtitle, media,        carousel; a card's buttons are url / webview
//	  default_action?, buttons: [..]}]}                 (url, or value when url is missing),
//	                                                    postback (value, or label) and phone
//	                                                    (value, or url without "tel:")
//	webview {url, name, label, height?}               webview; label defaults to name
//	handover {}                                       handover, and Answer.Handover
//	pause {duration, show_typing}                     pause; duration in ms, clamped to >= 0
//	anything else                                     skipped
//
// The answer is someone else's program's output, so conversion is lenient where the intent is
// plain and strict where a client could be hurt:
//   - An action whose required field is missing or unusable (a text with no text, media, a
//     webview or a url button without an http(s) URL, a pause without a duration, a carousel
//     with no usable card) is skipped, like an action of an unknown type; the rest of the answer
//     still counts. Unknown fields are ignored.
//   - URLs a client would open or load must be absolute http or https: a "javascript:" link in
//     a button must never reach a web widget.
//   - Numbers may come as JSON numbers or numeric strings; texts may be one string.
//   - The body as a whole must be one JSON object of valid UTF-8, nested at most
//     parley.MaxJSONDepth deep; "output", when present, an object of at most
//     parley.MaxContextBytes whose documented fields have their documented types; "responses",
//     when present, an array. Anything else is an error: the caller sends its fallback.

// Convert decodes the body of a webhook's answer and converts it.
func Convert(body []byte) (*Answer, error) {
	m, err := parley.DecodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("the answer is not a JSON object: %s", parley.ErrorMessage(err))
	}
	a := &Answer{}
	switch out := m["output"].(type) {
	case nil:
	case map[string]any:
		if err := parley.ValidateContext(out); err != nil {
			return nil, fmt.Errorf("the answer's output: %s", parley.ErrorMessage(err))
		}
		if n := len(parley.EncodeObject(out)); n > parley.MaxContextBytes {
			return nil, fmt.Errorf("the answer's output is longer than %d bytes", parley.MaxContextBytes)
		}
		a.Output = out
	default:
		return nil, errors.New("the answer's output must be an object")
	}
	switch rs := m["responses"].(type) {
	case nil:
	case []any:
		for _, v := range rs {
			r, ok := convertAction(v)
			if !ok {
				continue
			}
			if r.Type == brain.TypeHandover {
				a.Handover = true
			}
			if len(a.Responses) < maxResponses || r.Type == brain.TypeHandover {
				a.Responses = append(a.Responses, r)
			}
		}
	default:
		return nil, errors.New("the answer's responses must be an array")
	}
	return a, nil
}

// Caps on what one answer may hold. Chat front ends show far fewer (Moveo's builder allows 10
// cards of 3 buttons); past these an answer is no longer a reply but a flood, and each piece is
// stored and sent on with the message. What is beyond a cap is dropped, not refused.
const (
	maxResponses = 50
	maxCards     = 20
	maxButtons   = 10
	maxOptions   = 20
)

// convertAction converts one action; false means it is skipped.
func convertAction(v any) (brain.Response, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return brain.Response{}, false
	}
	typ := str(m, "type")
	switch typ {
	case brain.TypeText:
		return convertText(m)
	case brain.TypeImage, brain.TypeVideo, brain.TypeFile:
		u := str(m, "url")
		if !webURL(u) {
			return brain.Response{}, false
		}
		size, _ := number(m["size"])
		return brain.Response{Type: typ, URL: u, Name: str(m, "name"), Size: max(size, 0)}, true
	case brain.TypeAudio:
		u := str(m, "url")
		if !webURL(u) {
			return brain.Response{}, false
		}
		return brain.Response{Type: typ, URL: u}, true
	case brain.TypeCarousel:
		return convertCarousel(m)
	case brain.TypeWebview:
		u := str(m, "url")
		if !webURL(u) {
			return brain.Response{}, false
		}
		name, label := str(m, "name"), str(m, "label")
		if label == "" {
			label = name
		}
		return brain.Response{Type: typ, URL: u, Name: name, Label: label, Height: str(m, "height")}, true
	case brain.TypeHandover:
		return brain.Response{Type: typ}, true
	case brain.TypePause:
		d, ok := number(m["duration"])
		if !ok {
			return brain.Response{}, false
		}
		show, _ := m["show_typing"].(bool)
		return brain.Response{Type: typ, Duration: int(min(max(d, 0), math.MaxInt32)), ShowTyping: show}, true
	}
	return brain.Response{}, false
}

func convertText(m map[string]any) (brain.Response, bool) {
	var variants []string
	switch t := m["texts"].(type) {
	case []any:
		for _, v := range t {
			if s, ok := v.(string); ok && s != "" {
				variants = append(variants, s)
			}
		}
	case string:
		if t != "" {
			variants = append(variants, t)
		}
	}
	if len(variants) == 0 {
		if s := str(m, "text"); s != "" {
			variants = append(variants, s)
		}
	}
	if len(variants) == 0 {
		return brain.Response{}, false
	}
	r := brain.Text(variants[rand.IntN(len(variants))])
	if opts, ok := m["options"].([]any); ok {
		for _, v := range opts {
			o, ok := v.(map[string]any)
			if !ok {
				continue
			}
			label, text := str(o, "label"), str(o, "text")
			if label == "" {
				label = text
			}
			if text == "" {
				text = label
			}
			if label != "" && len(r.Options) < maxOptions {
				r.Options = append(r.Options, brain.Option{Label: label, Text: text})
			}
		}
	}
	return r, true
}

func convertCarousel(m map[string]any) (brain.Response, bool) {
	cards, _ := m["cards"].([]any)
	r := brain.Response{Type: brain.TypeCarousel}
	for _, v := range cards {
		c, ok := v.(map[string]any)
		if !ok {
			continue
		}
		card := brain.Card{Title: str(c, "title"), Subtitle: str(c, "subtitle")}
		if md, ok := c["media"].(map[string]any); ok {
			if u := str(md, "url"); webURL(u) {
				t := str(md, "type")
				if t != brain.TypeVideo {
					t = brain.TypeImage
				}
				card.Media = &brain.Media{Type: t, URL: u}
			}
		}
		switch d := c["default_action"].(type) {
		case map[string]any:
			if b, ok := convertButton(d); ok {
				card.DefaultAction = &b
			}
		case string: // a bare link
			if webURL(d) {
				card.DefaultAction = &brain.Button{Type: brain.ButtonURL, URL: d}
			}
		}
		if bs, ok := c["buttons"].([]any); ok {
			for _, v := range bs {
				if b, ok := v.(map[string]any); ok {
					if b, ok := convertButton(b); ok && len(card.Buttons) < maxButtons {
						card.Buttons = append(card.Buttons, b)
					}
				}
			}
		}
		if card.Title == "" && card.Subtitle == "" && card.Media == nil {
			continue // nothing to show
		}
		if len(r.Cards) == maxCards {
			break
		}
		r.Cards = append(r.Cards, card)
	}
	if len(r.Cards) == 0 {
		return brain.Response{}, false
	}
	return r, true
}

func convertButton(m map[string]any) (brain.Button, bool) {
	typ, label, u, value := str(m, "type"), str(m, "label"), str(m, "url"), str(m, "value")
	if typ == "" { // say what it does, when it plainly says
		switch {
		case webURL(u) || webURL(value):
			typ = brain.ButtonURL
		case value != "":
			typ = brain.ButtonPostback
		}
	}
	switch typ {
	case brain.ButtonURL, brain.ButtonWebview:
		if u == "" {
			u = value
		}
		if !webURL(u) {
			return brain.Button{}, false
		}
		if label == "" {
			label = u
		}
		return brain.Button{Type: typ, Label: label, URL: u}, true
	case brain.ButtonPostback:
		if value == "" {
			value = label
		}
		if label == "" {
			label = value
		}
		if value == "" {
			return brain.Button{}, false
		}
		return brain.Button{Type: typ, Label: label, Value: value}, true
	case brain.ButtonPhone:
		if value == "" {
			value = strings.TrimPrefix(u, "tel:")
		}
		if label == "" {
			label = value
		}
		if value == "" {
			return brain.Button{}, false
		}
		return brain.Button{Type: typ, Label: label, Value: value}, true
	}
	return brain.Button{}, false
}

// str returns m[k] if it is a string, else "".
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// number returns v as an integer, if it is a finite JSON number or a string holding one;
// fractions are truncated and out-of-range values clamped.
func number(v any) (int64, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		var err error
		if f, err = n.Float64(); err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
	case float64:
		f = n
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil {
			return i, true
		}
		var err error
		if f, err = strconv.ParseFloat(strings.TrimSpace(n), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, false
		}
	default:
		return 0, false
	}
	switch {
	case math.IsNaN(f):
		return 0, false
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= math.MinInt64:
		return math.MinInt64, true
	}
	return int64(f), true
}

// webURL reports whether s is an absolute http or https URL, the only kind a client is given to
// open or load.
func webURL(s string) bool {
	if s == "" || len(s) > 8<<10 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
