package dialog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/parleyhq/parley/internal/brain/moveo"
)

// loader turns a file into a Dialog, collecting every problem with its line rather than
// stopping at the first, so one run of "parley dialog check" shows what to fix.
type loader struct {
	file     string
	problems []Problem
	refs     []ref
	webhooks int
}

// ref is a dialog named by a goto or an ask's then, resolved once every dialog is known.
type ref struct {
	line  int
	where string // `dialog "a": goto`
	name  string
	to    **dlg
}

func (l *loader) errorf(line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) err() error {
	if len(l.problems) == 0 {
		return nil
	}
	ps := l.problems
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	if len(ps) > maxProblems {
		more := len(ps) - maxProblems
		ps = append(ps[:maxProblems:maxProblems], Problem{Msg: fmt.Sprintf("and %d more problems", more)})
	}
	return &Error{File: l.file, Problems: ps}
}

// Keys of each mapping of the format (docs/dialog.md).
var (
	topKeys     = []string{"dialogs", "description"}
	dialogKeys  = []string{"name", "description", "on", "keywords", "regex", "quick_reply", "if", "steps", "handover_after", "handover_steps"}
	condKeys    = []string{"var", "equals", "not_equals", "exists", "in", "contains", "matches", "at_least", "at_most"}
	condTests   = condKeys[1:]
	optionKeys  = []string{"label", "text"}
	cardKeys    = []string{"title", "subtitle", "media", "default_action", "buttons"}
	mediaKeys   = []string{"type", "url"}
	buttonKeys  = []string{"type", "label", "url", "value"}
	webhookKeys = []string{"url", "token", "timeout_ms", "brain_id", "lang", "fallback"}
	buttonTypes = []string{"url", "postback", "phone", "webview"}
)

// action is a step's action key: its kind and the keys a step of it may hold.
type action struct {
	kind stepKind
	keys []string
}

var actions = map[string]action{
	"text":        {kText, []string{"options"}},
	"variants":    {kVariants, []string{"pick", "options"}},
	"image":       {kImage, []string{"name", "size"}},
	"video":       {kVideo, []string{"name", "size"}},
	"file":        {kFile, []string{"name", "size"}},
	"audio":       {kAudio, nil},
	"carousel":    {kCarousel, nil},
	"webview":     {kWebview, []string{"name", "label", "height"}},
	"pause":       {kPause, []string{"show_typing"}},
	"handover":    {kHandover, nil},
	"resolve":     {kResolve, nil},
	"set":         {kSet, nil},
	"remove":      {kRemove, nil},
	"add_tags":    {kAddTags, nil},
	"remove_tags": {kRemoveTags, nil},
	"ask":         {kAsk, []string{"store", "options", "validate", "retry", "then"}},
	"goto":        {kGoto, nil},
	"webhook":     {kWebhook, nil},
}

// actionNames lists the actions in the order the documentation gives them, for messages.
var actionNames = []string{"text", "variants", "image", "video", "audio", "file", "carousel", "webview", "pause", "handover", "resolve", "set", "remove", "add_tags", "remove_tags", "ask", "goto", "webhook"}

// modifiers are the keys of a step other than its action.
var modifiers = []string{"if", "options", "pick", "name", "size", "label", "height", "show_typing", "store", "validate", "retry", "then"}

// stepsIn says where a list of steps is, for the actions that cannot be used there.
type stepsIn int

const (
	inDialog   stepsIn = iota
	inFallback         // a webhook's fallback
	inHandover         // handover_steps
)

func (l *loader) load(data []byte) *Dialog {
	if len(data) > MaxFileBytes {
		l.errorf(0, "the file is larger than %d bytes (1 MiB)", MaxFileBytes)
		return nil
	}
	root := l.parse(data)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.errorf(root.Line, "the file must be a mapping with a dialogs list")
		return nil
	}
	f := l.fields(root, "", topKeys)
	dn := f["dialogs"]
	switch {
	case dn == nil:
		l.errorf(root.Line, "dialogs is missing")
		return nil
	case dn.Kind != yaml.SequenceNode:
		l.errorf(dn.Line, "dialogs must be a list")
		return nil
	case len(dn.Content) == 0:
		l.errorf(dn.Line, "dialogs is empty")
		return nil
	case len(dn.Content) > MaxDialogs:
		l.errorf(dn.Line, "more than %d dialogs", MaxDialogs)
		return nil
	}
	if v := f["description"]; v != nil {
		l.str(v, "description")
	}

	d := &Dialog{file: l.file, byName: make(map[string]*dlg), quick: make(map[string][]*dlg), keywords: make(map[string][]keyword)}
	for i, n := range dn.Content {
		x := l.dialog(n, i)
		if x == nil {
			continue
		}
		if first, dup := d.byName[x.name]; dup {
			l.errorf(x.line, "dialog %q: another dialog has this name (line %d)", x.name, first.line)
			continue
		}
		d.byName[x.name] = x
		d.dialogs = append(d.dialogs, x)
		if x.start {
			d.start = append(d.start, x)
		}
		if x.noMatch {
			d.noMatch = append(d.noMatch, x)
		}
		if len(x.keywords) > 0 || len(x.regexes) > 0 {
			x.index = len(d.matchers)
			d.matchers = append(d.matchers, x)
		}
		for _, k := range x.keywords {
			first, rest, _ := strings.Cut(k[1:], " ") // k is " w1 w2 "
			if rest != "" {
				rest = " " + rest
			}
			d.keywords[first] = append(d.keywords[first], keyword{rest: rest, dialog: x.index})
		}
		for _, q := range x.quick {
			if !slices.Contains(d.quick[q], x) {
				d.quick[q] = append(d.quick[q], x)
			}
		}
	}
	names := make([]string, 0, len(d.byName))
	for n := range d.byName {
		names = append(names, n)
	}
	for _, r := range l.refs {
		t := d.byName[r.name]
		if t == nil {
			hint := ""
			if len(l.problems) < maxProblems { // a suggestion costs; only shown problems get one
				hint = suggest(r.name, names)
			}
			l.errorf(r.line, "%s %q: no dialog has this name%s", r.where, r.name, hint)
			continue
		}
		*r.to = t
	}
	if len(l.problems) == 0 {
		l.checkLoops(d)
	}
	d.webhooks = l.webhooks
	return d
}

// parse reads the one YAML document of the file and checks its shape is one this loader can walk
// safely: no aliases (which could make a small file expand into a huge one) and no nesting deeper
// than MaxDepth.
func (l *loader) parse(data []byte) (root *yaml.Node) {
	defer func() {
		if p := recover(); p != nil { // the parser's bug must not be the server's crash
			l.errorf(0, "the YAML parser failed: %v", p)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			l.errorf(1, "the file is empty")
		} else {
			l.yamlError(err)
		}
		return nil
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == io.EOF:
	case err != nil:
		l.yamlError(err)
		return nil
	default:
		line := more.Line
		if len(more.Content) > 0 {
			line = more.Content[0].Line
		}
		l.errorf(line, "a second YAML document: a dialog file holds one")
		return nil
	}
	if len(doc.Content) != 1 || doc.Content[0].ShortTag() == "!!null" {
		l.errorf(1, "the file is empty")
		return nil
	}
	root = doc.Content[0]
	if !l.checkTree(root, 1) {
		return nil
	}
	return root
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError reports a syntax error of the YAML parser as "file:line: problem".
func (l *loader) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.errorf(line, "%s", m[2])
		return
	}
	l.errorf(0, "%s", strings.TrimPrefix(msg, "yaml: "))
}

func (l *loader) checkTree(n *yaml.Node, depth int) bool {
	if depth > MaxDepth {
		l.errorf(n.Line, "nested deeper than %d levels", MaxDepth)
		return false
	}
	if n.Kind == yaml.AliasNode {
		l.errorf(n.Line, "aliases (*%s) are not supported: write the value out", n.Value)
		return false
	}
	for _, c := range n.Content {
		if !l.checkTree(c, depth+1) {
			return false
		}
	}
	return true
}

// fields returns the values of mapping n by key, reporting keys that are not allowed (with the
// nearest allowed one, since a typo is the usual cause) and keys given twice.
func (l *loader) fields(n *yaml.Node, where string, allowed []string) map[string]*yaml.Node {
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errorf(k.Line, "%sa key must be a name", prefix(where))
			continue
		}
		if _, dup := m[k.Value]; dup {
			l.errorf(k.Line, "%s%q is given twice", prefix(where), k.Value)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			l.errorf(k.Line, "%sunknown key %q%s", prefix(where), k.Value, suggest(k.Value, allowed))
			continue
		}
		m[k.Value] = v
	}
	return m
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// mapping checks n is a mapping and returns its fields.
func (l *loader) mapping(n *yaml.Node, where string, allowed []string) (map[string]*yaml.Node, bool) {
	if n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "%s must be a mapping", where)
		return nil, false
	}
	return l.fields(n, where, allowed), true
}

func (l *loader) dialog(n *yaml.Node, i int) *dlg {
	if n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "dialog #%d must be a mapping with name and steps", i+1)
		return nil
	}
	x := &dlg{line: n.Line}
	where := fmt.Sprintf("dialog #%d", i+1)
	if v := mapValue(n, "name"); v == nil {
		l.errorf(n.Line, "%s: name is missing", where)
	} else if s, ok := l.str(v, where+": name"); ok {
		if msg := checkName(s); msg != "" {
			l.errorf(v.Line, "%s: name %q %s", where, s, msg)
		} else {
			x.name = s
			where = fmt.Sprintf("dialog %q", s)
		}
	}
	f := l.fields(n, where, dialogKeys)
	if v := f["description"]; v != nil {
		l.str(v, where+": description")
	}
	if v := f["on"]; v != nil {
		for _, e := range l.strList(v, where+": on") {
			switch e.s {
			case "start":
				x.start = true
			case "no_match":
				x.noMatch = true
			default:
				l.errorf(e.line, "%s: unknown event %q (the events are start and no_match)", where, e.s)
			}
		}
	}
	if v := f["keywords"]; v != nil {
		for _, k := range l.strList(v, where+": keywords") {
			kf := fold(k.s)
			if kf == " " {
				l.errorf(k.line, "%s: keyword %q has no letters or digits", where, k.s)
				continue
			}
			x.keywords = append(x.keywords, kf)
		}
	}
	if v := f["regex"]; v != nil {
		for _, s := range l.strList(v, where+": regex") {
			if re := l.regex(s, where); re != nil {
				x.regexes = append(x.regexes, re)
			}
		}
	}
	if v := f["quick_reply"]; v != nil {
		for _, q := range l.strList(v, where+": quick_reply") {
			if strings.TrimSpace(q.s) == "" {
				l.errorf(q.line, "%s: quick_reply is empty", where)
				continue
			}
			x.quick = append(x.quick, quickKey(q.s))
		}
	}
	if v := f["if"]; v != nil {
		x.cond = l.cond(v, where+": if")
	}
	if v := f["steps"]; v == nil {
		l.errorf(n.Line, "%s: steps is missing", where)
	} else {
		x.steps = l.steps(v, where, inDialog, x)
	}
	if v := f["handover_after"]; v != nil {
		x.handoverAfter, _ = l.int(v, where+": handover_after", 1, 1000)
		if !x.noMatch {
			l.errorf(v.Line, "%s: handover_after needs on: no_match (it counts messages that match nothing)", where)
		}
	}
	if v := f["handover_steps"]; v != nil {
		x.handoverSteps = l.steps(v, where+": handover_steps", inHandover, x)
		if f["handover_after"] == nil {
			l.errorf(v.Line, "%s: handover_steps needs handover_after", where)
		}
	}
	if x.name == "" {
		return nil
	}
	return x
}

// checkName returns what is wrong with a dialog's name, or "".
func checkName(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 100:
		return "is longer than 100 bytes"
	case strings.TrimSpace(s) != s:
		return "starts or ends with a space"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "holds a control character"
		}
	}
	return ""
}

// mapValue returns the value of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// str returns a scalar as text. Numbers and booleans are text too (text: 42 says "42"); null
// (an empty value) is not.
func (l *loader) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.errorf(n.Line, "%s must be a text", what)
		return "", false
	}
	return n.Value, true
}

type lineStr struct {
	s    string
	line int
}

// strList reads one text or a list of them.
func (l *loader) strList(n *yaml.Node, what string) []lineStr {
	if n.Kind == yaml.ScalarNode {
		if s, ok := l.str(n, what); ok {
			return []lineStr{{s, n.Line}}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n.Line, "%s must be a text or a list of texts", what)
		return nil
	}
	if len(n.Content) == 0 {
		l.errorf(n.Line, "%s is empty", what)
		return nil
	}
	out := make([]lineStr, 0, len(n.Content))
	for _, e := range n.Content {
		if s, ok := l.str(e, what); ok {
			out = append(out, lineStr{s, e.Line})
		}
	}
	return out
}

// text reads a non-empty template.
func (l *loader) text(n *yaml.Node, what string) (tmpl, bool) {
	s, ok := l.str(n, what)
	if !ok {
		return tmpl{}, false
	}
	if strings.TrimSpace(s) == "" {
		l.errorf(n.Line, "%s is empty", what)
		return tmpl{}, false
	}
	t, err := parseTmpl(s)
	if err != nil {
		l.errorf(n.Line, "%s: %v", what, err)
		return tmpl{}, false
	}
	return t, true
}

// optText reads an optional template: absent is the empty text.
func (l *loader) optText(n *yaml.Node, what string) tmpl {
	if n == nil {
		return tmpl{}
	}
	t, _ := l.text(n, what)
	return t
}

// link reads a URL a user's client opens: an absolute http(s) URL, which may hold placeholders
// ("https://shop.example/orders/{{order.id}}").
func (l *loader) link(n *yaml.Node, what string) tmpl {
	t, ok := l.text(n, what)
	if !ok {
		return t
	}
	check := t.static
	if !t.isStatic() {
		if t.parts[0].path != nil {
			return t // the whole URL comes from the context
		}
		check = t.parts[0].lit + "x"
	}
	if !isHTTPURL(check, !t.isStatic()) {
		l.errorf(n.Line, "%s %q is not an http(s) URL", what, n.Value)
	}
	return t
}

// isHTTPURL reports whether s is an absolute http or https URL; with prefixOnly, whether s can
// begin one.
func isHTTPURL(s string, prefixOnly bool) bool {
	lower := strings.ToLower(s)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		return false
	}
	if prefixOnly {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != ""
}

func (l *loader) int(n *yaml.Node, what string, lo, hi int) (int, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err == nil && v >= int64(lo) && v <= int64(hi) {
			return int(v), true
		}
	}
	l.errorf(n.Line, "%s must be a whole number from %d to %d", what, lo, hi)
	return 0, false
}

func (l *loader) bool(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		v, err := strconv.ParseBool(n.Value)
		if err == nil {
			return v, true
		}
	}
	l.errorf(n.Line, "%s must be true or false", what)
	return false, false
}

func (l *loader) regex(s lineStr, where string) *regexp.Regexp {
	re, err := regexp.Compile(s.s)
	if err != nil {
		l.errorf(s.line, "%s: bad regex %q: %s", where, s.s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil
	}
	return re
}

// variable reads a context path a step writes: not an engine key.
func (l *loader) variable(n *yaml.Node, what string) []string {
	s, ok := l.str(n, what)
	if !ok {
		return nil
	}
	return l.writablePath(s, n.Line, what)
}

func (l *loader) writablePath(s string, line int, what string) []string {
	p, err := parsePath(s)
	if err != nil {
		l.errorf(line, "%s: %v", what, err)
		return nil
	}
	if strings.HasPrefix(p[0], "sys-") {
		l.errorf(line, "%s: %q belongs to the dialog engine and cannot be written", what, p[0])
		return nil
	}
	return p
}

// cond reads a condition: a test of one variable, not/any/all of conditions, or a list (all).
func (l *loader) cond(n *yaml.Node, where string) *cond {
	switch n.Kind {
	case yaml.SequenceNode:
		return l.condList(n, where, opAll)
	case yaml.MappingNode:
	default:
		l.errorf(n.Line, "%s must be a condition such as {var: user.plan, equals: gold}", where)
		return nil
	}
	for _, op := range []struct {
		key string
		op  condOp
	}{{"not", opNot}, {"any", opAny}, {"all", opAll}} {
		v := mapValue(n, op.key)
		if v == nil {
			continue
		}
		if len(n.Content) != 2 {
			l.errorf(n.Line, "%s: %s must be alone in its condition", where, op.key)
			return nil
		}
		if op.op == opNot {
			sub := l.cond(v, where+": not")
			if sub == nil {
				return nil
			}
			return &cond{op: opNot, subs: []*cond{sub}}
		}
		if v.Kind != yaml.SequenceNode {
			l.errorf(v.Line, "%s: %s must be a list of conditions", where, op.key)
			return nil
		}
		return l.condList(v, where+": "+op.key, op.op)
	}
	f := l.fields(n, where, condKeys)
	c := &cond{}
	if v := f["var"]; v == nil {
		l.errorf(n.Line, "%s: var is missing (the variable to test)", where)
		return nil
	} else if s, ok := l.str(v, where+": var"); !ok {
		return nil
	} else if p, err := parsePath(s); err != nil {
		l.errorf(v.Line, "%s: %v", where, err)
		return nil
	} else {
		c.path = p
	}
	var tests []string
	for _, t := range condTests {
		if f[t] != nil {
			tests = append(tests, t)
		}
	}
	if len(tests) != 1 {
		if len(tests) == 0 {
			l.errorf(n.Line, "%s: a condition needs one test: %s", where, strings.Join(condTests, ", "))
		} else {
			l.errorf(n.Line, "%s: a condition has one test, not %s; use a list for several", where, strings.Join(tests, " and "))
		}
		return nil
	}
	t := tests[0]
	v := f[t]
	what := where + ": " + t
	ok := true
	switch t {
	case "equals", "not_equals", "contains":
		c.op = map[string]condOp{"equals": opEquals, "not_equals": opNotEquals, "contains": opContains}[t]
		c.want, ok = l.scalar(v, what)
	case "exists":
		c.op = opExists
		c.exists, ok = l.bool(v, what)
	case "in":
		c.op = opIn
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			l.errorf(v.Line, "%s must be a list of values", what)
			return nil
		}
		for _, e := range v.Content {
			s, good := l.scalar(e, what)
			ok = ok && good
			c.in = append(c.in, s)
		}
	case "matches":
		c.op = opMatches
		if s, good := l.str(v, what); good {
			c.re = l.regex(lineStr{s, v.Line}, where)
		}
		ok = c.re != nil
	case "at_least", "at_most":
		c.op = map[string]condOp{"at_least": opAtLeast, "at_most": opAtMost}[t]
		c.want, ok = l.scalar(v, what)
		if ok && !c.want.isNum {
			l.errorf(v.Line, "%s must be a number", what)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return c
}

func (l *loader) condList(n *yaml.Node, where string, op condOp) *cond {
	if len(n.Content) == 0 {
		l.errorf(n.Line, "%s is empty", where)
		return nil
	}
	c := &cond{op: op}
	for _, e := range n.Content {
		sub := l.cond(e, where)
		if sub == nil {
			return nil
		}
		c.subs = append(c.subs, sub)
	}
	return c
}

// scalar reads a value a condition compares with.
func (l *loader) scalar(n *yaml.Node, what string) (scalar, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		l.errorf(n.Line, "%s must be a text, a number or true/false (for a missing variable, use exists: false)", what)
		return scalar{}, false
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		if f, ok := yamlNumber(n); ok {
			return scalar{s: n.Value, num: f, isNum: true}, true
		}
		l.errorf(n.Line, "%s: %q is not a finite number", what, n.Value)
		return scalar{}, false
	case "!!bool":
		b, _ := strconv.ParseBool(n.Value)
		return scalar{s: strconv.FormatBool(b)}, true
	}
	return scalar{s: n.Value}, true
}

// yamlNumber reads an !!int or !!float scalar.
func yamlNumber(n *yaml.Node) (float64, bool) {
	s := strings.ReplaceAll(n.Value, "_", "")
	if n.ShortTag() == "!!int" {
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			return float64(v), true
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func (l *loader) steps(n *yaml.Node, where string, in stepsIn, x *dlg) []*step {
	what := where + ": steps"
	if in == inFallback {
		what = where + ": fallback"
	} else if in == inHandover {
		what = where
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n.Line, "%s must be a list", what)
		return nil
	}
	if len(n.Content) == 0 {
		l.errorf(n.Line, "%s is empty", what)
		return nil
	}
	if len(n.Content) > MaxSteps {
		l.errorf(n.Line, "%s has more than %d steps", what, MaxSteps)
		return nil
	}
	out := make([]*step, 0, len(n.Content))
	for _, e := range n.Content {
		if s := l.step(e, where, in, x); s != nil {
			out = append(out, s)
		}
	}
	return out
}

// step reads one step: a mapping with one action key and that action's own keys, or one of
// the actions that take no value written alone ("- handover").
func (l *loader) step(n *yaml.Node, where string, in stepsIn, x *dlg) *step {
	s := &step{line: n.Line}
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "handover":
			s.kind = kHandover
		case "resolve":
			s.kind = kResolve
		default:
			if _, ok := actions[n.Value]; ok {
				l.errorf(n.Line, "%s: %s needs a value (%s: ...)", where, n.Value, n.Value)
			} else {
				l.errorf(n.Line, "%s: unknown action %q%s (a text is written - text: ...)", where, n.Value, suggest(n.Value, actionNames))
			}
			return nil
		}
		return l.allowed(s, n.Value, where, in)
	}
	if n.Kind != yaml.MappingNode {
		l.errorf(n.Line, "%s: a step must be a mapping such as {text: Hello}", where)
		return nil
	}
	var found []string
	var unknown *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if _, ok := actions[k.Value]; ok {
			if !slices.Contains(found, k.Value) { // twice is reported as such below
				found = append(found, k.Value)
			}
		} else if unknown == nil && !slices.Contains(modifiers, k.Value) {
			unknown = k
		}
	}
	switch {
	case len(found) == 0 && unknown != nil:
		l.errorf(unknown.Line, "%s: unknown action %q%s", where, unknown.Value, suggest(unknown.Value, actionNames))
		return nil
	case len(found) == 0:
		l.errorf(n.Line, "%s: a step needs an action (%s)", where, strings.Join(actionNames, ", "))
		return nil
	case len(found) > 1:
		l.errorf(n.Line, "%s: a step has one action, not %s: make them two steps", where, strings.Join(found, " and "))
		return nil
	}
	name := found[0]
	a := actions[name]
	s.kind = a.kind
	what := where + ": " + name
	f := l.fields(n, what, append([]string{name, "if"}, a.keys...))
	if v := f["if"]; v != nil {
		s.cond = l.cond(v, what+": if")
	}
	v := f[name]
	if v == nil {
		return nil // given twice, reported
	}
	switch a.kind {
	case kText:
		s.text, _ = l.text(v, what)
		s.options = l.options(f["options"], what)
	case kVariants:
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			l.errorf(v.Line, "%s must be a list of texts", what)
			break
		}
		for _, e := range v.Content {
			t, _ := l.text(e, what)
			s.variants = append(s.variants, t)
		}
		s.options = l.options(f["options"], what)
		if p := f["pick"]; p != nil {
			switch p.Value {
			case "random":
			case "rotate":
				s.rotate = true
				// The dialog's name and which of its rotating texts this is: a key that
				// survives most edits of the file, so sessions keep their turn.
				x.rotating++
				s.key = fmt.Sprintf("%s#%d", x.name, x.rotating)
			default:
				l.errorf(p.Line, "%s: pick must be random or rotate", what)
			}
		}
	case kImage, kVideo, kFile:
		s.url = l.link(v, what)
		s.name = l.optText(f["name"], what+": name")
		if sz := f["size"]; sz != nil {
			n, _ := l.int(sz, what+": size", 0, math.MaxInt32)
			s.size = int64(n)
		}
	case kAudio:
		s.url = l.link(v, what)
	case kWebview:
		s.url = l.link(v, what)
		if lb := f["label"]; lb == nil {
			l.errorf(n.Line, "%s: label is missing (the button that opens it)", what)
		} else {
			s.label, _ = l.text(lb, what+": label")
		}
		s.name = s.label
		if nm := f["name"]; nm != nil {
			s.name, _ = l.text(nm, what+": name")
		}
		if h := f["height"]; h != nil {
			s.height, _ = l.str(h, what+": height")
		}
	case kCarousel:
		s.cards = l.cards(v, what)
	case kPause:
		s.duration, _ = l.int(v, what, 0, 60000)
		s.typing = true
		if t := f["show_typing"]; t != nil {
			s.typing, _ = l.bool(t, what+": show_typing")
		}
	case kHandover, kResolve:
		if v.ShortTag() != "!!null" && !(v.ShortTag() == "!!bool" && strings.EqualFold(v.Value, "true")) {
			l.errorf(v.Line, "%s takes no value: write - %s", what, name)
		}
	case kSet:
		if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
			l.errorf(v.Line, "%s must be a mapping of variables to values, such as {user.plan: gold}", what)
			break
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, val := v.Content[i], v.Content[i+1]
			p := l.variable(k, what)
			if val := l.value(val, what); p != nil && val != nil {
				s.set = append(s.set, assign{path: p, val: val})
			}
		}
	case kRemove:
		for _, e := range l.strList(v, what) {
			if p := l.writablePath(e.s, e.line, what); p != nil {
				s.paths = append(s.paths, p)
			}
		}
	case kAddTags, kRemoveTags:
		for _, e := range l.strList(v, what) {
			t, err := parseTmpl(e.s)
			switch {
			case strings.TrimSpace(e.s) == "":
				l.errorf(e.line, "%s: a tag is empty", what)
			case err != nil:
				l.errorf(e.line, "%s: %v", what, err)
			default:
				s.tags = append(s.tags, t)
			}
		}
	case kAsk:
		s.text, _ = l.text(v, what)
		if st := f["store"]; st == nil {
			l.errorf(n.Line, "%s: store is missing (the variable that keeps the answer)", what)
		} else if p := l.variable(st, what+": store"); p != nil {
			s.store, s.storeName = p, st.Value
		}
		s.options = l.options(f["options"], what)
		if re := f["validate"]; re != nil {
			if src, ok := l.str(re, what+": validate"); ok {
				s.validate = l.regex(lineStr{src, re.Line}, what+": validate")
			}
		}
		if rt := f["retry"]; rt != nil {
			t, _ := l.text(rt, what+": retry")
			s.retry = &t
		}
		if th := f["then"]; th != nil {
			l.ref(th, where+": then", &s.target)
		}
	case kGoto:
		l.ref(v, where+": goto", &s.target)
	case kWebhook:
		s.hook = l.webhook(v, what, x)
		l.webhooks++
	}
	return l.allowed(s, name, where, in)
}

// allowed refuses actions that cannot run where they are written: a question in a fallback or
// in handover_steps would have no place to resume; a webhook's fallback calling a webhook could
// chain without end; handover_steps end in a handover, so a goto there would never return.
func (l *loader) allowed(s *step, name, where string, in stepsIn) *step {
	switch {
	case in == inFallback && (s.kind == kAsk || s.kind == kWebhook):
		l.errorf(s.line, "%s: %s cannot be used in a webhook's fallback", where, name)
		return nil
	case in == inHandover && (s.kind == kAsk || s.kind == kWebhook || s.kind == kGoto):
		l.errorf(s.line, "%s: %s cannot be used in handover_steps", where, name)
		return nil
	}
	return s
}

func (l *loader) ref(n *yaml.Node, where string, to **dlg) {
	if s, ok := l.str(n, where); ok {
		l.refs = append(l.refs, ref{line: n.Line, where: where, name: s, to: to})
	}
}

// value reads what a set step writes.
func (l *loader) value(n *yaml.Node, what string) *value {
	switch n.Kind {
	case yaml.SequenceNode:
		v := &value{kind: vList}
		for _, e := range n.Content {
			ev := l.value(e, what)
			if ev == nil {
				return nil
			}
			v.list = append(v.list, ev)
		}
		if v.list == nil {
			v.list = []*value{}
		}
		return v
	case yaml.MappingNode:
		v := &value{kind: vObj}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || seen[k.Value] {
				l.errorf(k.Line, "%s: a key must be a name, given once", what)
				return nil
			}
			seen[k.Value] = true
			ev := l.value(n.Content[i+1], what)
			if ev == nil {
				return nil
			}
			v.obj = append(v.obj, assign{path: []string{k.Value}, val: ev})
		}
		return v
	case yaml.ScalarNode:
	default:
		l.errorf(n.Line, "%s: unsupported value", what)
		return nil
	}
	switch n.ShortTag() {
	case "!!null":
		return &value{lit: nil} // a null removes the variable, as in any context patch
	case "!!bool":
		b, _ := strconv.ParseBool(n.Value)
		return &value{lit: b}
	case "!!int", "!!float":
		if _, ok := yamlNumber(n); !ok {
			l.errorf(n.Line, "%s: %q is not a finite number", what, n.Value)
			return nil
		}
		return &value{lit: jsonNumber(n)}
	}
	t, err := parseTmpl(n.Value)
	if err != nil {
		l.errorf(n.Line, "%s: %v", what, err)
		return nil
	}
	return &value{kind: vStr, str: &t}
}

// jsonNumber spells a YAML number as the JSON number a context holds, exactly for integers.
func jsonNumber(n *yaml.Node) json.Number {
	s := strings.ReplaceAll(n.Value, "_", "")
	if n.ShortTag() == "!!int" {
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			return json.Number(strconv.FormatInt(v, 10))
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

func (l *loader) options(n *yaml.Node, what string) []option {
	if n == nil {
		return nil
	}
	what += ": options"
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n.Line, "%s must be a list of quick replies", what)
		return nil
	}
	out := make([]option, 0, len(n.Content))
	for _, e := range n.Content {
		if e.Kind == yaml.ScalarNode {
			t, ok := l.text(e, what)
			if ok {
				out = append(out, option{label: t, text: t})
			}
			continue
		}
		f, ok := l.mapping(e, what, optionKeys)
		if !ok {
			continue
		}
		var o option
		if v := f["label"]; v == nil {
			l.errorf(e.Line, "%s: label is missing", what)
			continue
		} else if o.label, ok = l.text(v, what+": label"); !ok {
			continue
		}
		o.text = o.label
		if v := f["text"]; v != nil {
			if o.text, ok = l.text(v, what+": text"); !ok {
				continue
			}
		}
		out = append(out, o)
	}
	return out
}

func (l *loader) cards(n *yaml.Node, what string) []card {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		l.errorf(n.Line, "%s must be a list of cards", what)
		return nil
	}
	out := make([]card, 0, len(n.Content))
	for _, e := range n.Content {
		f, ok := l.mapping(e, what+": card", cardKeys)
		if !ok {
			continue
		}
		var c card
		if v := f["title"]; v == nil {
			l.errorf(e.Line, "%s: card: title is missing", what)
		} else {
			c.title, _ = l.text(v, what+": card: title")
		}
		c.subtitle = l.optText(f["subtitle"], what+": card: subtitle")
		if v := f["media"]; v != nil {
			if mf, ok := l.mapping(v, what+": card: media", mediaKeys); ok {
				m := &media{}
				if t := mf["type"]; t == nil || (t.Value != "image" && t.Value != "video") {
					l.errorf(v.Line, "%s: card: media: type must be image or video", what)
				} else {
					m.typ = t.Value
				}
				if u := mf["url"]; u == nil {
					l.errorf(v.Line, "%s: card: media: url is missing", what)
				} else {
					m.url = l.link(u, what+": card: media: url")
				}
				c.media = m
			}
		}
		if v := f["default_action"]; v != nil {
			c.defaultAction = l.button(v, what+": card: default_action", false)
		}
		if v := f["buttons"]; v != nil {
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				l.errorf(v.Line, "%s: card: buttons must be a list", what)
			} else {
				for _, b := range v.Content {
					if btn := l.button(b, what+": card: button", true); btn != nil {
						c.buttons = append(c.buttons, *btn)
					}
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// button reads a card's button: url and webview buttons open url, postback buttons send value
// as the user's message, phone buttons call value.
func (l *loader) button(n *yaml.Node, what string, needLabel bool) *button {
	f, ok := l.mapping(n, what, buttonKeys)
	if !ok {
		return nil
	}
	b := &button{}
	t := f["type"]
	if t == nil {
		l.errorf(n.Line, "%s: type is missing (%s)", what, strings.Join(buttonTypes, ", "))
		return nil
	}
	if !slices.Contains(buttonTypes, t.Value) {
		l.errorf(t.Line, "%s: unknown button type %q (the types are %s)%s", what, t.Value, strings.Join(buttonTypes, ", "), suggest(t.Value, buttonTypes))
		return nil
	}
	b.typ = t.Value
	if v := f["label"]; v != nil {
		b.label, _ = l.text(v, what+": label")
	} else if needLabel {
		l.errorf(n.Line, "%s: label is missing", what)
	}
	u, val := f["url"], f["value"]
	switch b.typ {
	case "url", "webview":
		if u == nil {
			l.errorf(n.Line, "%s: a %s button needs url", what, b.typ)
		} else {
			b.url = l.link(u, what+": url")
		}
		if val != nil {
			l.errorf(val.Line, "%s: a %s button takes url, not value", what, b.typ)
		}
	default:
		if val == nil {
			l.errorf(n.Line, "%s: a %s button needs value", what, b.typ)
		} else {
			b.value, _ = l.text(val, what+": value")
		}
		if u != nil {
			l.errorf(u.Line, "%s: a %s button takes value, not url", what, b.typ)
		}
	}
	return b
}

func (l *loader) webhook(n *yaml.Node, what string, x *dlg) *hook {
	f, ok := l.mapping(n, what, webhookKeys)
	if !ok {
		return nil
	}
	h := &hook{ep: moveo.Endpoint{Timeout: DefaultWebhookTimeout}}
	if v := f["url"]; v == nil {
		l.errorf(n.Line, "%s: url is missing", what)
	} else if s, ok := l.str(v, what+": url"); ok {
		if strings.Contains(s, "{{") {
			l.errorf(v.Line, "%s: url cannot hold placeholders: the context goes in the body", what)
		} else if !isHTTPURL(s, false) {
			l.errorf(v.Line, "%s: url %q is not an http(s) URL", what, s)
		}
		h.ep.URL = s
	}
	if v := f["token"]; v != nil {
		h.ep.Token, _ = l.str(v, what+": token")
	}
	if v := f["timeout_ms"]; v != nil {
		ms, _ := l.int(v, what+": timeout_ms", 1, 120000)
		h.ep.Timeout = time.Duration(ms) * time.Millisecond
	}
	if v := f["brain_id"]; v != nil {
		h.ep.BrainID, _ = l.str(v, what+": brain_id")
	}
	if v := f["lang"]; v != nil {
		h.ep.Lang, _ = l.str(v, what+": lang")
	}
	if v := f["fallback"]; v != nil {
		h.fallback = l.steps(v, what, inFallback, x)
	}
	return h
}

// checkLoops refuses gotos that would always come back to where they started (a → b → a) and
// so could only end at MaxJumps. A goto behind a condition, a question or a webhook may well
// not loop, and is left to that run-time bound.
func (l *loader) checkLoops(d *Dialog) {
	type edge struct {
		to   *dlg
		line int
	}
	next := make(map[*dlg]edge)
	for _, x := range d.dialogs {
	scan:
		for _, s := range x.steps {
			if s.cond != nil {
				continue
			}
			switch s.kind {
			case kAsk, kHandover, kWebhook:
				break scan
			case kGoto:
				if s.target != nil && s.target.cond == nil {
					next[x] = edge{s.target, s.line}
				}
				break scan
			}
		}
	}
	done := make(map[*dlg]bool)
	for _, x := range d.dialogs {
		onPath := make(map[*dlg]bool)
		var path []string
		for y := x; y != nil && !done[y]; {
			if onPath[y] {
				e := next[y]
				if len(path) > 8 {
					path = append(path[:4:4], "…", path[len(path)-3], path[len(path)-2], path[len(path)-1])
				}
				l.errorf(e.line, "dialog %q: goto %q loops forever (%s → %s)", y.name, e.to.name, strings.Join(path, " → "), y.name)
				break
			}
			onPath[y] = true
			path = append(path, y.name)
			y = next[y].to
		}
		for y := range onPath {
			done[y] = true
		}
	}
}

// suggest returns ` (did you mean "x"?)` for the option nearest to s, if one is near enough to
// be a typo of it.
func suggest(s string, options []string) string {
	if len(s) <= 2 {
		return "" // every short name is near every other
	}
	best, bestD := "", 3
	if len(s) <= 4 {
		bestD = 2
	}
	for _, o := range options {
		if len(o) >= len(s)+bestD || len(s) >= len(o)+bestD {
			continue // the lengths alone are too far apart
		}
		if d := distance(s, o); d < bestD || d == bestD && best != "" && o < best {
			best, bestD = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance between a and b, in bytes; names are short.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
