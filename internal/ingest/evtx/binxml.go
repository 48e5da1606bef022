package evtx

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Binary XML tokens ([MS-EVEN6] 3.1.4.7; libevtx's "Token types"). The 0x40
// bit on some tokens says that more of the same kind follows.
const (
	tokEOF           = 0x00
	tokOpenStart     = 0x01
	tokCloseStart    = 0x02
	tokCloseEmpty    = 0x03
	tokEnd           = 0x04
	tokValue         = 0x05
	tokAttribute     = 0x06
	tokCDATA         = 0x07
	tokCharRef       = 0x08
	tokEntityRef     = 0x09
	tokPITarget      = 0x0a
	tokPIData        = 0x0b
	tokTemplate      = 0x0c
	tokSubst         = 0x0d
	tokOptionalSubst = 0x0e
	tokFragment      = 0x0f
	tokMore          = 0x40
)

// Limits that keep a hostile record from costing more than a real one.
const (
	maxDepth     = 48      // nesting of elements, templates and Binary XML values
	maxValues    = 4096    // substitution values of one template instance
	maxRendered  = 1 << 16 // elements, attributes and text pieces one record may expand to
	maxTextBytes = 8 << 20 // characters one record may expand to
	// maxChunkWork bounds the nodes rendered for one chunk's records,
	// carved ones included: a chunk of real records takes some 10^4.
	maxChunkWork = 1 << 21
)

var errTruncated = errors.New("binary XML runs past its end")

// nodeKind says what a node of a parsed fragment is.
type nodeKind uint8

const (
	nElem     nodeKind = iota // an element: name, attributes, children
	nText                     // literal character data
	nSubst                    // a substitution: the template instance's value sub
	nInstance                 // a template instance with its own values
)

// node is one piece of parsed Binary XML. A template's nodes are parsed
// once per chunk and rendered once per record with that record's values.
type node struct {
	kind     nodeKind
	optional bool   // nSubst: an optional substitution (NULL drops the element)
	vtype    byte   // nSubst: the value type the template declares
	sub      uint16 // nSubst: index of the value
	name     string // nElem
	text     string // nText
	attrs    []attr // nElem
	kids     []node // nElem
	inst     *instance
}

// attr is one attribute of an element; its value is a list of nText and
// nSubst nodes.
type attr struct {
	name  string
	value []node
}

// template is a parsed template definition.
type template struct {
	nodes []node
}

// instance is a template with the values of one use of it.
type instance struct {
	tmpl   *template
	values []value
}

// value is one substitution value: its type and its bytes in the chunk.
type value struct {
	typ  byte
	off  int // offset of the data in the chunk
	size int
}

// parser reads the Binary XML of one chunk. Names and templates are shared
// by the chunk's records, so it caches them by their offset in the chunk.
type parser struct {
	buf   []byte // the whole chunk
	names map[uint32]string
	tmpls map[uint32]*template
	// busy marks templates being parsed, so that a definition that refers
	// to itself is an error instead of an endless recursion.
	busy map[uint32]bool
	// vals caches parsed Binary XML substitution values by offset: a
	// template may use one value many times.
	vals  map[int]parsedValue
	depth int
}

// parsedValue is a parsed Binary XML value, or why it could not be parsed.
type parsedValue struct {
	nodes []node
	err   error
}

// binXMLValue returns the nodes of a Binary XML substitution value.
func (p *parser) binXMLValue(v value) ([]node, error) {
	if pv, ok := p.vals[v.off]; ok {
		return pv.nodes, pv.err
	}
	c := cursor{pos: v.off, end: v.off + v.size}
	nodes, err := p.fragment(&c, true)
	p.vals[v.off] = parsedValue{nodes, err}
	return nodes, err
}

func (p *parser) reset(buf []byte) {
	p.buf = buf
	clear(p.names)
	clear(p.tmpls)
	clear(p.busy)
	clear(p.vals)
	p.depth = 0
	if p.names == nil {
		p.names = make(map[uint32]string, 64)
		p.tmpls = make(map[uint32]*template, 32)
		p.busy = make(map[uint32]bool)
		p.vals = make(map[int]parsedValue)
	}
}

// cursor is a read position in the chunk with the end of the current
// structure.
type cursor struct {
	pos, end int
}

func (c *cursor) need(n int) error {
	if n < 0 || c.pos+n > c.end {
		return fmt.Errorf("at chunk offset %#x: %w", c.pos, errTruncated)
	}
	return nil
}

func (p *parser) u8(c *cursor) (byte, error) {
	if err := c.need(1); err != nil {
		return 0, err
	}
	v := p.buf[c.pos]
	c.pos++
	return v, nil
}

func (p *parser) u16(c *cursor) (uint16, error) {
	if err := c.need(2); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint16(p.buf[c.pos:])
	c.pos += 2
	return v, nil
}

func (p *parser) u32(c *cursor) (uint32, error) {
	if err := c.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(p.buf[c.pos:])
	c.pos += 4
	return v, nil
}

func (p *parser) peek(c *cursor) (byte, error) {
	if err := c.need(1); err != nil {
		return 0, err
	}
	return p.buf[c.pos], nil
}

// name reads a name reference: the offset of a name structure in the
// chunk. When the structure follows the reference (its first use in the
// chunk), the cursor moves past it.
func (p *parser) name(c *cursor) (string, error) {
	off, err := p.u32(c)
	if err != nil {
		return "", err
	}
	inline := int(off) == c.pos
	s, ok := p.names[off]
	if !ok || inline {
		var n int
		s, n, err = p.readName(int(off))
		if err != nil {
			return "", err
		}
		p.names[off] = s
		if inline {
			if err := c.need(n); err != nil {
				return "", err
			}
			c.pos += n
		}
	}
	return s, nil
}

// readName decodes the name structure at off and returns it and its size:
// next-name offset (4), hash (2), length in characters (2), UTF-16LE text
// and a terminating NUL.
func (p *parser) readName(off int) (string, int, error) {
	if off < chunkHeaderSize || off+8 > len(p.buf) {
		return "", 0, fmt.Errorf("name at chunk offset %#x is outside the chunk", off)
	}
	n := int(binary.LittleEndian.Uint16(p.buf[off+6:]))
	size := 8 + 2*n + 2
	if off+size > len(p.buf) {
		return "", 0, fmt.Errorf("name at chunk offset %#x runs past the chunk", off)
	}
	return utf16String(p.buf[off+8 : off+8+2*n]), size, nil
}

// fragment parses a sequence of fragments and elements up to an EOF token
// or the end of c. inValue is true inside a Binary XML substitution value,
// where element starts carry no dependency identifier.
func (p *parser) fragment(c *cursor, inValue bool) ([]node, error) {
	if p.depth++; p.depth > maxDepth {
		p.depth--
		return nil, errors.New("binary XML nested too deeply")
	}
	defer func() { p.depth-- }()
	var out []node
	for c.pos < c.end {
		tok, err := p.peek(c)
		if err != nil {
			return out, err
		}
		switch tok &^ tokMore {
		case tokEOF:
			c.pos++
			return out, nil
		case tokFragment:
			if err := c.need(4); err != nil {
				return out, err
			}
			c.pos += 4
		case tokOpenStart:
			n, err := p.element(c, inValue)
			if err != nil {
				return out, err
			}
			out = append(out, n)
		case tokTemplate:
			n, err := p.instance(c)
			if err != nil {
				return out, err
			}
			out = append(out, n)
		case tokPITarget, tokPIData:
			if err := p.pi(c); err != nil {
				return out, err
			}
		default:
			return out, fmt.Errorf("unexpected token %#02x at chunk offset %#x", tok, c.pos)
		}
	}
	return out, nil
}

// element parses an element: its start, attributes and content.
func (p *parser) element(c *cursor, inValue bool) (node, error) {
	tok, _ := p.u8(c)
	// An element start has a dependency identifier, except inside Binary
	// XML values; some writers (forwarded events) leave it out elsewhere
	// too, so the layout whose name reference makes sense wins.
	withDep := !inValue
	if p.plausibleStart(c, c.pos+2) != withDep && p.plausibleStart(c, c.pos) == withDep {
		withDep = !withDep
	}
	if withDep {
		if _, err := p.u16(c); err != nil { // dependency identifier
			return node{}, err
		}
	}
	size, err := p.u32(c)
	if err != nil {
		return node{}, err
	}
	if int(size) > c.end-c.pos {
		return node{}, fmt.Errorf("element at chunk offset %#x claims %d bytes, %d remain", c.pos, size, c.end-c.pos)
	}
	n := node{kind: nElem}
	if n.name, err = p.name(c); err != nil {
		return n, err
	}
	if tok&tokMore != 0 {
		if _, err := p.u32(c); err != nil { // attribute list size
			return n, err
		}
		for {
			t, err := p.peek(c)
			if err != nil {
				return n, err
			}
			if t&^tokMore != tokAttribute {
				break
			}
			c.pos++
			a := attr{}
			if a.name, err = p.name(c); err != nil {
				return n, err
			}
			if a.value, err = p.content(c, true); err != nil {
				return n, err
			}
			n.attrs = append(n.attrs, a)
			if t&tokMore == 0 {
				break
			}
		}
	}
	t, err := p.u8(c)
	if err != nil {
		return n, err
	}
	switch t {
	case tokCloseEmpty:
		return n, nil
	case tokCloseStart:
	default:
		return n, fmt.Errorf("element %q: unexpected token %#02x at chunk offset %#x", n.name, t, c.pos-1)
	}
	for {
		t, err := p.peek(c)
		if err != nil {
			return n, err
		}
		switch t &^ tokMore {
		case tokEnd:
			c.pos++
			return n, nil
		case tokOpenStart:
			if p.depth++; p.depth > maxDepth {
				p.depth--
				return n, errors.New("binary XML nested too deeply")
			}
			k, err := p.element(c, inValue)
			p.depth--
			if err != nil {
				return n, err
			}
			n.kids = append(n.kids, k)
		case tokTemplate:
			k, err := p.instance(c)
			if err != nil {
				return n, err
			}
			n.kids = append(n.kids, k)
		case tokPITarget, tokPIData:
			if err := p.pi(c); err != nil {
				return n, err
			}
		case tokValue, tokSubst, tokOptionalSubst, tokCharRef, tokEntityRef, tokCDATA:
			ks, err := p.content(c, false)
			if err != nil {
				return n, err
			}
			n.kids = append(n.kids, ks...)
		default:
			return n, fmt.Errorf("element %q: unexpected token %#02x at chunk offset %#x", n.name, t, c.pos)
		}
	}
}

// plausibleStart reports whether an element's data size and name
// reference at chunk offset at fit: the size within c and the name either
// inline or one already read.
func (p *parser) plausibleStart(c *cursor, at int) bool {
	if at+8 > c.end {
		return false
	}
	size := int(binary.LittleEndian.Uint32(p.buf[at:]))
	off := binary.LittleEndian.Uint32(p.buf[at+4:])
	if size > c.end-at-4 {
		return false
	}
	if int(off) == at+8 {
		return true
	}
	_, known := p.names[off]
	return known
}

// content parses character data: value text, substitutions, character and
// entity references, CDATA. In an attribute (inAttr) it stops at the first
// token that is not a value; in element content at the first that is not
// character data.
func (p *parser) content(c *cursor, inAttr bool) ([]node, error) {
	var out []node
	for c.pos < c.end {
		t := p.buf[c.pos]
		switch t &^ tokMore {
		case tokValue:
			c.pos++
			typ, err := p.u8(c)
			if err != nil {
				return out, err
			}
			if typ != typeString {
				return out, fmt.Errorf("value text of type %#02x at chunk offset %#x", typ, c.pos-1)
			}
			s, err := p.text(c)
			if err != nil {
				return out, err
			}
			out = append(out, node{kind: nText, text: s})
		case tokSubst, tokOptionalSubst:
			c.pos++
			id, err := p.u16(c)
			if err != nil {
				return out, err
			}
			typ, err := p.u8(c)
			if err != nil {
				return out, err
			}
			out = append(out, node{kind: nSubst, sub: id, vtype: typ, optional: t == tokOptionalSubst})
		case tokCharRef:
			c.pos++
			v, err := p.u16(c)
			if err != nil {
				return out, err
			}
			out = append(out, node{kind: nText, text: string(rune(v))})
		case tokEntityRef:
			c.pos++
			name, err := p.name(c)
			if err != nil {
				return out, err
			}
			out = append(out, node{kind: nText, text: entity(name)})
		case tokCDATA:
			if inAttr {
				return out, nil
			}
			c.pos++
			s, err := p.text(c)
			if err != nil {
				return out, err
			}
			out = append(out, node{kind: nText, text: s})
		default:
			return out, nil
		}
	}
	return out, nil
}

// text reads a length-prefixed UTF-16LE string.
func (p *parser) text(c *cursor) (string, error) {
	n, err := p.u16(c)
	if err != nil {
		return "", err
	}
	if err := c.need(2 * int(n)); err != nil {
		return "", err
	}
	s := utf16String(p.buf[c.pos : c.pos+2*int(n)])
	c.pos += 2 * int(n)
	return s, nil
}

// pi skips a processing instruction's target or data.
func (p *parser) pi(c *cursor) error {
	t, _ := p.u8(c)
	if t == tokPITarget {
		_, err := p.name(c)
		return err
	}
	_, err := p.text(c)
	return err
}

// instance parses a template instance: the reference to (or the inline
// definition of) its template, then its values.
func (p *parser) instance(c *cursor) (node, error) {
	if err := c.need(10); err != nil {
		return node{}, err
	}
	c.pos += 6 // token, unknown byte, template identifier
	off, _ := p.u32(c)
	t, err := p.template(c, off)
	if err != nil {
		return node{}, err
	}
	count, err := p.u32(c)
	if err != nil {
		return node{}, err
	}
	if count > maxValues {
		return node{}, fmt.Errorf("template instance with %d values at chunk offset %#x", count, c.pos-4)
	}
	if err := c.need(4 * int(count)); err != nil {
		return node{}, err
	}
	inst := &instance{tmpl: t, values: make([]value, count)}
	data := c.pos + 4*int(count)
	for i := range inst.values {
		d := c.pos + 4*i
		size := int(binary.LittleEndian.Uint16(p.buf[d:]))
		inst.values[i] = value{typ: p.buf[d+2], off: data, size: size}
		data += size
	}
	if data > c.end {
		return node{}, fmt.Errorf("template values at chunk offset %#x: %w", c.pos, errTruncated)
	}
	c.pos = data
	return node{kind: nInstance, inst: inst}, nil
}

// template returns the template defined at off: parsed from the chunk the
// first time, from the cache after. A definition that follows the reference
// (its first use) is skipped over.
func (p *parser) template(c *cursor, off uint32) (*template, error) {
	inline := int(off) == c.pos
	if t, ok := p.tmpls[off]; ok && !inline {
		return t, nil
	}
	start := int(off)
	if start < chunkHeaderSize || start+24 > len(p.buf) {
		return nil, fmt.Errorf("template at chunk offset %#x is outside the chunk", off)
	}
	size := int(binary.LittleEndian.Uint32(p.buf[start+20:]))
	if size > len(p.buf)-start-24 {
		return nil, fmt.Errorf("template at chunk offset %#x claims %d bytes, past the chunk", off, size)
	}
	if inline {
		if err := c.need(24 + size); err != nil {
			return nil, err
		}
		c.pos += 24 + size
		if t, ok := p.tmpls[off]; ok {
			return t, nil
		}
	}
	if p.busy[off] {
		return nil, fmt.Errorf("template at chunk offset %#x uses itself", off)
	}
	p.busy[off] = true
	defer delete(p.busy, off)
	tc := cursor{pos: start + 24, end: start + 24 + size}
	nodes, err := p.fragment(&tc, false)
	if err != nil {
		return nil, fmt.Errorf("template at chunk offset %#x: %w", off, err)
	}
	t := &template{nodes: nodes}
	p.tmpls[off] = t
	return t, nil
}

// entity returns the character an XML entity names.
func entity(name string) string {
	switch name {
	case "lt":
		return "<"
	case "gt":
		return ">"
	case "amp":
		return "&"
	case "quot":
		return `"`
	case "apos":
		return "'"
	}
	return "&" + name + ";"
}
