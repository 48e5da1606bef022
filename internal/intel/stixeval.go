package intel

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Atom is one value a pattern matches on its own: a pattern is turned into
// the atoms any of which, seen in telemetry, matches it.
type Atom struct {
	Type  event.IOCType
	Value string // as written in the pattern; normalised by the importer
	Port  uint16
}

// Atoms returns the atoms of a parsed pattern, or why dwell cannot
// evaluate it. A pattern is evaluable when it is observations joined by OR,
// each without qualifiers, each a comparison expression that is a
// disjunction of matchable terms. A term is one equality (or IN, a CIDR
// ISSUBSET, a "%.suffix" LIKE on a domain name) on a property dwell sees,
// or a conjunction that adds only what dwell can check or what cannot
// widen the match: a destination port beside a network-traffic address,
// the object type of that address, a file's name beside its hash.
func Atoms(e ObsExpr) ([]Atom, error) {
	switch x := e.(type) {
	case *ObsOp:
		if x.Op != "OR" {
			return nil, fmt.Errorf("observations joined by %s need several records together; dwell matches one value at a time", x.Op)
		}
		l, err := Atoms(x.L)
		if err != nil {
			return nil, err
		}
		r, err := Atoms(x.R)
		return append(l, r...), err
	case *Observation:
		if len(x.Qualifiers) > 0 {
			return nil, fmt.Errorf("qualifier %s is not evaluated", x.Qualifiers[0])
		}
		if x.Group != nil {
			return Atoms(x.Group)
		}
		return cmpAtoms(x.Cmp)
	}
	return nil, fmt.Errorf("unknown expression")
}

func cmpAtoms(c CmpExpr) ([]Atom, error) {
	switch x := c.(type) {
	case *CmpOp:
		if x.Op == "OR" {
			l, err := cmpAtoms(x.L)
			if err != nil {
				return nil, err
			}
			r, err := cmpAtoms(x.R)
			return append(l, r...), err
		}
		return conjunction(flattenAnd(x))
	case *Comparison:
		return termAtoms(x)
	}
	return nil, fmt.Errorf("unknown comparison")
}

func flattenAnd(c CmpExpr) []CmpExpr {
	if op, ok := c.(*CmpOp); ok && op.Op == "AND" {
		return append(flattenAnd(op.L), flattenAnd(op.R)...)
	}
	return []CmpExpr{c}
}

// conjunction evaluates comparisons joined by AND.
func conjunction(terms []CmpExpr) ([]Atom, error) {
	var anchor []Atom
	var port uint16
	var cmps []*Comparison
	for _, t := range terms {
		c, ok := t.(*Comparison)
		if !ok {
			return nil, fmt.Errorf("an OR inside an AND is not evaluated")
		}
		cmps = append(cmps, c)
	}
	for _, c := range cmps {
		path := c.Path.String()
		switch {
		case path == "network-traffic:dst_port" && c.Op == "=" && !c.Negated:
			p, err := strconv.ParseUint(c.Values[0].Text, 10, 16)
			if err != nil || c.Values[0].Kind != "int" {
				return nil, fmt.Errorf("%s = %s is not a port", path, c.Values[0].Text)
			}
			port = uint16(p)
		case path == "network-traffic:dst_ref.type" || path == "network-traffic:src_ref.type":
			// The address's type: its value says as much.
		case c.Path.Type == "file" && len(c.Path.Steps) == 1 && (c.Path.Steps[0] == "name" || c.Path.Steps[0] == "size"):
			// Beside a hash, a file's name or size cannot widen the match.
		default:
			if anchor != nil {
				return nil, fmt.Errorf("%s AND %s: dwell matches one value at a time", anchorPath(cmps), path)
			}
			a, err := termAtoms(c)
			if err != nil {
				return nil, err
			}
			anchor = a
		}
	}
	if anchor == nil {
		return nil, fmt.Errorf("nothing dwell matches in %s", anchorPath(cmps))
	}
	for i := range anchor {
		if port != 0 {
			if anchor[i].Type != event.IOCIP {
				return nil, fmt.Errorf("a destination port beside a %s is not evaluated", anchor[i].Type)
			}
			anchor[i].Port = port
		}
	}
	hasFileExtra := false
	for _, c := range cmps {
		if c.Path.Type == "file" && len(c.Path.Steps) == 1 && (c.Path.Steps[0] == "name" || c.Path.Steps[0] == "size") {
			hasFileExtra = true
		}
	}
	if hasFileExtra {
		for _, a := range anchor {
			if a.Type != event.IOCMD5 && a.Type != event.IOCSHA1 && a.Type != event.IOCSHA256 {
				return nil, fmt.Errorf("a file's name or size beside a %s is not evaluated", a.Type)
			}
		}
	}
	return anchor, nil
}

func anchorPath(cmps []*Comparison) string {
	var ps []string
	for _, c := range cmps {
		ps = append(ps, c.Path.String())
	}
	return strings.Join(ps, " AND ")
}

// termAtoms evaluates one comparison.
func termAtoms(c *Comparison) ([]Atom, error) {
	typ, err := pathType(c.Path)
	if err != nil {
		return nil, err
	}
	if c.Negated {
		return nil, fmt.Errorf("NOT %s on %s is not evaluated", c.Op, c.Path)
	}
	var out []Atom
	str := func(l Literal) (string, error) {
		if l.Kind != "string" {
			return "", fmt.Errorf("%s compared with a %s", c.Path, l.Kind)
		}
		return l.Text, nil
	}
	switch c.Op {
	case "=", "IN":
		for _, l := range c.Values {
			v, err := str(l)
			if err != nil {
				return nil, err
			}
			t := typ
			if t == event.IOCIP && strings.Contains(v, "/") {
				t = event.IOCCIDR
			}
			out = append(out, Atom{Type: t, Value: v})
		}
	case "ISSUBSET":
		if typ != event.IOCIP {
			return nil, fmt.Errorf("ISSUBSET on %s is not evaluated", c.Path)
		}
		out = append(out, Atom{Type: event.IOCCIDR, Value: c.Values[0].Text})
	case "LIKE":
		v := c.Values[0].Text
		suffix, ok := strings.CutPrefix(v, "%.")
		if !ok {
			suffix, ok = strings.CutPrefix(v, "%")
		}
		if typ != event.IOCDomain || !ok || strings.ContainsAny(suffix, "%_") {
			return nil, fmt.Errorf("LIKE '%s' on %s is not evaluated (only '%%.domain' on a domain name)", v, c.Path)
		}
		out = append(out, Atom{Type: event.IOCDomain, Value: suffix})
	default:
		return nil, fmt.Errorf("%s on %s is not evaluated", c.Op, c.Path)
	}
	return out, nil
}

// pathType maps an object path to the indicator type it holds.
func pathType(p Path) (event.IOCType, error) {
	path := p.String()
	switch path {
	case "ipv4-addr:value", "ipv6-addr:value", "network-traffic:dst_ref.value", "network-traffic:src_ref.value":
		return event.IOCIP, nil
	case "domain-name:value":
		return event.IOCDomain, nil
	case "url:value":
		return event.IOCURL, nil
	case "email-addr:value":
		return event.IOCEmail, nil
	case "network-traffic:extensions.http-request-ext.request_header.User-Agent":
		return event.IOCUserAgent, nil
	case "file:name":
		return event.IOCFilename, nil
	case "x-ja3:value": // dwell's own exports: STIX has no TLS fingerprint object
		return event.IOCJA3, nil
	case "x-ja3s:value":
		return event.IOCJA3S, nil
	case "x-ja4:value":
		return event.IOCJA4, nil
	}
	if (p.Type == "file" || p.Type == "x509-certificate") && len(p.Steps) == 2 && p.Steps[0] == "hashes" {
		h := strings.ToUpper(strings.ReplaceAll(p.Steps[1], "-", ""))
		switch {
		case p.Type == "file" && h == "MD5":
			return event.IOCMD5, nil
		case p.Type == "file" && h == "SHA1":
			return event.IOCSHA1, nil
		case p.Type == "file" && h == "SHA256":
			return event.IOCSHA256, nil
		case p.Type == "x509-certificate" && h == "SHA1":
			return event.IOCCertSHA1, nil
		case p.Type == "x509-certificate" && h == "SHA256":
			return event.IOCCertSHA256, nil
		}
	}
	return "", fmt.Errorf("%s is not a property dwell sees", path)
}
