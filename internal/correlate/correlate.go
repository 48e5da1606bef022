// Package correlate turns a hunt's findings into incidents: what happened
// to which internal hosts, through which outside infrastructure, since
// when, and what left.
//
// Findings are joined through what they share. A strong finding (score at
// least Options.Strong) ties its internal host to the outside addresses
// and registered domains it names; a lateral-movement edge ties two
// internal hosts; a weaker finding joins only through infrastructure a
// strong finding already named (the rare-destination finding of a C2
// address, a second host's beacon to it), or, from Options.Weak, when it
// is about activity a host already in an incident originated and began
// after the host's first strong evidence. Infrastructure that more than
// Options.MaxShared hosts touch ties nothing: it is shared, not
// targeted. Each connected group with a strong finding is an incident;
// findings in none stay findings.
//
// An incident's class says what kind of activity it is (espionage, DDoS,
// scanning, commodity malware, benign periodic traffic), its dwell start
// is the first time of its earliest finding, its scope the hosts,
// infrastructure and bytes sent out per destination and day, and its id
// is derived from its earliest finding, so that hunting the same data
// again, or more data after it, keeps it.
package correlate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/geo"
)

// Class is what kind of activity an incident is.
type Class string

// Incident classes.
const (
	// ClassEspionage: command and control with more than one stage of an
	// intrusion (initial access, lateral movement, exfiltration), or slow
	// jittered C2 alone.
	ClassEspionage Class = "espionage"
	// ClassDDoS: a flood against an internal service.
	ClassDDoS Class = "ddos"
	// ClassScanning: sweeps and probes, nothing answered in depth.
	ClassScanning Class = "scanning"
	// ClassCommodity: fast, regular check-ins, often from several hosts
	// to the same infrastructure (adware, bots), without other stages.
	ClassCommodity Class = "commodity"
	// ClassBenign: periodic traffic that looks automated and nothing else.
	ClassBenign Class = "benign-periodic"
	// ClassSuspicious: a strong finding that fits none of the above
	// (exfiltration alone, an intel match alone).
	ClassSuspicious Class = "suspicious"
)

// Defaults of Options: the score from which a finding counts as strong,
// and how many internal hosts may share infrastructure for it to still
// tie them. Blocklists use the same bounds.
const (
	DefaultStrong    = 0.7
	DefaultMaxShared = 10
)

// Options tune correlation.
type Options struct {
	// IsLocal tells internal addresses (detect.Env.IsLocal).
	IsLocal func(netip.Addr) bool
	// Strong is the score from which a finding opens or extends an
	// incident by itself (default 0.7).
	Strong float64
	// Weak is the score from which a finding about a host already in an
	// incident joins it when it began after the host's first strong
	// evidence (default 0.5).
	Weak float64
	// MaxShared is how many internal hosts may touch a piece of
	// infrastructure for it to still tie them together (default 10).
	MaxShared int
}

// Transfer is what one internal host sent to one destination.
type Transfer struct {
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	Domain string     `json:"domain,omitempty"`
	Bytes  uint64     `json:"bytes"`
	PerDay []DayBytes `json:"per_day,omitempty"`
	Attack []string   `json:"attack,omitempty"`
}

// DayBytes is a day's bytes.
type DayBytes struct {
	Day   string `json:"day"` // YYYY-MM-DD, UTC
	Bytes uint64 `json:"bytes"`
}

// Infra is a piece of outside infrastructure an incident involves.
type Infra struct {
	Kind      string   `json:"kind"` // "ip" or "domain" (a registered domain)
	Value     string   `json:"value"`
	Hosts     int      `json:"hosts"` // internal hosts of the incident that touched it
	Detectors []string `json:"detectors"`
	// Origin is what the configured geo databases say of an address
	// (origin.mmdb), filled when the incident is shown: registration
	// data, evidence for the origin question, not its answer.
	Origin *geo.Info `json:"origin,omitempty"`
	// Pivot says how an entry no finding named was reached from the
	// rest (passive DNS, a shared certificate), filled when the incident
	// is shown; "" for what findings named.
	Pivot string `json:"pivot,omitempty"`
}

// Contact is the first trace of an incident's infrastructure: a
// connection (Log "conn" or "flow") or a DNS answer naming one of its
// addresses ("dns": Src unset, Name the name asked).
type Contact struct {
	At     time.Time  `json:"at"`
	Log    string     `json:"log"`
	Name   string     `json:"name,omitempty"`
	Sensor string     `json:"sensor,omitempty"`
	Src    netip.Addr `json:"src"`
	Dst    netip.Addr `json:"dst"`
	Port   uint16     `json:"port"`
	Proto  string     `json:"proto"`
	// Conns and Days are that pair's connections and distinct days with
	// one, over all history (for "dns": the answers and 0).
	Conns int64 `json:"conns"`
	Days  int64 `json:"days"`
}

// Incident is a group of findings about the same intrusion or activity.
type Incident struct {
	ID       string          `json:"id"`
	Class    Class           `json:"class"`
	Score    float64         `json:"score"`
	Severity detect.Severity `json:"severity"`
	Summary  string          `json:"summary"`
	Hosts    []netip.Addr    `json:"hosts"`
	// HostNames are the computers host findings name (Windows events).
	HostNames      []string `json:"host_names"`
	Accounts       []string `json:"accounts"`
	Infrastructure []Infra  `json:"infrastructure"`
	// FirstContact is the earliest connection in all history to any of
	// the infrastructure's addresses, filled when the incident is shown:
	// the real dwell start may precede the first finding.
	FirstContact *Contact   `json:"first_contact,omitempty"`
	DwellStart   time.Time  `json:"dwell_start"`
	LastSeen     time.Time  `json:"last_seen"`
	BytesOut     []Transfer `json:"bytes_out"`
	Attack       []string   `json:"attack"`
	// Answers are what was taken and who may be behind it, filled when
	// the incident is shown.
	Answers *Answers `json:"answers,omitempty"`
	// Findings is the timeline: the incident's findings by first time.
	Findings []detect.Finding `json:"findings"`
}

// Addrs returns the addresses among the incident's infrastructure.
func (inc *Incident) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, x := range inc.Infrastructure {
		if a, err := netip.ParseAddr(x.Value); x.Kind == "ip" && err == nil {
			out = append(out, a)
		}
	}
	return out
}

// entity keys of the union-find: "h:" internal hosts, "i:" infrastructure.
type dsu map[string]string

func (d dsu) find(x string) string {
	if _, ok := d[x]; !ok {
		d[x] = x
	}
	for d[x] != x {
		d[x] = d[d[x]]
		x = d[x]
	}
	return x
}

func (d dsu) union(a, b string) {
	ra, rb := d.find(a), d.find(b)
	if ra != rb {
		if ra < rb { // deterministic roots
			d[rb] = ra
		} else {
			d[ra] = rb
		}
	}
}

// node is a finding's place in the graph.
type node struct {
	host  string   // "h:" key of its internal host, "" when none
	name  string   // "h:name:" key of the computer a host finding names
	infra []string // "i:" keys of the outside infrastructure it names
	peer  string   // the other internal host of a lateral edge
}

// Correlate groups findings into incidents, most serious first.
func Correlate(findings []detect.Finding, opt Options) []Incident {
	if opt.Strong <= 0 {
		opt.Strong = DefaultStrong
	}
	if opt.Weak <= 0 {
		opt.Weak = 0.5
	}
	if opt.MaxShared <= 0 {
		opt.MaxShared = DefaultMaxShared
	}
	local := opt.IsLocal
	if local == nil {
		local = func(a netip.Addr) bool { return a.IsPrivate() || a.IsLoopback() }
	}
	nodes := make([]node, len(findings))
	hostsOf := map[string]map[string]bool{} // infra -> hosts of strong findings
	for i := range findings {
		f := &findings[i]
		n := &nodes[i]
		switch {
		case f.Src.IsValid() && local(f.Src):
			n.host = "h:" + f.Src.String()
			if f.Dst.IsValid() && local(f.Dst) {
				n.peer = "h:" + f.Dst.String()
			}
		case f.Dst.IsValid() && local(f.Dst):
			n.host = "h:" + f.Dst.String()
		}
		if f.Host != "" {
			// A computer is known by name in its events and by address on
			// the wire: a host finding that gives both joins the two.
			n.name = "h:name:" + strings.ToLower(f.Host)
			if n.host == "" {
				n.host = n.name
			}
		}
		if f.Src.IsValid() && !local(f.Src) {
			n.infra = append(n.infra, "i:ip:"+f.Src.String())
		}
		if f.Dst.IsValid() && !local(f.Dst) {
			n.infra = append(n.infra, "i:ip:"+f.Dst.String())
		}
		for _, a := range f.Infra {
			if a.IsValid() && !local(a) {
				n.infra = append(n.infra, "i:ip:"+a.String())
			}
		}
		if f.Domain != "" {
			n.infra = append(n.infra, "i:domain:"+detect.RegisteredDomain(f.Domain))
		}
		if f.Score >= opt.Strong && n.host != "" {
			for _, k := range n.infra {
				if hostsOf[k] == nil {
					hostsOf[k] = map[string]bool{}
				}
				hostsOf[k][n.host] = true
			}
		}
	}
	// Infrastructure that strong findings name and few hosts touch.
	linking := map[string]bool{}
	for k, hs := range hostsOf {
		linking[k] = len(hs) <= opt.MaxShared
	}
	d := dsu{}
	member := make([]bool, len(findings))
	for i := range findings {
		f, n := &findings[i], &nodes[i]
		if n.host == "" && len(n.infra) == 0 {
			continue
		}
		strong := f.Score >= opt.Strong
		if !strong && !slices.ContainsFunc(n.infra, func(k string) bool { return linking[k] }) {
			continue // a weak finding about nothing a strong one named
		}
		member[i] = true
		anchor := n.host
		if anchor == "" {
			anchor = n.infra[0]
		}
		d.find(anchor)
		if a := hostAddr(f); n.name != "" && a.IsValid() && local(a) {
			d.union("h:"+a.String(), n.name)
		}
		for _, k := range n.infra {
			if linking[k] {
				d.union(anchor, k)
			}
		}
		if n.peer != "" && strong && !isSweep(f) {
			d.union(anchor, n.peer)
		}
	}
	// A weaker finding about a host already in an incident joins it when
	// it began after the host's first strong evidence: new activity of a
	// compromised host (a slow exfiltration below the strong score), not
	// what the host always did.
	since := map[string]time.Time{}
	note := func(h string, t time.Time) {
		if old, ok := since[h]; !ok || t.Before(old) {
			since[h] = t
		}
	}
	for i := range findings {
		f, n := &findings[i], &nodes[i]
		if member[i] && f.Score >= opt.Strong && n.host != "" {
			note(n.host, f.FirstSeen)
			if n.peer != "" && !isSweep(f) {
				note(n.peer, f.FirstSeen)
			}
		}
	}
	// Only what the host itself does: outside clients of a compromised
	// server (remote users polling its web mail) are its usual service,
	// not the intrusion's. A rare destination alone is context, not
	// activity (a mail server is the one host that speaks to outside mail
	// servers): it joins through infrastructure a strong finding named.
	for i := range findings {
		f, n := &findings[i], &nodes[i]
		originated := f.Host != "" || (f.Src.IsValid() && local(f.Src) && f.Detector != "rare")
		if t, ok := since[n.host]; ok && originated && !member[i] && f.Score >= opt.Weak && !f.FirstSeen.Before(t) {
			member[i] = true
		}
	}
	groups := map[string][]int{}
	for i := range findings {
		if !member[i] {
			continue
		}
		n := &nodes[i]
		anchor := n.host
		if anchor == "" {
			anchor = n.infra[0]
		}
		root := d.find(anchor)
		groups[root] = append(groups[root], i)
	}
	var out []Incident
	for _, idx := range groups {
		if !slices.ContainsFunc(idx, func(i int) bool { return findings[i].Score >= opt.Strong }) {
			continue
		}
		fs := make([]detect.Finding, len(idx))
		for j, i := range idx {
			fs[j] = findings[i]
		}
		out = append(out, build(fs, local))
	}
	slices.SortFunc(out, func(a, b Incident) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), a.DwellStart.Compare(b.DwellStart), strings.Compare(a.ID, b.ID))
	})
	return out
}

// hostAddr returns the address of the computer a host finding names, when
// the finding knows it: its Src, or for a logon from a new source (Src is
// that source) its Dst.
func hostAddr(f *detect.Finding) netip.Addr {
	if (f.Detector != "host" && f.Detector != "sigma") || f.Host == "" {
		return netip.Addr{}
	}
	if f.Evidence["rule"] == "new-source" {
		return f.Dst
	}
	return f.Src
}

// isSweep reports a lateral finding about many hosts rather than an edge.
func isSweep(f *detect.Finding) bool {
	_, sweep := f.Evidence["admin_service_hosts"]
	return sweep || f.Evidence["port_scanned_host"] != nil
}

// FindingKey names what a finding is about — its detector, sensor, ends
// and domain — the same in every hunt: an incident's id comes from its
// earliest finding's key.
func FindingKey(f *detect.Finding) string {
	return strings.Join([]string{f.Detector, f.Sensor, addr(f.Src), addr(f.Dst), f.Domain}, "|")
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// build makes the incident of a group of findings.
func build(fs []detect.Finding, local func(netip.Addr) bool) Incident {
	slices.SortFunc(fs, func(a, b detect.Finding) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), strings.Compare(FindingKey(&a), FindingKey(&b)))
	})
	sum := sha256.Sum256([]byte(FindingKey(&fs[0])))
	// Empty lists, not nulls, in JSON.
	inc := Incident{ID: "INC-" + hex.EncodeToString(sum[:])[:10], Findings: fs, DwellStart: fs[0].FirstSeen, Accounts: []string{},
		HostNames: []string{}, Infrastructure: []Infra{}, BytesOut: []Transfer{}}
	hosts := map[netip.Addr]bool{}
	names, accounts := map[string]bool{}, map[string]bool{}
	type infraAgg struct {
		hosts     map[netip.Addr]bool
		detectors map[string]bool
	}
	infra := map[[2]string]*infraAgg{}
	addInfra := func(kind, value string, host netip.Addr, det string) {
		k := [2]string{kind, value}
		a := infra[k]
		if a == nil {
			a = &infraAgg{hosts: map[netip.Addr]bool{}, detectors: map[string]bool{}}
			infra[k] = a
		}
		if host.IsValid() {
			a.hosts[host] = true
		}
		a.detectors[det] = true
	}
	attack := map[string]bool{}
	stages := map[string]bool{}
	maxScore := 0.0
	for i := range fs {
		f := &fs[i]
		maxScore = max(maxScore, f.Score)
		if f.Host != "" && !slices.ContainsFunc(slices.Collect(maps.Keys(names)), func(n string) bool { return strings.EqualFold(n, f.Host) }) {
			names[f.Host] = true // one spelling per computer: the first
		}
		for _, a := range f.Accounts {
			accounts[a] = true
		}
		if f.LastSeen.After(inc.LastSeen) {
			inc.LastSeen = f.LastSeen
		}
		var host netip.Addr
		for _, a := range []netip.Addr{f.Src, f.Dst} {
			if a.IsValid() && local(a) {
				hosts[a] = true
				if !host.IsValid() {
					host = a
				}
			}
		}
		for _, a := range append([]netip.Addr{f.Src, f.Dst}, f.Infra...) {
			if a.IsValid() && !local(a) {
				addInfra("ip", a.String(), host, f.Detector)
			}
		}
		if f.Domain != "" {
			addInfra("domain", detect.RegisteredDomain(f.Domain), host, f.Detector)
		}
		for _, t := range f.Attack {
			attack[t] = true
		}
		if s := stage(f); s != "" {
			stages[s] = true
		}
		if t, ok := transfer(f); ok {
			inc.BytesOut = append(inc.BytesOut, t)
		}
	}
	inc.Hosts = slices.SortedFunc(maps.Keys(hosts), func(a, b netip.Addr) int { return a.Compare(b) })
	inc.HostNames = append(inc.HostNames, slices.Sorted(maps.Keys(names))...)
	inc.Accounts = append(inc.Accounts, slices.Sorted(maps.Keys(accounts))...)
	for k, a := range infra {
		inc.Infrastructure = append(inc.Infrastructure, Infra{Kind: k[0], Value: k[1], Hosts: len(a.hosts),
			Detectors: slices.Sorted(maps.Keys(a.detectors))})
	}
	slices.SortFunc(inc.Infrastructure, func(a, b Infra) int {
		return cmp.Or(cmp.Compare(b.Hosts, a.Hosts), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Value, b.Value))
	})
	slices.SortFunc(inc.BytesOut, func(a, b Transfer) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), a.Dst.Compare(b.Dst), a.Src.Compare(b.Src))
	})
	inc.Attack = OrderByTactic(slices.Collect(maps.Keys(attack)))
	inc.Class = classify(fs, stages, max(len(inc.Hosts), len(inc.HostNames)))
	// Every further stage and host makes it more serious.
	inc.Score = detect.Round(min(1, maxScore+0.05*float64(max(len(stages)-1, 0))+0.02*float64(max(len(inc.Hosts)-1, 0))), 3)
	if inc.Class == ClassBenign {
		inc.Score = min(inc.Score, 0.3)
	}
	inc.Severity = detect.SeverityOf(inc.Score)
	inc.Summary = summary(&inc, stages)
	return inc
}

// stage names the step of an intrusion a finding shows.
func stage(f *detect.Finding) string {
	switch f.Detector {
	case "host", "sigma":
		s, _ := f.Evidence["stage"].(string)
		return s
	case "httpanom":
		return "initial-access"
	case "beacon", "dnstunnel", "tlsanom", "longconn", "iocmatch", "c2", "deadc2", "dga":
		return "c2"
	case "scan":
		return "scanning"
	case "lateral":
		if isSweep(f) {
			return "scanning"
		}
		return "lateral-movement"
	case "exfil":
		return "exfiltration"
	case "ddos":
		return "ddos"
	case "rare":
		return "c2"
	}
	return ""
}

// transfer reads the bytes sent out an exfiltration finding names.
func transfer(f *detect.Finding) (Transfer, bool) {
	if f.Detector != "exfil" {
		return Transfer{}, false
	}
	n, ok := number(f.Evidence["bytes_out"])
	if !ok {
		return Transfer{}, false
	}
	t := Transfer{Src: f.Src, Dst: f.Dst, Domain: f.Domain, Bytes: n, Attack: f.Attack}
	switch days := f.Evidence["bytes_out_per_day"].(type) {
	case []map[string]any:
		for _, d := range days {
			t.PerDay = appendDay(t.PerDay, d)
		}
	case []any:
		for _, d := range days {
			if m, ok := d.(map[string]any); ok {
				t.PerDay = appendDay(t.PerDay, m)
			}
		}
	}
	return t, true
}

func appendDay(out []DayBytes, m map[string]any) []DayBytes {
	day, _ := m["day"].(string)
	b, ok := number(m["bytes"])
	if day == "" || !ok {
		return out
	}
	return append(out, DayBytes{Day: day, Bytes: b})
}

// number reads a JSON-ish number: evidence built in process holds Go
// integers, evidence read back from JSON float64s.
func number(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint64:
		return x, true
	case int64:
		return uint64(max(x, 0)), true
	case int:
		return uint64(max(x, 0)), true
	case float64:
		if x < 0 {
			return 0, false
		}
		return uint64(x), true
	}
	return 0, false
}

// classify decides an incident's class from the stages it shows.
func classify(fs []detect.Finding, stages map[string]bool, hosts int) Class {
	switch {
	case stages["ddos"]:
		return ClassDDoS
	case stages["c2"] && (stages["initial-access"] || stages["lateral-movement"] || stages["exfiltration"]):
		return ClassEspionage
	case stages["c2"]:
		// C2 alone: fast and regular is commodity malware (or, on one
		// host and perfectly regular, an automated job); slow and
		// jittered is the patient kind.
		period, jitter := 0.0, 1.0
		for i := range fs {
			if p, ok := fs[i].Evidence["period_seconds"].(float64); ok && (period == 0 || p < period) {
				period = p
			}
			if j, ok := fs[i].Evidence["jitter"].(float64); ok && j < jitter {
				jitter = j
			}
		}
		switch {
		case period > 0 && period <= 600 && hosts > 1:
			return ClassCommodity
		case period > 0 && period <= 600 && !marked(fs):
			return ClassBenign
		case period >= 3600 && jitter >= 0.1:
			return ClassEspionage
		case hosts > 1:
			return ClassCommodity
		}
		return ClassSuspicious
	case stages["scanning"] && !stages["lateral-movement"] && !stages["exfiltration"]:
		return ClassScanning
	}
	// Hands on a keyboard: two or more steps of an intrusion on the hosts
	// (a foothold, stolen credentials, movement, persistence, erased
	// traces) is a targeted intrusion, not an automated infection.
	steps := 0
	for _, s := range []string{"initial-access", "lateral-movement", "persistence", "credential-access", "defense-evasion", "collection", "exfiltration"} {
		if stages[s] {
			steps++
		}
	}
	if steps >= 2 {
		return ClassEspionage
	}
	return ClassSuspicious
}

// marked reports whether something beyond a rhythm marks an incident's
// channels: a finding of a detector that judges the other end (c2, deadc2,
// dga, iocmatch), or one the data supports (detect.Corroborate).
func marked(fs []detect.Finding) bool {
	for i := range fs {
		switch fs[i].Detector {
		case "c2", "deadc2", "dga", "iocmatch":
			return true
		}
		if fs[i].Components["support"] >= 0.25 {
			return true
		}
	}
	return false
}

func summary(inc *Incident, stages map[string]bool) string {
	var parts []string
	for _, s := range []string{"initial-access", "c2", "credential-access", "lateral-movement", "persistence", "defense-evasion", "collection",
		"exfiltration", "scanning", "ddos"} {
		if stages[s] {
			parts = append(parts, s)
		}
	}
	var out uint64
	for _, t := range inc.BytesOut {
		out += t.Bytes
	}
	steps := ""
	if len(parts) > 0 {
		steps = " (" + strings.Join(parts, ", ") + ")"
	}
	s := fmt.Sprintf("%s on %d internal host(s) since %s%s, %d finding(s)", inc.Class, max(len(inc.Hosts), len(inc.HostNames)),
		inc.DwellStart.UTC().Format("2006-01-02 15:04"), steps, len(inc.Findings))
	if len(inc.Accounts) > 0 {
		s += fmt.Sprintf("; accounts %s", strings.Join(inc.Accounts[:min(len(inc.Accounts), 5)], ", "))
	}
	if out > 0 {
		s += fmt.Sprintf("; %s sent out to %d destination(s)", detect.HumanBytes(out), len(inc.BytesOut))
	}
	return s + "."
}
