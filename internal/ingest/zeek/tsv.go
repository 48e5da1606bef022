package zeek

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// tsvHeader is the state of one Zeek TSV header block.
type tsvHeader struct {
	sep      byte
	setSep   byte
	empty    string
	unset    string
	path     string
	fields   []string
	types    []string
	raw      []string // header lines of this block, for checkpoints
	implicit bool     // fields assumed (no #fields line)
}

func newTSVHeader() *tsvHeader {
	return &tsvHeader{sep: '\t', setSep: ',', empty: "(empty)", unset: "-"}
}

// line applies one '#' line to the header. It reports whether the line
// starts a new block (a #separator line).
func (h *tsvHeader) line(l string) (newBlock bool, err error) {
	if rest, ok := strings.CutPrefix(l, "#separator"); ok {
		sep := unescapeZeek(strings.TrimSuffix(strings.TrimLeft(rest, " "), "\r"))
		if len(sep) != 1 {
			return false, fmt.Errorf("separator %q is not one byte", rest)
		}
		*h = *newTSVHeader()
		h.sep = sep[0]
		h.raw = append(h.raw[:0], l)
		return true, nil
	}
	key, val, _ := strings.Cut(l[1:], string(h.sep))
	switch key {
	case "set_separator":
		v := unescapeZeek(val)
		if len(v) != 1 {
			return false, fmt.Errorf("set separator %q is not one byte", val)
		}
		h.setSep = v[0]
	case "empty_field":
		h.empty = val
	case "unset_field":
		h.unset = val
	case "path":
		h.path = val
	case "fields":
		h.fields = strings.Split(val, string(h.sep))
	case "types":
		h.types = strings.Split(val, string(h.sep))
	case "close":
		return false, nil // end of block: not part of the state to resume with
	}
	h.raw = append(h.raw, l)
	return false, nil
}

// state returns the header lines needed to resume reading this block.
func (h *tsvHeader) state() string {
	if h.implicit || len(h.raw) == 0 {
		return ""
	}
	return strings.Join(h.raw, "\n")
}

// lineDecoder decodes data lines of one header block into records.
type lineDecoder interface {
	kind() event.Kind
	decode(line string, b *event.Batch, src event.Source) error
}

// tsvKind decodes TSV lines into records of type R.
type tsvKind[R any] struct {
	spec *spec[R]
	h    *tsvHeader
	cols []tsvCol[R]
	v    value
	dup  string // a field the #fields line names twice: every line is malformed
}

type tsvCol[R any] struct {
	name string
	f    field[R]
	ok   bool
}

func newTSVKind[R any](s *spec[R], h *tsvHeader) (*tsvKind[R], []string) {
	k := &tsvKind[R]{spec: s, h: h, cols: make([]tsvCol[R], len(h.fields))}
	var ignored []string
	seen := map[int]string{}
	for i, name := range h.fields {
		f, ok := s.fields[name]
		k.cols[i] = tsvCol[R]{name: name, f: f, ok: ok}
		if !ok {
			ignored = append(ignored, name)
			continue
		}
		if first, twice := seen[f.idx]; twice && k.dup == "" {
			k.dup = fmt.Sprintf("the #fields header names %s twice (as %s and %s): which value to keep is not known", name, first, name)
		}
		seen[f.idx] = name
	}
	return k, ignored
}

func (k *tsvKind[R]) kind() event.Kind { return k.spec.kind }

func (k *tsvKind[R]) decode(line string, b *event.Batch, src event.Source) error {
	if k.dup != "" {
		return errors.New(k.dup)
	}
	r := k.spec.add(b)
	*k.spec.src(r) = src
	sep := k.h.sep
	n := 0
	for pos := 0; ; n++ {
		end := strings.IndexByte(line[pos:], sep)
		if end < 0 {
			end = len(line)
		} else {
			end += pos
		}
		raw := line[pos:end]
		if n < len(k.cols) && k.cols[n].ok && raw != k.h.unset {
			c := &k.cols[n]
			if err := k.parse(c.f.typ, raw); err != nil {
				k.spec.drop(b)
				return fmt.Errorf("field %d (%s): %w: %q", n+1, c.name, err, clip(raw))
			}
			c.f.set(r, &k.v)
		}
		if end == len(line) {
			n++
			break
		}
		pos = end + 1
	}
	if n != len(k.cols) {
		k.spec.drop(b)
		return fmt.Errorf("expected %d fields, found %d", len(k.cols), n)
	}
	if !k.spec.hasTS(r) {
		k.spec.drop(b)
		return fmt.Errorf("field ts is unset")
	}
	return nil
}

// parse decodes one raw TSV value of type t into k.v.
func (k *tsvKind[R]) parse(t ftype, raw string) error {
	v := &k.v
	var err error
	switch t {
	case fTime:
		v.t, err = parseTime(raw)
	case fString:
		if raw == k.h.empty {
			v.s = ""
		} else {
			v.s = unescapeZeek(raw)
		}
	case fAddr:
		v.a, err = parseAddr(raw)
	case fPort:
		v.u, err = parsePort(raw)
	case fCount:
		v.u, err = parseCount(raw)
	case fInterval:
		v.d, err = parseInterval(raw)
	case fBool:
		v.b, err = parseBool(raw)
	case fStrings:
		v.ss = nil
		err = k.elems(raw, func(e string) error { v.ss = append(v.ss, unescapeZeek(e)); return nil })
		if err == nil && v.ss == nil {
			v.ss = []string{}
		}
	case fAddrs:
		v.as = nil
		err = k.elems(raw, func(e string) error {
			a, err := parseAddr(unescapeZeek(e))
			v.as = append(v.as, a)
			return err
		})
		if err == nil && v.as == nil {
			v.as = []netip.Addr{}
		}
	case fIntervals:
		v.ds = nil
		err = k.elems(raw, func(e string) error {
			d, err := parseInterval(e)
			v.ds = append(v.ds, d)
			return err
		})
		if err == nil && v.ds == nil {
			v.ds = []time.Duration{}
		}
	}
	return err
}

// elems calls f for each element of a set or vector value.
func (k *tsvKind[R]) elems(raw string, f func(string) error) error {
	if raw == k.h.empty {
		return nil
	}
	for {
		e, rest, more := strings.Cut(raw, string(k.h.setSep))
		if err := f(e); err != nil {
			return err
		}
		if !more {
			return nil
		}
		raw = rest
	}
}

// clip shortens a value quoted in an error message: attacker-controlled
// input must not flood the user's terminal.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
