// Package rare finds destinations only one or two internal hosts talk to,
// first seen after the start of the data, and contacted on several days:
// the infrastructure of a targeted intrusion is new and used by few. On its
// own it is a weak signal (findings stay at medium); the other detectors
// use the same prevalence (detect.Prevalence) to weigh their findings.
package rare

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MaxClients is the most internal hosts a rare destination has (2).
	MaxClients int
	// MinDays is the fewest distinct days of contact (2).
	MinDays int
}

// Detector is the rare-destination detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.Detector = (*Detector)(nil)

// New returns a rare-destination detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 2
	}
	if cfg.MinDays <= 0 {
		cfg.MinDays = 2
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "rare" }

type key struct {
	sensor   string
	src, dst netip.Addr
}

type agg struct {
	conns, failed, bytes int64
	days                 int64
	first, last          time.Time
	ports                map[uint16]bool
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	first, last, _, ok, err := r.Span(ctx, w)
	if err != nil || !ok {
		return nil, err
	}
	prev, err := detect.PrevalenceOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	if prev.Hosts < 10 {
		return nil, nil // rarity means nothing in a handful of hosts
	}
	m := map[key]*agg{}
	sides, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Outside)
	if err != nil {
		return nil, err
	}
	f := store.PairFilter{Sides: sides, Dsts: prev.Rare(d.env, d.cfg.MaxClients)}
	err = r.Pairs(ctx, w, f, func(p *store.PairStat) error {
		if !d.env.IsLocal(p.Src) || d.env.IsLocal(p.Dst) || prev.Of(p.Dst).Clients > d.cfg.MaxClients {
			return nil
		}
		k := key{p.Sensor, p.Src, p.Dst}
		a := m[k]
		if a == nil {
			a = &agg{first: p.First, last: p.Last, ports: map[uint16]bool{}}
			m[k] = a
		}
		a.conns += p.Conns
		a.failed += p.Failed
		a.bytes += p.SrcBytes + p.DstBytes
		a.days = max(a.days, p.Days)
		a.ports[p.DstPort] = true
		if p.First.Before(a.first) {
			a.first = p.First
		}
		if p.Last.After(a.last) {
			a.last = p.Last
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	span := last.Sub(first)
	var out []detect.Finding
	for k, a := range m {
		if a.days < int64(d.cfg.MinDays) || a.conns-a.failed < 3 {
			continue
		}
		info := prev.Of(k.dst)
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, FirstSeen: info.First, LastSeen: info.Last}
		if d.env.Allowed(&f) {
			continue
		}
		// New: first seen after the first tenth of the data.
		newness := 0.0
		if span > 0 {
			newness = detect.Ramp(float64(info.First.Sub(first))/float64(span), 0.02, 0.1)
		}
		c := map[string]float64{
			"rarity":      1 - 0.5*float64(info.Clients-1),
			"newness":     newness,
			"persistence": detect.Ramp(float64(a.days), 1, 7),
			"answered":    1 - float64(a.failed)/float64(a.conns),
		}
		score := 0.6 * (0.35*c["rarity"] + 0.2*c["newness"] + 0.3*c["persistence"] + 0.15*c["answered"])
		if score < 0.3 {
			continue
		}
		for n, v := range c {
			c[n] = detect.Round(v, 3)
		}
		f.Score, f.Severity, f.Components = score, detect.SeverityOf(score), c
		f.Attack = []string{"T1071"} // what new, rarely used infrastructure is most often for
		f.Evidence = map[string]any{"internal_hosts_contacting": info.Clients, "first_seen_in_data": info.First.Format(time.RFC3339),
			"connections": a.conns, "days": a.days, "bytes": a.bytes, "ports": len(a.ports)}
		f.Summary = fmt.Sprintf("%s is contacted by %d internal host(s) only, on %d day(s) since %s; %s is one of them.",
			k.dst, info.Clients, a.days, info.First.UTC().Format("2006-01-02"), k.src)
		out = append(out, f)
	}
	return out, nil
}
