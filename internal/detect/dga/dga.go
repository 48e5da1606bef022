package dga

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinDomains is the fewest random-looking registered domains a host
	// must ask for (8).
	MinDomains int
	// Random is the randomness (Randomness) from which a label looks
	// generated (0.6).
	Random float64
	// MinLabel is the shortest label judged (6): shorter ones are too
	// few characters to tell.
	MinLabel int
}

// Detector is the DGA detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.Detector = (*Detector)(nil)

// New returns a DGA detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinDomains <= 0 {
		cfg.MinDomains = 8
	}
	if cfg.Random <= 0 {
		cfg.Random = 0.6
	}
	if cfg.MinLabel <= 0 {
		cfg.MinLabel = 6
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "dga" }

type hostKey struct {
	sensor string
	src    netip.Addr
}

// domain is what one host asked of one registered domain.
type domain struct {
	label       string
	randomness  float64
	resolved    bool // some answer other than NXDOMAIN
	nx          int64
	queries     int64
	first, last time.Time
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	names, err := detect.NamesOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	// The names answered NXDOMAIN first (few, where answers are many),
	// then the rest of what the hosts with enough of them asked: the
	// random-looking names among those that resolved are the live C2.
	hosts := map[hostKey]map[string]*domain{}
	add := func(q *store.DNSName) error {
		if !d.env.IsLocal(q.Src) {
			return nil
		}
		reg, label, ok := d.split(q.Query)
		if !ok {
			return nil
		}
		k := hostKey{q.Sensor, q.Src}
		m := hosts[k]
		if m == nil {
			m = map[string]*domain{}
			hosts[k] = m
		}
		x := m[reg]
		if x == nil {
			x = &domain{label: label, randomness: Randomness(label), first: q.First, last: q.Last}
			m[reg] = x
		}
		x.queries += q.Count
		if q.RCode == "NXDOMAIN" {
			x.nx += q.Count
		} else if q.RCode != "" {
			x.resolved = true
		}
		x.first, x.last = event.Earliest(x.first, q.First), event.Latest(x.last, q.Last)
		return nil
	}
	if err := r.DNSNames(ctx, w, store.DNSFilter{RCode: "NXDOMAIN"}, add); err != nil {
		return nil, err
	}
	var srcs []netip.Addr
	for k, m := range hosts {
		n := 0
		for _, x := range m {
			if x.randomness >= d.cfg.Random {
				n++
			}
		}
		if n >= d.cfg.MinDomains {
			srcs = append(srcs, k.src)
		} else {
			delete(hosts, k)
		}
	}
	if len(srcs) == 0 {
		return nil, nil
	}
	slices.SortFunc(srcs, func(a, b netip.Addr) int { return a.Compare(b) })
	srcs = slices.Compact(srcs)
	err = r.DNSNames(ctx, w, store.DNSFilter{Srcs: srcs}, func(q *store.DNSName) error {
		if q.RCode == "NXDOMAIN" || hosts[hostKey{q.Sensor, q.Src}] == nil {
			return nil // counted above, or a host that does not qualify
		}
		return add(q)
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for k, m := range hosts {
		if f, ok := d.judge(k, m, names); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// split returns a name's registered domain and the label before its
// public suffix ("x7kq2.example.co.uk": "example.co.uk", "example"); ok
// is false for names that are not judged: single labels (browsers probe
// with random ones), local and reverse zones, labels too short.
func (d *Detector) split(name string) (reg, label string, ok bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if !strings.Contains(name, ".") {
		return "", "", false
	}
	for _, local := range []string{".arpa", ".local", ".lan", ".home", ".internal", ".localdomain", ".corp", ".intranet"} {
		if strings.HasSuffix(name, local) {
			return "", "", false
		}
	}
	reg = detect.RegisteredDomain(name)
	suffix, _ := publicsuffix.PublicSuffix(reg)
	label = strings.TrimSuffix(strings.TrimSuffix(reg, suffix), ".")
	if len(label) < d.cfg.MinLabel || strings.Contains(label, ".") {
		return "", "", false
	}
	return reg, label, true
}

// judge scores one host's random-looking registered domains.
func (d *Detector) judge(k hostKey, m map[string]*domain, names *detect.Names) (detect.Finding, bool) {
	var nx, live []string
	var first, last time.Time
	for reg, x := range m {
		if x.randomness < d.cfg.Random {
			continue
		}
		// What many hosts resolve is a service, however its name looks.
		if names.DomainDamp(reg) < 0.99 {
			continue
		}
		if x.resolved {
			live = append(live, reg)
		} else {
			nx = append(nx, reg)
		}
		if first.IsZero() || x.first.Before(first) {
			first = x.first
		}
		last = event.Latest(last, x.last)
	}
	if len(nx) < d.cfg.MinDomains {
		return detect.Finding{}, false
	}
	byRandomness := func(a, b string) int { return cmp.Or(cmp.Compare(m[b].randomness, m[a].randomness), cmp.Compare(a, b)) }
	slices.SortFunc(nx, byRandomness)
	slices.SortFunc(live, byRandomness)
	nxShare := float64(len(nx)) / float64(len(nx)+len(live))
	breadth := detect.Ramp(math.Log10(float64(len(nx))), math.Log10(float64(d.cfg.MinDomains)), math.Log10(150))
	mean := 0.0
	for _, reg := range nx {
		mean += m[reg].randomness
	}
	mean /= float64(len(nx))
	score := (0.4 + 0.5*breadth) * (0.5 + 0.5*detect.Ramp(nxShare, 0.5, 0.9)) * (0.7 + 0.3*mean)
	f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Score: score, Severity: detect.SeverityOf(score),
		FirstSeen: first, LastSeen: last, Attack: []string{"T1568.002"}}
	f.Domain = nx[0]
	if len(live) > 0 {
		f.Domain = live[0]
	}
	if score < 0.3 || d.env.Allowed(&f) {
		return f, false
	}
	f.Components = map[string]float64{"breadth": detect.Round(breadth, 3), "nxdomain_share": detect.Round(nxShare, 3),
		"randomness": detect.Round(mean, 3)}
	f.Evidence = map[string]any{"nxdomain_domains": len(nx), "resolved_domains": len(live), "examples": nx[:min(5, len(nx))],
		"resolved": live[:min(5, len(live))]}
	resolved := ""
	if len(live) > 0 {
		resolved = fmt.Sprintf("; %d of the same kind resolved (%s): the live command and control", len(live), strings.Join(live[:min(3, len(live))], ", "))
	}
	f.Summary = fmt.Sprintf("%s asked for %d random-looking registered domains that do not exist (%s, ...): a domain generation algorithm trying its list%s.",
		k.src, len(nx), strings.Join(nx[:min(3, len(nx))], ", "), resolved)
	return f, true
}
