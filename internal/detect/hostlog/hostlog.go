// Package hostlog finds intrusion steps in Windows host events (the winlog
// table): web-server processes starting shells (the Exchange web-shell
// pattern), commands sent over WMI and WinRM, services installed to run
// commands (PsExec and its kin), pass-the-hash and Kerberoasting
// signatures, explicit credentials used against other machines, logons
// from sources an account never used, persistence (services, scheduled
// tasks, Run keys), cleared logs and weakened auditing, and credential
// theft (LSASS read, dumps, DCSync).
//
// Each rule judges one event; repeated hits of a rule on one host, for
// one account and one subject, make one finding that keeps the first and
// last time, the count, and where the evidence is (file, record id). A
// finding names the host by its computer name and, when the host's own
// Sysmon network events give it, by its address, so that incidents join
// host and network evidence of one intrusion.
package hostlog

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// Baseline is how much of the start of the data shows the sources each
	// account logs on from (7 days, or 30 % of the data when shorter; no
	// new-source findings on less than 2 days of data).
	Baseline time.Duration
}

// Detector is the host events detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

// New returns a host events detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.Baseline <= 0 {
		cfg.Baseline = 7 * 24 * time.Hour
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "host" }

// maxExamples is how many events a finding points to.
const maxExamples = 5

type key struct {
	rule, sensor, computer, subject string
}

// agg is the running total of one rule's hits on one host, for one
// subject. What it keeps of single events (the strongest hit, details,
// examples) is chosen by detect.RecordOrder, never by arrival.
type agg struct {
	rule        *rule
	h           hit // the highest score, the earliest of equals
	hAt         time.Time
	hSrc        event.Source
	n           int
	first, last time.Time
	details     detect.Earliest[string]
	accounts    map[string]bool
	sources     map[string]bool
	examples    detect.Earliest[map[string]any]
}

// view is an aggregate as a finding shows it.
type view struct {
	rule        *rule
	h           hit
	n           int
	first, last time.Time
	details     []string
	accounts    map[string]bool
	sources     map[string]bool
	examples    []map[string]any
}

type logonKey struct{ account, computer, src string }

// name is an account as first written.
type name struct {
	name string
	at   time.Time
	src  event.Source
}

// tally gathers the events, in any order (detect.Tally).
type tally struct {
	d      *Detector
	ids    map[uint32]bool // the events any rule reads
	aggs   map[key]*agg
	addrs  detect.HostAddrs       // computers' own addresses (Sysmon 3)
	logons map[logonKey]time.Time // first network logon per account, host and source
	names  map[string]name        // an account as first written, by its lower-case form
	first  time.Time
	last   time.Time
}

var _ detect.Incremental = (*Detector)(nil)

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	return detect.RunTally(ctx, d, r, w)
}

// Tally implements detect.Incremental.
func (d *Detector) Tally() detect.Tally {
	ids := map[uint32]bool{3: true, 4624: true}
	for i := range rules {
		for _, id := range rules[i].ids {
			ids[id] = true
		}
	}
	return &tally{d: d, ids: ids, aggs: map[key]*agg{}, logons: map[logonKey]time.Time{}, names: map[string]name{}}
}

// Finish implements detect.Incremental: host findings have nothing more.
func (d *Detector) Finish(_ context.Context, _ store.Reader, _ store.Window, _ detect.Tally, fs []detect.Finding) ([]detect.Finding, error) {
	return fs, nil
}

func (st *tally) Kinds() []event.Kind { return []event.Kind{event.KindWinlog} }

func (st *tally) Read(ctx context.Context, r store.Reader, w store.Window, skip func(*event.Source) bool) error {
	err := r.HostEvents(ctx, w, store.HostFilter{EventIDs: slices.Sorted(maps.Keys(st.ids))}, func(e *event.HostEvent) error {
		if skip == nil || !skip(&e.Src) {
			st.add(e)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("host events: %w", err)
	}
	return nil
}

// Add adds the events of a batch as the store gives them back: carved
// records and events no rule reads are left out.
func (st *tally) Add(b *event.Batch) {
	for i := range b.Host {
		if e := &b.Host[i]; !e.Carved && st.ids[e.EventID] {
			c := *e
			c.TS = detect.StoredTime(c.TS)
			st.add(&c)
		}
	}
}

func (st *tally) add(e *event.HostEvent) {
	if st.first.IsZero() || e.TS.Before(st.first) {
		st.first = e.TS
	}
	st.last = event.Latest(st.last, e.TS)
	st.addrs.Add(e)
	switch e.EventID {
	case 4624:
		st.logon(e)
	}
	for i := range rules {
		r := &rules[i]
		if !slices.Contains(r.ids, e.EventID) {
			continue
		}
		h, ok := r.judge(e)
		if !ok {
			continue
		}
		k := key{r.name, e.Src.Sensor, e.Computer, h.subject}
		a := st.aggs[k]
		if a == nil {
			k = key{r.name, strings.Clone(k.sensor), strings.Clone(k.computer), strings.Clone(k.subject)}
			a = &agg{rule: r, h: h.cloned(), hAt: e.TS, hSrc: e.Src.Clone(), first: e.TS, sources: map[string]bool{},
				accounts: map[string]bool{}, details: detect.Earliest[string]{N: maxExamples}, examples: detect.Earliest[map[string]any]{N: maxExamples}}
			st.aggs[k] = a
		}
		if person(h.account) && !a.accounts[h.account] {
			a.accounts[strings.Clone(h.account)] = true
		}
		a.n++
		if e.TS.Before(a.first) {
			a.first = e.TS
		}
		a.last = event.Latest(a.last, e.TS)
		if h.score > a.h.score || (h.score == a.h.score && detect.RecordOrder(e.TS, &e.Src, a.hAt, &a.hSrc) < 0) {
			a.h, a.hAt, a.hSrc = h.cloned(), e.TS, e.Src.Clone()
		}
		if h.detail != "" {
			a.details.OfferDistinct(e.TS, &e.Src, strings.Clone(h.detail), func(x, y string) bool { return x == y })
		}
		if h.src != "" && h.src != "-" && !a.sources[h.src] {
			a.sources[strings.Clone(h.src)] = true
		}
		a.examples.Offer(e.TS, &e.Src, func() map[string]any {
			return map[string]any{"source_file": strings.Clone(e.Src.File), "record_id": e.RecordID, "offset_or_line": e.Src.Line,
				"event_id": e.EventID, "time": e.TS.UTC().Format(time.RFC3339Nano)}
		})
	}
}

// cloned copies the hit's strings out of the event they came from.
func (h hit) cloned() hit {
	h.account, h.subject, h.detail, h.src, h.why = strings.Clone(h.account), strings.Clone(h.subject), strings.Clone(h.detail),
		strings.Clone(h.src), strings.Clone(h.why)
	return h
}

// logon keeps the first network or remote-interactive logon of each
// account from each source to each host.
func (st *tally) logon(e *event.HostEvent) {
	lt := field(e, "LogonType")
	if lt != "3" && lt != "10" {
		return
	}
	user := field(e, "TargetUserName")
	src := field(e, "IpAddress")
	if user == "" || strings.HasSuffix(user, "$") || strings.EqualFold(user, "ANONYMOUS LOGON") || src == "" || src == "-" ||
		src == "127.0.0.1" || src == "::1" {
		return
	}
	written := account(field(e, "TargetDomainName"), user)
	acct := strings.ToLower(written)
	if n, ok := st.names[acct]; !ok || detect.RecordOrder(e.TS, &e.Src, n.at, &n.src) < 0 {
		st.names[strings.Clone(acct)] = name{strings.Clone(written), e.TS, e.Src.Clone()}
	}
	k := logonKey{acct + "|" + lt, e.Computer, src}
	if t, ok := st.logons[k]; !ok || e.TS.Before(t) {
		if !ok {
			k = logonKey{strings.Clone(k.account), strings.Clone(k.computer), strings.Clone(k.src)}
		}
		st.logons[k] = e.TS
	}
}

// person reports an account a person (or an intruder) uses: not a
// computer's own account (NAME$) nor one of Windows' service identities.
func person(acct string) bool {
	if acct == "" || acct == "-" || strings.HasSuffix(acct, "$") {
		return false
	}
	_, user, ok := strings.Cut(acct, `\`)
	if !ok {
		user = acct
	}
	switch strings.ToUpper(user) {
	case "SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE", "ANONYMOUS LOGON":
		return false
	}
	return true
}

// hostAddr returns the address a computer's own network events show.
func (st *tally) hostAddr(computer string) netip.Addr { return st.addrs.Addr(computer) }

// maxSubjects is how many findings one rule makes on one host before the
// rest fold into one: a tool that installs a hundred random services is
// one finding, not a hundred.
const maxSubjects = 5

// fold merges, per rule and host, the aggregates beyond maxSubjects
// subjects into one.
func fold(aggs map[key]*view) {
	type group struct{ rule, sensor, computer string }
	byGroup := map[group][]key{}
	for k := range aggs {
		g := group{k.rule, k.sensor, k.computer}
		byGroup[g] = append(byGroup[g], k)
	}
	for g, ks := range byGroup {
		if len(ks) <= maxSubjects {
			continue
		}
		slices.SortFunc(ks, func(a, b key) int { return cmp.Compare(a.subject, b.subject) })
		var m *view
		for _, k := range ks {
			a := aggs[k]
			delete(aggs, k)
			if m == nil {
				m = &view{rule: a.rule, h: a.h, first: a.first, last: a.last, accounts: map[string]bool{}, sources: map[string]bool{}}
			}
			if a.h.score > m.h.score {
				m.h = a.h
			}
			m.n += a.n
			if a.first.Before(m.first) {
				m.first = a.first
			}
			m.last = event.Latest(m.last, a.last)
			for x := range a.accounts {
				m.accounts[x] = true
			}
			for x := range a.sources {
				m.sources[x] = true
			}
			for _, d := range a.details {
				if len(m.details) < maxExamples && !slices.Contains(m.details, d) {
					m.details = append(m.details, d)
				}
			}
			for _, x := range a.examples {
				if len(m.examples) < maxExamples {
					m.examples = append(m.examples, x)
				}
			}
		}
		m.h.why += fmt.Sprintf(", and %d more like it", len(ks)-1)
		aggs[key{g.rule, g.sensor, g.computer, fmt.Sprintf("%d subjects", len(ks))}] = m
	}
}

// Findings implements detect.Tally.
func (st *tally) Findings() []detect.Finding {
	views := make(map[key]*view, len(st.aggs))
	for k, a := range st.aggs {
		views[k] = &view{rule: a.rule, h: a.h, n: a.n, first: a.first, last: a.last, details: a.details.Values(), accounts: a.accounts,
			sources: a.sources, examples: a.examples.Values()}
	}
	fold(views)
	var out []detect.Finding
	for k, a := range views {
		f := detect.Finding{Detector: "host", Sensor: k.sensor, Host: k.computer, FirstSeen: a.first, LastSeen: a.last,
			Attack: slices.Clone(a.h.attack)}
		if len(a.accounts) > 0 {
			f.Accounts = slices.Sorted(maps.Keys(a.accounts))
		}
		f.Src = st.hostAddr(k.computer)
		score := a.h.score
		if k.rule == "kerberoast" {
			// One RC4 ticket is an old client; many services asked for at once is a sweep.
			score = min(0.9, score+0.1*float64(len(a.details)-1))
		}
		f.Score = detect.Round(score, 3)
		f.Components = map[string]float64{k.rule: f.Score}
		f.Severity = detect.SeverityOf(f.Score)
		f.Evidence = map[string]any{"rule": k.rule, "stage": a.rule.stage, "computer": k.computer, "events": a.n, "records": a.examples}
		if k.subject != "" {
			f.Evidence["subject"] = k.subject
		}
		if len(a.details) > 0 {
			f.Evidence["details"] = a.details
		}
		if len(a.sources) > 0 {
			f.Evidence["sources"] = slices.Sorted(maps.Keys(a.sources))
		}
		times := ""
		if a.n > 1 {
			times = fmt.Sprintf(" (%d times, %s)", a.n, detect.Span(a.last.Sub(a.first)))
		}
		f.Summary = "On " + k.computer + ", " + a.h.why + times + "."
		out = append(out, f)
	}
	order := func(a, b detect.Finding) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), strings.Compare(a.Host, b.Host), a.FirstSeen.Compare(b.FirstSeen),
			strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Summary, b.Summary))
	}
	slices.SortFunc(out, order) // newSources takes the first that follows a logon
	out = append(out, st.newSources(out)...)
	slices.SortFunc(out, order)
	return out
}

// newSources reports network and remote-interactive logons from a source
// an account had not used during the baseline (or by an account the
// baseline never saw log on over the network): lateral movement with
// stolen credentials looks like that.
//
// A logon followed, on the same host within two hours, by a step of an
// intrusion (a service, a task, a shell under a server process, stolen
// credentials) is what an operator does on arrival: it scores higher.
func (st *tally) newSources(rulesFound []detect.Finding) []detect.Finding {
	span := st.last.Sub(st.first)
	if span < 48*time.Hour {
		return nil
	}
	base := min(st.d.cfg.Baseline, time.Duration(float64(span)*0.3))
	cut := st.first.Add(base)
	used := map[string]bool{} // account|type|source seen during the baseline
	for k, t := range st.logons {
		if t.Before(cut) {
			used[k.account+"|"+k.src] = true
		}
	}
	var out []detect.Finding
	for k, t := range st.logons {
		acct, lt, _ := strings.Cut(k.account, "|")
		acct = st.names[acct].name
		if t.Before(cut) || used[k.account+"|"+k.src] {
			continue
		}
		score, technique, what := 0.45, "T1021.002", "a network logon"
		if lt == "10" {
			score, technique, what = 0.55, "T1021.001", "a remote desktop logon"
		}
		f := detect.Finding{Detector: "host", Host: k.computer, Accounts: []string{acct}, FirstSeen: t, LastSeen: t,
			Score: score, Severity: detect.SeverityOf(score), Components: map[string]float64{"new-source": score},
			Attack: []string{technique, "T1078"}}
		f.Dst = st.hostAddr(k.computer)
		if a, err := netip.ParseAddr(k.src); err == nil {
			f.Src = a.Unmap()
		}
		f.Evidence = map[string]any{"rule": "new-source", "stage": "lateral-movement", "computer": k.computer, "source": k.src,
			"logon_type": lt, "baseline_until": cut.UTC().Format(time.RFC3339)}
		for i := range rulesFound {
			g := &rulesFound[i]
			if g.Host == k.computer && g.Score >= 0.5 && !g.FirstSeen.Before(t) && g.FirstSeen.Sub(t) <= 2*time.Hour {
				f.Score = max(f.Score, 0.8)
				f.Components["followed_by"] = g.Score
				f.Evidence["followed_by"] = g.Summary
				what += ", followed by " + fmt.Sprint(g.Evidence["rule"]) + " " + detect.Span(g.FirstSeen.Sub(t)) + " later"
				break
			}
		}
		f.Severity = detect.SeverityOf(f.Score)
		f.Summary = fmt.Sprintf("On %s, %s logged on from %s (%s), a source it had not used during the baseline.", k.computer, acct, k.src, what)
		out = append(out, f)
	}
	return out
}
