package dialog

import (
	"regexp"
	"strings"
)

// condOp is what a condition tests.
type condOp int

const (
	opAll condOp = iota // every sub-condition (a list under if)
	opAny               // at least one sub-condition
	opNot               // not the sub-condition
	opEquals
	opNotEquals
	opExists // exists: true, or, with negate, exists: false
	opIn
	opContains
	opMatches
	opAtLeast
	opAtMost
)

// cond is a condition on the context. A nil *cond always holds.
type cond struct {
	op     condOp
	path   []string
	want   scalar   // equals, not_equals, contains, at_least, at_most
	in     []scalar // in
	re     *regexp.Regexp
	exists bool // exists: true or false
	subs   []*cond
}

// scalar is a value a file compares with: its text, and its number when the file wrote a
// number, so that `equals: 3` holds for 3, 3.0 and "3" alike.
type scalar struct {
	s     string
	num   float64
	isNum bool
}

func (c scalar) equal(v any) bool {
	if c.isNum {
		if f, ok := number(v); ok {
			return f == c.num
		}
		return false
	}
	s, ok := scalarString(v)
	return ok && s == c.s
}

// holds evaluates c against the context the run sees.
func (r *run) holds(c *cond) bool {
	if c == nil {
		return true
	}
	switch c.op {
	case opAll:
		for _, s := range c.subs {
			if !r.holds(s) {
				return false
			}
		}
		return true
	case opAny:
		for _, s := range c.subs {
			if r.holds(s) {
				return true
			}
		}
		return false
	case opNot:
		return !r.holds(c.subs[0])
	}
	v, ok := r.lookup(c.path)
	if ok && v == nil {
		ok = false // a null is no value
	}
	switch c.op {
	case opExists:
		return ok == c.exists
	case opEquals:
		return ok && c.want.equal(v)
	case opNotEquals:
		return !ok || !c.want.equal(v)
	case opIn:
		if !ok {
			return false
		}
		for _, w := range c.in {
			if w.equal(v) {
				return true
			}
		}
		return false
	case opContains:
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if c.want.equal(e) {
					return true
				}
			}
		case []string:
			for _, e := range v {
				if e == c.want.s {
					return true
				}
			}
		case string:
			return strings.Contains(v, c.want.s)
		}
		return false
	case opMatches:
		s, isScalar := scalarString(v)
		return ok && isScalar && c.re.MatchString(s)
	case opAtLeast, opAtMost:
		f, isNum := number(v)
		if !ok || !isNum {
			return false
		}
		if c.op == opAtLeast {
			return f >= c.want.num
		}
		return f <= c.want.num
	}
	return false
}
