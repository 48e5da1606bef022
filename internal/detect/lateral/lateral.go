// Package lateral finds movement inside the network: new edges on admin
// protocols (SMB, RDP, WinRM, SSH, RPC) that the baseline period did not
// have, from hosts that did not use the protocol before; one host fanning
// out to many hosts or ports (discovery); and bursts of refused or
// unanswered connections. Only internal-to-internal traffic is judged.
package lateral

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// Baseline is how much of the start of the data counts as normal
	// (7 days, or 30 % of the data when that is shorter).
	Baseline time.Duration
	// FanOut is how many internal hosts one host must reach on admin
	// ports, or how many ports on one host, to be a sweep (15).
	FanOut int
}

// Detector is the lateral movement detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.SessionsToo = (*Detector)(nil)

// ConnsOnly implements detect.SessionsToo: admin protocols between
// internal hosts show in flows as in Zeek's conn log.
func (d *Detector) ConnsOnly() {}

// New returns a lateral movement detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.Baseline <= 0 {
		cfg.Baseline = 7 * 24 * time.Hour
	}
	if cfg.FanOut <= 0 {
		cfg.FanOut = 15
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "lateral" }

// admin are the remote administration services and their techniques.
var admin = map[uint16]struct {
	name, technique string
	weight          float64
}{
	445:  {"SMB", "T1021.002", 0.85},
	139:  {"SMB", "T1021.002", 0.85},
	3389: {"RDP", "T1021.001", 1},
	5985: {"WinRM", "T1021.006", 1},
	5986: {"WinRM", "T1021.006", 1},
	22:   {"SSH", "T1021.004", 0.9},
	135:  {"RPC", "T1021.003", 0.75},
}

// habitualPeers is how many hosts a client must have reached on an admin
// protocol in the baseline for the protocol to be its habit: every
// Windows client speaks SMB and RPC to its domain controllers, and that
// makes it no administrator of other workstations.
const habitualPeers = 3

type edgeKey struct {
	sensor   string
	src, dst netip.Addr
}

type edge struct {
	ports       map[uint16]bool
	conns       int64
	answered    int64
	bytes       int64
	first, last time.Time
}

type srcAgg struct {
	adminDsts   map[netip.Addr]bool
	portsPerDst map[netip.Addr]map[uint16]bool
	failed      int64
	failedDsts  map[netip.Addr]bool
	conns       int64
	first, last time.Time
	// baselinePort holds, per admin port, the hosts this one reached on
	// it in the baseline.
	baselinePort map[uint16]map[netip.Addr]bool
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	first, last, _, ok, err := r.Span(ctx, w)
	if err != nil || !ok {
		return nil, err
	}
	baseEnd := first.Add(min(d.cfg.Baseline, time.Duration(0.3*float64(last.Sub(first)))))
	// "New" means little after a baseline of minutes: a short capture
	// shows every edge for the first time.
	history := detect.Ramp(baseEnd.Sub(first).Hours(), 1, 24)
	if history == 0 {
		// Under an hour of data shows no normal to hold edges against:
		// every edge is judged, at the weight a missing history gives.
		baseEnd = first
	}
	edges := map[edgeKey]*edge{}
	type portKey struct {
		edgeKey
		port uint16
	}
	baseline := map[portKey]bool{}
	srcs := map[edgeKey]*srcAgg{} // keyed by (sensor, src, zero)
	sides, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Inside)
	if err != nil {
		return nil, err
	}
	err = r.Pairs(ctx, w, store.PairFilter{Sides: sides}, func(p *store.PairStat) error {
		if !d.env.IsLocal(p.Src) || !d.env.IsLocal(p.Dst) || p.Src == p.Dst {
			return nil
		}
		sk := edgeKey{p.Sensor, p.Src, netip.Addr{}}
		s := srcs[sk]
		if s == nil {
			s = &srcAgg{adminDsts: map[netip.Addr]bool{}, portsPerDst: map[netip.Addr]map[uint16]bool{}, failedDsts: map[netip.Addr]bool{},
				baselinePort: map[uint16]map[netip.Addr]bool{}, first: p.First, last: p.Last}
			srcs[sk] = s
		}
		s.conns += p.Conns
		s.first, s.last = event.Earliest(s.first, p.First), event.Latest(s.last, p.Last)
		if s.portsPerDst[p.Dst] == nil {
			s.portsPerDst[p.Dst] = map[uint16]bool{}
		}
		s.portsPerDst[p.Dst][p.DstPort] = true
		if p.Failed > 0 {
			s.failed += p.Failed
			s.failedDsts[p.Dst] = true
		}
		svc, isAdmin := admin[p.DstPort]
		if !isAdmin || p.Proto == "udp" {
			return nil
		}
		_ = svc
		s.adminDsts[p.Dst] = true
		ek := edgeKey{p.Sensor, p.Src, p.Dst}
		if p.First.Before(baseEnd) {
			baseline[portKey{ek, p.DstPort}] = true
			if s.baselinePort[p.DstPort] == nil {
				s.baselinePort[p.DstPort] = map[netip.Addr]bool{}
			}
			s.baselinePort[p.DstPort][p.Dst] = true
			return nil
		}
		if baseline[portKey{ek, p.DstPort}] {
			return nil
		}
		e := edges[ek]
		if e == nil {
			e = &edge{ports: map[uint16]bool{}, first: p.First, last: p.Last}
			edges[ek] = e
		}
		e.ports[p.DstPort] = true
		e.conns += p.Conns
		e.answered += p.Conns - p.Failed
		e.bytes += p.SrcBytes + p.DstBytes
		e.first, e.last = event.Earliest(e.first, p.First), event.Latest(e.last, p.Last)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sweeping := map[edgeKey]bool{}
	for k, s := range srcs {
		sweeping[k] = len(s.adminDsts) >= d.cfg.FanOut
	}
	var out []detect.Finding
	for k, e := range edges {
		sk := edgeKey{k.sensor, k.src, netip.Addr{}}
		if e.answered == 0 || sweeping[sk] {
			continue // never got through, or part of a sweep reported as one
		}
		s := srcs[sk]
		var names, techniques []string
		weight, newClient := 0.0, 1.0
		for p := range e.ports {
			svc := admin[p]
			names = append(names, fmt.Sprintf("%s/%d", svc.name, p))
			techniques = append(techniques, svc.technique)
			weight = max(weight, svc.weight)
			if len(s.baselinePort[p]) >= habitualPeers {
				newClient = min(newClient, 0.3) // an admin host using its usual protocol
			}
		}
		sort.Strings(names)
		c := map[string]float64{"new_edge": 1, "protocol": weight, "new_client": newClient,
			"answered": detect.Round(float64(e.answered)/float64(e.conns), 3), "history": detect.Round(history, 3)}
		score := weight * (0.3 + 0.5*newClient + 0.2*c["answered"]) * (0.4 + 0.6*history)
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, Score: score, Severity: detect.SeverityOf(score),
			FirstSeen: e.first, LastSeen: e.last, Components: c, Attack: dedupe(techniques)}
		if d.env.Allowed(&f) {
			continue
		}
		f.Evidence = map[string]any{"services": names, "connections": e.conns, "answered": e.answered, "bytes": e.bytes,
			"baseline_until": baseEnd.UTC().Format(time.RFC3339)}
		f.Summary = fmt.Sprintf("%s reached %s over %s for the first time on %s, after the baseline; %s.", k.src, k.dst,
			strings.Join(names, ", "), e.first.UTC().Format("2006-01-02 15:04"), map[bool]string{true: "it had not used these protocols before",
				false: "it uses them with other hosts"}[newClient == 1])
		out = append(out, f)
	}
	for k, s := range srcs {
		ports := 0
		var widest netip.Addr
		for dst, ps := range s.portsPerDst {
			if len(ps) > ports || (len(ps) == ports && dst.Less(widest)) {
				ports, widest = len(ps), dst
			}
		}
		sweep := len(s.adminDsts) >= d.cfg.FanOut
		portScan := ports >= 2*d.cfg.FanOut
		failedBurst := s.failed >= 50 && len(s.failedDsts) >= 5
		if !sweep && !portScan && !failedBurst {
			continue
		}
		c := map[string]float64{
			"fan_out":   detect.Ramp(float64(len(s.adminDsts)), float64(d.cfg.FanOut)/2, float64(d.cfg.FanOut)*3),
			"port_scan": detect.Ramp(float64(ports), float64(d.cfg.FanOut), float64(d.cfg.FanOut)*6),
			"failed":    detect.Ramp(float64(s.failed)/float64(s.conns), 0.2, 0.8),
		}
		score := min(1, 0.35+0.3*c["fan_out"]+0.25*c["port_scan"]+0.2*c["failed"])
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Score: score, Severity: detect.SeverityOf(score),
			FirstSeen: s.first, LastSeen: s.last, Components: c, Attack: []string{"T1046"}}
		if failedBurst {
			f.Attack = append(f.Attack, "T1110")
		}
		if d.env.Allowed(&f) {
			continue
		}
		f.Evidence = map[string]any{"admin_service_hosts": len(s.adminDsts), "most_ports_on_one_host": ports, "failed_connections": s.failed,
			"hosts_refusing": len(s.failedDsts), "connections": s.conns}
		if portScan {
			f.Evidence["port_scanned_host"] = widest.String()
		}
		f.Summary = fmt.Sprintf("%s reached %d internal hosts on admin services and up to %d ports on one host (%s), with %d refused or unanswered connections: discovery inside the network.",
			k.src, len(s.adminDsts), ports, widest, s.failed)
		out = append(out, f)
	}
	return out, nil
}

func dedupe(xs []string) []string {
	sort.Strings(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}
