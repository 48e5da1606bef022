// Package exfil finds data leaving the network: per internal host and
// external destination, the bytes sent per day, how one-sided the exchange
// is (sent ≫ received), how far above the host's own daily habit, single
// large uploads, and how rare the destination is. Low-and-slow theft is a
// destination that receives a modest amount, day after day, from one host
// and from nobody else.
//
// Every finding carries the total bytes sent to its destination and the
// bytes per day: how an investigation answers "how much was taken".
package exfil

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinBytes is the least a host must send a destination in all to be
	// scored (1 MB).
	MinBytes int64
}

// Detector is the exfiltration detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.SessionsToo = (*Detector)(nil)

// ConnsOnly implements detect.SessionsToo: over flow sessions, data
// leaving shows in the bytes each session sent.
func (d *Detector) ConnsOnly() {}

// New returns an exfiltration detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinBytes <= 0 {
		cfg.MinBytes = 1_000_000
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "exfil" }

type pairKey struct {
	sensor   string
	src, dst netip.Addr
}

type pairAgg struct {
	sent, received, maxSingle int64
	days                      map[time.Time]int64
	first, last               time.Time
	conns                     int64
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
	outbound, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Outside)
	if err != nil {
		return nil, err
	}
	transfers, err := d.transfers(ctx, r, w, outbound, prev, peers)
	if err != nil {
		return nil, err
	}
	hostDays := map[netip.Addr]map[time.Time]int64{} // bytes a host sends out per day, all destinations
	err = r.HostDays(ctx, w, store.FlowFilter{Sides: outbound}, func(h *store.HostDay) error {
		if hostDays[h.Src] == nil {
			hostDays[h.Src] = map[time.Time]int64{}
		}
		hostDays[h.Src][h.Day] += h.SrcBytes
		return nil
	})
	if err != nil {
		return nil, err
	}
	pairs := map[pairKey]*pairAgg{}
	err = r.DailyFlows(ctx, w, store.FlowFilter{Sides: outbound, MinPairSrcBytes: d.cfg.MinBytes}, func(f *store.DailyFlow) error {
		if !d.env.IsLocal(f.Src) || d.env.IsLocal(f.Dst) || !detect.Unicast(f.Dst) {
			return nil
		}
		k := pairKey{f.Sensor, f.Src, f.Dst}
		a := pairs[k]
		if a == nil {
			a = &pairAgg{days: map[time.Time]int64{}, first: f.First, last: f.Last}
			pairs[k] = a
		}
		a.sent += f.SrcBytes
		a.received += f.DstBytes
		a.maxSingle = max(a.maxSingle, f.MaxSrcBytes)
		a.days[f.Day] += f.SrcBytes
		a.conns += f.Conns
		if f.First.Before(a.first) {
			a.first = f.First
		}
		if f.Last.After(a.last) {
			a.last = f.Last
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Each host's habit: the median of its daily outbound totals.
	habit := map[netip.Addr]float64{}
	for h, days := range hostDays {
		v := make([]float64, 0, len(days))
		for _, b := range days {
			v = append(v, float64(b))
		}
		slices.Sort(v)
		habit[h] = detect.Median(v)
	}

	var out []detect.Finding
	for k, t := range transfers {
		if pairs[k] == nil {
			// Sent in requests or files rather than in the bytes the
			// connections count (or under the pair threshold).
			pairs[k] = &pairAgg{days: map[time.Time]int64{t.best.TS.Truncate(24 * time.Hour): t.sentAll}, first: t.best.TS, last: t.best.TS,
				sent: t.sentAll, conns: int64(t.count), maxSingle: t.best.Bytes}
		}
	}
	for k, a := range pairs {
		t := transfers[k]
		if a.sent < d.cfg.MinBytes && t == nil {
			continue
		}
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, FirstSeen: a.first, LastSeen: a.last}
		if d.env.Allowed(&f) {
			continue
		}
		// Days on which this destination got at least a tenth of a megabyte.
		uploadDays := 0
		worst := 0.0 // the largest day relative to the host's habit
		for day, b := range a.days {
			if b >= 100_000 {
				uploadDays++
			}
			base := math.Max(habit[k.src]-float64(b)/float64(len(a.days)), 1_000_000)
			worst = math.Max(worst, float64(hostDays[k.src][day])/base)
		}
		info := prev.Of(k.dst)
		c := map[string]float64{
			"volume":      detect.Ramp(math.Log10(float64(a.sent)), 6.5, 9),
			"asymmetry":   detect.Ramp(float64(a.sent)/float64(a.sent+a.received+1), 0.55, 0.9),
			"persistence": detect.Ramp(float64(uploadDays), 1, 8),
			"single":      detect.Ramp(math.Log10(float64(a.maxSingle)+1), 7, 8.7),
			"deviation":   detect.Ramp(math.Log10(worst+1), math.Log10(3), math.Log10(30)),
			"rarity":      1 - detect.Ramp(float64(info.Clients), 1, 5),
		}
		raw := 0.25*c["volume"] + 0.25*c["asymmetry"] + 0.15*c["persistence"] + 0.1*c["single"] + 0.1*c["deviation"] + 0.15*c["rarity"]
		// A one-sided exchange is what theft looks like; downloads are not.
		raw *= 0.3 + 0.7*c["asymmetry"]
		damp := prev.Damp(d.env, k.src, k.dst)
		score := raw * damp
		if t != nil && t.score > score {
			score = t.score
		}
		if score < 0.2 {
			continue
		}
		for n, v := range c {
			c[n] = detect.Round(v, 3)
		}
		c["prevalence_damping"] = detect.Round(damp, 3)
		f.Score, f.Severity, f.Components = score, detect.SeverityOf(score), c
		f.Attack = []string{"T1048", "T1041"}
		if uploadDays >= 3 {
			f.Attack = append(f.Attack, "T1030")
		}
		if t != nil {
			c["transfer"] = detect.Round(t.score, 3)
			if t.archives > 0 {
				f.Attack = append(f.Attack, "T1560")
			}
		}
		f.Evidence = map[string]any{"bytes_out": a.sent, "bytes_in": a.received, "largest_upload": a.maxSingle, "connections": a.conns,
			"upload_days": uploadDays, "days": len(a.days), "bytes_out_per_day": perDay(a.days),
			"internal_hosts_contacting": info.Clients, "host_median_daily_bytes_out": int64(habit[k.src]),
			"host_bytes_out_per_day": perDay(around(hostDays[k.src], a.first, a.last))}
		f.Summary = fmt.Sprintf("%s sent %s to %s (received %s) over %d day(s), %d with uploads; %d internal host(s) talk to it.",
			k.src, detect.HumanBytes(uint64(max(a.sent, 0))), k.dst, detect.HumanBytes(uint64(max(a.received, 0))), len(a.days), uploadDays, info.Clients)
		if t != nil {
			f.Evidence["largest_transfer"] = transferEvidence(t)
			f.Summary = strings.TrimSuffix(f.Summary, ".") + "; " + describeTransfer(t) + "."
		}
		out = append(out, f)
	}
	return out, nil
}

// margin is how many days before and after a pair's traffic its
// finding shows of the host's own daily totals: its baseline beside the
// upload.
const margin = 14 * 24 * time.Hour

// around returns the days of a host's totals from margin before first
// to margin after last.
func around(days map[time.Time]int64, first, last time.Time) map[time.Time]int64 {
	from, to := first.Truncate(24*time.Hour).Add(-margin), last.Add(margin)
	out := map[time.Time]int64{}
	for d, b := range days {
		if !d.Before(from) && !d.After(to) {
			out[d] = b
		}
	}
	return out
}

// perDay returns bytes per UTC day, in day order, as {"2025-03-03": n}.
func perDay(days map[time.Time]int64) []map[string]any {
	keys := make([]time.Time, 0, len(days))
	for k := range days {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Before(keys[j]) })
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, map[string]any{"day": k.Format("2006-01-02"), "bytes": days[k]})
	}
	return out
}
