package sigma

import (
	"strings"
	"unicode/utf8"
)

// pattern is a compiled Sigma string: literal text with the wildcards *
// (any run of characters) and ? (one character), matched case-insensitive
// unless the rule says cased.
type pattern struct {
	toks []tok
	fold bool
	// Fast paths for the usual shapes.
	shape shape
	lit   string // the one literal of an exact, prefix, suffix or contains pattern
}

type tok struct {
	lit  string
	star bool // '*'
	one  bool // '?'
}

type shape uint8

const (
	shapeGlob shape = iota
	shapeExact
	shapePrefix
	shapeSuffix
	shapeContains
	shapeAny // "*": any value
)

// compilePattern reads v (with Sigma's escapes when escaped) into a
// pattern for the match kind (contains, startswith, endswith or exact).
func compilePattern(v string, escaped bool, kind string, fold bool) pattern {
	var toks []tok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			s := lit.String()
			if fold {
				s = strings.ToLower(s)
			}
			toks = append(toks, tok{lit: s})
			lit.Reset()
		}
	}
	if kind == "contains" || kind == "endswith" {
		toks = append(toks, tok{star: true})
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped && c == '\\' && i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\'):
			i++
			lit.WriteByte(v[i])
		case escaped && c == '*':
			flush()
			if len(toks) == 0 || !toks[len(toks)-1].star {
				toks = append(toks, tok{star: true})
			}
		case escaped && c == '?':
			flush()
			toks = append(toks, tok{one: true})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if (kind == "contains" || kind == "startswith") && (len(toks) == 0 || !toks[len(toks)-1].star) {
		toks = append(toks, tok{star: true})
	}
	p := pattern{toks: toks, fold: fold}
	switch {
	case len(toks) == 0:
		p.shape = shapeExact
	case len(toks) == 1 && toks[0].star:
		p.shape = shapeAny
	case len(toks) == 1 && toks[0].lit != "":
		p.shape, p.lit = shapeExact, toks[0].lit
	case len(toks) == 2 && toks[0].lit != "" && toks[1].star:
		p.shape, p.lit = shapePrefix, toks[0].lit
	case len(toks) == 2 && toks[0].star && toks[1].lit != "":
		p.shape, p.lit = shapeSuffix, toks[1].lit
	case len(toks) == 3 && toks[0].star && toks[1].lit != "" && toks[2].star:
		p.shape, p.lit = shapeContains, toks[1].lit
	}
	return p
}

// match judges v, which the caller has put in lower case when p.fold.
func (p *pattern) match(v string) bool {
	switch p.shape {
	case shapeExact:
		return v == p.lit
	case shapePrefix:
		return strings.HasPrefix(v, p.lit)
	case shapeSuffix:
		return strings.HasSuffix(v, p.lit)
	case shapeContains:
		return strings.Contains(v, p.lit)
	case shapeAny:
		return true
	}
	return glob(p.toks, v)
}

// lower returns s in lower case, without allocating when it already is.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return strings.ToLower(s)
		}
	}
	return s
}

// glob matches toks against v, backtracking to the last star.
func glob(toks []tok, v string) bool {
	ti, vi := 0, 0
	starT, starV := -1, 0
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch {
			case t.star:
				starT, starV = ti, vi
				ti++
				continue
			case t.one:
				if vi < len(v) {
					_, n := utf8.DecodeRuneInString(v[vi:])
					vi += n
					ti++
					continue
				}
			default:
				if strings.HasPrefix(v[vi:], t.lit) {
					vi += len(t.lit)
					ti++
					continue
				}
			}
		} else if vi == len(v) {
			return true
		}
		if starT < 0 || starV >= len(v) {
			return false
		}
		_, n := utf8.DecodeRuneInString(v[starV:])
		starV += n
		ti, vi = starT+1, starV
	}
}
