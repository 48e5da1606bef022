// Package longconn finds long connections: a single connection that stays
// up for hours (tunnels, reverse shells, interactive C2), including those
// still open when the data ends, and pairs whose connections add up to
// hours a day. Scores follow RITA's long-connection thresholds (1, 4, 8,
// 12 hours) so that users coming from RITA can compare.
package longconn

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
	// Min is the shortest single or daily-cumulative duration reported (1h).
	Min time.Duration
}

// Detector is the long-connection detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.Detector = (*Detector)(nil)

// New returns a long-connection detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.Min <= 0 {
		cfg.Min = time.Hour
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "longconn" }

type key struct {
	sensor   string
	src, dst netip.Addr
	port     uint16
	proto    string
}

type agg struct {
	conns       int64
	longest     time.Duration
	total       time.Duration
	days        int64
	bytes       int64
	open        bool
	openSince   time.Time
	first, last time.Time
	service     string
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	prev, err := detect.PrevalenceOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	m := map[key]*agg{}
	err = r.Pairs(ctx, w, store.PairFilter{MinDuration: d.cfg.Min}, func(p *store.PairStat) error {
		if p.MaxDuration < d.cfg.Min && p.Duration < d.cfg.Min {
			return nil
		}
		m[key{p.Sensor, p.Src, p.Dst, p.DstPort, p.Proto}] = &agg{conns: p.Conns, longest: p.MaxDuration, total: p.Duration,
			days: max(p.Days, 1), bytes: p.SrcBytes + p.DstBytes, first: p.First, last: p.Last.Add(p.MaxDuration)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = r.OpenConns(ctx, w, func(o *store.OpenConn) error {
		if o.Duration < d.cfg.Min {
			return nil
		}
		k := key{o.Sensor, o.Src, o.Dst, o.DstPort, o.Proto}
		a := m[k]
		if a == nil {
			a = &agg{first: o.Start, last: o.Reported, days: 1}
			m[k] = a
		}
		a.open, a.service = true, o.Service
		if a.openSince.IsZero() || o.Start.Before(a.openSince) {
			a.openSince = o.Start
		}
		a.longest = max(a.longest, o.Duration)
		a.total += o.Duration
		a.bytes += o.SrcBytes + o.DstBytes
		if o.Start.Before(a.first) {
			a.first = o.Start
		}
		if o.Reported.After(a.last) {
			a.last = o.Reported
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for k, a := range m {
		perDay := a.total / time.Duration(a.days)
		single := detect.Bucketed(a.longest.Seconds(), 3600, 14400, 28800, 43200) / 0.8
		daily := detect.Bucketed(perDay.Seconds(), 3600, 14400, 28800, 43200) / 0.8
		damp := prev.Damp(d.env, k.src, k.dst)
		score := max(single, 0.85*daily) * damp
		if a.open {
			score = min(1, score+0.05)
		}
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, Score: score, FirstSeen: a.first, LastSeen: a.last}
		if score < 0.2 || d.env.Allowed(&f) {
			continue
		}
		f.Severity = detect.SeverityOf(score)
		f.Components = map[string]float64{"single": detect.Round(single, 3), "daily": detect.Round(daily, 3), "prevalence_damping": detect.Round(damp, 3)}
		f.Evidence = map[string]any{"port": k.port, "proto": k.proto, "connections": a.conns, "longest_seconds": detect.Round(a.longest.Seconds(), 1),
			"total_seconds": detect.Round(a.total.Seconds(), 1), "days": a.days, "bytes": a.bytes, "still_open": a.open,
			"ritalike_score": detect.Round(detect.Bucketed(a.total.Seconds(), 3600, 14400, 28800, 43200), 3)}
		f.Attack = []string{"T1071"}
		if k.port == 22 || k.port == 3389 || k.port == 5900 {
			f.Attack = append(f.Attack, "T1021")
		}
		if !d.env.IsLocal(k.dst) {
			f.Attack = append(f.Attack, "T1572")
		}
		what := fmt.Sprintf("a connection lasting %s", detect.Span(a.longest))
		if a.open {
			what = fmt.Sprintf("a connection open since %s and still open when the data ends (%s so far)", a.openSince.UTC().Format("2006-01-02 15:04"), detect.Span(a.longest))
		} else if daily > single {
			what = fmt.Sprintf("connections adding up to %s a day", detect.Span(perDay))
		}
		f.Summary = fmt.Sprintf("%s kept %s to %s port %d/%s.", k.src, what, k.dst, k.port, k.proto)
		out = append(out, f)
	}
	return out, nil
}
