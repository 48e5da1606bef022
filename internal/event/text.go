package event

import (
	"strings"
	"unicode/utf8"
)

// EscapeText returns s with every byte that is not part of a valid UTF-8
// sequence written as \xNN, and whether it changed anything.
func EscapeText(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			const hex = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0x0f])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String(), true
}
