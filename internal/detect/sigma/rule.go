// Package sigma runs Sigma detection rules (the Sigma 2.1 specification)
// over Windows events: it loads rules from YAML, compiles each detection
// into matchers once (modifiers, wildcards and escaping as the
// specification states), gates each rule on the log source it names
// (channel, provider and event id, through a log-source configuration),
// and matches events given as named fields.
//
// A rule that cannot be loaded is refused with its file, the line and the
// reason; nothing is dropped silently.
package sigma

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule is one loaded, compiled Sigma rule.
type Rule struct {
	ID          string
	Name        string // the rule's name, by which correlations may refer to it
	Title       string
	Level       string // informational, low, medium, high, critical
	Status      string
	Description string
	Tags        []string // "attack.t1059.001", "attack.execution", ...
	Logsource   Logsource
	File        string // where it was read
	// Corr is set for a correlation rule, which has no detection.
	Corr *Correlation
	// Filters lists, for a filter rule (a meta-filter), the rules its
	// condition is added to; a filter makes no finding of its own.
	Filters []string

	cond     node // the compiled condition
	searches map[string]*search
}

// Logsource is the rule's logsource section.
type Logsource struct {
	Product  string `yaml:"product"`
	Category string `yaml:"category"`
	Service  string `yaml:"service"`
}

// LoadError is a rule refused: where and why.
type LoadError struct {
	File   string
	Line   int
	Reason string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// Options configure loading.
type Options struct {
	// Placeholders give the values of %name% placeholders (the expand
	// modifier); a rule using one not given is refused.
	Placeholders map[string][]string
}

// ParseFile loads the rules of one YAML file (a file may hold several
// documents). Each document that is not a detection rule (a correlation
// or a filter, not supported yet) is refused with its reason.
func ParseFile(path string, opt Options) ([]*Rule, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&LoadError{File: path, Reason: err.Error()}}
	}
	return Parse(path, data, opt)
}

// Parse loads the rules of YAML data read from name.
func Parse(name string, data []byte, opt Options) ([]*Rule, []error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var rules []*Rule
	var errs []error
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &LoadError{File: name, Reason: "not YAML: " + err.Error()})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		r, err := compile(name, doc.Content[0], opt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// LoadDir loads every .yml and .yaml file under dir.
func LoadDir(dir string, opt Options) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &LoadError{File: p, Reason: err.Error()})
			return nil
		}
		if d.IsDir() || (filepath.Ext(p) != ".yml" && filepath.Ext(p) != ".yaml") {
			return nil
		}
		rs, es := ParseFile(p, opt)
		rules = append(rules, rs...)
		errs = append(errs, es...)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return rules, errs
}

// ApplyFilters adds each filter rule's condition to the rules it names
// (the rule fires only when the filter's condition holds too) and returns
// the rules that are not filters, with an error for each filter naming a
// rule not loaded.
func ApplyFilters(rules []*Rule) ([]*Rule, []error) {
	byRef := map[string][]*Rule{}
	var out []*Rule
	for _, r := range rules {
		if r.Filters != nil {
			continue
		}
		out = append(out, r)
		byRef[r.ID] = append(byRef[r.ID], r)
		if r.Name != "" {
			byRef[r.Name] = append(byRef[r.Name], r)
		}
	}
	var errs []error
	for _, f := range rules {
		for _, ref := range f.Filters {
			targets := byRef[ref]
			if len(targets) == 0 {
				errs = append(errs, &LoadError{File: f.File, Reason: fmt.Sprintf("filter %s names rule %s, which is not loaded", f.ID, ref)})
			}
			for _, t := range targets {
				t.cond = andNode{t.cond, f.cond}
			}
		}
	}
	return out, errs
}

// compile builds a rule from its YAML mapping.
func compile(file string, n *yaml.Node, opt Options) (*Rule, error) {
	fail := func(at *yaml.Node, format string, args ...any) error {
		line := 0
		if at != nil {
			line = at.Line
		}
		return &LoadError{File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode {
		return nil, fail(n, "a rule is a YAML mapping")
	}
	r := &Rule{File: file}
	var detection *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "id":
			r.ID = v.Value
		case "name":
			r.Name = v.Value
		case "title":
			r.Title = v.Value
		case "level":
			r.Level = v.Value
		case "status":
			r.Status = v.Value
		case "description":
			r.Description = v.Value
		case "tags":
			if err := v.Decode(&r.Tags); err != nil {
				return nil, fail(v, "tags: %v", err)
			}
		case "logsource":
			if err := v.Decode(&r.Logsource); err != nil {
				return nil, fail(v, "logsource: %v", err)
			}
		case "detection":
			detection = v
		case "correlation":
			c, err := parseCorrelation(v)
			if err != nil {
				return nil, fail(v, "correlation: %v", err)
			}
			r.Corr = c
		case "filter":
			if v.Kind != yaml.MappingNode {
				return nil, fail(v, "filter is not a mapping")
			}
			detection = v
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "rules" {
					if err := v.Content[j+1].Decode(&r.Filters); err != nil || len(r.Filters) == 0 {
						return nil, fail(v.Content[j+1], "filter: rules is a list of rule ids or names")
					}
				}
			}
			if len(r.Filters) == 0 {
				return nil, fail(v, "filter: no rules to filter")
			}
		}
	}
	if r.Corr != nil {
		if detection != nil {
			return nil, fail(detection, "a correlation rule has no detection")
		}
		if r.ID == "" && r.Name == "" {
			return nil, fail(n, "no id")
		}
		if r.ID == "" {
			r.ID = r.Name
		}
		return r, nil
	}
	if detection == nil {
		return nil, fail(n, "no detection section")
	}
	if detection.Kind != yaml.MappingNode {
		return nil, fail(detection, "detection is not a mapping")
	}
	r.searches = map[string]*search{}
	var condition *yaml.Node
	for i := 0; i+1 < len(detection.Content); i += 2 {
		k, v := detection.Content[i], detection.Content[i+1]
		switch k.Value {
		case "rules":
			if r.Filters != nil {
				continue // a filter's targets, not a search
			}
			s, err := compileSearch(v, opt)
			if err != nil {
				return nil, fail(v, "%s: %v", k.Value, err)
			}
			r.searches[k.Value] = s
		case "condition":
			condition = v
		case "timeframe":
			return nil, fail(v, "timeframe (Sigma 1 aggregations) is not supported: write a correlation rule")
		default:
			s, err := compileSearch(v, opt)
			if err != nil {
				return nil, fail(v, "%s: %v", k.Value, err)
			}
			r.searches[k.Value] = s
		}
	}
	if condition == nil {
		return nil, fail(detection, "no condition")
	}
	var conds []string
	switch condition.Kind {
	case yaml.ScalarNode:
		conds = []string{condition.Value}
	case yaml.SequenceNode:
		if err := condition.Decode(&conds); err != nil {
			return nil, fail(condition, "condition: %v", err)
		}
	default:
		return nil, fail(condition, "condition is neither text nor a list")
	}
	var parts []node
	for _, c := range conds {
		nd, err := parseCondition(c, r.searches)
		if err != nil {
			return nil, fail(condition, "condition %q: %v", c, err)
		}
		parts = append(parts, nd)
	}
	r.cond = parts[0]
	if len(parts) > 1 {
		r.cond = orNode(parts)
	}
	if r.ID == "" {
		return nil, fail(n, "no id")
	}
	return r, nil
}
