package scenario

import (
	"strings"
	"testing"
)

// naiveEscape is the byte-by-byte definition appendEscaped must match.
func naiveEscape(s string, inSet bool) string {
	if s == "-" {
		return `\x2d`
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || (inSet && c == ',') || (c == '\\' && i+1 < len(s) && s[i+1] == 'x') {
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"", "-", "plain text here", `a\xb`, "tab\there", "comma,sep", "héllo wörld", "\x7f\x80\xff", `ends\`, `\\x`, "12345678\x01"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, inSet bool) {
		if got, want := string(appendEscaped(nil, s, inSet)), naiveEscape(s, inSet); got != want {
			t.Fatalf("appendEscaped(%q, %v) = %q, want %q", s, inSet, got, want)
		}
	})
}

func TestPlain8(t *testing.T) {
	for c := range 256 {
		w := uint64(0x6161616161616161)&^0xff | uint64(c)
		want := c >= 0x20 && c < 0x7f && c != '\\'
		if got := plain8(w); got != want {
			t.Errorf("plain8 with byte %#x = %v, want %v", c, got, want)
		}
		w = uint64(0x6161616161616161)&^(0xff<<40) | uint64(c)<<40
		if got := plain8(w); got != want {
			t.Errorf("plain8 with byte %#x at 5 = %v, want %v", c, got, want)
		}
	}
}
