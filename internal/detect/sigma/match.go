package sigma

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"
)

// Event is what rules match: named fields.
type Event interface {
	// Get returns the value of a field and whether the event has it.
	Get(field string) (string, bool)
	// Each calls fn for every field value (keyword searches), until fn
	// returns false.
	Each(fn func(value string) bool)
}

// folder is an Event that keeps its values in lower case too, so that
// case-insensitive matching lowers each value once per event, not once
// per rule.
type folder interface {
	GetFold(field string) (raw, low string, ok bool)
	EachFold(fn func(raw, low string) bool)
}

// get returns a field's value and its lower-case form.
func get(e Event, field string) (string, string, bool) {
	if f, ok := e.(folder); ok {
		return f.GetFold(field)
	}
	v, ok := e.Get(field)
	return v, lower(v), ok
}

// search is one search identifier of a detection: fields matched
// together (all of them), alternatives (any), or keywords.
type search struct {
	any      []*search       // a list of maps: one of them
	fields   []*fieldMatcher // a map: all of them
	keywords []*valueMatcher // a list of plain values: full-text, any
}

func (s *search) match(e Event) bool {
	switch {
	case s.any != nil:
		for _, a := range s.any {
			if a.match(e) {
				return true
			}
		}
		return false
	case s.keywords != nil:
		hit := false
		each := func(v, low string) bool {
			for _, k := range s.keywords {
				if k.match(v, low) {
					hit = true
					return false
				}
			}
			return true
		}
		if h, ok := e.(*HostEvent); ok {
			// The usual case, without a callback through an interface.
			for i := range h.e.Fields {
				if !each(h.e.Fields[i].Value, h.lowAt(i)) {
					break
				}
			}
		} else if f, ok := e.(folder); ok {
			f.EachFold(each)
		} else {
			e.Each(func(v string) bool { return each(v, lower(v)) })
		}
		return hit
	}
	for _, f := range s.fields {
		if !f.match(e) {
			return false
		}
	}
	return true
}

// fieldMatcher is one field of a map with its modifiers and values.
type fieldMatcher struct {
	field    string
	all      bool            // |all: every value must match
	exists   *bool           // |exists: true or false
	fieldref bool            // values are other fields' names
	null     bool            // null is one of the values: an absent or empty field matches
	values   []*valueMatcher // any of them (all of them with |all)
	neq      bool            // |neq: the field must differ from every value
	cased    bool
}

func (f *fieldMatcher) match(e Event) bool {
	v, low, ok := get(e, f.field)
	if f.exists != nil {
		return ok == *f.exists
	}
	if f.null && (!ok || v == "") {
		return true // null: the field is absent or empty
	}
	if !ok || (f.null && len(f.values) == 0) {
		return false
	}
	if f.fieldref {
		for _, m := range f.values {
			other, ok := e.Get(m.raw)
			eq := ok && (other == v || (!f.cased && strings.EqualFold(other, v)))
			if f.all && !eq {
				return false
			}
			if !f.all && eq {
				return true
			}
		}
		return f.all
	}
	if f.neq {
		for _, m := range f.values {
			if m.match(v, low) {
				return false
			}
		}
		return true
	}
	if f.all {
		for _, m := range f.values {
			if !m.match(v, low) {
				return false
			}
		}
		return len(f.values) > 0
	}
	for _, m := range f.values {
		if m.match(v, low) {
			return true
		}
	}
	return false
}

// valueMatcher matches one value of a rule: a pattern (with its variants
// when a modifier made several: base64 offsets, dash forms), a regular
// expression, a network, a number, or a part of a time.
type valueMatcher struct {
	raw      string
	patterns []pattern
	re       *regexp.Regexp
	prefix   netip.Prefix
	cmp      string // "lt", "lte", "gt", "gte"
	num      float64
	timePart string // minute, hour, day, week, month, year
	part     int
}

// match judges a value given as written and in lower case.
func (m *valueMatcher) match(v, low string) bool {
	switch {
	case m.re != nil:
		return m.re.MatchString(v)
	case m.prefix.IsValid():
		a, err := netip.ParseAddr(strings.TrimSpace(v))
		return err == nil && m.prefix.Contains(a.Unmap())
	case m.timePart != "":
		t, ok := parseTime(v)
		return ok && timePart(t, m.timePart) == m.part
	case m.cmp != "":
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return false
		}
		switch m.cmp {
		case "lt":
			return x < m.num
		case "lte":
			return x <= m.num
		case "gt":
			return x > m.num
		}
		return x >= m.num
	}
	for i := range m.patterns {
		p := &m.patterns[i]
		if p.fold {
			if p.match(low) {
				return true
			}
		} else if p.match(v) {
			return true
		}
	}
	return false
}

// compileSearch compiles a search identifier's YAML.
func compileSearch(n *yaml.Node, opt Options) (*search, error) {
	switch n.Kind {
	case yaml.MappingNode:
		return compileMap(n, opt)
	case yaml.SequenceNode:
		if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
			s := &search{any: []*search{}}
			for _, c := range n.Content {
				if c.Kind != yaml.MappingNode {
					return nil, errors.New("a list mixes maps and values")
				}
				m, err := compileMap(c, opt)
				if err != nil {
					return nil, err
				}
				s.any = append(s.any, m)
			}
			return s, nil
		}
		s := &search{keywords: []*valueMatcher{}}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, errors.New("a keyword list holds a list or a map")
			}
			vm, err := compileValue(c.Value, []string{"contains"}, opt)
			if err != nil {
				return nil, err
			}
			s.keywords = append(s.keywords, vm)
		}
		return s, nil
	case yaml.ScalarNode:
		vm, err := compileValue(n.Value, []string{"contains"}, opt)
		if err != nil {
			return nil, err
		}
		return &search{keywords: []*valueMatcher{vm}}, nil
	}
	return nil, errors.New("a search is a map, a list of maps or a list of keywords")
}

func compileMap(n *yaml.Node, opt Options) (*search, error) {
	s := &search{fields: []*fieldMatcher{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, v := n.Content[i].Value, n.Content[i+1]
		parts := strings.Split(key, "|")
		f := &fieldMatcher{field: parts[0]}
		var mods []string
		for _, m := range parts[1:] {
			switch m {
			case "all":
				f.all = true
			case "fieldref":
				f.fieldref = true
			case "neq":
				f.neq = true
			case "cased":
				f.cased = true
				mods = append(mods, m)
			case "exists":
				var b bool
				if err := v.Decode(&b); err != nil {
					return nil, fmt.Errorf("%s: exists takes true or false", key)
				}
				f.exists = &b
			default:
				mods = append(mods, m)
			}
		}
		if f.exists != nil {
			s.fields = append(s.fields, f)
			continue
		}
		var values []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			values = []*yaml.Node{v}
		case yaml.SequenceNode:
			values = v.Content
		default:
			return nil, fmt.Errorf("%s: a value is a scalar or a list", key)
		}
		for _, x := range values {
			if x.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s: a value is a scalar", key)
			}
			if x.Tag == "!!null" {
				f.null = true
				continue
			}
			if f.fieldref {
				f.values = append(f.values, &valueMatcher{raw: x.Value})
				continue
			}
			vm, err := compileValue(x.Value, mods, opt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			f.values = append(f.values, vm)
		}
		s.fields = append(s.fields, f)
	}
	return s, nil
}

// compileValue compiles one value with its modifiers (in order:
// transformations, then the kind of match).
func compileValue(raw string, mods []string, opt Options) (*valueMatcher, error) {
	vm := &valueMatcher{raw: raw}
	variants := []string{raw}
	// Sigma strings keep their escapes until the match kind is known:
	// transformations work on the unescaped text.
	escaped := true
	kind := ""
	cased := false
	reFlags := ""
	for _, m := range mods {
		switch m {
		case "contains", "startswith", "endswith":
			kind = m
		case "cased":
			cased = true
		case "windash":
			var out []string
			for _, v := range variants {
				out = append(out, windash(v)...)
			}
			variants = out
		case "wide", "utf16le", "utf16be", "utf16":
			for i, v := range variants {
				variants[i] = encodeUTF16(unescape(v), m)
			}
			escaped = false
		case "base64":
			for i, v := range variants {
				if escaped {
					v = unescape(v)
				}
				variants[i] = base64.StdEncoding.EncodeToString([]byte(v))
			}
			escaped = false
		case "base64offset":
			var out []string
			for _, v := range variants {
				if escaped {
					v = unescape(v)
				}
				out = append(out, base64Offsets(v)...)
			}
			variants = out
			escaped = false
			if kind == "" {
				kind = "contains"
			}
		case "re":
			kind = "re"
		case "i", "m", "s":
			reFlags += m
		case "cidr":
			p, err := netip.ParsePrefix(raw)
			if err != nil {
				return nil, fmt.Errorf("cidr: %q is not a network", raw)
			}
			vm.prefix = p.Masked()
			return vm, nil
		case "lt", "lte", "gt", "gte":
			x, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", m, raw)
			}
			vm.cmp, vm.num = m, x
			return vm, nil
		case "minute", "hour", "day", "week", "month", "year":
			x, err := strconv.Atoi(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", m, raw)
			}
			vm.timePart, vm.part = m, x
			return vm, nil
		case "expand":
			name := strings.Trim(raw, "%")
			vals, ok := opt.Placeholders[name]
			if !ok {
				return nil, fmt.Errorf("placeholder %%%s%% is not configured", name)
			}
			variants = append([]string(nil), vals...)
		default:
			return nil, fmt.Errorf("unknown modifier %q", m)
		}
	}
	if kind == "re" {
		expr := raw
		if reFlags != "" {
			expr = "(?" + reFlags + ")" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("re: %w", err)
		}
		vm.re = re
		return vm, nil
	}
	for _, v := range variants {
		p := compilePattern(v, escaped, kind, !cased)
		vm.patterns = append(vm.patterns, p)
	}
	return vm, nil
}

// unescape removes Sigma's escapes: \* \? and \\ stand for the characters;
// a backslash before anything else is itself.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// windash returns s with each dash that starts an option (a '-' or '/'
// after a space or at the start) in every form Windows tools accept.
func windash(s string) []string {
	forms := []string{"-", "/", "\u2013", "\u2014", "\u2015"}
	var idx []int
	for i := 0; i < len(s); i++ {
		if (s[i] == '-' || s[i] == '/') && (i == 0 || s[i-1] == ' ') {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return []string{s}
	}
	out := make([]string, 0, len(forms))
	for _, f := range forms {
		var b strings.Builder
		last := 0
		for _, i := range idx {
			b.WriteString(s[last:i])
			b.WriteString(f)
			last = i + 1
		}
		b.WriteString(s[last:])
		out = append(out, b.String())
	}
	return out
}

// encodeUTF16 encodes s as the wide modifiers say; the result holds the
// encoded bytes as a (binary) string, for base64 to follow.
func encodeUTF16(s, mod string) string {
	u := utf16.Encode([]rune(s))
	var b []byte
	if mod == "utf16" {
		b = append(b, 0xff, 0xfe)
	}
	for _, c := range u {
		if mod == "utf16be" {
			b = binary.BigEndian.AppendUint16(b, c)
		} else {
			b = binary.LittleEndian.AppendUint16(b, c)
		}
	}
	return string(b)
}

// base64Offsets returns the three base64 forms of s as it may sit at any
// offset of a longer encoded text: the stable middle of each.
func base64Offsets(s string) []string {
	var out []string
	for i := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, i), s...))
		start := []int{0, 2, 3}[i]
		end := len(enc) - []int{0, 3, 2}[(len(s)+i)%3]
		if start < end {
			out = append(out, enc[start:end])
		}
	}
	return out
}

func parseTime(v string) (time.Time, bool) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(l, strings.TrimSpace(v)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func timePart(t time.Time, part string) int {
	switch part {
	case "minute":
		return t.Minute()
	case "hour":
		return t.Hour()
	case "day":
		return t.Day()
	case "week":
		_, w := t.ISOWeek()
		return w
	case "month":
		return int(t.Month())
	}
	return t.Year()
}
