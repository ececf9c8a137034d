package blob

import (
	"strings"
	"unicode/utf8"
)

// ContentDisposition returns the Content-Disposition a file is served with: inline for images,
// audio and video that browsers show without running anything, attachment for everything else
// (a PDF or a document is saved, not opened in parley's origin).
//
// The filename is given twice (RFC 6266): filename="..." with only printable ASCII, every
// other character, '"' and '\' replaced by '_', for old clients; and, when that lost anything,
// an RFC 5987 filename* parameter with the exact name, UTF-8 and percent-encoded. The header
// is plain ASCII whatever the name, so it can be signed (S3) and cannot split headers.
func ContentDisposition(contentType, filename string) string {
	kind := "attachment"
	if inline(contentType) {
		kind = "inline"
	}
	if filename == "" {
		return kind
	}
	fallback := asciiFallback(filename)
	out := kind + `; filename="` + fallback + `"`
	if fallback != filename {
		out += "; filename*=UTF-8''" + encodeExtValue(filename)
	}
	return out
}

func inline(contentType string) bool {
	typ, _, _ := strings.Cut(contentType, "/")
	switch {
	case contentType == "image/svg+xml": // an image that can hold scripts
		return false
	case typ == "image", typ == "audio", typ == "video":
		return true
	}
	return false
}

// asciiFallback keeps printable ASCII but quotes and backslashes, one '_' per other character.
func asciiFallback(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r >= 0x20 && r < 0x7f && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// encodeExtValue percent-encodes every byte of the UTF-8 name but RFC 5987's attr-char.
// Invalid UTF-8 is first replaced by U+FFFD: the value claims to be UTF-8 and must be.
func encodeExtValue(name string) string {
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "\uFFFD")
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if attrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// attrChar reports whether c is an attr-char of RFC 5987: ALPHA, DIGIT and !#$&+-.^_`|~.
func attrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
