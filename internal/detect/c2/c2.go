// Package c2 finds command-and-control channels that neither keep a
// rhythm (the beacon detector) nor last hours (longconn): an interactive
// session of minutes, a reconnect loop of thousands of attempts, a
// channel kept up for most of a host's activity. Each outbound channel (a
// host, an outside address, a port) is judged by its behaviour — how
// much of the host's time it covers, how often it reconnects, what it
// moves — weighed by what the data says of the other end: an address no
// DNS answer, server name or Host header named although the host's DNS
// queries are seen; a port no everyday service uses; a certificate that
// does not validate; HTTP without a name; a download from it; and how few
// hosts reach it. Behaviour with no such signal is not reported.
//
// A channel found this way also names the tools that set it up: the
// downloads the host made from other unnamed addresses in the minutes
// before the channel began (ingress tool transfer, T1105).
package c2

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinScore drops channels scored below it (0.2).
	MinScore float64
	// MinSupport is the least strength of the signals about the other
	// end for a channel to be judged at all (0.25).
	MinSupport float64
	// StagerWindow is how long before a channel began a download counts
	// as the tool that set it up (10m).
	StagerWindow time.Duration
	// MinStager is the least a download must bring (50 kB).
	MinStager int64
}

// Detector is the C2 channel detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var (
	_ detect.Corroborated = (*Detector)(nil)
	_ detect.SessionsToo  = (*Detector)(nil)
)

// New returns a C2 channel detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinScore <= 0 {
		cfg.MinScore = 0.2
	}
	if cfg.MinSupport <= 0 {
		cfg.MinSupport = 0.25
	}
	if cfg.StagerWindow <= 0 {
		cfg.StagerWindow = 10 * time.Minute
	}
	if cfg.MinStager <= 0 {
		cfg.MinStager = 50_000
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "c2" }

// Behavioural implements detect.Corroborated.
func (d *Detector) Behavioural() {}

// ConnsOnly implements detect.SessionsToo: over flows the channel is
// judged by what the flows say, and whatever Zeek logs of the window say
// of its other end.
func (d *Detector) ConnsOnly() {}

type hostKey struct {
	sensor string
	src    netip.Addr
}

type pairKey struct {
	sensor   string
	src, dst netip.Addr
}

// roleKey is one service a host uses as a client.
type roleKey struct {
	sensor string
	src    netip.Addr
	port   uint16
	proto  string
}

// roleFanout is the number of destinations on one service from which a
// host's use of it is a role (a mail relay on 25, a proxy, a resolver)
// rather than a channel: an implant calls one or a few servers.
const roleFanout = 20

// span is a host's outbound activity.
type span struct{ first, last time.Time }

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
	sides, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Outside)
	if err != nil {
		return nil, err
	}
	var chans []store.PairStat
	hosts := map[hostKey]*span{}
	roles := map[roleKey]map[netip.Addr]bool{} // destinations per host and service
	downloads := map[pairKey]int64{}           // the largest download (resp bytes of a channel) from each pair
	f := store.PairFilter{Sides: sides, SkipDsts: prev.Popular(d.env, 0.3)}
	err = r.Pairs(ctx, w, f, func(p *store.PairStat) error {
		if !d.env.IsLocal(p.Src) || d.env.IsLocal(p.Dst) || !detect.Unicast(p.Dst) {
			return nil
		}
		if p.DstPort == 53 && p.Proto != "icmp" {
			return nil // DNS: names are judged by dnstunnel and dga
		}
		h := hosts[hostKey{p.Sensor, p.Src}]
		if h == nil {
			h = &span{p.First, p.Last}
			hosts[hostKey{p.Sensor, p.Src}] = h
		}
		h.first, h.last = event.Earliest(h.first, p.First), event.Latest(h.last, p.Last.Add(p.MaxDuration))
		pk := pairKey{p.Sensor, p.Src, p.Dst}
		downloads[pk] = max(downloads[pk], p.DstBytes)
		rk := roleKey{p.Sensor, p.Src, p.DstPort, p.Proto}
		if roles[rk] == nil {
			roles[rk] = map[netip.Addr]bool{}
		}
		if len(roles[rk]) < roleFanout {
			roles[rk][p.Dst] = true
		}
		chans = append(chans, *p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for i := range chans {
		p := &chans[i]
		role := len(roles[roleKey{p.Sensor, p.Src, p.DstPort, p.Proto}])
		if f, ok := d.judge(p, hosts[hostKey{p.Sensor, p.Src}], downloads[pairKey{p.Sensor, p.Src, p.Dst}], role, prev, peers); ok {
			out = append(out, f)
		}
	}
	return append(out, d.stagers(out, chans, peers)...), nil
}

// judge scores one outbound channel.
func (d *Detector) judge(p *store.PairStat, host *span, download int64, role int, prev *detect.Prevalence, peers *detect.Peers) (detect.Finding, bool) {
	f := detect.Finding{Detector: d.Name(), Sensor: p.Sensor, Src: p.Src, Dst: p.Dst, FirstSeen: p.First}
	if d.env.Allowed(&f) {
		return f, false
	}
	end := event.Latest(p.Last, p.First.Add(p.MaxDuration))
	presence := end.Sub(p.First)
	hostSpan := host.last.Sub(host.first)
	coverage := presence.Seconds() / math.Max(math.Max(hostSpan.Seconds(), presence.Seconds()), 60)
	persistent := max(detect.Ramp(coverage, 0.2, 0.7)*detect.Ramp(presence.Seconds(), 10, 120), detect.Ramp(float64(p.Days), 1, 5))
	perHour := float64(p.Conns) / math.Max(presence.Hours(), 1.0/60)
	loop := detect.Ramp(math.Log10(float64(p.Conns)), 2, 3) * detect.Ramp(perHour, 20, 200)
	moved := p.SrcBytes + p.DstBytes
	interactive := detect.Ramp(math.Log10(float64(moved)+1), 4.5, 6.5)
	behaviour := max(persistent, loop) * (0.6 + 0.4*interactive)

	s := detect.SupportOf(prev, peers, p.Src, p.Dst, p.DstPort, p.Proto)
	if s.Vetted {
		// Reached by its name over TLS that validates for it: a niche
		// service, however few use it.
		delete(s.Signals, "rare")
	}
	naming := peers.Naming(p.Src, p.Dst)
	if download >= 100_000 && (naming > 0 || !peers.HasDNS()) {
		s.Signals["download"] = detect.Ramp(math.Log10(float64(download)), 5, 6)
	}
	support := s.Strength()
	if support < d.cfg.MinSupport {
		return f, false
	}
	// A host that reaches many destinations on this service the same way
	// does so for a living: each of them is rarely its own host's secret.
	damp := prev.Damp(d.env, p.Src, p.Dst) * (1 - 0.7*detect.Ramp(float64(role), 5, roleFanout)) * detect.ServicePrior(p.DstPort, p.Proto)
	score := behaviour * (0.2 + 0.8*support) * damp
	if score < d.cfg.MinScore {
		return f, false
	}
	f.Score, f.Severity, f.LastSeen = score, detect.SeverityOf(score), end
	f.Attack = []string{"T1071"}
	if s.Signals["unusual_port"] > 0.5 {
		f.Attack = append(f.Attack, "T1571")
	}
	f.Components = map[string]float64{"persistence": detect.Round(persistent, 3), "reconnects": detect.Round(loop, 3),
		"interactive": detect.Round(interactive, 3), "support": detect.Round(support, 3), "damping": detect.Round(damp, 3)}
	f.Evidence = map[string]any{"port": p.DstPort, "proto": p.Proto, "connections": p.Conns, "failed": p.Failed, "bytes_out": p.SrcBytes,
		"bytes_in": p.DstBytes, "presence_seconds": detect.Round(presence.Seconds(), 1), "share_of_host_activity": detect.Round(coverage, 3),
		"days": p.Days, "signals": s.Names(), "destinations_on_service": role}
	var shape []string
	if persistent >= 0.5 {
		shape = append(shape, fmt.Sprintf("kept up for %s, %.0f%% of its activity", detect.Span(presence), 100*min(coverage, 1)))
	}
	if loop >= 0.5 {
		shape = append(shape, fmt.Sprintf("re-opened %d times, %.0f an hour", p.Conns, perHour))
	}
	if interactive >= 0.5 {
		shape = append(shape, fmt.Sprintf("moving %s", detect.HumanBytes(uint64(max(moved, 0)))))
	}
	if len(shape) == 0 {
		shape = append(shape, fmt.Sprintf("%d connection(s) over %s", p.Conns, detect.Span(presence)))
	}
	f.Summary = fmt.Sprintf("%s has a channel to %s port %d/%s %s; %s.", p.Src, p.Dst, p.DstPort, p.Proto, strings.Join(shape, ", "),
		strings.Join(describe(s, peers.Of(p.Dst)), ", "))
	return f, true
}

// describe says the signals in words.
func describe(s detect.Support, peer detect.Peer) []string {
	var out []string
	for _, n := range s.Names() {
		switch n {
		case "unnamed":
			out = append(out, "no DNS answer or name ever named the address")
		case "unusual_port":
			out = append(out, "a port no everyday service uses")
		case "tls_invalid":
			out = append(out, "a "+peer.TLSBad+" certificate")
		case "http_bare_address":
			out = append(out, "HTTP to the bare address")
		case "rare":
			out = append(out, "one or two internal hosts reach it")
		case "download":
			out = append(out, "a download from it")
		}
	}
	return out
}

// stagers finds, for each channel found, the downloads its host made in
// the minutes before the channel began from other addresses nothing named:
// what fetched and set up the implant.
func (d *Detector) stagers(found []detect.Finding, chans []store.PairStat, peers *detect.Peers) []detect.Finding {
	type start struct {
		at    time.Time
		c2    netip.Addr
		score float64
	}
	starts := map[hostKey][]start{}
	for _, f := range found {
		if f.Score >= 0.4 {
			k := hostKey{f.Sensor, f.Src}
			starts[k] = append(starts[k], start{f.FirstSeen, f.Dst, f.Score})
		}
	}
	best := map[pairKey]detect.Finding{}
	for i := range chans {
		p := &chans[i]
		// Tools come over the web's ports, from an address nothing named.
		if p.DstBytes < d.cfg.MinStager || detect.PortOddity(p.DstPort, p.Proto) == 1 || (peers.HasDNS() && peers.Naming(p.Src, p.Dst) == 0) {
			continue
		}
		for _, s := range starts[hostKey{p.Sensor, p.Src}] {
			if s.c2 == p.Dst || p.First.After(s.at) || s.at.Sub(p.First) > d.cfg.StagerWindow {
				continue
			}
			score := s.score * (0.6 + 0.4*detect.Ramp(math.Log10(float64(p.DstBytes)), 4.7, 6.5))
			k := pairKey{p.Sensor, p.Src, p.Dst}
			if b, ok := best[k]; ok && b.Score >= score {
				continue
			}
			best[k] = detect.Finding{Detector: d.Name(), Sensor: p.Sensor, Src: p.Src, Dst: p.Dst, Score: score, Severity: detect.SeverityOf(score),
				FirstSeen: p.First, LastSeen: event.Latest(p.Last, p.First.Add(p.MaxDuration)), Attack: []string{"T1105"},
				Components: map[string]float64{"channel": detect.Round(s.score, 3)},
				Evidence: map[string]any{"port": p.DstPort, "proto": p.Proto, "bytes_in": p.DstBytes, "connections": p.Conns,
					"channel_to": s.c2.String(), "seconds_before_channel": detect.Round(s.at.Sub(p.First).Seconds(), 1), "kind": "stager"},
				Summary: fmt.Sprintf("%s downloaded %s from %s port %d %s before its channel to %s began: the tool that set it up.",
					p.Src, detect.HumanBytes(uint64(max(p.DstBytes, 0))), p.Dst, p.DstPort, detect.Span(s.at.Sub(p.First)), s.c2)}
		}
	}
	out := make([]detect.Finding, 0, len(best))
	for _, f := range best {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b detect.Finding) int { return cmp.Compare(a.Dst.String(), b.Dst.String()) })
	return out
}
