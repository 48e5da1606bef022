// Package detect turns stored telemetry into findings. A Detector reads
// aggregates through store.Reader (never a backend directly) over a window
// that is all history by default, because slow beacons and two-year
// campaigns are the point, and returns scored, explained findings.
//
// Detectors live in sub-packages (beacon, longconn, dnstunnel, exfil, rare,
// tlsanom, httpanom, lateral); internal/app builds the list from
// configuration. This package holds what they share: the Finding type,
// severities, the network environment (local networks, allow-lists),
// scoring helpers and a hunt-scoped cache of shared aggregates.
package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Detector finds one kind of suspicious activity.
//
// Detect may be called from several goroutines at once with different
// windows; a Detector keeps no state between calls. It reads through r,
// which may be a *Cache shared with the other detectors of the same hunt.
type Detector interface {
	// Name is the detector's name in findings and configuration ("beacon").
	Name() string
	// Detect returns the findings in the window w of the store r.
	Detect(ctx context.Context, r store.Reader, w store.Window) ([]Finding, error)
}

// Streaming is the optional side of a detector that judges live flow
// records as a collector receives them (ddos.Stream): Observe takes the
// flows of a datagram the moment it arrived, from several goroutines at
// once; Tick, called a few times a second, ages what was observed. What
// it finds it reports itself (alerts, mitigation), not as findings: the
// stored flows are judged again by Detect in the next hunt.
type Streaming interface {
	Observe(now time.Time, flows []event.Flow)
	Tick(now time.Time)
}

// Severity grades a finding for triage.
type Severity int8

// Severities, from least to most urgent.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the severity's lower-case name.
func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", s)
}

// MarshalJSON writes the severity's name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a severity's name.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n == name {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", name)
}

// SeverityOf maps a score in [0, 1] to a severity: 0.85 and above is
// critical, 0.7 high, 0.5 medium, 0.3 low, below that info.
func SeverityOf(score float64) Severity {
	switch {
	case score >= 0.85:
		return SeverityCritical
	case score >= 0.7:
		return SeverityHigh
	case score >= 0.5:
		return SeverityMedium
	case score >= 0.3:
		return SeverityLow
	}
	return SeverityInfo
}

// Finding is one suspicious thing a detector saw, with its evidence.
type Finding struct {
	Detector string
	// Score in [0, 1]; Components are the sub-scores it was made of.
	Score      float64
	Components map[string]float64
	Severity   Severity
	// The entity: the internal (or originating) host, the other end, and
	// the domain or server name when the finding is about one.
	Sensor   string
	Src, Dst netip.Addr
	Domain   string
	// Infra lists the other outside addresses the finding names as the
	// attacker's, beyond Src and Dst: the further operators of a web
	// shell, the further peers of a peer-to-peer group. Incidents count
	// them as infrastructure and blocklists take them.
	Infra []netip.Addr
	// Host is the computer a host finding is about, as its Windows events
	// name it ("" for network findings); Accounts are the accounts it
	// involves (DOMAIN\user or user).
	Host      string
	Accounts  []string
	FirstSeen time.Time
	LastSeen  time.Time
	// Attack lists MITRE ATT&CK technique IDs ("T1071.001").
	Attack []string
	// Evidence holds counts, bytes, intervals: values that encode as JSON.
	Evidence map[string]any
	// Summary is one plain sentence saying why.
	Summary string
}

// findingJSON is the stable JSON form of a Finding (docs/findings.md).
type findingJSON struct {
	Detector   string             `json:"detector"`
	Score      float64            `json:"score"`
	Severity   Severity           `json:"severity"`
	Sensor     string             `json:"sensor"`
	Src        string             `json:"src"`
	Dst        string             `json:"dst"`
	Domain     string             `json:"domain"`
	Infra      []string           `json:"infrastructure,omitempty"`
	Host       string             `json:"host,omitempty"`
	Accounts   []string           `json:"accounts,omitempty"`
	FirstSeen  string             `json:"first_seen"`
	LastSeen   string             `json:"last_seen"`
	Attack     []string           `json:"attack"`
	Summary    string             `json:"summary"`
	Components map[string]float64 `json:"components"`
	Evidence   map[string]any     `json:"evidence"`
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []netip.Addr) []string {
	if len(as) == 0 {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// MarshalJSON writes the finding's stable JSON form.
func (f Finding) MarshalJSON() ([]byte, error) {
	attack := f.Attack
	if attack == nil {
		attack = []string{}
	}
	comps, ev := f.Components, f.Evidence
	if comps == nil {
		comps = map[string]float64{}
	}
	if ev == nil {
		ev = map[string]any{}
	}
	return json.Marshal(findingJSON{
		Detector: f.Detector, Score: Round(f.Score, 3), Severity: f.Severity, Sensor: f.Sensor,
		Src: addrString(f.Src), Dst: addrString(f.Dst), Domain: f.Domain, Infra: addrStrings(f.Infra), Host: f.Host, Accounts: f.Accounts,
		FirstSeen: timeString(f.FirstSeen), LastSeen: timeString(f.LastSeen),
		Attack: attack, Summary: f.Summary, Components: comps, Evidence: ev,
	})
}

// UnmarshalJSON reads the stable JSON form.
func (f *Finding) UnmarshalJSON(b []byte) error {
	var j findingJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	parseAddr := func(s string) netip.Addr { a, _ := netip.ParseAddr(s); return a }
	parseTime := func(s string) time.Time { t, _ := time.Parse(time.RFC3339Nano, s); return t }
	var infra []netip.Addr
	for _, s := range j.Infra {
		if a := parseAddr(s); a.IsValid() {
			infra = append(infra, a)
		}
	}
	*f = Finding{Detector: j.Detector, Score: j.Score, Severity: j.Severity, Sensor: j.Sensor,
		Src: parseAddr(j.Src), Dst: parseAddr(j.Dst), Domain: j.Domain, Infra: infra, Host: j.Host, Accounts: j.Accounts,
		FirstSeen: parseTime(j.FirstSeen), LastSeen: parseTime(j.LastSeen),
		Attack: j.Attack, Summary: j.Summary, Components: j.Components, Evidence: j.Evidence}
	return nil
}

// Sort orders findings by score, highest first, then by detector and
// entity so that equal scores come out in the same order every time.
func Sort(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Detector != b.Detector {
			return a.Detector < b.Detector
		}
		if c := a.Src.Compare(b.Src); c != 0 {
			return c < 0
		}
		if c := a.Dst.Compare(b.Dst); c != 0 {
			return c < 0
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c < 0
		}
		return strings.Compare(a.Domain, b.Domain) < 0
	})
}

// Span describes a stretch of time in words for summaries: "3 days",
// "5 hours", "40 minutes".
func Span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24+0.5))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()+0.5))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("%d seconds", int(d.Seconds()+0.5))
}

// Period describes an interval compactly: "60s", "5m", "4h", "1d 2h".
func Period(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		days := int(d / (24 * time.Hour))
		h := int((d % (24 * time.Hour)).Round(time.Hour) / time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd %dh", days, h)
	case d >= time.Hour:
		h := d.Round(6 * time.Minute).Hours()
		return strings.TrimSuffix(fmt.Sprintf("%.1f", h), ".0") + "h"
	case d >= time.Minute:
		m := d.Round(6 * time.Second).Minutes()
		return strings.TrimSuffix(fmt.Sprintf("%.1f", m), ".0") + "m"
	}
	return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
}

// HumanBytes writes a byte count with a decimal unit: "1.5 MB".
func HumanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1000
	}
	return ""
}
