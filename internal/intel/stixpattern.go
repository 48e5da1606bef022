package intel

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The STIX 2.1 patterning language (STIX 2.1 part 9 and its ANTLR
// grammar), parsed by recursive descent into a tree:
//
//	pattern      = obsExprs EOF
//	obsExprs     = obsOr ("FOLLOWEDBY" obsOr)*
//	obsOr        = obsAnd ("OR" obsAnd)*
//	obsAnd       = obsExpr ("AND" obsExpr)*
//	obsExpr      = ("[" cmpOr "]" | "(" obsExprs ")") qualifier*
//	qualifier    = "START" ts "STOP" ts | "WITHIN" number "SECONDS" | "REPEATS" int "TIMES"
//	cmpOr        = cmpAnd ("OR" cmpAnd)*
//	cmpAnd       = test ("AND" test)*
//	test         = "(" cmpOr ")" | "EXISTS" path | path ["NOT"] op value
//	op           = "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "IN" | "LIKE" | "MATCHES" | "ISSUBSET" | "ISSUPERSET"
//	path         = type ":" step ("." step | "[" (int | "*") "]")*
//
// Literals: 'strings' (with \' and \\), integers, floats, true/false,
// b'base64', h'hex' and t'RFC 3339 timestamps'.

// ObsExpr is an observation expression.
type ObsExpr interface{ obs() }

// ObsOp joins two observation expressions with AND, OR or FOLLOWEDBY.
type ObsOp struct {
	Op   string
	L, R ObsExpr
}

// Observation is one bracketed comparison expression, or a parenthesised
// group, with its qualifiers.
type Observation struct {
	Cmp        CmpExpr // nil for a group
	Group      ObsExpr // the parenthesised expression, for a group
	Qualifiers []string
}

func (*ObsOp) obs()       {}
func (*Observation) obs() {}

// CmpExpr is a comparison expression inside an observation.
type CmpExpr interface{ cmp() }

// CmpOp joins two comparison expressions with AND or OR.
type CmpOp struct {
	Op   string
	L, R CmpExpr
}

// Comparison tests one object property.
type Comparison struct {
	Path    Path
	Negated bool
	Op      string    // "=", "!=", "<", "<=", ">", ">=", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS"
	Values  []Literal // one, or the set of IN
}

func (*CmpOp) cmp()      {}
func (*Comparison) cmp() {}

// Path is an object path: "network-traffic:dst_ref.value" is Type
// "network-traffic" and Steps ["dst_ref", "value"]; list indexes are
// steps "[0]" or "[*]".
type Path struct {
	Type  string
	Steps []string
}

func (p Path) String() string {
	var b strings.Builder
	b.WriteString(p.Type)
	b.WriteByte(':')
	for i, s := range p.Steps {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// Literal is a constant of the language.
type Literal struct {
	Kind string // "string", "int", "float", "bool", "binary", "hex", "timestamp"
	Text string // the string value, or the literal's text
}

// ParsePattern parses a STIX 2.1 pattern.
func ParsePattern(s string) (ObsExpr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.obsExprs(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s after the pattern", t)
	}
	return e, nil
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tPunct
	tIdent
	tString
	tNumber
	tTyped // b'...', h'...', t'...'
)

type token struct {
	kind tokKind
	text string // punctuation, identifier, number text; string value
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of pattern"
	case tString:
		return fmt.Sprintf("'%s'", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// lex splits a pattern into tokens.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			v, n, err := lexString(s[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			out = append(out, token{tString, v, i})
			i += n
		case (c == 'b' || c == 'h' || c == 't') && i+1 < len(s) && s[i+1] == '\'':
			v, n, err := lexString(s[i+1:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			out = append(out, token{tTyped, string(c) + v, i})
			i += n + 1
		case strings.ContainsRune("[]():,.*", rune(c)):
			out = append(out, token{tPunct, string(c), i})
			i++
		case c == '!' || c == '<' || c == '>' || c == '=':
			n := 1
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				n = 2
			}
			op := s[i : i+n]
			if op == "!" {
				return nil, fmt.Errorf("at %d: '!' without '='", i)
			}
			out = append(out, token{tPunct, op, i})
			i += n
		case c == '-' || c == '+' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				((s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E'))) {
				j++
			}
			if j == i+1 && (c == '-' || c == '+') {
				return nil, fmt.Errorf("at %d: %q is not a number", i, string(c))
			}
			out = append(out, token{tNumber, s[i:j], i})
			i = j
		case c == '_' || c < 0x80 && unicode.IsLetter(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '-' || s[j] < 0x80 && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			out = append(out, token{tIdent, s[i:j], i})
			i = j
		default:
			return nil, fmt.Errorf("at %d: unexpected character %q", i, rune(c))
		}
	}
	return append(out, token{tEOF, "", len(s)}), nil
}

// lexString reads a quoted string at the start of s; it returns the value
// and the length read.
func lexString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) || (s[i+1] != '\'' && s[i+1] != '\\') {
				return "", 0, fmt.Errorf("bad escape in a string: only \\' and \\\\ are allowed")
			}
			b.WriteByte(s[i+1])
			i++
		case '\'':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// isComparison reports whether s is a comparison operator symbol.
func isComparison(s string) bool {
	switch s {
	case "=", "!=", "<>", "<", "<=", ">", ">=":
		return true
	}
	return false
}

type parser struct {
	toks []token
	i    int
}

// maxDepth bounds nesting, so hostile patterns cannot exhaust the stack.
const maxDepth = 200

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("at %d: %s", t.pos, fmt.Sprintf(format, args...))
}

func (p *parser) keyword(words ...string) (string, bool) {
	t := p.peek()
	if t.kind != tIdent {
		return "", false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			p.i++
			return w, true
		}
	}
	return "", false
}

func (p *parser) punct(s string) bool {
	if t := p.peek(); t.kind == tPunct && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(s string) error {
	if !p.punct(s) {
		return p.errorf(p.peek(), "want %q, found %s", s, p.peek())
	}
	return nil
}

func (p *parser) obsExprs(depth int) (ObsExpr, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.peek(), "nested too deeply")
	}
	return p.binaryObs(depth, []string{"FOLLOWEDBY", "OR", "AND"})
}

// binaryObs parses left-associative chains, lowest precedence first.
func (p *parser) binaryObs(depth int, ops []string) (ObsExpr, error) {
	if len(ops) == 0 {
		return p.obsExpr(depth)
	}
	l, err := p.binaryObs(depth, ops[1:])
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword(ops[0]); !ok {
			return l, nil
		}
		r, err := p.binaryObs(depth, ops[1:])
		if err != nil {
			return nil, err
		}
		l = &ObsOp{Op: ops[0], L: l, R: r}
	}
}

func (p *parser) obsExpr(depth int) (ObsExpr, error) {
	o := &Observation{}
	switch {
	case p.punct("["):
		c, err := p.cmpOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
		o.Cmp = c
	case p.punct("("):
		g, err := p.obsExprs(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		o.Group = g
	default:
		return nil, p.errorf(p.peek(), "want '[' or '(', found %s", p.peek())
	}
	for {
		q, ok, err := p.qualifier()
		if err != nil {
			return nil, err
		}
		if !ok {
			return o, nil
		}
		o.Qualifiers = append(o.Qualifiers, q)
	}
}

func (p *parser) qualifier() (string, bool, error) {
	switch w, _ := p.keyword("START", "WITHIN", "REPEATS"); w {
	case "START":
		a := p.next()
		if _, ok := p.keyword("STOP"); !ok || a.kind != tTyped || a.text[0] != 't' {
			return "", false, p.errorf(a, "want START t'...' STOP t'...'")
		}
		b := p.next()
		if b.kind != tTyped || b.text[0] != 't' {
			return "", false, p.errorf(b, "want a timestamp after STOP")
		}
		for _, t := range []token{a, b} {
			if _, err := time.Parse(time.RFC3339Nano, t.text[1:]); err != nil {
				return "", false, p.errorf(t, "%q is not an RFC 3339 timestamp", t.text[1:])
			}
		}
		return "START " + a.text[1:] + " STOP " + b.text[1:], true, nil
	case "WITHIN":
		n := p.next()
		if _, ok := p.keyword("SECONDS"); !ok || n.kind != tNumber {
			return "", false, p.errorf(n, "want WITHIN <number> SECONDS")
		}
		return "WITHIN " + n.text + " SECONDS", true, nil
	case "REPEATS":
		n := p.next()
		if _, ok := p.keyword("TIMES"); !ok || n.kind != tNumber {
			return "", false, p.errorf(n, "want REPEATS <int> TIMES")
		}
		return "REPEATS " + n.text + " TIMES", true, nil
	}
	return "", false, nil
}

func (p *parser) cmpOr(depth int) (CmpExpr, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.peek(), "nested too deeply")
	}
	l, err := p.cmpAnd(depth)
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("OR"); !ok {
			return l, nil
		}
		r, err := p.cmpAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &CmpOp{Op: "OR", L: l, R: r}
	}
}

func (p *parser) cmpAnd(depth int) (CmpExpr, error) {
	l, err := p.test(depth)
	if err != nil {
		return nil, err
	}
	for {
		if _, ok := p.keyword("AND"); !ok {
			return l, nil
		}
		r, err := p.test(depth)
		if err != nil {
			return nil, err
		}
		l = &CmpOp{Op: "AND", L: l, R: r}
	}
}

func (p *parser) test(depth int) (CmpExpr, error) {
	if p.punct("(") {
		c, err := p.cmpOr(depth + 1)
		if err != nil {
			return nil, err
		}
		return c, p.expect(")")
	}
	if _, ok := p.keyword("EXISTS"); ok {
		path, err := p.path()
		return &Comparison{Path: path, Op: "EXISTS"}, err
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	c := &Comparison{Path: path}
	if _, ok := p.keyword("NOT"); ok {
		c.Negated = true
	}
	t := p.next()
	switch {
	case t.kind == tPunct && isComparison(t.text):
		c.Op = t.text
		if c.Op == "<>" {
			c.Op = "!="
		}
		v, err := p.literal()
		if err != nil {
			return nil, err
		}
		c.Values = []Literal{v}
	case t.kind == tIdent:
		op := strings.ToUpper(t.text)
		switch op {
		case "IN":
			if err := p.expect("("); err != nil {
				return nil, err
			}
			for {
				v, err := p.literal()
				if err != nil {
					return nil, err
				}
				c.Values = append(c.Values, v)
				if !p.punct(",") {
					break
				}
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
		case "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET":
			v := p.next()
			if v.kind != tString {
				return nil, p.errorf(v, "%s wants a string, found %s", op, v)
			}
			c.Values = []Literal{{Kind: "string", Text: v.text}}
		default:
			return nil, p.errorf(t, "%s is not a comparison operator", t)
		}
		c.Op = op
	default:
		return nil, p.errorf(t, "want a comparison operator after %s, found %s", path, t)
	}
	return c, nil
}

func (p *parser) path() (Path, error) {
	t := p.next()
	if t.kind != tIdent {
		return Path{}, p.errorf(t, "want an object type, found %s", t)
	}
	path := Path{Type: strings.ToLower(t.text)}
	if err := p.expect(":"); err != nil {
		return Path{}, err
	}
	first := true
	for {
		switch {
		case first:
			s := p.next()
			if s.kind != tIdent && s.kind != tString {
				return Path{}, p.errorf(s, "want a property name, found %s", s)
			}
			path.Steps = append(path.Steps, s.text)
			first = false
		case p.punct("."):
			s := p.next()
			if s.kind != tIdent && s.kind != tString {
				return Path{}, p.errorf(s, "want a property name after '.', found %s", s)
			}
			path.Steps = append(path.Steps, s.text)
		case p.punct("["):
			s := p.next()
			if (s.kind != tPunct || s.text != "*") && s.kind != tNumber {
				return Path{}, p.errorf(s, "want an index or '*', found %s", s)
			}
			if err := p.expect("]"); err != nil {
				return Path{}, err
			}
			path.Steps = append(path.Steps, "["+s.text+"]")
		default:
			return path, nil
		}
	}
}

func (p *parser) literal() (Literal, error) {
	t := p.next()
	switch t.kind {
	case tString:
		return Literal{Kind: "string", Text: t.text}, nil
	case tNumber:
		if _, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return Literal{Kind: "int", Text: t.text}, nil
		}
		if _, err := strconv.ParseFloat(t.text, 64); err == nil {
			return Literal{Kind: "float", Text: t.text}, nil
		}
		return Literal{}, p.errorf(t, "%q is not a number", t.text)
	case tTyped:
		kind := map[byte]string{'b': "binary", 'h': "hex", 't': "timestamp"}[t.text[0]]
		if kind == "timestamp" {
			if _, err := time.Parse(time.RFC3339Nano, t.text[1:]); err != nil {
				return Literal{}, p.errorf(t, "%q is not an RFC 3339 timestamp", t.text[1:])
			}
		}
		return Literal{Kind: kind, Text: t.text[1:]}, nil
	case tIdent:
		if strings.EqualFold(t.text, "true") || strings.EqualFold(t.text, "false") {
			return Literal{Kind: "bool", Text: strings.ToLower(t.text)}, nil
		}
	}
	return Literal{}, p.errorf(t, "want a value, found %s", t)
}
