// Package longconn finds long connections: a single connection that stays
// up for hours (tunnels, reverse shells, interactive C2), including those
// still open when the data ends, pairs whose connections cover hours a
// day, and sessions of tens of minutes that move megabytes to or from an
// address nothing named. Scores follow RITA's long-connection thresholds
// (1, 4, 8, 12 hours) so that users coming from RITA can compare.
package longconn

import (
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
	// Min is the shortest single or daily duration reported on duration
	// alone (1h).
	Min time.Duration
	// MinShort is the shortest session reported when it moved MinBytes to
	// or from an address nothing named or on an unusual port (10m).
	MinShort time.Duration
	// MinBytes is what such a shorter session must move (1 MB).
	MinBytes int64
}

// Detector is the long-connection detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var (
	_ detect.Corroborated = (*Detector)(nil)
	_ detect.SessionsToo  = (*Detector)(nil)
)

// New returns a long-connection detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.Min <= 0 {
		cfg.Min = time.Hour
	}
	if cfg.MinShort <= 0 {
		cfg.MinShort = 10 * time.Minute
	}
	if cfg.MinBytes <= 0 {
		cfg.MinBytes = 1_000_000
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "longconn" }

// Behavioural implements detect.Corroborated: long sessions are what
// telemetry and push services keep too.
func (d *Detector) Behavioural() {}

// ConnsOnly implements detect.SessionsToo.
func (d *Detector) ConnsOnly() {}

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
	perDay      time.Duration // mean time a day covered by the connections (their union)
	days        int64
	bytes       int64
	open        bool
	openSince   time.Time
	first, last time.Time
	service     string
	midstream   bool // outside to an ephemeral inside port: Zeek saw the middle only
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	prev, err := detect.PrevalenceOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	peers, err := detect.PeersOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	m := map[key]*agg{}
	floor := min(d.cfg.Min, d.cfg.MinShort)
	err = r.Pairs(ctx, w, store.PairFilter{MinDuration: floor}, func(p *store.PairStat) error {
		if (p.MaxDuration < floor && p.Duration < floor) || !detect.Unicast(p.Dst) || !detect.Unicast(p.Src) {
			return nil
		}
		k := key{p.Sensor, p.Src, p.Dst, p.DstPort, p.Proto}
		m[k] = &agg{conns: p.Conns, longest: p.MaxDuration, total: p.Duration, days: max(p.Days, 1), bytes: p.SrcBytes + p.DstBytes,
			first: p.First, last: p.Last.Add(p.MaxDuration), perDay: p.Duration / time.Duration(max(p.Days, 1))}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.coverage(ctx, r, w, m, prev); err != nil {
		return nil, err
	}
	if w.Conns == store.ConnLog {
		if err := d.open(ctx, r, w, m); err != nil {
			return nil, err
		}
	}
	var out []detect.Finding
	for k, a := range m {
		if f, ok := d.judge(k, a, prev, peers); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// coverage replaces each pair's daily total by the time a day its
// connections cover (the union of their intervals, per UTC day): two
// connections open side by side count once, and no day has more than 24
// hours. Only pairs whose connections add up to Min can reach it, and
// destinations most hosts use are damped below any finding: the others
// keep their total a day.
func (d *Detector) coverage(ctx context.Context, r store.Reader, w store.Window, m map[key]*agg, prev *detect.Prevalence) error {
	popular := map[netip.Addr]bool{}
	for _, a := range prev.Popular(d.env, 0.3) {
		popular[a] = true
	}
	dsts := map[netip.Addr]bool{}
	for k, a := range m {
		if a.total >= d.cfg.Min && !popular[k.dst] {
			dsts[k.dst] = true
		}
	}
	if len(dsts) == 0 {
		return nil
	}
	list := make([]netip.Addr, 0, len(dsts))
	for a := range dsts {
		list = append(list, a)
	}
	slices.SortFunc(list, func(a, b netip.Addr) int { return a.Compare(b) })
	f := store.SeriesFilter{MinCount: 1, Dsts: list, MinDuration: d.cfg.Min}
	return r.Series(ctx, store.SeriesSessions, w, f, func(s *store.Series) error {
		a := m[key{s.Sensor, s.Src, s.Dst, s.Port, s.Proto}]
		if a == nil {
			return nil
		}
		covered := map[int64]time.Duration{}
		for _, iv := range union(s.Times, s.Sizes) {
			for start := iv[0]; start < iv[1]; {
				day := start / (86400 * 1e6)
				end := min(iv[1], (day+1)*86400*1e6)
				covered[day] += time.Duration(end-start) * time.Microsecond
				start = end
			}
		}
		if len(covered) == 0 {
			return nil
		}
		var sum time.Duration
		for _, c := range covered {
			sum += c
		}
		a.perDay = sum / time.Duration(len(covered))
		return nil
	})
}

// union merges intervals given as starts (µs, ascending) and durations
// (µs) into disjoint [start, end) intervals.
func union(starts, durs []int64) [][2]int64 {
	var out [][2]int64
	for i, s := range starts {
		e := s + max(durs[i], 0)
		if n := len(out); n > 0 && s <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], e)
			continue
		}
		out = append(out, [2]int64{s, e})
	}
	return out
}

// open adds the connections still open when the data ends.
func (d *Detector) open(ctx context.Context, r store.Reader, w store.Window, m map[key]*agg) error {
	return r.OpenConns(ctx, w, func(o *store.OpenConn) error {
		if o.Duration < d.cfg.Min || !detect.Unicast(o.Dst) {
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
		a.perDay = min(max(a.perDay, o.Duration), 24*time.Hour)
		a.bytes += o.SrcBytes + o.DstBytes
		if o.Start.Before(a.first) {
			a.first = o.Start
		}
		if o.Reported.After(a.last) {
			a.last = o.Reported
		}
		return nil
	})
}

// judge scores one pair.
func (d *Detector) judge(k key, a *agg, prev *detect.Prevalence, peers *detect.Peers) (detect.Finding, bool) {
	// A connection from outside to an ephemeral port inside is one whose
	// start Zeek did not see, oriented by guesswork: it is reported from
	// the inside host.
	if !d.env.IsLocal(k.src) && d.env.IsLocal(k.dst) && k.port >= 49152 {
		k.src, k.dst, k.port = k.dst, k.src, 0
		a.midstream = true
	}
	single := detect.Bucketed(a.longest.Seconds(), 3600, 14400, 28800, 43200) / 0.8
	daily := detect.Bucketed(a.perDay.Seconds(), 3600, 14400, 28800, 43200) / 0.8
	damp := prev.Damp(d.env, k.src, k.dst)
	score := max(single, 0.85*daily)
	// Tens of minutes moving megabytes to or from an address nothing
	// named, or on a port no everyday service uses: an interactive
	// session or a transfer, below RITA's hour.
	short := 0.0
	if d.env.IsLocal(k.src) && !d.env.IsLocal(k.dst) && a.longest >= d.cfg.MinShort && a.bytes >= d.cfg.MinBytes {
		odd := max(peers.Naming(k.src, k.dst), detect.PortOddity(k.port, k.proto))
		if k.port == 0 {
			odd = peers.Naming(k.src, k.dst)
		}
		short = odd * (0.35 + 0.25*detect.Ramp(a.longest.Minutes(), d.cfg.MinShort.Minutes(), 60)) *
			(0.6 + 0.4*detect.Ramp(math.Log10(float64(a.bytes)), 6, 8))
		score = max(score, short)
	}
	// Datagrams between fixed ports of a timer-driven service (time,
	// network management) are one long "connection" to Zeek and to flow
	// stitching alike.
	if k.proto == "udp" && detect.PortOddity(k.port, k.proto) == 0 {
		damp *= 0.3
	}
	score *= damp
	if a.open {
		score = min(1, score+0.05)
	}
	f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, Score: score, FirstSeen: a.first, LastSeen: a.last}
	if score < 0.2 || d.env.Allowed(&f) {
		return f, false
	}
	f.Severity = detect.SeverityOf(score)
	f.Components = map[string]float64{"single": detect.Round(single, 3), "daily": detect.Round(daily, 3), "short_heavy": detect.Round(short, 3),
		"prevalence_damping": detect.Round(damp, 3)}
	f.Evidence = map[string]any{"port": k.port, "proto": k.proto, "connections": a.conns, "longest_seconds": detect.Round(a.longest.Seconds(), 1),
		"total_seconds": detect.Round(a.total.Seconds(), 1), "covered_seconds_per_day": detect.Round(a.perDay.Seconds(), 1), "days": a.days,
		"bytes": a.bytes, "still_open": a.open, "ritalike_score": detect.Round(detect.Bucketed(a.total.Seconds(), 3600, 14400, 28800, 43200), 3)}
	if a.midstream {
		f.Evidence["seen_from_the_middle"] = true
	}
	f.Attack = []string{"T1071"}
	if k.port == 22 || k.port == 3389 || k.port == 5900 {
		f.Attack = append(f.Attack, "T1021")
	}
	if !d.env.IsLocal(k.dst) {
		f.Attack = append(f.Attack, "T1572")
	}
	what := fmt.Sprintf("a connection lasting %s", detect.Span(a.longest))
	switch {
	case a.open:
		what = fmt.Sprintf("a connection open since %s and still open when the data ends (%s so far)", a.openSince.UTC().Format("2006-01-02 15:04"), detect.Span(a.longest))
	case short > single && short > 0.85*daily:
		what = fmt.Sprintf("a connection lasting %s that moved %s", detect.Span(a.longest), detect.HumanBytes(uint64(max(a.bytes, 0))))
	case daily > single:
		what = fmt.Sprintf("connections covering %s a day", detect.Span(a.perDay))
	}
	to := fmt.Sprintf("%s port %d/%s", k.dst, k.port, k.proto)
	if a.midstream {
		to = fmt.Sprintf("%s (seen from its middle: which end opened it is a guess)", k.dst)
	}
	f.Summary = fmt.Sprintf("%s kept %s to %s.", k.src, what, to)
	return f, true
}
