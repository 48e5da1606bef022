// Package ddos finds volumetric denial-of-service attacks in exported
// flows: minutes in which one destination receives a flood of packets
// from many sources, joined into episodes, with the vectors that made
// them (TCP SYN flood, UDP reflection from DNS, NTP and other amplifying
// services, plain UDP or ICMP floods). It reads store.FloodVectors, which
// keeps only the minutes over the packet threshold, so an edge's ordinary
// flows never leave the store.
package ddos

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
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinPPS is the packet rate, averaged over a minute, that makes a
	// minute part of a flood (default 10,000 packets/s).
	MinPPS float64
	// MinSources is how many distinct sources a flood minute has at least
	// (default 20): one host sending fast is a transfer, not a DDoS.
	MinSources int64
	// Gap is the longest pause inside one attack (default 5 minutes).
	Gap time.Duration
}

// Detector is the DDoS detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.Detector = (*Detector)(nil)

// New returns a DDoS detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinPPS <= 0 {
		cfg.MinPPS = 10_000
	}
	if cfg.MinSources <= 0 {
		cfg.MinSources = 20
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 5 * time.Minute
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "ddos" }

// minute is one destination's traffic in one minute, all vectors.
type minute struct {
	at             time.Time
	packets, bytes int64
	sources        int64            // distinct per vector, added: a source in two vectors counts twice
	vectors        map[string]int64 // packets per vector
}

type target struct {
	sensor string
	dst    netip.Addr
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	minPackets := int64(math.Ceil(d.cfg.MinPPS * 60))
	minutes := map[target][]*minute{}
	err := r.FloodVectors(ctx, w, minPackets, func(v *store.FloodVector) error {
		t := target{v.Sensor, v.Dst}
		ms := minutes[t]
		if len(ms) == 0 || !ms[len(ms)-1].at.Equal(v.Minute) {
			ms = append(ms, &minute{at: v.Minute, vectors: map[string]int64{}})
			minutes[t] = ms
		}
		m := ms[len(ms)-1]
		m.packets += v.Packets
		m.bytes += v.Bytes
		m.sources += v.Sources
		m.vectors[v.Vector] += v.Packets
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for t, ms := range minutes {
		var episode []*minute
		flush := func() {
			if len(episode) > 0 {
				if f, ok := d.finding(t, episode); ok {
					out = append(out, f)
				}
			}
			episode = episode[:0]
		}
		for _, m := range ms {
			if m.sources < d.cfg.MinSources {
				continue
			}
			if len(episode) > 0 && m.at.Sub(episode[len(episode)-1].at) > d.cfg.Gap {
				flush()
			}
			episode = append(episode, m)
		}
		flush()
	}
	return out, nil
}

// reflectors name the services abused for reflection, by UDP source port.
var reflectors = map[string]string{"17": "QOTD", "19": "chargen", "53": "DNS", "69": "TFTP", "111": "portmap", "123": "NTP",
	"137": "NetBIOS", "161": "SNMP", "389": "CLDAP", "500": "ISAKMP", "520": "RIPv1", "1434": "MS-SQL", "1900": "SSDP",
	"3283": "ARMS", "3389": "RDP", "3702": "WS-Discovery", "4500": "IKE NAT-T", "5353": "mDNS", "5683": "CoAP", "10001": "Ubiquiti discovery",
	"11211": "memcached", "37810": "DVR discovery", "47808": "BACnet"}

// VectorName says what a vector (store.FloodVectorOf) is in a summary.
func VectorName(v string) string {
	switch v {
	case "tcp-syn":
		return "TCP SYN flood"
	case "tcp-synack":
		return "TCP SYN-ACK reflection"
	case "udp-fragment":
		return "UDP fragment flood"
	case "udp", "tcp", "icmp":
		return strings.ToUpper(v) + " flood"
	}
	if p, ok := strings.CutPrefix(v, "udp/"); ok {
		if name, ok := reflectors[p]; ok {
			return name + " reflection (udp/" + p + ")"
		}
		return "UDP reflection (udp/" + p + ")"
	}
	return "protocol " + v + " flood"
}

// finding makes the finding of one attack on one target.
func (d *Detector) finding(t target, ms []*minute) (detect.Finding, bool) {
	var packets, bytes, peakPackets, peakBytes, peakSources int64
	var peakAt time.Time
	vectors := map[string]int64{}
	for _, m := range ms {
		packets += m.packets
		bytes += m.bytes
		if m.packets > peakPackets {
			peakPackets, peakAt = m.packets, m.at
		}
		peakBytes = max(peakBytes, m.bytes)
		peakSources = max(peakSources, m.sources)
		for v, n := range m.vectors {
			vectors[v] += n
		}
	}
	first, last := ms[0].at, ms[len(ms)-1].at.Add(time.Minute)
	f := detect.Finding{Detector: d.Name(), Sensor: t.sensor, Dst: t.dst, FirstSeen: first, LastSeen: last}
	if d.env.Allowed(&f) {
		return f, false
	}
	peakPPS, peakBPS := float64(peakPackets)/60, float64(peakBytes)*8/60
	intensity := detect.Ramp(math.Log10(peakPPS/d.cfg.MinPPS), 0, 2)
	duration := detect.Ramp(float64(len(ms)), 1, 30)
	spread := detect.Ramp(math.Log10(float64(peakSources)), 1, 3)
	f.Score = detect.Clamp(0.65 + 0.2*intensity + 0.1*duration + 0.05*spread)
	f.Severity = detect.SeverityOf(f.Score)
	f.Components = map[string]float64{"intensity": detect.Round(intensity, 3), "duration": detect.Round(duration, 3), "sources": detect.Round(spread, 3)}

	type share struct {
		v string
		n int64
	}
	var shares []share
	for v, n := range vectors {
		shares = append(shares, share{v, n})
	}
	slices.SortFunc(shares, func(a, b share) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.v, b.v)) })
	attack := []string{"T1498"}
	var parts []string
	evVectors := map[string]float64{}
	for _, s := range shares {
		frac := float64(s.n) / float64(max(packets, 1))
		evVectors[s.v] = detect.Round(frac, 3)
		if frac < 0.05 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", VectorName(s.v), 100*frac))
		sub := "T1498.001"
		if strings.HasPrefix(s.v, "udp/") {
			sub = "T1498.002"
		}
		if !slices.Contains(attack, sub) {
			attack = append(attack, sub)
		}
	}
	slices.Sort(attack[1:])
	f.Attack = attack
	f.Evidence = map[string]any{"target": t.dst.String(), "minutes": len(ms), "packets": packets, "bytes": bytes,
		"peak_pps": detect.Round(peakPPS, 0), "peak_bps": detect.Round(peakBPS, 0), "peak_minute": peakAt.Format(time.RFC3339),
		"peak_sources": peakSources, "vectors": evVectors}
	f.Summary = fmt.Sprintf("%s received a volumetric DDoS for %s: peak %s packets/s and %s from %d sources a minute; %s.",
		t.dst, detect.Span(last.Sub(first)), rate(peakPPS), bits(peakBPS), peakSources, strings.Join(parts, ", "))
	return f, true
}

// rate formats a packet rate.
func rate(pps float64) string {
	switch {
	case pps >= 1e6:
		return fmt.Sprintf("%.1f M", pps/1e6)
	case pps >= 1e3:
		return fmt.Sprintf("%.0f k", pps/1e3)
	}
	return fmt.Sprintf("%.0f", pps)
}

// bits formats a bit rate.
func bits(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.1f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.0f Mbit/s", bps/1e6)
	}
	return fmt.Sprintf("%.0f kbit/s", bps/1e3)
}
