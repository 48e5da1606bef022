// Package deadc2 finds command and control that no longer answers: an
// internal host that keeps trying one outside address at a steady rhythm
// while nearly every attempt is refused or unanswered. It is what an
// implant does after its server went away or was blocked, and exactly what
// remains after a quiet containment; the beacon detector, which weighs
// what a channel carries, damps such series to nothing because no bytes
// move.
package deadc2

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinAttempts is the fewest attempts a series needs (6).
	MinAttempts int
	// MinFailedShare is the least share of attempts refused or unanswered
	// (0.8).
	MinFailedShare float64
	// MinScore drops findings scored below it (0.3).
	MinScore float64
}

// Detector is the dead C2 detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var (
	_ detect.Corroborated = (*Detector)(nil)
	_ detect.SessionsToo  = (*Detector)(nil)
)

// New returns a dead C2 detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinAttempts < 4 {
		cfg.MinAttempts = 6
	}
	if cfg.MinFailedShare <= 0 {
		cfg.MinFailedShare = 0.8
	}
	if cfg.MinScore <= 0 {
		cfg.MinScore = 0.3
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "deadc2" }

// Behavioural implements detect.Corroborated: software also retries a
// server that went away.
func (d *Detector) Behavioural() {}

// ConnsOnly implements detect.SessionsToo.
func (d *Detector) ConnsOnly() {}

type pairKey struct {
	sensor   string
	src, dst netip.Addr
}

// target is what was tried of one destination: its attempts on each port.
type target struct {
	conns, failed int64
	ports         map[uint16]int64
	proto         string
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	first, last, _, ok, err := r.Span(ctx, w)
	if err != nil || !ok {
		return nil, err
	}
	sides, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Outside)
	if err != nil {
		return nil, err
	}
	prev, err := detect.PrevalenceOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	targets := map[pairKey]*target{}
	f := store.PairFilter{Sides: sides, MinPairConns: int64(d.cfg.MinAttempts), MinFailedShare: d.cfg.MinFailedShare}
	err = r.Pairs(ctx, w, f, func(p *store.PairStat) error {
		if !d.env.IsLocal(p.Src) || d.env.IsLocal(p.Dst) || !detect.Unicast(p.Dst) {
			return nil
		}
		k := pairKey{p.Sensor, p.Src, p.Dst}
		t := targets[k]
		if t == nil {
			t = &target{ports: map[uint16]int64{}, proto: p.Proto}
			targets[k] = t
		}
		t.conns += p.Conns
		t.failed += p.Failed
		t.ports[p.DstPort] += p.Conns
		return nil
	})
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	var dsts []netip.Addr
	for k := range targets {
		dsts = append(dsts, k.dst)
	}
	slices.SortFunc(dsts, func(a, b netip.Addr) int { return a.Compare(b) })
	dsts = slices.Compact(dsts)
	var out []detect.Finding
	err = r.Series(ctx, store.SeriesConn, w, store.SeriesFilter{MinCount: d.cfg.MinAttempts, Dsts: dsts}, func(s *store.Series) error {
		t := targets[pairKey{s.Sensor, s.Src, s.Dst}]
		if t == nil {
			return nil
		}
		if f, ok := d.judge(s, t, last.Sub(first), prev); ok {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

func (d *Detector) judge(s *store.Series, t *target, span time.Duration, prev *detect.Prevalence) (detect.Finding, bool) {
	f := detect.Finding{Detector: d.Name(), Sensor: s.Sensor, Src: s.Src, Dst: s.Dst}
	if d.env.Allowed(&f) {
		return f, false
	}
	a, ok := detect.RhythmOf(s.Times, s.Sizes, span)
	if !ok {
		return f, false
	}
	share := float64(t.failed) / float64(max(t.conns, 1))
	port := mainPort(t.ports)
	if float64(t.ports[port]) < 0.8*float64(t.conns) {
		return f, false // hopping from port to port: a scan, not a call home
	}
	damp := prev.Damp(d.env, s.Src, s.Dst) * detect.ServicePrior(port, t.proto)
	score := (0.6*a.Timing + 0.4*a.Persistence) * a.Confidence * (0.5 + 0.5*a.Longevity) * (0.7 + 0.3*detect.Ramp(share, d.cfg.MinFailedShare, 1)) * damp
	if score < d.cfg.MinScore {
		return f, false
	}
	f.Score, f.Severity = score, detect.SeverityOf(score)
	f.FirstSeen, f.LastSeen = a.First, a.Last
	f.Attack = []string{"T1071", "T1008"}
	f.Components = map[string]float64{"timing": detect.Round(a.Timing, 3), "persistence": detect.Round(a.Persistence, 3),
		"longevity": detect.Round(a.Longevity, 3), "confidence": detect.Round(a.Confidence, 3), "failed": detect.Round(share, 3),
		"prevalence_damping": detect.Round(damp, 3)}
	f.Evidence = map[string]any{"attempts": a.Conns, "failed": t.failed, "failed_share": detect.Round(share, 3), "port": port, "proto": t.proto,
		"ports": len(t.ports), "period_seconds": detect.Round(a.Period.Seconds(), 1), "jitter": detect.Round(a.Jitter, 3),
		"in_band_intervals": a.InBand, "intervals": a.Intervals}
	f.Summary = fmt.Sprintf("%s keeps trying %s port %d/%s every %s (jitter ±%.0f%%): %d attempts over %s, %.0f%% refused or unanswered: an implant calling a server that is gone or blocked.",
		s.Src, s.Dst, port, t.proto, detect.Period(a.Period), a.Jitter*100, a.Conns, detect.Span(a.Last.Sub(a.First)), 100*share)
	return f, true
}

// mainPort is the port with the most attempts (the lowest of equals).
func mainPort(ports map[uint16]int64) uint16 {
	keys := make([]uint16, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b uint16) int { return cmp.Or(cmp.Compare(ports[b], ports[a]), cmp.Compare(a, b)) })
	return keys[0]
}
