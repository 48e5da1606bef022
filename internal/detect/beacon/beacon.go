// Package beacon finds command-and-control check-ins: a host contacting
// the same peer (address, TLS server name or HTTP host) at a regular
// period, however slow, jittered or interrupted, over all history.
//
// Each pair gets dwell's own score (detect.RhythmOf) and, for comparison, the
// RITA v5.1.1 score over RITA's last-24-hours window (rita.go).
package beacon

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
	// MinConns is the fewest connections a pair needs to be scored (4).
	MinConns int
	// MinScore drops findings scored below it (0.3).
	MinScore float64
}

// Detector is the beacon detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var (
	_ detect.Corroborated = (*Detector)(nil)
	_ detect.SessionsToo  = (*Detector)(nil)
)

// Behavioural implements detect.Corroborated: a rhythm alone is what
// benign telemetry has too.
func (d *Detector) Behavioural() {}

// ConnsOnly implements detect.SessionsToo: over flow sessions the
// detector judges connections only (no TLS or HTTP series).
func (d *Detector) ConnsOnly() {}

// New returns a beacon detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinConns < 4 {
		cfg.MinConns = 4
	}
	if cfg.MinScore == 0 {
		cfg.MinScore = 0.3
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "beacon" }

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
	names, err := detect.NamesOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	// Destinations and names most hosts use are damped to at most
	// MinScore whatever their timing: their series are not fetched.
	skipDsts := prev.Popular(d.env, d.cfg.MinScore)
	skipNames := names.Popular(d.cfg.MinScore)
	pairs, err := pairInfo(ctx, r, w, store.PairFilter{MinPairConns: int64(d.cfg.MinConns), SkipDsts: skipDsts})
	if err != nil {
		return nil, err
	}
	histMin, histMax, rowsFrom := RITAWindow(first.Unix(), last.Unix())
	dataSpan := last.Sub(first)
	var out []detect.Finding
	kinds := []store.SeriesKind{store.SeriesConn, store.SeriesTLSName, store.SeriesHTTPHost}
	if w.Conns == store.FlowSessions {
		kinds = kinds[:1] // TLS and HTTP are Zeek's: judged over the conn log
	}
	for _, kind := range kinds {
		f := store.SeriesFilter{MinCount: d.cfg.MinConns, SkipDsts: skipDsts, SkipNames: skipNames}
		err := r.Series(ctx, kind, w, f, func(s *store.Series) error {
			if kind == store.SeriesConn && !detect.Unicast(s.Dst) {
				return nil // multicast, broadcast, link-local: announcements, not check-ins
			}
			var pi *pairAgg
			if kind == store.SeriesConn {
				pi = pairs[pairKey{s.Sensor, s.Src, s.Dst}]
			}
			if f, ok := d.score(s, kind, dataSpan, histMin, histMax, rowsFrom, prev, names, pi); ok {
				out = append(out, f)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return d.sameChannel(ctx, r, w, out)
}

// pairKey and pairAgg summarise a conn pair over all its ports: whether it
// is answered, whether it keeps to one service, whether it carries data
// and over what. A scanner that probes a host on a schedule is periodic
// too, but its connections are refused and hop from port to port; an
// uptime monitor pings on a schedule, but over ICMP with no payload to
// speak of. A working channel is answered, on one application service.
type pairKey struct {
	sensor   string
	src, dst netip.Addr
}

type pairAgg struct {
	conns, failed, topPort, icmp int64
	bytes                        int64
	port                         uint16
	proto                        string
}

func pairInfo(ctx context.Context, r store.Reader, w store.Window, f store.PairFilter) (map[pairKey]*pairAgg, error) {
	m := map[pairKey]*pairAgg{}
	err := r.Pairs(ctx, w, f, func(p *store.PairStat) error {
		k := pairKey{p.Sensor, p.Src, p.Dst}
		a := m[k]
		if a == nil {
			a = &pairAgg{}
			m[k] = a
		}
		a.conns += p.Conns
		a.failed += p.Failed
		a.bytes += p.SrcBytes + p.DstBytes
		if p.Proto == "icmp" {
			a.icmp += p.Conns
		}
		if p.Conns > a.topPort {
			a.topPort, a.port, a.proto = p.Conns, p.DstPort, p.Proto
		}
		return nil
	})
	return m, err
}

// channel returns how much a pair looks like a working channel: answered,
// on one application service, carrying data (1); or refused and
// port-hopping like a scan, or empty pings (down to a few percent).
func (a *pairAgg) channel() (factor, answered, onePort float64) {
	if a == nil || a.conns == 0 {
		return 1, 1, 1
	}
	answered = 1 - float64(a.failed)/float64(a.conns)
	onePort = float64(a.topPort) / float64(a.conns)
	factor = (0.25 + 0.75*answered) * (0.5 + 0.5*onePort) * (1 - 0.4*float64(a.icmp)/float64(a.conns))
	if a.bytes == 0 {
		factor *= 0.5
	}
	return factor * detect.ServicePrior(a.port, a.proto), answered, onePort
}

func (d *Detector) score(s *store.Series, kind store.SeriesKind, dataSpan time.Duration, histMin, histMax, rowsFrom int64,
	prev *detect.Prevalence, names *detect.Names, pi *pairAgg) (detect.Finding, bool) {
	f := detect.Finding{Detector: "beacon", Sensor: s.Sensor, Src: s.Src, Dst: s.Dst, Domain: s.Name}
	if a, ok := detect.HostLiteral(s.Name); ok && kind != store.SeriesConn {
		// A check-in to a bare address is a channel to that address,
		// not to a domain.
		f.Domain = ""
		if !f.Dst.IsValid() {
			f.Dst = a
		}
	}
	if d.env.Allowed(&f) {
		return f, false
	}
	a, ok := detect.RhythmOf(s.Times, s.Sizes, dataSpan)
	if !ok {
		return f, false
	}
	damp, clients, hosts := 1.0, 0, 0
	switch kind {
	case store.SeriesConn:
		damp = prev.Damp(d.env, s.Src, s.Dst)
		clients, hosts = prev.Of(s.Dst).Clients, prev.Hosts
	default:
		if d.env.IsLocal(s.Src) {
			damp = names.Damp(s.Name)
			clients, hosts = max(names.Clients(s.Name), names.UsedBy(s.Name)), max(names.Hosts, names.Users)
		}
	}
	channel, answered, onePort := pi.channel()
	f.Score = a.Score * damp * channel
	if f.Score < d.cfg.MinScore {
		return f, false
	}
	f.Severity = detect.SeverityOf(f.Score)
	f.FirstSeen, f.LastSeen = a.First, a.Last
	f.Components = map[string]float64{
		"timing": detect.Round(a.Timing, 3), "size": detect.Round(a.Size, 3), "persistence": detect.Round(a.Persistence, 3), "longevity": detect.Round(a.Longevity, 3),
		"confidence": detect.Round(a.Confidence, 3), "prevalence_damping": detect.Round(damp, 3),
		"channel": detect.Round(channel, 3),
	}
	ev := map[string]any{
		"connections": a.Conns, "check_ins": a.CheckIns, "intervals": a.Intervals, "in_band_intervals": a.InBand,
		"period_seconds": detect.Round(a.Period.Seconds(), 1), "jitter": detect.Round(a.Jitter, 3),
		"kind": map[store.SeriesKind]string{store.SeriesConn: "ip", store.SeriesTLSName: "tls_sni", store.SeriesHTTPHost: "http_host"}[kind],
	}
	if hosts > 0 {
		ev["internal_hosts_contacting"], ev["internal_hosts"] = clients, hosts
	}
	if pi != nil {
		ev["answered_share"], ev["main_port_share"], ev["main_port"], ev["proto"] = detect.Round(answered, 3), detect.Round(onePort, 3), pi.port, pi.proto
	}
	ev["rita"] = ritaEvidence(s, histMin, histMax, rowsFrom)
	f.Evidence = ev
	switch kind {
	case store.SeriesTLSName:
		f.Attack = []string{"T1071.001", "T1573"}
	case store.SeriesHTTPHost:
		f.Attack = []string{"T1071.001"}
	default:
		f.Attack = []string{"T1071"}
	}
	peer := s.Dst.String()
	if s.Name != "" {
		peer = s.Name
	}
	rarity := ""
	if hosts >= 10 {
		rarity = fmt.Sprintf("; %d of %d internal hosts contact it", clients, hosts)
	}
	f.Summary = fmt.Sprintf("%s checks in with %s every %s (jitter ±%.0f%%): %d check-ins over %s, %d of %d intervals on period%s.",
		s.Src, peer, detect.Period(a.Period), a.Jitter*100, a.CheckIns, detect.Span(a.Last.Sub(a.First)), a.InBand, a.Intervals, rarity)
	return f, true
}

// ritaEvidence scores the part of the series in RITA's window.
func ritaEvidence(s *store.Series, histMin, histMax, rowsFrom int64) map[string]any {
	var ts []uint32
	var sizes []float64
	for i, t := range s.Times {
		sec := t / 1e6
		if sec < rowsFrom || sec > histMax {
			continue
		}
		ts = append(ts, uint32(sec)) //nolint:gosec // G115: unix seconds fit until 2106
		sizes = append(sizes, float64(s.Sizes[i]))
	}
	window := map[string]any{"from": time.Unix(rowsFrom, 0).UTC().Format(time.RFC3339), "to": time.Unix(histMax, 0).UTC().Format(time.RFC3339)}
	if len(ts) == 0 {
		return map[string]any{"scored": false, "reason": "no connections in RITA's last-24-hours window", "window": window}
	}
	rs, err := ScoreRITA(ts, sizes, histMin, histMax)
	if err != nil {
		return map[string]any{"scored": false, "reason": err.Error(), "connections": len(ts), "window": window}
	}
	return map[string]any{
		"scored": true, "score": rs.Score, "ts_score": rs.Timestamp, "ds_score": rs.DataSize, "hist_score": rs.Histogram,
		"dur_score": rs.Duration, "connections": rs.Conns, "threat_score": rs.Threat, "window": window,
	}
}
