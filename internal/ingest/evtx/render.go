package evtx

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// renderer expands a record's parsed Binary XML with its substitution
// values and fills a HostEvent from the result, without building the XML:
// elements are reported as they close, with their ancestors on a stack.
type renderer struct {
	p     *parser
	ev    *event.HostEvent
	stack []frame
	nodes int // nodes and attribute pieces rendered so far for the record
	chars int // bytes of text rendered so far
	depth int
	tc    []byte    // TimeCreated/@SystemTime as rendered, when not a FILETIME value
	ts    time.Time // TimeCreated/@SystemTime from its FILETIME value
	sys   bool      // a System element was seen
	err   error

	abuf   []byte            // an attribute's value being rendered
	vals   []byte            // the record's field values, end to end
	fields []fieldAt         // the record's fields, values as offsets in vals
	names  map[string]string // interned names and repeated system values
}

// fieldAt is a field whose value is vals[start:end].
type fieldAt struct {
	name       string
	start, end int
}

// intern returns b as a string, shared with earlier equal ones: field
// names, channels, providers and computers repeat from record to record.
func (r *renderer) intern(b []byte) string {
	if s, ok := r.names[string(b)]; ok {
		return s
	}
	if r.names == nil {
		r.names = make(map[string]string, 256)
	}
	if len(r.names) > 1<<14 { // hostile input: do not grow without bound
		clear(r.names)
	}
	s := string(b)
	r.names[s] = s
	return s
}

// frame is an open element.
type frame struct {
	name     string
	text     []byte
	dataName string // the Name attribute, for EventData/Data (interned)
	hasKids  bool
}

var errTooLarge = errors.New("record expands beyond the size limit")

// record renders nodes (a record's top-level Binary XML) into ev.
func (r *renderer) record(nodes []node, ev *event.HostEvent) error {
	r.ev = ev
	r.stack = r.stack[:0]
	r.nodes, r.chars, r.depth = 0, 0, 0
	r.tc = r.tc[:0]
	r.ts = time.Time{}
	r.sys = false
	r.err = nil
	r.vals = r.vals[:0]
	r.fields = r.fields[:0]
	r.render(nodes, nil)
	if r.err != nil {
		return r.err
	}
	if len(r.tc) > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(r.tc)); err == nil {
			r.ts = t.UTC()
		}
	}
	if r.ts.Year() > 1601 {
		ev.TS = r.ts
	}
	if len(r.fields) > 0 {
		// One allocation for all of the record's values.
		all := string(r.vals)
		ev.Fields = make([]event.Field, len(r.fields))
		for i, f := range r.fields {
			ev.Fields[i] = event.Field{Name: f.name, Value: all[f.start:f.end]}
		}
	}
	return nil
}

// render expands nodes with the values of inst (nil outside a template).
func (r *renderer) render(nodes []node, inst *instance) {
	if r.depth++; r.depth > maxDepth {
		r.fail(errors.New("binary XML nested too deeply"))
	}
	defer func() { r.depth-- }()
	for i := range nodes {
		if r.err != nil {
			return
		}
		if r.nodes++; r.nodes > maxRendered {
			r.fail(errTooLarge)
			return
		}
		n := &nodes[i]
		switch n.kind {
		case nElem:
			r.element(n, inst)
		case nText:
			r.text(n.text)
		case nInstance:
			r.render(n.inst.tmpl.nodes, n.inst)
		case nSubst:
			r.subst(n, inst)
		}
	}
}

func (r *renderer) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// element renders one element: one whose only content is optional
// substitutions without a value is dropped, as Windows does.
func (r *renderer) element(n *node, inst *instance) {
	if inst != nil && len(n.kids) > 0 {
		empty := true
		for i := range n.kids {
			k := &n.kids[i]
			if k.kind != nSubst || !k.optional || !null(inst, k.sub) {
				empty = false
				break
			}
		}
		if empty {
			return
		}
	}
	// An array value repeats its element once per item, as Windows does.
	if inst != nil && len(n.kids) == 1 && n.kids[0].kind == nSubst && int(n.kids[0].sub) < len(inst.values) {
		if v := inst.values[n.kids[0].sub]; v.typ&typeArray != 0 && v.typ != typeArray|typeBinXML {
			items := splitArray(v.typ&^typeArray, r.p.buf[v.off:v.off+v.size])
			if len(items) == 0 {
				items = [][]byte{nil}
			}
			for _, it := range items {
				if r.nodes++; r.nodes > maxRendered {
					r.fail(errTooLarge)
					return
				}
				r.open(n, inst)
				f := &r.stack[len(r.stack)-1]
				f.text = appendValue(f.text, v.typ&^typeArray, it)
				if r.chars += len(f.text); r.chars > maxTextBytes {
					r.fail(errTooLarge)
				}
				r.close()
			}
			return
		}
	}
	r.open(n, inst)
	r.render(n.kids, inst)
	r.close()
}

// open pushes element n and takes its attributes.
func (r *renderer) open(n *node, inst *instance) {
	if len(r.stack) > 0 {
		r.stack[len(r.stack)-1].hasKids = true
	}
	r.stack = append(r.stack, frame{name: n.name, text: r.spare()})
	for i := range n.attrs {
		a := &n.attrs[i]
		if r.nodes += len(a.value); r.nodes > maxRendered {
			r.fail(errTooLarge)
			return
		}
		if inst != nil && len(a.value) == 1 && a.value[0].kind == nSubst && a.value[0].optional && null(inst, a.value[0].sub) {
			continue
		}
		if inst != nil && n.name == "TimeCreated" && a.name == "SystemTime" && len(a.value) == 1 && a.value[0].kind == nSubst &&
			int(a.value[0].sub) < len(inst.values) {
			if v := inst.values[a.value[0].sub]; v.typ == typeFiletime && v.size == 8 {
				r.ts = filetime(binary.LittleEndian.Uint64(r.p.buf[v.off:]))
				continue
			}
		}
		buf := r.abuf[:0]
		for j := range a.value {
			v := &a.value[j]
			switch v.kind {
			case nText:
				buf = append(buf, v.text...)
			case nSubst:
				if inst != nil && int(v.sub) < len(inst.values) {
					val := inst.values[v.sub]
					if val.typ != typeBinXML {
						buf = appendValue(buf, val.typ, r.p.buf[val.off:val.off+val.size])
					}
				}
			}
		}
		r.abuf = buf
		r.attr(a.name, buf)
	}
}

// close takes the innermost open element into the event and pops it.
func (r *renderer) close() {
	f := &r.stack[len(r.stack)-1]
	r.end(f)
	r.stack = r.stack[:len(r.stack)-1]
}

// spare returns the text buffer of the frame slot about to be reused.
func (r *renderer) spare() []byte {
	if len(r.stack) < cap(r.stack) {
		return r.stack[:len(r.stack)+1][len(r.stack)].text[:0]
	}
	return nil
}

// null reports whether value sub of inst is missing or NULL.
func null(inst *instance, sub uint16) bool {
	return int(sub) >= len(inst.values) || inst.values[sub].typ == typeNull
}

func (r *renderer) text(s string) {
	if len(r.stack) == 0 {
		return
	}
	if r.chars += len(s); r.chars > maxTextBytes {
		r.fail(errTooLarge)
		return
	}
	f := &r.stack[len(r.stack)-1]
	f.text = append(f.text, s...)
}

// subst renders a substitution in element content: a Binary XML value
// expands in place, any other value becomes text.
func (r *renderer) subst(n *node, inst *instance) {
	if inst == nil || int(n.sub) >= len(inst.values) {
		return
	}
	v := inst.values[n.sub]
	if v.typ == typeBinXML {
		nodes, err := r.p.binXMLValue(v)
		if err != nil {
			r.fail(err)
			return
		}
		r.render(nodes, nil)
		return
	}
	if len(r.stack) == 0 {
		return
	}
	f := &r.stack[len(r.stack)-1]
	before := len(f.text)
	f.text = appendValue(f.text, v.typ, r.p.buf[v.off:v.off+v.size])
	if r.chars += len(f.text) - before; r.chars > maxTextBytes {
		r.fail(errTooLarge)
	}
}

// attr takes the attributes the event model keeps.
func (r *renderer) attr(name string, v []byte) {
	d := len(r.stack)
	f := &r.stack[d-1]
	if d >= 3 && f.name == "Data" && name == "Name" {
		f.dataName = r.intern(v)
		return
	}
	if d != 3 || r.stack[1].name != "System" {
		return
	}
	ev := r.ev
	switch {
	case f.name == "Provider" && name == "Name":
		ev.Provider = r.intern(v)
	case f.name == "TimeCreated" && name == "SystemTime":
		r.tc = append(r.tc[:0], v...)
	case f.name == "Execution" && name == "ProcessID":
		ev.ProcessID = parseN[uint32](v)
	case f.name == "Execution" && name == "ThreadID":
		ev.ThreadID = parseN[uint32](v)
	case f.name == "Security" && name == "UserID":
		ev.UserID = r.intern(v)
	}
}

// end takes a closed element into the event: System's children as its
// fields, EventData's Data elements and UserData's leaves as Fields.
func (r *renderer) end(f *frame) {
	d := len(r.stack)
	if d == 2 && f.name == "System" {
		r.sys = true
	}
	if d < 3 {
		return
	}
	ev := r.ev
	section := r.stack[1].name
	if section == "System" {
		if d != 3 {
			return
		}
		switch f.name {
		case "EventID":
			ev.EventID = parseN[uint32](f.text)
		case "Level":
			ev.Level = parseN[uint8](f.text)
		case "Task":
			ev.Task = parseN[uint16](f.text)
		case "Opcode":
			ev.Opcode = parseN[uint8](f.text)
		case "Keywords":
			ev.Keywords = parseUint(f.text)
		case "EventRecordID":
			ev.RecordID = parseUint(f.text)
		case "Channel":
			ev.Channel = r.intern(f.text)
		case "Computer":
			ev.Computer = r.intern(f.text)
		}
		return
	}
	if f.hasKids {
		return
	}
	name := f.name
	if name == "Data" {
		if f.dataName != "" {
			name = f.dataName
		}
	}
	start := len(r.vals)
	r.vals = append(r.vals, f.text...)
	r.fields = append(r.fields, fieldAt{name: name, start: start, end: len(r.vals)})
}

// parseN is parseUint for a narrower type: 0 when the number does not fit.
func parseN[T uint8 | uint16 | uint32](b []byte) T {
	v := parseUint(b)
	if v > uint64(^T(0)) {
		return 0
	}
	return T(v)
}

// parseUint reads a decimal or 0x-prefixed hexadecimal number; anything
// else, or a number past 64 bits, is 0.
func parseUint(b []byte) uint64 {
	base := uint64(10)
	if len(b) > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X') {
		base, b = 16, b[2:]
	}
	if len(b) == 0 {
		return 0
	}
	var v uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0
		}
		if v > (math.MaxUint64-d)/base {
			return 0
		}
		v = v*base + d
	}
	return v
}
