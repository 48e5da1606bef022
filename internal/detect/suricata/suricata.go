// Package suricata turns a network IDS's alerts (Suricata's EVE alert
// events, table alert) into findings, so that what the IDS saw joins the
// incidents beside dwell's own detections: one finding per signature
// between two hosts, scored by the rule's severity and how often it
// fired, with the ATT&CK techniques the rule's metadata names (or its
// classification suggests).
package suricata

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Detector is the IDS alert detector.
type Detector struct {
	env *detect.Env
}

var _ detect.Detector = (*Detector)(nil)

// New returns the IDS alert detector.
func New(env *detect.Env) *Detector { return &Detector{env: env} }

// Name implements detect.Detector.
func (d *Detector) Name() string { return "suricata" }

type groupKey struct {
	sensor   string
	src, dst netip.Addr
	sid      uint64
	sig      string
}

type group struct {
	first      event.Alert // the earliest alert (detect.RecordOrder)
	last       event.Alert // the latest
	count      int64
	severity   uint64
	blocked    int64
	ports      map[uint16]bool
	attack     map[string]bool
	flows      detect.Earliest[string] // the earliest distinct flow ids
	categories map[string]bool
}

// severityScore is the base score of a rule's severity (1 highest).
var severityScore = map[uint64]float64{1: 0.75, 2: 0.55, 3: 0.35, 4: 0.2}

// categoryAttack suggests techniques for rules whose metadata names none,
// from the classification (classification.config's descriptions).
var categoryAttack = map[string][]string{
	"A Network Trojan was detected":                 {"T1071"},
	"Malware Command and Control Activity Detected": {"T1071"},
	"Attempted Administrator Privilege Gain":        {"T1068"},
	"Successful Administrator Privilege Gain":       {"T1068"},
	"Attempted User Privilege Gain":                 {"T1068"},
	"Web Application Attack":                        {"T1190"},
	"Exploit Kit Activity Detected":                 {"T1189"},
	"Detection of a Network Scan":                   {"T1046"},
	"Attempted Information Leak":                    {"T1046"},
	"Attempted Denial of Service":                   {"T1498"},
	"Denial of Service":                             {"T1498"},
	"Crypto Currency Mining Activity Detected":      {"T1496"},
	"Possible Social Engineering Attempted":         {"T1566"},
	"Domain Observed Used for C2 Detected":          {"T1071"},
}

var _ detect.Incremental = (*Detector)(nil)

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	return detect.RunTally(ctx, d, r, w)
}

// Tally implements detect.Incremental: the alerts grouped by sensor, ends
// and signature.
func (d *Detector) Tally() detect.Tally { return &tally{groups: map[groupKey]*group{}} }

// Finish implements detect.Incremental: it leaves out what the
// allow-list allows.
func (d *Detector) Finish(_ context.Context, _ store.Reader, _ store.Window, _ detect.Tally, fs []detect.Finding) ([]detect.Finding, error) {
	out := fs[:0]
	for _, f := range fs {
		if !d.env.Allowed(&f) {
			out = append(out, f)
		}
	}
	return out, nil
}

type tally struct {
	groups map[groupKey]*group
}

func (t *tally) Kinds() []event.Kind { return []event.Kind{event.KindAlert} }

func (t *tally) Read(ctx context.Context, r store.Reader, w store.Window, skip func(*event.Source) bool) error {
	return r.Alerts(ctx, w, func(a *event.Alert) error {
		if skip == nil || !skip(&a.Src) {
			t.add(a)
		}
		return nil
	})
}

func (t *tally) Add(b *event.Batch) {
	for i := range b.Alerts {
		a := b.Alerts[i]
		a.TS = detect.StoredTime(a.TS)
		t.add(&a)
	}
}

func (t *tally) add(a *event.Alert) {
	k := groupKey{a.Src.Sensor, a.SrcIP, a.DstIP, a.SignatureID.V, a.Signature}
	g := t.groups[k]
	if g == nil {
		k.sensor, k.sig = strings.Clone(k.sensor), strings.Clone(k.sig)
		g = &group{first: cloneAlert(a), last: cloneAlert(a), severity: math.MaxUint64, ports: map[uint16]bool{}, attack: map[string]bool{},
			categories: map[string]bool{}, flows: detect.Earliest[string]{N: 5}}
		t.groups[k] = g
	}
	if detect.RecordOrder(a.TS, &a.Src, g.first.TS, &g.first.Src) < 0 {
		g.first = cloneAlert(a)
	}
	if detect.RecordOrder(a.TS, &a.Src, g.last.TS, &g.last.Src) > 0 {
		g.last = cloneAlert(a)
	}
	g.count++
	if a.Severity.Valid && a.Severity.V < g.severity {
		g.severity = a.Severity.V
	}
	if a.Action == "blocked" {
		g.blocked++
	}
	g.ports[a.DstPort] = true
	for _, x := range a.Attack {
		if !g.attack[x] {
			g.attack[strings.Clone(x)] = true
		}
	}
	if a.Category != "" && !g.categories[a.Category] {
		g.categories[strings.Clone(a.Category)] = true
	}
	if a.FlowID != "" {
		g.flows.OfferDistinct(a.TS, &a.Src, a.FlowID, func(x, y string) bool { return x == y })
	}
}

// cloneAlert copies the parts of an alert a finding shows, so that the
// batch it came from can be reused.
func cloneAlert(a *event.Alert) event.Alert {
	return event.Alert{TS: a.TS, AppProto: strings.Clone(a.AppProto), Src: a.Src.Clone()}
}

// Findings returns one finding per group, the allow-list not yet applied
// (Finish).
func (t *tally) Findings() []detect.Finding {
	out := make([]detect.Finding, 0, len(t.groups))
	for k, g := range t.groups {
		out = append(out, finding(k, g))
	}
	slices.SortFunc(out, func(a, b detect.Finding) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Summary, b.Summary))
	})
	return out
}

func finding(k groupKey, g *group) detect.Finding {
	base, ok := severityScore[g.severity]
	if !ok {
		base = 0.3 // no severity given
	}
	// More alerts are more certain, up to a tenth more at a thousand.
	volume := detect.Ramp(math.Log10(float64(g.count)), 0, 3)
	blocked := float64(g.blocked) / float64(g.count)
	score := min(0.95, base*(1+0.15*volume)*(1-0.3*blocked))
	f := detect.Finding{Detector: "suricata", Sensor: k.sensor, Src: k.src, Dst: k.dst, Score: score, Severity: detect.SeverityOf(score),
		FirstSeen: g.first.TS, LastSeen: g.last.TS,
		Components: map[string]float64{"severity": detect.Round(base, 3), "volume": detect.Round(volume, 3), "blocked": detect.Round(blocked, 3)}}
	attack := make([]string, 0, len(g.attack))
	for t := range g.attack {
		attack = append(attack, t)
	}
	if len(attack) == 0 {
		for c := range g.categories {
			attack = append(attack, categoryAttack[c]...)
		}
	}
	sort.Strings(attack)
	f.Attack = slices.Compact(attack)
	var cats, ports []string
	for c := range g.categories {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for p := range g.ports {
		ports = append(ports, fmt.Sprint(p))
	}
	sort.Strings(ports)
	sev := "unknown"
	if g.severity != math.MaxUint64 {
		sev = fmt.Sprint(g.severity)
	}
	f.Evidence = map[string]any{"signature": k.sig, "signature_id": k.sid, "categories": cats, "alerts": g.count, "ids_severity": sev,
		"blocked": g.blocked, "dst_ports": ports, "app_proto": g.first.AppProto, "flow_ids": g.flows.Values(),
		"first_record": fmt.Sprintf("%s:%d", g.first.Src.File, g.first.Src.Line)}
	times := "once"
	if g.count > 1 {
		times = fmt.Sprintf("%d times", g.count)
	}
	f.Summary = fmt.Sprintf("Suricata alerted %s on \"%s\" (sid %d, %s) from %s to %s.", times, k.sig, k.sid,
		firstOr(cats, "no classification"), addrOr(k.src), addrOr(k.dst))
	return f
}

func firstOr(l []string, def string) string {
	if len(l) == 0 {
		return def
	}
	return l[0]
}

func addrOr(a netip.Addr) string {
	if !a.IsValid() {
		return "an unknown host"
	}
	return a.String()
}
