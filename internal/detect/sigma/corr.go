package sigma

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Correlation is a correlation rule (Sigma's correlation specification):
// it fires when the events its rules match, grouped by fields, meet its
// condition within a timespan.
type Correlation struct {
	Type     string   // event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile
	Rules    []string // names or ids of the rules it correlates
	GroupBy  []string
	Timespan time.Duration
	// Field is the field value_count counts the distinct values of, and
	// value_sum, value_avg and value_percentile aggregate.
	Field      string
	Percentile float64
	Conds      []corrCond // all must hold (a range is two)
	// Aliases name one field under several names: alias -> rule -> field.
	Aliases map[string]map[string]string
	// Generate: the correlated rules also make findings of their own.
	Generate bool
}

type corrCond struct {
	op string // gt, gte, lt, lte, eq, neq
	v  float64
}

func (c corrCond) holds(x float64) bool {
	switch c.op {
	case "gt":
		return x > c.v
	case "gte":
		return x >= c.v
	case "lt":
		return x < c.v
	case "lte":
		return x <= c.v
	case "eq":
		return x == c.v
	}
	return x != c.v
}

var corrTypes = []string{"event_count", "value_count", "temporal", "temporal_ordered", "value_sum", "value_avg", "value_percentile"}

// parseCorrelation reads a correlation section.
func parseCorrelation(n *yaml.Node) (*Correlation, error) {
	var raw struct {
		Type      string                       `yaml:"type"`
		Rules     []string                     `yaml:"rules"`
		GroupBy   []string                     `yaml:"group-by"`
		Timespan  string                       `yaml:"timespan"`
		Condition map[string]any               `yaml:"condition"`
		Aliases   map[string]map[string]string `yaml:"aliases"`
		Generate  bool                         `yaml:"generate"`
	}
	if err := n.Decode(&raw); err != nil {
		return nil, err
	}
	c := &Correlation{Type: raw.Type, Rules: raw.Rules, GroupBy: raw.GroupBy, Aliases: raw.Aliases, Generate: raw.Generate}
	if !slices.Contains(corrTypes, c.Type) {
		return nil, fmt.Errorf("unknown correlation type %q (%s)", c.Type, strings.Join(corrTypes, ", "))
	}
	if len(c.Rules) == 0 {
		return nil, errors.New("a correlation names no rules")
	}
	d, err := parseTimespan(raw.Timespan)
	if err != nil {
		return nil, err
	}
	c.Timespan = d
	for k, v := range raw.Condition {
		switch k {
		case "field":
			c.Field = fmt.Sprint(v)
		case "percentile":
			p, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil || p <= 0 || p > 100 {
				return nil, fmt.Errorf("percentile %v is not in (0, 100]", v)
			}
			c.Percentile = p
		case "gt", "gte", "lt", "lte", "eq", "neq":
			x, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return nil, fmt.Errorf("condition %s: %v is not a number", k, v)
			}
			c.Conds = append(c.Conds, corrCond{k, x})
		default:
			return nil, fmt.Errorf("unknown condition key %q", k)
		}
	}
	slices.SortFunc(c.Conds, func(a, b corrCond) int { return strings.Compare(a.op, b.op) })
	switch c.Type {
	case "temporal", "temporal_ordered":
		if len(c.Rules) < 2 {
			return nil, fmt.Errorf("%s correlates two rules or more", c.Type)
		}
	default:
		if len(c.Conds) == 0 {
			return nil, fmt.Errorf("%s needs a condition (gt, gte, lt, lte, eq or neq)", c.Type)
		}
		if c.Type != "event_count" && c.Field == "" {
			return nil, fmt.Errorf("%s needs condition.field", c.Type)
		}
		if c.Type == "value_percentile" && c.Percentile == 0 {
			c.Percentile = 95
		}
	}
	return c, nil
}

// parseTimespan reads 30s, 5m, 1h, 2d, 1w.
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and s, m, h, d or w", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("timespan %q: want a positive number and s, m, h, d or w", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("timespan %q: unit must be s, m, h, d or w", s)
	}
	return time.Duration(n) * unit, nil
}

// Hit is an event one of a correlation's rules matched: when, which rule,
// and the values of the fields the correlation reads.
type Hit struct {
	TS       time.Time
	Rule     *Rule
	Values   map[string]string // field (after aliases) -> value
	Computer string
	Src      event.Source // where the event was read (the order of equal times)
	RecordID uint64       // the event's record id
	EventID  uint32
}

// record is where the hit's event is, as evidence.
func (h *Hit) record() map[string]any {
	return map[string]any{"source_file": h.Src.File, "record_id": h.RecordID, "offset_or_line": h.Src.Line, "event_id": h.EventID,
		"time": h.TS.UTC().Format(time.RFC3339Nano), "computer": h.Computer}
}

// Fired is a correlation that fired: for which group, when its window
// started and when it was met.
type Fired struct {
	Rule  *Rule // the correlation rule
	Group []string
	From  time.Time
	At    time.Time
	Value float64 // the count, sum, average or percentile that met the condition
	Last  Hit     // the hit that met it
}

// Fields returns the event fields a correlation reads from a rule's
// events: its group-by fields and its field, through its aliases.
func (c *Correlation) Fields(r *Rule) map[string]string {
	out := map[string]string{} // name in the correlation -> field of r's events
	for _, f := range append(slices.Clone(c.GroupBy), c.Field) {
		if f == "" {
			continue
		}
		out[f] = f
		if a, ok := c.Aliases[f]; ok {
			for _, ref := range []string{r.Name, r.ID} {
				if ref != "" && a[ref] != "" {
					out[f] = a[ref]
				}
			}
		}
	}
	return out
}

// refers reports whether a correlation names rule r.
func (c *Correlation) refers(r *Rule) int {
	for i, ref := range c.Rules {
		if ref == r.ID || (r.Name != "" && ref == r.Name) {
			return i
		}
	}
	return -1
}

// Correlate runs a correlation rule over its hits, which must be in time
// order, and returns each time it fires. State is bounded: per group, only
// the hits inside the timespan are kept.
func Correlate(corr *Rule, hits []Hit) []Fired {
	c := corr.Corr
	type groupState struct {
		times  []time.Time
		values []float64
		seen   map[string]time.Time // value_count: distinct value -> last seen
		last   []time.Time          // temporal: each rule's last time; ordered: when the chain up to it completed
		start  []time.Time          // temporal_ordered: when that chain started
	}
	groups := map[string]*groupState{}
	var out []Fired
	for _, h := range hits {
		idx := c.refers(h.Rule)
		if idx < 0 {
			continue
		}
		key := make([]string, len(c.GroupBy))
		for i, g := range c.GroupBy {
			key[i] = h.Values[g]
		}
		k := strings.Join(key, "\x00")
		g := groups[k]
		if g == nil {
			g = &groupState{seen: map[string]time.Time{}, last: make([]time.Time, len(c.Rules)), start: make([]time.Time, len(c.Rules))}
			groups[k] = g
		}
		from := h.TS.Add(-c.Timespan)
		// Drop what left the window.
		drop := 0
		for drop < len(g.times) && g.times[drop].Before(from) {
			drop++
		}
		g.times, g.values = g.times[drop:], g.values[min(drop, len(g.values)):]
		fire := func(v float64, start time.Time) {
			out = append(out, Fired{Rule: corr, Group: key, From: start, At: h.TS, Value: v, Last: h})
		}
		holds := func(x float64) bool {
			for _, cd := range c.Conds {
				if !cd.holds(x) {
					return false
				}
			}
			return true
		}
		switch c.Type {
		case "event_count":
			g.times = append(g.times, h.TS)
			if n := float64(len(g.times)); holds(n) {
				fire(n, g.times[0])
			}
		case "value_count":
			v, ok := h.Values[c.Field]
			if !ok {
				continue
			}
			g.seen[v] = h.TS
			first := h.TS
			for val, t := range g.seen {
				if t.Before(from) {
					delete(g.seen, val)
				} else if t.Before(first) {
					first = t
				}
			}
			if n := float64(len(g.seen)); holds(n) {
				fire(n, first)
			}
		case "value_sum", "value_avg", "value_percentile":
			x, err := strconv.ParseFloat(strings.TrimSpace(h.Values[c.Field]), 64)
			if err != nil {
				continue
			}
			g.times, g.values = append(g.times, h.TS), append(g.values, x)
			var v float64
			switch c.Type {
			case "value_sum":
				for _, y := range g.values {
					v += y
				}
			case "value_avg":
				for _, y := range g.values {
					v += y
				}
				v /= float64(len(g.values))
			default:
				v = percentile(g.values, c.Percentile)
			}
			if holds(v) {
				fire(v, g.times[0])
			}
		case "temporal":
			g.last[idx] = h.TS
			start := h.TS
			all := true
			for _, t := range g.last {
				if t.IsZero() || t.Before(from) {
					all = false
					break
				}
				if t.Before(start) {
					start = t
				}
			}
			if all {
				fire(float64(len(c.Rules)), start)
				clear(g.last) // fire again only on a new complete set
			}
		case "temporal_ordered":
			switch {
			case idx == 0:
				g.last[0], g.start[0] = h.TS, h.TS
			case !g.last[idx-1].IsZero() && !g.start[idx-1].Before(from):
				g.last[idx], g.start[idx] = h.TS, g.start[idx-1]
			}
			n := len(c.Rules) - 1
			if idx == n && !g.last[n].IsZero() && g.last[n].Equal(h.TS) && !g.start[n].Before(from) {
				fire(float64(len(c.Rules)), g.start[n])
				clear(g.last)
				clear(g.start)
			}
		}
	}
	return out
}

// percentile returns the p-th percentile of xs (nearest rank).
func percentile(xs []float64, p float64) float64 {
	s := slices.Clone(xs)
	slices.SortFunc(s, cmp.Compare[float64])
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
