package sigma

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Detector runs the configured Sigma rules over the stored Windows events
// (detect.Env.Sigma): one finding per rule and computer, with the rule's
// title, id, level and ATT&CK tags, the fields it matched and the events
// (file, record id) it matched.
type Detector struct {
	env *detect.Env
}

// New returns the sigma detector.
func New(env *detect.Env) *Detector { return &Detector{env: env} }

// Name implements detect.Detector.
func (d *Detector) Name() string { return "sigma" }

// Load reads the rules of a setup and builds their engine; it returns the
// rules loaded and every refusal.
func Load(setup detect.SigmaSetup) (*Engine, []*Rule, []error) {
	cfg := DefaultConfig()
	var errs []error
	if setup.Logsources != "" {
		c, err := LoadConfig(setup.Logsources)
		if err != nil {
			return nil, nil, []error{err}
		}
		cfg = c
	}
	var rules []*Rule
	seen := map[string]bool{}
	for _, p := range setup.Rules {
		rs, es := LoadDir(p, Options{Placeholders: setup.Placeholders})
		errs = append(errs, es...)
		for _, r := range rs {
			if seen[r.ID] {
				errs = append(errs, &LoadError{File: r.File, Reason: "rule " + r.ID + " is loaded already (from another file): this copy is left out"})
				continue
			}
			seen[r.ID] = true
			rules = append(rules, r)
		}
	}
	rules, es := ApplyFilters(rules)
	errs = append(errs, es...)
	en, es := NewEngine(rules, cfg)
	errs = append(errs, es...)
	known := map[string]bool{}
	for _, r := range rules {
		if r.Corr == nil {
			known[r.ID] = true
			if r.Name != "" {
				known[r.Name] = true
			}
		}
	}
	mapped := rules[:0]
	for _, r := range rules {
		if r.Corr != nil {
			var missing []string
			for _, ref := range r.Corr.Rules {
				if !known[ref] {
					missing = append(missing, ref)
				}
			}
			if len(missing) > 0 {
				errs = append(errs, &LoadError{File: r.File, Reason: fmt.Sprintf("correlation %s names rules not loaded: %s", r.ID, strings.Join(missing, ", "))})
				continue
			}
			mapped = append(mapped, r)
			continue
		}
		if _, ok := cfg.gates(r.Logsource); ok {
			mapped = append(mapped, r)
		} else if _, _, ok := networkGate(r.Logsource); ok {
			mapped = append(mapped, r)
		}
	}
	return en, mapped, errs
}

type findingKey struct {
	rule     *Rule
	sensor   string
	computer string
}

// hits is the running total of one rule on one computer. The fields it
// shows are those of its earliest event (detect.RecordOrder), whichever
// came first.
type hits struct {
	n           int
	first, last time.Time
	fields      detect.Earliest[map[string]string] // of the earliest event
	records     detect.Earliest[map[string]any]
	accounts    map[string]bool
}

var _ detect.Incremental = (*Detector)(nil)

// Detect implements detect.Detector. Rules that cannot be loaded do not
// stop the hunt; they are for `dwell rules` to report.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	return detect.RunTally(ctx, d, r, w)
}

// Tally implements detect.Incremental: the configured rules' matches over
// the Windows events. The rules are loaded once, here.
func (d *Detector) Tally() detect.Tally {
	t := &tally{found: map[findingKey]*hits{}}
	if len(d.env.Sigma.Rules) == 0 {
		return t
	}
	t.en, t.rules, _ = Load(d.env.Sigma)
	for _, r := range t.rules {
		if r.Corr != nil {
			t.corrs = append(t.corrs, r)
		}
	}
	return t
}

// Finish implements detect.Incremental: it adds the findings of the rules
// over the network tables, read whole when those tables changed since the
// tally last read them (their record counts: records are only ever added,
// and a deleted sensor starts a new tally).
func (d *Detector) Finish(ctx context.Context, r store.Reader, w store.Window, t detect.Tally, fs []detect.Finding) ([]detect.Finding, error) {
	st, ok := t.(*tally)
	if !ok || st.en == nil {
		return fs, nil
	}
	net, err := st.net.findings(ctx, r, w, st.rules)
	if err != nil {
		return nil, err
	}
	out := append(fs, net...)
	slices.SortFunc(out, func(a, b detect.Finding) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.Host, b.Host), strings.Compare(a.Sensor, b.Sensor),
			strings.Compare(a.Summary, b.Summary))
	})
	return out, nil
}

// tally matches the Windows events as they come (detect.Tally).
type tally struct {
	en    *Engine // nil: no rules
	rules []*Rule
	corrs []*Rule

	addrs    detect.HostAddrs
	found    map[findingKey]*hits
	corrHits []Hit // the hits of rules correlations read, in any order
	// strs holds one copy of each string the hits keep (computers, files,
	// grouped values repeat across millions of hits).
	strs map[string]string

	net netRun // the network rules' last run; Finish's, not the tally's lock
}

// netRun keeps the findings of the rules over the network tables with the
// tables' record counts they were read at.
type netRun struct {
	mu     sync.Mutex
	counts []int64
	fs     []detect.Finding
}

// findings returns the network rules' findings, read again only when a
// table they read holds other records than at the last read (and always
// for a window other than all history).
func (n *netRun) findings(ctx context.Context, r store.Reader, w store.Window, rules []*Rule) ([]detect.Finding, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var counts []int64
	for _, table := range networkTables(rules) {
		k, _ := event.ParseKind(table)
		c, err := r.Count(ctx, k)
		if err != nil {
			return nil, err
		}
		counts = append(counts, c)
	}
	if len(counts) == 0 {
		return nil, nil
	}
	all := w.Since.IsZero() && w.Until.IsZero()
	if !all || n.counts == nil || !slices.Equal(counts, n.counts) {
		fs, err := networkFindings(ctx, r, w, rules)
		if err != nil {
			return nil, err
		}
		n.fs, n.counts = fs, nil
		if all {
			n.counts = counts
		}
	}
	out := make([]detect.Finding, len(n.fs))
	for i, f := range n.fs {
		f.Evidence = maps.Clone(f.Evidence)
		f.Components = maps.Clone(f.Components)
		out[i] = f
	}
	return out, nil
}

// intern returns the tally's copy of s.
func (t *tally) intern(s string) string {
	if c, ok := t.strs[s]; ok {
		return c
	}
	if t.strs == nil {
		t.strs = map[string]string{}
	}
	c := strings.Clone(s)
	t.strs[c] = c
	return c
}

func (t *tally) Kinds() []event.Kind { return []event.Kind{event.KindWinlog} }

func (t *tally) Read(ctx context.Context, r store.Reader, w store.Window, skip func(*event.Source) bool) error {
	if t.en == nil {
		return nil
	}
	err := r.HostEvents(ctx, w, store.HostFilter{}, func(e *event.HostEvent) error {
		if skip == nil || !skip(&e.Src) {
			t.add(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("host events: %w", err)
	}
	return nil
}

// Add adds the events of a batch as the store gives them back (carved
// records left out).
func (t *tally) Add(b *event.Batch) {
	if t.en == nil {
		return
	}
	for i := range b.Host {
		if e := &b.Host[i]; !e.Carved {
			c := *e
			c.TS = detect.StoredTime(c.TS)
			t.add(&c)
		}
	}
}

func (t *tally) add(e *event.HostEvent) {
	t.addrs.Add(e)
	t.en.Match(e, func(rule *Rule) {
		// A rule a correlation reads makes findings of its own only
		// when one of those correlations says generate: true.
		referenced, generate := false, false
		var values map[string]string
		for _, c := range t.corrs {
			if c.Corr.refers(rule) < 0 {
				continue
			}
			referenced, generate = true, generate || c.Corr.Generate
			if values == nil {
				values = map[string]string{}
			}
			ev := NewEvent(e)
			for name, field := range c.Corr.Fields(rule) {
				if v, ok := ev.Get(field); ok {
					values[name] = t.intern(v)
				}
			}
		}
		if values != nil {
			t.corrHits = append(t.corrHits, Hit{TS: e.TS, Rule: rule, Values: values, Computer: t.intern(e.Computer),
				Src:      event.Source{Sensor: t.intern(e.Src.Sensor), File: t.intern(e.Src.File), Line: e.Src.Line},
				RecordID: e.RecordID, EventID: e.EventID})
		}
		if referenced && !generate {
			return
		}
		k := findingKey{rule, e.Src.Sensor, e.Computer}
		h := t.found[k]
		if h == nil {
			k = findingKey{rule, t.intern(k.sensor), t.intern(k.computer)}
			h = &hits{first: e.TS, last: e.TS, accounts: map[string]bool{}, fields: detect.Earliest[map[string]string]{N: 1},
				records: detect.Earliest[map[string]any]{N: 5}}
			t.found[k] = h
		}
		h.n++
		if e.TS.Before(h.first) {
			h.first = e.TS
		}
		h.last = event.Latest(h.last, e.TS)
		h.fields.Offer(e.TS, &e.Src, func() map[string]string { return rule.matchedFields(e) })
		for _, name := range []string{"User", "SubjectUserName", "TargetUserName"} {
			if v, ok := e.Field(name); ok && v != "" && v != "-" && !strings.HasSuffix(v, "$") && !h.accounts[v] {
				h.accounts[strings.Clone(v)] = true
			}
		}
		h.records.Offer(e.TS, &e.Src, func() map[string]any {
			return map[string]any{"source_file": strings.Clone(e.Src.File), "record_id": e.RecordID,
				"offset_or_line": e.Src.Line, "event_id": e.EventID, "time": e.TS.UTC().Format(time.RFC3339Nano)}
		})
	})
}

// Findings implements detect.Tally: a finding per rule and computer, and
// per correlation and group.
func (t *tally) Findings() []detect.Finding {
	if t.en == nil {
		return nil
	}
	out := make([]detect.Finding, 0, len(t.found))
	out = append(out, correlationFindings(t.corrs, slices.Clone(t.corrHits), &t.addrs)...)
	for k, h := range t.found {
		rule := k.rule
		score := levelScore(rule.Level)
		f := detect.Finding{Detector: "sigma", Sensor: k.sensor, Host: k.computer, Src: t.addrs.Addr(k.computer), Score: score,
			Severity: detect.SeverityOf(score), Components: map[string]float64{"level": score}, FirstSeen: h.first, LastSeen: h.last,
			Attack: rule.techniques()}
		if len(h.accounts) > 0 {
			f.Accounts = slices.Sorted(maps.Keys(h.accounts))
		}
		f.Evidence = map[string]any{"rule_id": rule.ID, "rule_title": rule.Title, "level": rule.Level, "rule_file": rule.File,
			"events": h.n, "fields": maps.Clone(h.fields.Values()[0]), "records": h.records.Values(), "stage": rule.stage(), "computer": k.computer}
		times := ""
		if h.n > 1 {
			times = fmt.Sprintf(" (%d events, %s)", h.n, detect.Span(h.last.Sub(h.first)))
		}
		f.Summary = fmt.Sprintf("On %s, Sigma rule %q (%s) matched%s.", k.computer, rule.Title, rule.Level, times)
		out = append(out, f)
	}
	return out
}

// correlationFindings runs the correlation rules over their rules' hits:
// one finding per correlation and group, from its first firing to its
// last.
func correlationFindings(corrs []*Rule, hs []Hit, addrs *detect.HostAddrs) []detect.Finding {
	// In time, then where they were read: the same order whichever order
	// the events came in. The hits of one event keep the engine's order.
	slices.SortStableFunc(hs, func(a, b Hit) int { return detect.RecordOrder(a.TS, &a.Src, b.TS, &b.Src) })
	var out []detect.Finding
	for _, c := range corrs {
		type agg struct {
			first, last Fired
			n           int
			computers   map[string]bool
		}
		byGroup := map[string]*agg{}
		var order []string
		for _, f := range Correlate(c, hs) {
			k := strings.Join(f.Group, "\x00")
			a := byGroup[k]
			if a == nil {
				a = &agg{first: f, computers: map[string]bool{}}
				byGroup[k] = a
				order = append(order, k)
			}
			a.last = f
			a.n++
			a.computers[f.Last.Computer] = true
		}
		for _, k := range order {
			a := byGroup[k]
			score := levelScore(c.Level)
			group := map[string]string{}
			for i, g := range c.Corr.GroupBy {
				group[g] = a.first.Group[i]
			}
			host := ""
			if len(a.computers) == 1 {
				for h := range a.computers {
					host = h
				}
			}
			f := detect.Finding{Detector: "sigma", Host: host, Src: addrs.Addr(host), Score: score, Severity: detect.SeverityOf(score),
				Components: map[string]float64{"level": score}, FirstSeen: a.first.From, LastSeen: a.last.At, Attack: c.techniques()}
			f.Evidence = map[string]any{"rule_id": c.ID, "rule_title": c.Title, "level": c.Level, "rule_file": c.File,
				"correlation": c.Corr.Type, "group": group, "fired": a.n, "value": a.last.Value, "timespan": c.Corr.Timespan.String(),
				"records": []map[string]any{a.first.Last.record(), a.last.Last.record()}, "stage": c.stage(), "computer": host}
			var parts []string
			for _, g := range c.Corr.GroupBy {
				parts = append(parts, g+"="+group[g])
			}
			f.Summary = fmt.Sprintf("Sigma correlation %q (%s, %s within %s) met for %s, %d time(s).", c.Title, c.Level, c.Corr.Type,
				c.Corr.Timespan, strings.Join(parts, ", "), a.n)
			out = append(out, f)
		}
	}
	return out
}

// levelScore maps a rule's level to a finding's score.
func levelScore(level string) float64 {
	switch strings.ToLower(level) {
	case "critical":
		return 0.9
	case "high":
		return 0.75
	case "medium":
		return 0.55
	case "low":
		return 0.35
	}
	return 0.2
}

// techniques returns the ATT&CK technique ids of the rule's tags
// ("attack.t1059.001" is T1059.001).
func (r *Rule) techniques() []string {
	var out []string
	for _, t := range r.Tags {
		if id, ok := strings.CutPrefix(strings.ToLower(t), "attack.t"); ok && id != "" && id[0] >= '0' && id[0] <= '9' {
			out = append(out, "T"+strings.ToUpper(id))
		}
	}
	return out
}

// stage names the intrusion step of the rule's first ATT&CK tactic tag.
func (r *Rule) stage() string {
	for _, t := range r.Tags {
		switch strings.ToLower(t) {
		case "attack.initial-access", "attack.initial_access":
			return "initial-access"
		case "attack.credential-access", "attack.credential_access":
			return "credential-access"
		case "attack.lateral-movement", "attack.lateral_movement":
			return "lateral-movement"
		case "attack.persistence":
			return "persistence"
		case "attack.defense-evasion", "attack.defense_evasion", "attack.defense-impairment":
			return "defense-evasion"
		case "attack.collection":
			return "collection"
		case "attack.exfiltration":
			return "exfiltration"
		case "attack.command-and-control", "attack.command_and_control":
			return "c2"
		}
	}
	return ""
}

// matchedFields returns the values an event has for the fields the rule
// names.
func (r *Rule) matchedFields(e *event.HostEvent) map[string]string {
	out := map[string]string{}
	ev := NewEvent(e)
	for _, s := range r.searches {
		s.fieldNames(func(name string) {
			if v, ok := ev.Get(name); ok {
				out[name] = strings.Clone(v)
			}
		})
	}
	return out
}

func (s *search) fieldNames(fn func(string)) {
	for _, a := range s.any {
		a.fieldNames(fn)
	}
	for _, f := range s.fields {
		fn(f.field)
	}
}
