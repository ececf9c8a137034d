package dialog

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// fold turns text into the form keywords and quick replies are compared in: lower case, accents
// taken off Latin letters, and every run of characters that are neither letters, digits nor
// symbols such as emoji made one space, with a space at each end. "  Héllo, WORLD!" becomes
// " hello world ", so a keyword is a whole-word match with strings.Contains(fold(text),
// fold(keyword)), and users who type "Precos" find "preços".
//
// It is written out by hand, not with golang.org/x/text, because it runs on every message and a
// table lookup per letter is all Latin accents need; other scripts are only lower-cased.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte(' ')
	space := true // the last byte written is a space
	sep := func() {
		if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
				b.WriteByte(c)
				space = false
			case 'A' <= c && c <= 'Z':
				b.WriteByte(c + 'a' - 'A')
				space = false
			default:
				sep()
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r >= 0xC0 && r < 0x180:
			f := latin[r-0xC0]
			if f == "_" {
				sep()
			} else {
				b.WriteString(f)
				space = false
			}
		case unicode.Is(unicode.Mn, r):
			// A combining accent (a decomposed "é" is "e" + U+0301): dropped, the letter stays.
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.So, r):
			b.WriteRune(unicode.ToLower(r))
			space = false
		default:
			sep()
		}
	}
	sep()
	return b.String()
}

// latin maps U+00C0 to U+017F (Latin-1 Supplement letters and Latin Extended-A) to lower-case
// ASCII; "_" marks the two symbols in that range (× and ÷), which separate words.
var latin = expandFold(
	"a6 ae1 c1 e4 i4 d1 n1 o5 _1 o1 u4 y1 th1 ss1 " + // U+00C0 À .. U+00DF ß
		"a6 ae1 c1 e4 i4 d1 n1 o5 _1 o1 u4 y1 th1 y1 " + // U+00E0 à .. U+00FF ÿ
		"a6 c8 d4 e10 g8 h4 i10 ij2 j2 k3 l10 n9 o6 oe2 r6 s8 t6 u12 w2 y3 z6 s1") // U+0100 Ā .. U+017F ſ

// expandFold reads "a6 c8": six "a" then eight "c".
func expandFold(spec string) []string {
	var out []string
	for _, f := range strings.Fields(spec) {
		j := strings.IndexAny(f, "0123456789")
		n := 0
		for _, d := range f[j:] {
			n = n*10 + int(d-'0')
		}
		for range n {
			out = append(out, f[:j])
		}
	}
	return out
}

// quickKey is the form a quick reply is looked up in: its folded words, or, for a text with no
// word at all (an emoji-free "?!"), the trimmed text itself, so that it still matches exactly.
func quickKey(text string) string {
	if f := fold(text); f != " " {
		return f
	}
	return "\x00" + strings.TrimSpace(text)
}
