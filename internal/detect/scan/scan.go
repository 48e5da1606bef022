// Package scan finds scans: one source probing many destinations on a
// port (horizontal), many ports of one destination (vertical), or many
// hosts with ICMP (a sweep), with most probes refused or unanswered. Every
// direction counts: the Internet scanning the defended network
// (reconnaissance, T1595), and a host inside scanning the network or the
// Internet (discovery, T1046), which is what a compromised host does and
// is scored far higher. A single port of a single host is never a scan.
package scan

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinTargets is the fewest distinct destinations (on one port) or
	// ports (on one destination) a scan reaches (20).
	MinTargets int64
	// MinProbeShare is the least share of refused or unanswered
	// connections among them (0.6).
	MinProbeShare float64
}

// Detector is the scan detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.SessionsToo = (*Detector)(nil)

// New returns a scan detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinTargets <= 0 {
		cfg.MinTargets = 20
	}
	if cfg.MinProbeShare <= 0 {
		cfg.MinProbeShare = 0.6
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "scan" }

// ConnsOnly implements detect.SessionsToo: scans show in flows as they do
// in Zeek's conn log.
func (d *Detector) ConnsOnly() {}

type key struct {
	sensor string
	src    netip.Addr
}

// sweep is what one source did: its widest horizontal and vertical
// groups, per protocol.
type sweep struct {
	groups      []store.Fanout
	by          []store.FanoutBy
	first, last time.Time
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	srcs := map[key]*sweep{}
	for _, by := range []store.FanoutBy{store.FanoutByPort, store.FanoutByHost} {
		err := r.Fanout(ctx, w, store.FanoutFilter{By: by, MinTargets: d.cfg.MinTargets}, func(x *store.Fanout) error {
			if float64(x.Probes) < d.cfg.MinProbeShare*float64(x.Conns) || !detect.Unicast(x.Src) {
				return nil
			}
			if by == store.FanoutByHost && !detect.Unicast(x.Dst) {
				return nil
			}
			k := key{x.Sensor, x.Src}
			s := srcs[k]
			if s == nil {
				s = &sweep{first: x.First, last: x.Last}
				srcs[k] = s
			}
			s.groups, s.by = append(s.groups, *x), append(s.by, by)
			if x.First.Before(s.first) {
				s.first = x.First
			}
			if x.Last.After(s.last) {
				s.last = x.Last
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []detect.Finding
	for k, s := range srcs {
		if f, ok := d.judge(k, s); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// judge makes one finding of what a source did: its widest group, with
// the others in its evidence.
func (d *Detector) judge(k key, s *sweep) (detect.Finding, bool) {
	order := make([]int, len(s.groups))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(s.groups[b].Targets, s.groups[a].Targets), cmp.Compare(s.by[a], s.by[b]))
	})
	top, topBy := s.groups[order[0]], s.by[order[0]]
	var targets, probes, conns int64
	for _, g := range s.groups {
		targets += g.Targets
		probes += g.Probes
		conns += g.Conns
	}
	share := float64(probes) / float64(max(conns, 1))
	breadth := detect.Ramp(math.Log10(float64(targets)), math.Log10(float64(d.cfg.MinTargets)), 3)
	span := s.last.Sub(s.first)
	rate := float64(targets) / math.Max(span.Minutes(), 1) // targets a minute
	fast := detect.Ramp(math.Log10(rate+1), 0, 2)
	inside := d.env.IsLocal(k.src)
	dir := 0.5 // the Internet scanning the network: background radiation, unless broad
	var what, technique string
	switch {
	case inside && topBy == store.FanoutByHost && d.env.IsLocal(top.Dst), inside && topBy == store.FanoutByPort:
		dir, technique = 1, "T1046"
		what = "from inside"
	case inside:
		dir, technique = 0.9, "T1046"
		what = "from inside, outward"
	default:
		what = "from outside"
		if topBy == store.FanoutByPort {
			technique = "T1595.001"
		} else {
			technique = "T1595.002"
		}
	}
	c := map[string]float64{"breadth": detect.Round(breadth, 3), "unanswered": detect.Round(share, 3), "speed": detect.Round(fast, 3),
		"direction": dir}
	// Time and management services are polled across many servers by
	// design (an NTP client tries the pool, unanswered now and then).
	prior := 1.0
	if topBy == store.FanoutByPort {
		prior = detect.ServicePrior(top.Port, top.Proto)
	}
	score := (0.45 + 0.35*breadth + 0.1*fast) * (0.5 + 0.5*detect.Ramp(share, d.cfg.MinProbeShare, 1)) * dir * prior
	f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Score: score, Severity: detect.SeverityOf(score),
		FirstSeen: s.first, LastSeen: s.last, Components: c, Attack: []string{technique}}
	var desc string
	switch {
	case topBy == store.FanoutByHost:
		f.Dst = top.Dst
		desc = fmt.Sprintf("%d %s ports of %s", top.Targets, top.Proto, top.Dst)
	case top.Proto == "icmp":
		desc = fmt.Sprintf("%d hosts with ICMP", top.Targets)
	default:
		desc = fmt.Sprintf("%d hosts on %s port %d", top.Targets, top.Proto, top.Port)
	}
	if score < 0.2 || d.env.Allowed(&f) {
		return f, false
	}
	kind := "vertical"
	if topBy == store.FanoutByPort {
		kind = "horizontal"
	}
	f.Evidence = map[string]any{"kind": kind, "proto": top.Proto, "targets": top.Targets, "targets_all": targets, "connections": conns,
		"probes": probes, "groups": len(s.groups), "targets_per_minute": detect.Round(rate, 1)}
	if topBy == store.FanoutByPort {
		f.Evidence["port"] = top.Port
	}
	f.Summary = fmt.Sprintf("%s probed %s in %s, %.0f%% refused or unanswered: a %s scan %s.", k.src, desc, detect.Span(span),
		100*share, kind, what)
	return f, true
}
