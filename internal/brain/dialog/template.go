package dialog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/parleyhq/parley"
)

// tmpl is a text with placeholders, parsed once at load: "Hi {{user.display_name | there}}!"
// is a literal, a context path with a fallback, and a literal. A text without placeholders
// renders as itself, with no allocation.
type tmpl struct {
	static string
	parts  []part // nil: the text is static
}

// part is a literal (path nil) or a placeholder.
type part struct {
	lit  string
	path []string
	def  string // written when the value is missing or empty
}

// parseTmpl parses s. "{{" always opens a placeholder; there is no escape, because no response a
// chat shows needs a literal "{{".
func parseTmpl(s string) (tmpl, error) {
	if !strings.Contains(s, "{{") {
		return tmpl{static: s}, nil
	}
	var t tmpl
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, part{lit: rest})
			}
			return t, nil
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return tmpl{}, fmt.Errorf("template %q: %q is not closed with }}", s, "{{")
		}
		inner := rest[i+2 : i+2+j]
		pathText, def, _ := strings.Cut(inner, "|")
		path, err := parsePath(strings.TrimSpace(pathText))
		if err != nil {
			return tmpl{}, fmt.Errorf("template %q: {{%s}}: %v", s, inner, err)
		}
		t.parts = append(t.parts, part{path: path, def: strings.TrimSpace(def)})
		rest = rest[i+2+j+2:]
	}
}

// isStatic reports whether the text has no placeholder.
func (t *tmpl) isStatic() bool { return t.parts == nil }

// render writes the text with each placeholder replaced by the value at its path in the
// context the run sees (the session's, with this message's changes so far).
func (t *tmpl) render(r *run) string {
	if t.parts == nil {
		return t.static
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.path == nil {
			b.WriteString(p.lit)
			continue
		}
		v, _ := r.lookup(p.path)
		if s := display(v); s != "" {
			b.WriteString(s)
		} else {
			b.WriteString(p.def)
		}
	}
	return b.String()
}

// display is how a context value reads in a text: strings as they are, numbers and booleans in
// JSON's spelling, a list of strings joined with ", ", anything else as JSON; nothing for a
// missing value or null.
func display(v any) string {
	if s, ok := scalarString(v); ok {
		return s
	}
	switch v := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := scalarString(e); ok {
				parts = append(parts, s)
			} else {
				b, _ := parley.Marshal(e)
				parts = append(parts, string(b))
			}
		}
		return strings.Join(parts, ", ")
	case []string:
		return strings.Join(v, ", ")
	}
	b, err := parley.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// scalarString returns a string, number or boolean of a context in text form.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	}
	return "", false
}

// number returns a context value as a number: a number, or a string that spells one (answers
// to questions are stored as strings).
func number(v any) (float64, bool) {
	var f float64
	var err error
	switch v := v.(type) {
	case json.Number:
		f, err = strconv.ParseFloat(string(v), 64)
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	default:
		return 0, false
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parsePath parses a dotted context path: "user.display_name", "sys-unknown_counter".
func parsePath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty variable name")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("{}|\"'", r) {
			return nil, fmt.Errorf("variable %q has a character a name cannot hold (%q)", s, r)
		}
	}
	path := strings.Split(s, ".")
	for _, p := range path {
		if p == "" {
			return nil, fmt.Errorf("variable %q has an empty part", s)
		}
	}
	return path, nil
}
