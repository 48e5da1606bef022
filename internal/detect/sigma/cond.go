package sigma

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// node is a compiled condition.
type node interface {
	eval(e Event, r *Rule) bool
}

type andNode []node
type orNode []node
type notNode struct{ n node }
type ref struct{ s *search }

func (n andNode) eval(e Event, r *Rule) bool {
	for _, c := range n {
		if !c.eval(e, r) {
			return false
		}
	}
	return true
}

func (n orNode) eval(e Event, r *Rule) bool {
	for _, c := range n {
		if c.eval(e, r) {
			return true
		}
	}
	return false
}

func (n notNode) eval(e Event, r *Rule) bool { return !n.n.eval(e, r) }

func (n ref) eval(e Event, _ *Rule) bool { return n.s.match(e) }

// parseCondition compiles a condition over the rule's searches:
// and, or, not, parentheses, "1 of PATTERN", "all of PATTERN", "1 of them"
// and "all of them".
func parseCondition(cond string, searches map[string]*search) (node, error) {
	if strings.Contains(cond, "|") {
		return nil, errors.New("aggregations in conditions (Sigma 1: count() by ...) are not supported: write a correlation rule")
	}
	p := &condParser{toks: tokenize(cond), searches: searches}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	return n, nil
}

func tokenize(s string) []string {
	s = strings.NewReplacer("(", " ( ", ")", " ) ").Replace(s)
	return strings.Fields(s)
}

type condParser struct {
	toks     []string
	i        int
	searches map[string]*search
}

func (p *condParser) peek() string {
	if p.i < len(p.toks) {
		return strings.ToLower(p.toks[p.i])
	}
	return ""
}

// chain parses next (word next)*: the operands of one operator, joined.
func (p *condParser) chain(word string, next func() (node, error), join func([]node) node) (node, error) {
	n, err := next()
	if err != nil {
		return nil, err
	}
	parts := []node{n}
	for p.peek() == word {
		p.i++
		m, err := next()
		if err != nil {
			return nil, err
		}
		parts = append(parts, m)
	}
	if len(parts) == 1 {
		return n, nil
	}
	return join(parts), nil
}

func (p *condParser) or() (node, error) {
	return p.chain("or", p.and, func(ns []node) node { return orNode(ns) })
}

func (p *condParser) and() (node, error) {
	return p.chain("and", p.not, func(ns []node) node { return andNode(ns) })
}

func (p *condParser) not() (node, error) {
	if p.peek() == "not" {
		p.i++
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.primary()
}

func (p *condParser) primary() (node, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, errors.New("the condition ends too early")
	case t == "(":
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("a parenthesis is not closed")
		}
		p.i++
		return n, nil
	case (t == "1" || t == "all" || t == "any") && p.i+1 < len(p.toks) && strings.EqualFold(p.toks[p.i+1], "of"):
		p.i += 2
		if p.i >= len(p.toks) {
			return nil, fmt.Errorf("%q of what?", t)
		}
		target := p.toks[p.i]
		p.i++
		var names []string
		for name := range p.searches {
			if target == "them" && !strings.HasPrefix(name, "_") {
				names = append(names, name)
			} else if ok, _ := path.Match(target, name); ok {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("no search matches %q", target)
		}
		sort.Strings(names)
		var parts []node
		for _, n := range names {
			parts = append(parts, ref{p.searches[n]})
		}
		if t == "all" {
			return andNode(parts), nil
		}
		return orNode(parts), nil
	}
	name := p.toks[p.i]
	s, ok := p.searches[name]
	if !ok {
		return nil, fmt.Errorf("unknown search %q", name)
	}
	p.i++
	return ref{s}, nil
}
