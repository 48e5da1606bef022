package zeek

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Zeek's JSON logs (LogAscii::use_json) hold one flat object per line, with
// dotted names ("id.orig_h"). Other tools nest them ({"id":{"orig_h":...}});
// both are read, nested objects flattened with dots.

type jkind uint8

const (
	jString jkind = iota + 1
	jNumber
	jBool
	jNull
	jArray
)

// jval is one JSON value: a scalar, or an array of scalars.
type jval struct {
	kind  jkind
	s     string // string (unescaped) or number text
	b     bool
	elems []jval // for arrays; nested containers inside arrays are refused
}

type kv struct {
	key string
	val jval
}

// maxDepth bounds object nesting; attackers control these bytes.
const maxDepth = 16

var errJSONSyntax = errors.New("malformed JSON")

// jsonScanner tokenises one line into flattened key/value pairs. Its slices
// are reused between lines.
type jsonScanner struct {
	s     string
	i     int
	kvs   []kv
	elems []jval
}

func (p *jsonScanner) parse(line string) error {
	p.s, p.i, p.kvs, p.elems = line, 0, p.kvs[:0], p.elems[:0]
	p.ws()
	if err := p.object("", 0); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.s) {
		return fmt.Errorf("%w: trailing data at byte %d", errJSONSyntax, p.i+1)
	}
	return nil
}

func (p *jsonScanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) errAt(what string) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("%w: %s, found end of line", errJSONSyntax, what)
	}
	return fmt.Errorf("%w: %s at byte %d", errJSONSyntax, what, p.i+1)
}

func (p *jsonScanner) object(prefix string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: objects nested deeper than %d", errJSONSyntax, maxDepth)
	}
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return p.errAt("expected '{'")
	}
	p.i++
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		key, err := p.str()
		if err != nil {
			return err
		}
		if prefix != "" {
			key = prefix + "." + key
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.errAt("expected ':'")
		}
		p.i++
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '{' {
			if err := p.object(key, depth+1); err != nil {
				return err
			}
		} else {
			v, err := p.value(true)
			if err != nil {
				return err
			}
			p.kvs = append(p.kvs, kv{key: key, val: v})
		}
		p.ws()
		if p.i >= len(p.s) {
			return p.errAt("expected ',' or '}'")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errAt("expected ',' or '}'")
		}
	}
}

// value reads a scalar, or (when arrays is true) an array of scalars.
func (p *jsonScanner) value(arrays bool) (jval, error) {
	if p.i >= len(p.s) {
		return jval{}, p.errAt("expected a value")
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, err := p.str()
		return jval{kind: jString, s: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		for p.i < len(p.s) {
			c := p.s[p.i]
			if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				p.i++
				continue
			}
			break
		}
		return jval{kind: jNumber, s: p.s[start:p.i]}, nil
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return jval{kind: jBool, b: true}, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return jval{kind: jBool}, nil
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return jval{kind: jNull}, nil
	case c == '[' && arrays:
		p.i++
		start := len(p.elems)
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return jval{kind: jArray, elems: p.elems[start:start:start]}, nil
		}
		for {
			p.ws()
			v, err := p.value(false)
			if err != nil {
				return jval{}, err
			}
			p.elems = append(p.elems, v)
			p.ws()
			if p.i >= len(p.s) {
				return jval{}, p.errAt("expected ',' or ']'")
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == ']' {
				p.i++
				// Later appends may move p.elems; the value keeps its own view.
				return jval{kind: jArray, elems: p.elems[start:len(p.elems):len(p.elems)]}, nil
			}
			return jval{}, p.errAt("expected ',' or ']'")
		}
	}
	return jval{}, p.errAt("unexpected character")
}

// str reads a JSON string at p.i, returning it unescaped. Strings without
// escapes are substrings of the line (no copy).
func (p *jsonScanner) str() (string, error) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", p.errAt("expected '\"'")
	}
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			return s, nil
		}
		if c == '\\' {
			return p.strSlow(start)
		}
		if c < 0x20 {
			return "", p.errAt("control character in string")
		}
		p.i++
	}
	return "", p.errAt("unterminated string")
}

func (p *jsonScanner) strSlow(start int) (string, error) {
	var b strings.Builder
	b.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.errAt("control character in string")
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", p.errAt("unterminated escape")
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errAt("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if strings.HasPrefix(p.s[p.i:], `\u`) {
					p.i += 2
					if lo, ok := p.hex4(); ok {
						r2 = utf16.DecodeRune(r, lo)
					}
				}
				r = r2
			}
			b.WriteRune(r)
		default:
			return "", p.errAt("bad escape")
		}
	}
	return "", p.errAt("unterminated string")
}

func (p *jsonScanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		d, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

// jsonKind decodes flattened JSON objects into records of type R.
type jsonKind[R any] struct {
	spec    *spec[R]
	v       value
	ignored map[string]bool // keys seen that dwell does not store
	seen    []bool          // fields set in the record being decoded, by idx
}

func newJSONKind[R any](s *spec[R]) *jsonKind[R] {
	return &jsonKind[R]{spec: s, ignored: map[string]bool{}}
}

func (k *jsonKind[R]) decode(kvs []kv, b *event.Batch, src event.Source) error {
	r := k.spec.add(b)
	*k.spec.src(r) = src
	if len(k.seen) < len(k.spec.fields) {
		k.seen = make([]bool, len(k.spec.fields))
	}
	clear(k.seen)
	for i := range kvs {
		e := &kvs[i]
		f, ok := k.spec.fields[e.key]
		if !ok {
			if !strings.HasPrefix(e.key, "_") && !strings.HasPrefix(e.key, "@") && !k.ignored[e.key] && len(k.ignored) < 64 {
				k.ignored[e.key] = true
			}
			continue
		}
		// The last of two values would win, silently: a line that names a
		// field twice (or under both spellings) is malformed.
		if k.seen[f.idx] {
			k.spec.drop(b)
			return fmt.Errorf("field %s appears twice", e.key)
		}
		k.seen[f.idx] = true
		if e.val.kind == jNull {
			continue
		}
		if err := k.parse(f.typ, &e.val); err != nil {
			k.spec.drop(b)
			return fmt.Errorf("field %s: %w", e.key, err)
		}
		f.set(r, &k.v)
	}
	if !k.spec.hasTS(r) {
		k.spec.drop(b)
		return fmt.Errorf("field ts is missing")
	}
	return nil
}

func (k *jsonKind[R]) parse(t ftype, j *jval) error {
	v := &k.v
	var err error
	switch t {
	case fTime:
		v.t, err = jsonTime(j)
	case fString:
		v.s, err = jsonString(j)
	case fAddr:
		var s string
		if s, err = jsonString(j); err == nil {
			v.a, err = parseAddr(s)
		}
	case fPort:
		v.u, err = jsonNumber(j, parsePort)
	case fCount:
		v.u, err = jsonNumber(j, parseCount)
	case fInterval:
		v.d, err = jsonInterval(j)
	case fBool:
		switch j.kind {
		case jBool:
			v.b = j.b
		case jString:
			v.b, err = parseBool(j.s)
		default:
			err = fmt.Errorf("not a bool")
		}
	case fStrings:
		v.ss, err = jsonArray(j, jsonString)
	case fAddrs:
		v.as, err = jsonArray(j, func(e *jval) (netip.Addr, error) {
			s, err := jsonString(e)
			if err != nil {
				return netip.Addr{}, err
			}
			return parseAddr(s)
		})
	case fIntervals:
		v.ds, err = jsonArray(j, jsonInterval)
	}
	return err
}

func jsonString(j *jval) (string, error) {
	switch j.kind {
	case jString, jNumber:
		return j.s, nil
	case jBool:
		if j.b {
			return "T", nil
		}
		return "F", nil
	}
	return "", fmt.Errorf("not a string")
}

func jsonNumber(j *jval, parse func(string) (uint64, error)) (uint64, error) {
	if j.kind != jNumber && j.kind != jString {
		return 0, fmt.Errorf("not a number")
	}
	n, err := parse(j.s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", err, clip(j.s))
	}
	return n, nil
}

func jsonInterval(j *jval) (time.Duration, error) {
	if j.kind != jNumber && j.kind != jString {
		return 0, fmt.Errorf("not a number")
	}
	d, err := parseInterval(j.s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", err, clip(j.s))
	}
	return d, nil
}

// jsonTime reads epoch seconds (a number or numeric string) or an ISO 8601
// time (Zeek's LogAscii::json_timestamps = JSON::TS_ISO8601).
func jsonTime(j *jval) (time.Time, error) {
	switch j.kind {
	case jNumber:
		return parseEpoch(j.s)
	case jString:
		t, err := parseTime(j.s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %q", err, clip(j.s))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("not a time")
}

func jsonArray[T any](j *jval, elem func(*jval) (T, error)) ([]T, error) {
	if j.kind != jArray {
		// A scalar where a list is expected: a one-element list.
		v, err := elem(j)
		if err != nil {
			return nil, err
		}
		return []T{v}, nil
	}
	out := make([]T, 0, len(j.elems))
	for i := range j.elems {
		v, err := elem(&j.elems[i])
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i+1, err)
		}
		out = append(out, v)
	}
	return out, nil
}
