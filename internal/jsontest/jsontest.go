// Package jsontest holds what the tests of parley's hand-written JSON encoders share: they are
// held byte for byte to encoding/json, and these inputs take every path of its string encoding.
package jsontest

import "strings"

// OddStrings are strings whose JSON encoding takes every special case: quotes, backslashes,
// every kind of control character, HTML characters (which parley leaves as they are), invalid
// UTF-8, U+2028 and U+2029, DEL, text beyond the Basic Multilingual Plane, and length.
var OddStrings = []string{
	"", "plain", `say "hi" \ bye`, "<b>&amp;</b>", "\x00\x01\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f",
	"bad \xff\xfe utf-8 \xe2\x28\xa1", "line\u2028para\u2029end", "emoji 🙂 and ümlaut", "\xed\xa0\x80 surrogate",
	strings.Repeat("é", 300),
}
