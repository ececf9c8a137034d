package dialog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/brain"
	"github.com/parleyhq/parley/internal/brain/moveo"
)

// stepKind is what a step does.
type stepKind int

const (
	kText stepKind = iota
	kVariants
	kImage
	kVideo
	kAudio
	kFile
	kCarousel
	kWebview
	kPause
	kHandover
	kResolve
	kSet
	kRemove
	kAddTags
	kRemoveTags
	kAsk
	kGoto
	kWebhook
)

// step is one step of a dialog, checked and compiled at load. Only the fields of its kind are
// set.
type step struct {
	kind stepKind
	line int
	cond *cond // nil: always

	text     tmpl // text; ask: the question
	variants []tmpl
	rotate   bool   // variants: in turn rather than at random
	key      string // variants with rotate: the key under sys-rotate
	options  []option

	url, name, label tmpl // image, video, audio, file, webview
	size             int64
	height           string
	cards            []card
	duration         int
	typing           bool

	set   []assign
	paths [][]string // remove
	tags  []tmpl     // add_tags, remove_tags

	store     []string // ask
	storeName string
	validate  *regexp.Regexp
	retry     *tmpl
	target    *dlg // goto; ask: then (nil: the next step)

	hook *hook
}

type option struct{ label, text tmpl }

type card struct {
	title, subtitle tmpl
	media           *media
	defaultAction   *button
	buttons         []button
}

type media struct {
	typ string
	url tmpl
}

type button struct {
	typ               string
	label, url, value tmpl
}

type assign struct {
	path []string
	val  *value
}

type hook struct {
	ep       moveo.Endpoint
	fallback []*step // nil: a failed call is an error of the reply
}

// value is what a set step writes: a template for strings, the value itself for numbers,
// booleans and null, and lists and objects of those. It is built anew for every message, so no
// two sessions ever share a map of a reply's context.
type value struct {
	lit  any
	str  *tmpl
	list []*value
	obj  []assign // keys of an object, each a one-element path
	kind valueKind
}

type valueKind int

const (
	vLit valueKind = iota
	vStr
	vList
	vObj
)

func (v *value) render(r *run) any {
	switch v.kind {
	case vStr:
		return v.str.render(r)
	case vList:
		l := make([]any, len(v.list))
		for i, e := range v.list {
			l[i] = e.render(r)
		}
		return l
	case vObj:
		m := make(map[string]any, len(v.obj))
		for _, kv := range v.obj {
			m[kv.path[0]] = kv.val.render(r)
		}
		return m
	}
	return v.lit
}

// defaultFallback answers a miss in a file without a no_match dialog: a brain always answers.
const defaultFallback = "Sorry, I didn't understand that."

var (
	counterPath = []string{KeyUnknownCounter}
	pendingPath = []string{KeyPending}
	tagsPath    = []string{"tags"}
)

// run is the answering of one message.
type run struct {
	d      *Dialog
	ctx    context.Context
	req    *brain.Request
	base   map[string]any // the session's context, never written
	patch  map[string]any // the changes so far: Reply.Context
	reply  *brain.Reply
	text   string
	folded string // fold(text), once needed
	jumps  int
}

// Reply answers one user message (brain.Brain).
func (d *Dialog) Reply(ctx context.Context, req *brain.Request) (*brain.Reply, error) {
	r := &run{d: d, ctx: ctx, req: req, base: req.Context, reply: &brain.Reply{}}
	if req.Message != nil {
		r.text = req.Message.Text
	}
	if err := r.answer(); err != nil {
		return nil, err
	}
	if len(r.patch) > 0 {
		r.reply.Context = r.patch
	}
	return r.reply, nil
}

func (r *run) answer() error {
	if r.req.ConversationStart {
		return r.startConversation()
	}
	if done, err := r.answerQuestion(); done || err != nil {
		return err
	}
	if m := r.match(); m != nil {
		r.setCounter(0)
		_, err := r.exec(m, m.steps, 0)
		return err
	}
	return r.miss(true)
}

// startConversation runs the start dialog, then the dialog the message itself matches. A first
// message is never a miss: a user who opens with "hello?" is greeted, not told off.
func (r *run) startConversation() error {
	// A conversation starts afresh: a question of the last one no longer waits, misses of the
	// last one no longer count.
	r.clearPending()
	r.setCounter(0)
	var started *dlg
	for _, s := range r.d.start {
		if r.holds(s.cond) {
			started = s
			break
		}
	}
	if started != nil {
		if out, err := r.exec(started, started.steps, 0); out == finished || err != nil {
			return err // a question asked or a handover: the message has its answer
		}
	}
	m := r.match()
	switch {
	case m != nil && m != started:
		_, err := r.exec(m, m.steps, 0)
		return err
	case m == nil && started == nil:
		return r.miss(false)
	}
	return nil
}

// miss answers a message no dialog matched with the first no_match dialog whose conditions hold.
// count says whether it counts in sys-unknown_counter; the no_match dialogs see the new count.
func (r *run) miss(count bool) error {
	n := r.counter()
	if count {
		n++
		r.setCounter(n)
	}
	for _, f := range r.d.noMatch {
		if !r.holds(f.cond) {
			continue
		}
		if count && f.handoverAfter > 0 && n >= f.handoverAfter {
			out, err := r.exec(f, f.handoverSteps, 0)
			if err == nil && out != finished {
				r.handover()
			}
			return err
		}
		_, err := r.exec(f, f.steps, 0)
		return err
	}
	r.respond(brain.Text(defaultFallback))
	return nil
}

// answerQuestion takes the message as the answer to the pending question, if there is one. It
// reports whether the message has been answered.
func (r *run) answerQuestion() (bool, error) {
	raw, ok := r.base[KeyPending]
	if !ok || raw == nil {
		return false, nil
	}
	p, _ := raw.(map[string]any)
	name, _ := p["dialog"].(string)
	store, _ := p["store"].(string)
	i, _ := number(p["step"])
	dl := r.d.byName[name]
	var s *step
	if dl != nil && i >= 0 && i < float64(len(dl.steps)) && i == float64(int(i)) {
		s = dl.steps[int(i)]
	}
	if s == nil || s.kind != kAsk || s.storeName != store {
		// The file changed since the question was asked (or the key was not ours): forget it and
		// take the message as any other.
		r.clearPending()
		return false, nil
	}
	answer := strings.TrimSpace(r.text)
	if answer == "" && r.req.Message != nil && len(r.req.Message.Attachments) > 0 {
		answer = r.req.Message.Attachments[0].URL // "send us a photo": the answer is the photo
	}
	// A quick reply of another dialog (the user tapped "Talk to a human" rather than answer) is
	// not an answer, unless the question offers it.
	if m := r.matchQuick(); m != nil && !r.offers(s.options) {
		r.clearPending()
		r.setCounter(0)
		_, err := r.exec(m, m.steps, 0)
		return true, err
	}
	if s.validate != nil && !s.validate.MatchString(answer) {
		// Not an answer. A user who asks for something else (types "human") gets it, so a
		// question can never trap anyone; otherwise the question is asked again.
		if m := r.match(); m != nil {
			r.clearPending()
			r.setCounter(0)
			_, err := r.exec(m, m.steps, 0)
			return true, err
		}
		q := &s.text
		if s.retry != nil {
			q = s.retry
		}
		r.respond(brain.Response{Type: brain.TypeText, Text: q.render(r), Options: r.options(s.options)})
		return true, nil
	}
	r.clearPending()
	r.setCounter(0)
	r.set(s.store, answer)
	if s.target != nil {
		_, err := r.jump(s.target)
		return true, err
	}
	_, err := r.exec(dl, dl.steps, int(i)+1)
	return true, err
}

// match returns the dialog the message triggers: an exact quick reply first, then the first
// dialog in file order with a keyword or regex that matches; in both, only a dialog whose
// conditions hold.
func (r *run) match() *dlg {
	if m := r.matchQuick(); m != nil {
		return m
	}
	if len(r.d.matchers) == 0 {
		return nil
	}
	// Mark the dialogs whose keywords the message holds: the first 64 in a bit mask, so a
	// typical file allocates nothing here.
	var mask uint64
	var more []bool
	if len(r.d.keywords) > 0 {
		folded := r.fold()
		for i := 1; i < len(folded); {
			j := i + strings.IndexByte(folded[i:], ' ')
			for _, k := range r.d.keywords[folded[i:j]] {
				if k.rest != "" && !strings.HasPrefix(folded[j:], k.rest) {
					continue
				}
				if k.dialog < 64 {
					mask |= 1 << k.dialog
				} else {
					if more == nil {
						more = make([]bool, len(r.d.matchers))
					}
					more[k.dialog] = true
				}
			}
			i = j + 1
		}
	}
	for _, x := range r.d.matchers {
		hit := x.index < 64 && mask&(1<<x.index) != 0 || x.index >= 64 && more != nil && more[x.index]
		if (hit || x.matchesRegex(r.text)) && r.holds(x.cond) {
			return x
		}
	}
	return nil
}

// matchQuick returns the first dialog whose quick reply is the message and whose conditions
// hold.
func (r *run) matchQuick() *dlg {
	if len(r.d.quick) == 0 {
		return nil
	}
	for _, x := range r.d.quick[r.quickKey()] {
		if r.holds(x.cond) {
			return x
		}
	}
	return nil
}

// offers reports whether the message is one of opts, the options of a pending question.
func (r *run) offers(opts []option) bool {
	key := r.quickKey()
	for _, o := range opts {
		if quickKey(o.text.render(r)) == key {
			return true
		}
	}
	return false
}

func (r *run) fold() string {
	if r.folded == "" {
		r.folded = fold(r.text)
	}
	return r.folded
}

func (r *run) quickKey() string {
	if f := r.fold(); f != " " {
		return f
	}
	return "\x00" + strings.TrimSpace(r.text)
}

func (x *dlg) matchesRegex(text string) bool {
	for _, re := range x.regexes {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// jump runs another dialog (goto, then) if its conditions hold.
func (r *run) jump(to *dlg) (outcome, error) {
	r.jumps++
	if r.jumps > MaxJumps {
		return finished, fmt.Errorf("dialog: %s: more than %d jumps answering one message (a goto loop through dialog %q)", r.d.file, MaxJumps, to.name)
	}
	if !r.holds(to.cond) {
		return ranOut, nil
	}
	return r.exec(to, to.steps, 0)
}

// outcome is how a list of steps ended.
type outcome int

const (
	ranOut   outcome = iota // every step ran
	jumped                  // a goto ended the list; the dialog it named ran
	finished                // a question waits, or the conversation was handed over: the message has its answer
)

// exec runs steps from index from, for dialog dl, and says how they ended.
func (r *run) exec(dl *dlg, steps []*step, from int) (outcome, error) {
	for i := from; i < len(steps); i++ {
		s := steps[i]
		if !r.holds(s.cond) {
			continue
		}
		switch s.kind {
		case kText:
			r.respond(brain.Response{Type: brain.TypeText, Text: s.text.render(r), Options: r.options(s.options)})
		case kVariants:
			var n int
			if s.rotate {
				n = r.rotation(s)
			} else {
				n = rand.IntN(len(s.variants))
			}
			r.respond(brain.Response{Type: brain.TypeText, Text: s.variants[n].render(r), Options: r.options(s.options)})
		case kImage, kVideo, kFile:
			r.respond(brain.Response{Type: mediaTypes[s.kind], URL: s.url.render(r), Name: s.name.render(r), Size: s.size})
		case kAudio:
			r.respond(brain.Response{Type: brain.TypeAudio, URL: s.url.render(r)})
		case kWebview:
			r.respond(brain.Response{Type: brain.TypeWebview, URL: s.url.render(r), Name: s.name.render(r), Label: s.label.render(r), Height: s.height})
		case kCarousel:
			r.respond(brain.Response{Type: brain.TypeCarousel, Cards: r.cards(s.cards)})
		case kPause:
			r.respond(brain.Response{Type: brain.TypePause, Duration: s.duration, ShowTyping: s.typing})
		case kHandover:
			r.handover()
			return finished, nil
		case kResolve:
			r.reply.Resolve = true
		case kSet:
			for _, a := range s.set {
				r.set(a.path, a.val.render(r))
			}
		case kRemove:
			for _, p := range s.paths {
				r.remove(p)
			}
		case kAddTags, kRemoveTags:
			r.changeTags(s.kind == kAddTags, s.tags)
		case kAsk:
			r.respond(brain.Response{Type: brain.TypeText, Text: s.text.render(r), Options: r.options(s.options)})
			r.set(pendingPath, map[string]any{"dialog": dl.name, "step": i, "store": s.storeName})
			return finished, nil
		case kGoto:
			out, err := r.jump(s.target)
			if out != finished {
				out = jumped
			}
			return out, err
		case kWebhook:
			if out, err := r.webhook(dl, s.hook); out != ranOut || err != nil {
				return out, err
			}
		}
	}
	return ranOut, nil
}

var mediaTypes = map[stepKind]string{kImage: brain.TypeImage, kVideo: brain.TypeVideo, kFile: brain.TypeFile}

func (r *run) respond(x brain.Response) {
	if r.reply.Responses == nil {
		r.reply.Responses = make([]brain.Response, 0, 4)
	}
	r.reply.Responses = append(r.reply.Responses, x)
}

// handover hands the conversation to humans; whatever comes back to the brain later starts with
// no question pending and no misses counted.
func (r *run) handover() {
	r.respond(brain.Response{Type: brain.TypeHandover})
	r.reply.Handover = true
	r.setCounter(0)
	r.clearPending()
}

func (r *run) options(opts []option) []brain.Option {
	if len(opts) == 0 {
		return nil
	}
	out := make([]brain.Option, len(opts))
	for i, o := range opts {
		out[i] = brain.Option{Label: o.label.render(r), Text: o.text.render(r)}
	}
	return out
}

func (r *run) cards(cs []card) []brain.Card {
	out := make([]brain.Card, len(cs))
	for i, c := range cs {
		out[i] = brain.Card{Title: c.title.render(r), Subtitle: c.subtitle.render(r)}
		if c.media != nil {
			out[i].Media = &brain.Media{Type: c.media.typ, URL: c.media.url.render(r)}
		}
		if c.defaultAction != nil {
			b := r.button(c.defaultAction)
			out[i].DefaultAction = &b
		}
		if len(c.buttons) > 0 {
			out[i].Buttons = make([]brain.Button, len(c.buttons))
			for j := range c.buttons {
				out[i].Buttons[j] = r.button(&c.buttons[j])
			}
		}
	}
	return out
}

func (r *run) button(b *button) brain.Button {
	return brain.Button{Type: b.typ, Label: b.label.render(r), URL: b.url.render(r), Value: b.value.render(r)}
}

// rotation returns the variant this session sees next and moves sys-rotate on.
func (r *run) rotation(s *step) int {
	path := []string{KeyRotate, s.key}
	v, _ := r.lookup(path)
	f, _ := number(v)
	n := 0
	if f >= 0 && f < float64(len(s.variants)) {
		n = int(f)
	}
	r.set(path, (n+1)%len(s.variants))
	return n
}

// changeTags adds or removes tags. The context's tags array is written whole, as a merge patch
// replaces arrays, and only when it changes.
func (r *run) changeTags(add bool, names []tmpl) {
	cur, _ := r.lookup(tagsPath)
	var tags []any
	switch t := cur.(type) {
	case []any:
		tags = t
	case []string:
		for _, s := range t {
			tags = append(tags, s)
		}
	}
	out := make([]any, len(tags), len(tags)+len(names))
	copy(out, tags)
	changed := false
	for _, n := range names {
		name := n.render(r)
		if name == "" {
			continue
		}
		if add {
			if !hasTag(out, name) {
				out = append(out, name)
				changed = true
			}
			continue
		}
		kept := out[:0]
		for _, t := range out {
			if t == name {
				changed = true
			} else {
				kept = append(kept, t)
			}
		}
		out = kept
	}
	if changed {
		r.set(tagsPath, out)
	}
}

func hasTag(tags []any, name string) bool {
	for _, t := range tags {
		if t == name {
			return true
		}
	}
	return false
}

// webhook calls a dialog webhook: its output joins the reply's context changes, its responses
// the reply. When it fails, the step's fallback runs instead; without one, the reply fails and
// the worker sends the integration's fallback reply.
func (r *run) webhook(dl *dlg, h *hook) (outcome, error) {
	client := r.d.HTTP
	if client == nil {
		client = defaultClient
	}
	ep := h.ep
	if ep.BrainID == "" && r.req.Integration != nil {
		ep.BrainID = r.req.Integration.ID // as the http brain says it
	}
	in := moveo.Input{Text: r.text}
	if r.req.Message != nil {
		in.Attachments = r.req.Message.Attachments
	}
	ans, err := moveo.Post(r.ctx, client, ep, r.req.SessionID, r.view(), in)
	if err != nil {
		if r.ctx.Err() != nil {
			return finished, r.ctx.Err() // nobody waits for this answer any more
		}
		if h.fallback == nil {
			// err names the endpoint without its query or credentials (moveo's errors do).
			return finished, fmt.Errorf("dialog %q: %w", dl.name, err)
		}
		if r.d.Log != nil {
			r.d.Log.Warn("dialog: webhook failed; its fallback answers", "file", r.d.file, "dialog", dl.name, "session_id", r.req.SessionID, "err", err)
		}
		return r.exec(dl, h.fallback, 0)
	}
	for k, v := range ans.Output {
		if strings.HasPrefix(k, "sys-") {
			continue // the engine's own state is not a webhook's to change
		}
		if r.patch == nil {
			r.patch = make(map[string]any)
		}
		mergePatch(r.patch, k, v)
	}
	for _, x := range ans.Responses {
		if x.Type == brain.TypeHandover {
			continue // handover below, once, at the end
		}
		r.respond(x)
	}
	if ans.Handover {
		r.handover()
		return finished, nil
	}
	return ranOut, nil
}

// mergePatch merges v into patch[k] as a later patch would: objects merge, anything else
// (null included, which must still delete) replaces.
func mergePatch(patch map[string]any, k string, v any) {
	src, ok := v.(map[string]any)
	dst, ok2 := patch[k].(map[string]any)
	if !ok || !ok2 {
		patch[k] = v
		return
	}
	for kk, vv := range src {
		mergePatch(dst, kk, vv)
	}
}

// view is the context with this message's changes so far, as a webhook is sent it.
func (r *run) view() map[string]any {
	if len(r.patch) == 0 {
		return r.base
	}
	m := copyObject(r.base)
	parley.MergeContext(m, r.patch)
	return m
}

// copyObject copies the objects of a context, so merging into the copy leaves the original
// alone; arrays and scalars are shared, as merging replaces them rather than changing them.
func copyObject(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+4)
	for k, v := range m {
		if o, ok := v.(map[string]any); ok {
			v = copyObject(o)
		}
		out[k] = v
	}
	return out
}

// lookup returns the value at path in the context as this message has changed it so far: the
// patch where it says something, the session's context elsewhere.
func (r *run) lookup(path []string) (any, bool) {
	var base, patch map[string]any = r.base, r.patch
	for i, key := range path {
		last := i == len(path)-1
		pv, inPatch := patch[key]
		bv, inBase := base[key]
		if !inPatch {
			if !inBase {
				return nil, false
			}
			if last {
				return bv, true
			}
			patch = nil
			if base, _ = bv.(map[string]any); base == nil {
				return nil, false
			}
			continue
		}
		sub, isObject := pv.(map[string]any)
		if !isObject { // a value, an array or a null replaced whatever was there
			if !last || pv == nil {
				return nil, false
			}
			return pv, true
		}
		bo, _ := bv.(map[string]any)
		if last {
			m := copyObject(bo)
			parley.MergeContext(m, sub)
			return m, true
		}
		base, patch = bo, sub
	}
	return nil, false
}

// set writes v at path in the reply's context changes.
func (r *run) set(path []string, v any) {
	if r.patch == nil {
		r.patch = make(map[string]any)
	}
	m := r.patch
	for _, k := range path[:len(path)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = make(map[string]any)
			m[k] = sub
		}
		m = sub
	}
	m[path[len(path)-1]] = v
}

// remove deletes the variable at path: a null in the patch if the session has it, otherwise
// just whatever this message set there (a null for a key the session lacks would make the merge
// create its parent objects, empty).
//
// Whether the session has it is judged on the context as this message has changed it so far: a
// variable whose parent this message already replaced (set: {a: x}, then remove: a.b) is gone
// already, and a null there would turn the new value back into an object.
func (r *run) remove(path []string) {
	if _, ok := r.lookup(path); ok {
		if _, inBase := lookupPath(r.base, path); inBase {
			r.set(path, nil)
			return
		}
	}
	unset(r.patch, path)
}

// unset deletes path from a patch, and the objects it leaves empty, which a merge would
// otherwise create in the context. It reports whether m is left empty.
func unset(m map[string]any, path []string) bool {
	if len(path) == 1 {
		delete(m, path[0])
	} else if sub, ok := m[path[0]].(map[string]any); ok && unset(sub, path[1:]) {
		delete(m, path[0])
	}
	return len(m) == 0
}

// lookupPath is parley.Lookup for a path already split.
func lookupPath(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, k := range path {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = o[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (r *run) clearPending() {
	if v, ok := r.lookup(pendingPath); ok && v != nil {
		r.remove(pendingPath)
	}
}

// counter is sys-unknown_counter: the messages in a row that matched nothing.
func (r *run) counter() int {
	v, _ := r.lookup(counterPath)
	f, ok := number(v)
	if !ok || f < 0 || f > 1e9 {
		return 0
	}
	return int(f)
}

// setCounter writes the counter if it changes, so a conversation that goes well writes nothing.
func (r *run) setCounter(n int) {
	if r.counter() != n {
		r.set(counterPath, n)
	}
}
