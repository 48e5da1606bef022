package sigma

import "slices"

// A prefilter spares the engine most rule evaluations: many rules can only
// match when one field holds one of a few literals ("powershell" in
// Image, "-enc" in CommandLine). Such a requirement is derived from the
// rule's condition, conservatively: a rule without one is always
// evaluated. For each group of rules the engine tries together, the
// literals required of one field go into one Aho–Corasick automaton,
// which finds in one pass over the field's lower-case value every literal
// present, for all rules at once.

// need is a requirement: field must contain one of lits (lower case).
type need struct {
	field string
	lits  []string
}

// requirement returns a need the rule's condition implies, or false.
func (r *Rule) requirement() (need, bool) {
	return nodeNeed(r.cond)
}

func nodeNeed(n node) (need, bool) {
	switch x := n.(type) {
	case ref:
		return searchNeed(x.s)
	case andNode:
		best, ok := need{}, false
		for _, c := range x {
			if nd, ok2 := nodeNeed(c); ok2 && (!ok || shortest(nd.lits) > shortest(best.lits)) {
				best, ok = nd, true
			}
		}
		return best, ok
	case orNode:
		return unionNeed(len(x), func(i int) (need, bool) { return nodeNeed(x[i]) })
	}
	return need{}, false // not: nothing is required
}

// unionNeed is the need of alternatives: all on one field, their literals
// together.
func unionNeed(n int, at func(int) (need, bool)) (need, bool) {
	var out need
	for i := range n {
		nd, ok := at(i)
		if !ok || (i > 0 && nd.field != out.field) {
			return need{}, false
		}
		out.field = nd.field
		out.lits = append(out.lits, nd.lits...)
	}
	return out, n > 0
}

func searchNeed(s *search) (need, bool) {
	switch {
	case s.any != nil:
		return unionNeed(len(s.any), func(i int) (need, bool) { return searchNeed(s.any[i]) })
	case s.keywords != nil:
		return need{}, false
	}
	best, ok := need{}, false
	for _, f := range s.fields {
		if nd, ok2 := fieldNeed(f); ok2 && (!ok || shortest(nd.lits) > shortest(best.lits)) {
			best, ok = nd, true
		}
	}
	return best, ok
}

// fieldNeed is what a field matcher requires: each of its values (one of
// them, with |all) matched by case-insensitive patterns that each hold a
// literal.
func fieldNeed(f *fieldMatcher) (need, bool) {
	if f.exists != nil || f.null || f.fieldref || f.neq || len(f.values) == 0 {
		return need{}, false
	}
	values := f.values
	if f.all {
		values = values[:1]
	}
	nd := need{field: f.field}
	for _, v := range values {
		if v.re != nil || v.prefix.IsValid() || v.cmp != "" || v.timePart != "" || len(v.patterns) == 0 {
			return need{}, false
		}
		for i := range v.patterns {
			p := &v.patterns[i]
			lit := p.longest()
			if !p.fold || lit == "" || !isASCII(lit) {
				return need{}, false
			}
			nd.lits = append(nd.lits, lit)
		}
	}
	return nd, true
}

// longest returns the longest literal of a pattern.
func (p *pattern) longest() string {
	best := ""
	for _, t := range p.toks {
		if len(t.lit) > len(best) {
			best = t.lit
		}
	}
	return best
}

func shortest(lits []string) int {
	if len(lits) == 0 {
		return 0
	}
	n := len(lits[0])
	for _, l := range lits[1:] {
		n = min(n, len(l))
	}
	return n
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// automaton is an Aho–Corasick automaton over ASCII literals; out lists,
// per state, the literal ids that end there (its own and its suffixes').
type automaton struct {
	next [][128]int32
	fail []int32
	out  [][]int32
}

func newAutomaton(lits []string) *automaton {
	a := &automaton{next: make([][128]int32, 1), fail: []int32{0}, out: [][]int32{nil}}
	for id, l := range lits {
		s := int32(0)
		for i := 0; i < len(l); i++ {
			c := l[i] & 0x7f
			if a.next[s][c] == 0 {
				a.next = append(a.next, [128]int32{})
				a.fail = append(a.fail, 0)
				a.out = append(a.out, nil)
				a.next[s][c] = int32(len(a.next) - 1) //nolint:gosec // G115: states are bounded by the rules' literal bytes, far below 2^31
			}
			s = a.next[s][c]
		}
		a.out[s] = append(a.out[s], int32(id))
	}
	// Breadth first: failure links, then full transitions.
	queue := make([]int32, 0, len(a.next))
	for c := range 128 {
		if t := a.next[0][c]; t != 0 {
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		a.out[s] = append(a.out[s], a.out[a.fail[s]]...)
		for c := range 128 {
			t := a.next[s][c]
			if t == 0 {
				a.next[s][c] = a.next[a.fail[s]][c]
				continue
			}
			a.fail[t] = a.next[a.fail[s]][c]
			queue = append(queue, t)
		}
	}
	return a
}

// scan calls hit with the id of every literal found in s (lower case),
// possibly more than once.
func (a *automaton) scan(s string, hit func(int32)) {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			st = 0 // literals are ASCII: no match spans a non-ASCII byte
			continue
		}
		st = a.next[st][c]
		for _, id := range a.out[st] {
			hit(id)
		}
	}
}

// prefiltered is a group of rules the engine tries together, split into
// those always evaluated and those with a need, indexed by field.
type prefiltered struct {
	always []*gated
	fields []fieldIndex
}

type fieldIndex struct {
	field string
	ac    *automaton
	owner []int32  // literal id -> index in rules
	rules []*gated // rules needing this field
}

func buildPrefilter(gs []*gated) *prefiltered {
	p := &prefiltered{}
	byField := map[string]*fieldIndex{}
	lits := map[string][]string{}
	var order []string
	for _, g := range gs {
		nd, ok := g.r.requirement()
		// A gate that renames the field reads another one: keep it simple.
		if _, renamed := g.g.fields[nd.field]; !ok || renamed {
			p.always = append(p.always, g)
			continue
		}
		fi := byField[nd.field]
		if fi == nil {
			fi = &fieldIndex{field: nd.field}
			byField[nd.field] = fi
			order = append(order, nd.field)
		}
		idx := int32(len(fi.rules)) //nolint:gosec // G115: rules of one group, far below 2^31
		fi.rules = append(fi.rules, g)
		for _, l := range nd.lits {
			lits[nd.field] = append(lits[nd.field], l)
			fi.owner = append(fi.owner, idx)
		}
	}
	for _, f := range order {
		fi := byField[f]
		fi.ac = newAutomaton(lits[f])
		p.fields = append(p.fields, *fi)
	}
	return p
}

// candidates calls fn with every rule that may match e: those without a
// need, and those whose field holds one of their literals, each once.
func (p *prefiltered) candidates(ev *HostEvent, seen []bool, fn func(*gated)) []bool {
	for _, g := range p.always {
		fn(g)
	}
	for i := range p.fields {
		fi := &p.fields[i]
		ev.rename = nil // the rules indexed here read their fields unrenamed
		_, low, ok := ev.GetFold(fi.field)
		if !ok {
			continue
		}
		seen = slices.Grow(seen[:0], len(fi.rules))[:len(fi.rules)]
		clear(seen)
		fi.ac.scan(low, func(id int32) {
			r := fi.owner[id]
			if !seen[r] {
				seen[r] = true
				fn(fi.rules[r])
			}
		})
	}
	return seen
}
