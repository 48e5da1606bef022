package ddos

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The streaming detector: flows as a collector receives them, rates per
// protected destination address kept up to date as each record arrives,
// an attack announced the moment a destination's rate passes its
// network's threshold and ended, with hysteresis, when it has stayed
// under a fraction of it for a while.
//
// A flow record says how many packets went by over its duration (up to
// the exporter's active timeout, often a minute), not when: its rate,
// packets over the longer of its duration and the window, counts toward
// the destination's rate from its arrival for that long. A steady stream
// exported every minute is then counted at its rate without gaps, a
// burst of short flows at its average over the window, and a flood's
// first records raise the rate as soon as they arrive.

// Network is a protected network and the thresholds of each address in
// it. An attack on an address starts when any of its rates reaches its
// threshold; with all three at zero the threshold is 10,000 packets/s.
// NetPPS, NetBPS and NetFPS, when set, are thresholds of the traffic to
// the whole network: an attack spread over many addresses, each under
// its own threshold (carpet bombing), is an attack on the network.
type Network struct {
	Prefix netip.Prefix
	PPS    float64 // packets/s
	BPS    float64 // bits/s
	FPS    float64 // flows/s
	NetPPS float64
	NetBPS float64
	NetFPS float64
	// VectorPPS are packets/s thresholds of single vectors
	// (store.FloodVectorOf names: "tcp-syn", "icmp", "udp-fragment",
	// "udp/123", ...) per address: a SYN flood can matter long before the
	// address's total rate does.
	VectorPPS map[string]float64
	// Baseline, when above zero, raises the packet and bit thresholds to
	// Baseline times the network's usual peak: the highest rate any of its
	// addresses had in a minute, averaged over the minutes seen (an
	// exponential mean of the minutes without an attack).
	Baseline float64
}

// StreamConfig tunes the streaming detector.
type StreamConfig struct {
	Networks []Network
	// MinSources is how many distinct sources an attack has at least
	// when it starts (default 20, as the batch detector).
	MinSources int
	// Window is the shortest time a record's rate counts for (default
	// 2 s); MaxHold the longest (default 5 min).
	Window, MaxHold time.Duration
	// An attack ends when its rates have stayed under EndRatio of the
	// thresholds (default 0.5) for EndAfter (default 30 s).
	EndRatio float64
	EndAfter time.Duration
	// MaxTargets bounds the addresses tracked at once (default 100,000);
	// flows to others are counted in StreamStats.Untracked.
	MaxTargets int
}

// Count is a key and its packets.
type Count struct {
	Key     string `json:"key"`
	Packets int64  `json:"packets"`
}

// Sample is an attacked address's rates at one moment.
type Sample struct {
	At  time.Time `json:"at"`
	PPS float64   `json:"pps"`
	BPS float64   `json:"bps"`
}

// Attack is one attack on one address, as the streaming detector saw it.
type Attack struct {
	ID string `json:"id"`
	// Target is the address attacked; for an attack on a whole network
	// (its Net thresholds), Whole is set and Target is the network's
	// first address.
	Target  netip.Addr   `json:"target"`
	Whole   bool         `json:"whole_network,omitempty"`
	Network netip.Prefix `json:"network"`
	Start   time.Time    `json:"start"`
	End     time.Time    `json:"end,omitzero"` // zero while it goes on
	PeakAt  time.Time    `json:"peak_at"`
	PeakPPS float64      `json:"peak_pps"`
	PeakBPS float64      `json:"peak_bps"`
	PeakFPS float64      `json:"peak_fps"`
	// Trigger says which threshold the rate passed when it started.
	Trigger string `json:"trigger"`
	// Packets, Bytes and Flows are the records' totals (sampling applied)
	// from the start on.
	Packets int64 `json:"packets"`
	Bytes   int64 `json:"bytes"`
	Flows   int64 `json:"flows"`
	// Vectors are the packets per vector (store.FloodVectorOf), and
	// VectorBytes their bytes.
	Vectors     map[string]int64 `json:"vectors"`
	VectorBytes map[string]int64 `json:"vector_bytes"`
	// Sources is the distinct source addresses, counted up to 65,536.
	Sources    int     `json:"sources"`
	TopSources []Count `json:"top_sources"`
	TopPorts   []Count `json:"top_ports"`     // destination ports ("udp/80")
	TopSrcPort []Count `json:"top_src_ports"` // source ports ("udp/53")
	// Timeline holds the rates every ten seconds (the highest second of
	// each ten), at most a day of them.
	Timeline []Sample `json:"timeline"`
}

// Vector returns the attack's main vectors, each with its share of the
// packets, largest first (those of 5 % or more).
func (a *Attack) Vector() []string {
	type share struct {
		v string
		n int64
	}
	var ss []share
	for v, n := range a.Vectors {
		ss = append(ss, share{v, n})
	}
	slices.SortFunc(ss, func(x, y share) int { return cmp.Or(cmp.Compare(y.n, x.n), strings.Compare(x.v, y.v)) })
	var out []string
	for _, s := range ss {
		if frac := float64(s.n) / float64(max(a.Packets, 1)); frac >= 0.05 || len(out) == 0 {
			out = append(out, s.v)
		}
	}
	return out
}

// MeanLength is the mean packet length of vector v in bytes (0 when no
// packet of it was seen).
func (a *Attack) MeanLength(v string) int {
	if a.Vectors[v] == 0 {
		return 0
	}
	return int(a.VectorBytes[v] / a.Vectors[v])
}

// Summary describes the attack in a sentence.
func (a *Attack) Summary() string {
	var parts []string
	for _, v := range a.Vector() {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", VectorName(v), 100*float64(a.Vectors[v])/float64(max(a.Packets, 1))))
	}
	state := "under attack since " + a.Start.UTC().Format(time.RFC3339)
	if !a.End.IsZero() {
		state = "attacked for " + a.End.Sub(a.Start).Round(time.Second).String()
	}
	what := a.Target.String()
	if a.Whole {
		what = "network " + a.Network.String()
	}
	return fmt.Sprintf("%s %s: peak %s packets/s and %s from %d sources; %s.", what, state, rate(a.PeakPPS), bits(a.PeakBPS),
		a.Sources, strings.Join(parts, ", "))
}

// Dst is what was attacked: the target address as a host prefix, or the
// whole network.
func (a *Attack) Dst() netip.Prefix {
	if a.Whole {
		return a.Network
	}
	return netip.PrefixFrom(a.Target, a.Target.BitLen())
}

// Event is an attack starting, changing its main vectors, or ending.
type Event struct {
	Kind   string // "start", "update" (Attack.Vector changed) or "end"
	Attack Attack // a copy, as it stood
}

// StreamStats are the streaming detector's counters.
type StreamStats struct {
	Flows     int64 // flows to protected addresses
	Targets   int   // addresses tracked now
	Untracked int64 // flows not counted: MaxTargets were tracked
	Attacks   int64 // attacks started
	Active    int   // attacks going on
}

// rates are packets, bits and flows per second.
type rates struct{ pps, bps, fps float64 }

func (r *rates) add(o rates, sign float64) {
	r.pps += sign * o.pps
	r.bps += sign * o.bps
	r.fps += sign * o.fps
}

// wkey keys the rates a wheel slot takes off: an address's (a host
// prefix) or a whole network's, all vectors or one.
type wkey struct {
	dst    netip.Prefix
	vector string // "": the total
}

// netState is a protected network's state.
type netState struct {
	Network
	base       rates // learned usual peak (exponential mean)
	minutePeak rates
	minutes    int
	whole      *dest // the traffic to all of it, when it has Net thresholds
}

// dest is one destination's state: an address, or a whole network.
type dest struct {
	key     netip.Prefix
	whole   bool
	net     *netState
	now     rates
	vec     map[string]*rates // per vector with a threshold (Network.VectorPPS)
	pending int               // wheel entries still to expire
	srcs    [2]map[netip.Addr]struct{}
	attack  *attackState
	below   time.Time // since when an attack's rates are under the end level
}

type attackState struct {
	Attack
	sources  map[netip.Addr]struct{}
	top      topK[netip.Addr]
	ports    topK[port]
	srcPorts topK[port]
	sample   Sample   // the highest second of the current ten
	vectors  []string // the main vectors last announced
}

// Stream is the streaming DDoS detector. It is safe for concurrent use.
type Stream struct {
	cfg    StreamConfig
	notify func(Event)

	mu      sync.Mutex
	nets    []*netState
	targets map[netip.Prefix]*dest   // addresses as host prefixes, and whole networks
	wholes  int                      // whole networks among targets
	wheel   map[int64]map[wkey]rates // expiries by Unix second
	swept   int64                    // the last second expired
	rotated time.Time
	minute  time.Time
	stats   StreamStats
}

var _ detect.Streaming = (*Stream)(nil)

// NewStream returns a streaming detector; notify is called, outside the
// detector's lock, when an attack starts and when it ends.
func NewStream(cfg StreamConfig, notify func(Event)) *Stream {
	if cfg.MinSources <= 0 {
		cfg.MinSources = 20
	}
	if cfg.Window <= 0 {
		cfg.Window = 2 * time.Second
	}
	if cfg.MaxHold <= 0 {
		cfg.MaxHold = 5 * time.Minute
	}
	if cfg.EndRatio <= 0 || cfg.EndRatio >= 1 {
		cfg.EndRatio = 0.5
	}
	if cfg.EndAfter <= 0 {
		cfg.EndAfter = 30 * time.Second
	}
	if cfg.MaxTargets <= 0 {
		cfg.MaxTargets = 100_000
	}
	s := &Stream{cfg: cfg, notify: notify, targets: map[netip.Prefix]*dest{}, wheel: map[int64]map[wkey]rates{}}
	for _, n := range cfg.Networks {
		if n.PPS <= 0 && n.BPS <= 0 && n.FPS <= 0 {
			n.PPS = 10_000
		}
		n.Prefix = n.Prefix.Masked()
		ns := &netState{Network: n}
		if n.NetPPS > 0 || n.NetBPS > 0 || n.NetFPS > 0 {
			ns.whole = &dest{key: n.Prefix, whole: true, net: ns}
			s.targets[n.Prefix] = ns.whole
			s.wholes++
		}
		s.nets = append(s.nets, ns)
	}
	// The most specific network first.
	slices.SortStableFunc(s.nets, func(a, b *netState) int { return cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()) })
	return s
}

func (s *Stream) network(a netip.Addr) *netState {
	for _, n := range s.nets {
		if n.Prefix.Contains(a) {
			return n
		}
	}
	return nil
}

// thresholds returns t's thresholds now.
func (t *dest) thresholds() rates {
	if t.whole {
		return rates{t.net.NetPPS, t.net.NetBPS, t.net.NetFPS}
	}
	return t.net.thresholds()
}

// thresholds returns the thresholds of n's addresses now.
func (n *netState) thresholds() rates {
	t := rates{n.PPS, n.BPS, n.FPS}
	if n.Baseline > 0 && n.minutes >= 5 {
		if t.pps > 0 {
			t.pps = max(t.pps, n.Baseline*n.base.pps)
		}
		if t.bps > 0 {
			t.bps = max(t.bps, n.Baseline*n.base.bps)
		}
	}
	return t
}

// over says which of t's thresholds its rates pass at level (1 to
// start, EndRatio to go on), or "".
func (t *dest) over(level float64) string {
	if trig := over(t.now, t.thresholds(), level); trig != "" {
		return trig
	}
	for v, r := range t.vec {
		if th := t.net.VectorPPS[v]; th > 0 && r.pps >= level*th {
			return fmt.Sprintf("%s %s packets/s ≥ %s", v, rate(r.pps), rate(level*th))
		}
	}
	return ""
}

// over says which threshold r passes at level (1 to start, EndRatio to
// go on), or "".
func over(r, t rates, level float64) string {
	switch {
	case t.pps > 0 && r.pps >= level*t.pps:
		return fmt.Sprintf("%s packets/s ≥ %s", rate(r.pps), rate(level*t.pps))
	case t.bps > 0 && r.bps >= level*t.bps:
		return fmt.Sprintf("%s ≥ %s", bits(r.bps), bits(level*t.bps))
	case t.fps > 0 && r.fps >= level*t.fps:
		return fmt.Sprintf("%s flows/s ≥ %s", rate(r.fps), rate(level*t.fps))
	}
	return ""
}

// Observe counts flows that arrived at now.
func (s *Stream) Observe(now time.Time, flows []event.Flow) {
	var events []Event
	s.mu.Lock()
	sec := now.Unix()
	if s.swept == 0 {
		s.swept = sec - 1
	}
	for i := range flows {
		f := &flows[i]
		if !f.DstIP.IsValid() {
			continue
		}
		dst := f.DstIP.Unmap()
		key := netip.PrefixFrom(dst, dst.BitLen())
		t := s.targets[key]
		if t == nil {
			n := s.network(dst)
			if n == nil {
				continue
			}
			if len(s.targets)-s.wholes >= s.cfg.MaxTargets {
				s.stats.Untracked++
				if n.whole != nil {
					events = s.count(n.whole, f, now, events)
				}
				continue
			}
			t = &dest{key: key, net: n}
			s.targets[key] = t
		}
		s.stats.Flows++
		events = s.count(t, f, now, events)
		if w := t.net.whole; w != nil {
			events = s.count(w, f, now, events)
		}
	}
	s.mu.Unlock()
	s.send(events)
}

// count adds the flow f, arrived at now, to t's rates, and to its attack
// or starts one; it returns events with what started.
func (s *Stream) count(t *dest, f *event.Flow, now time.Time, events []Event) []Event {
	mult := float64(max(f.Sampling, 1))
	hold := min(max(f.End.Sub(f.TS), s.cfg.Window), s.cfg.MaxHold)
	secs := math.Ceil(hold.Seconds())
	if secs > 10 {
		// Long holds end on five-second boundaries: fewer wheel
		// entries per destination (memory), the same rates.
		secs = 5 * math.Ceil(secs/5)
	}
	r := rates{pps: float64(f.Packets) * mult / secs, bps: float64(f.Bytes) * mult * 8 / secs, fps: 1 / secs}
	t.now.add(r, 1)
	exp := max(now.Unix()+int64(secs), s.swept+1) // a reader's clock a little behind the ticker's
	slot := s.wheel[exp]
	if slot == nil {
		slot = map[wkey]rates{}
		s.wheel[exp] = slot
	}
	keys := [2]wkey{{dst: t.key}}
	if vt := t.net.VectorPPS; len(vt) > 0 && !t.whole {
		if v := store.FloodVectorOf(f.Proto, f.TCPFlags, f.SrcPort, f.DstPort); vt[v] > 0 {
			if t.vec == nil {
				t.vec = map[string]*rates{}
			}
			if t.vec[v] == nil {
				t.vec[v] = &rates{}
			}
			t.vec[v].add(r, 1)
			keys[1] = wkey{dst: t.key, vector: v}
		}
	}
	for _, k := range keys {
		if !k.dst.IsValid() {
			continue
		}
		if _, ok := slot[k]; !ok {
			t.pending++
		}
		e := slot[k]
		e.add(r, 1)
		slot[k] = e
	}
	if f.SrcIP.IsValid() {
		if t.srcs[0] == nil {
			t.srcs[0] = map[netip.Addr]struct{}{}
		}
		if len(t.srcs[0]) < s.cfg.MinSources {
			t.srcs[0][f.SrcIP] = struct{}{}
		}
	}
	if a := t.attack; a != nil {
		a.count(f, int64(mult))
		a.peak(now, t.now)
		return events
	}
	if n := t.net; !t.whole {
		// The usual peak is learned from the rates the thresholds are
		// checked against.
		n.minutePeak.pps, n.minutePeak.bps = max(n.minutePeak.pps, t.now.pps), max(n.minutePeak.bps, t.now.bps)
	}
	trig := t.over(1)
	if trig == "" || t.sources() < s.cfg.MinSources {
		return events
	}
	a := &attackState{Attack: Attack{Target: t.key.Addr(), Whole: t.whole, Network: t.net.Prefix, Start: now, Trigger: trig,
		Vectors: map[string]int64{}, VectorBytes: map[string]int64{}}, sources: map[netip.Addr]struct{}{}}
	a.ID = fmt.Sprintf("ddos-%s-%d", strings.ReplaceAll(a.Dst().String(), "/", "_"), now.Unix())
	if !t.whole {
		a.ID = fmt.Sprintf("ddos-%s-%d", t.key.Addr(), now.Unix())
	}
	for _, g := range t.srcs {
		for src := range g {
			a.sources[src] = struct{}{}
		}
	}
	a.count(f, int64(mult))
	a.peak(now, t.now)
	a.vectors = a.Vector()
	t.attack = a
	s.stats.Attacks++
	return append(events, Event{Kind: "start", Attack: a.snapshot()})
}

func (t *dest) sources() int {
	n := len(t.srcs[0])
	for a := range t.srcs[1] {
		if _, ok := t.srcs[0][a]; !ok {
			n++
		}
	}
	return n
}

// Tick expires the records' rates up to now, keeps the attacks'
// timelines, ends the attacks that are over and learns the baselines.
// Run calls it four times a second.
func (s *Stream) Tick(now time.Time) {
	var events []Event
	s.mu.Lock()
	sec := now.Unix()
	for s.swept < sec && s.swept != 0 {
		s.swept++
		for k, r := range s.wheel[s.swept] {
			t := s.targets[k.dst]
			if t == nil {
				continue
			}
			if k.vector == "" {
				t.now.add(r, -1)
			} else if v := t.vec[k.vector]; v != nil {
				v.add(r, -1)
			}
			if t.pending--; t.pending <= 0 {
				t.now, t.pending, t.vec = rates{}, 0, nil
			}
		}
		delete(s.wheel, s.swept)
	}
	if now.Sub(s.rotated) >= 10*time.Second {
		s.rotated = now
		for _, t := range s.targets {
			t.srcs[1], t.srcs[0] = t.srcs[0], nil
		}
	}
	for key, t := range s.targets {
		if a := t.attack; a != nil {
			a.peak(now, t.now)
			if v := a.Vector(); !slices.Equal(v, a.vectors) {
				a.vectors = v
				events = append(events, Event{Kind: "update", Attack: a.snapshot()})
			}
			if t.over(s.cfg.EndRatio) != "" {
				t.below = time.Time{}
			} else if t.below.IsZero() {
				t.below = now
			} else if now.Sub(t.below) >= s.cfg.EndAfter {
				a.End = t.below
				events = append(events, Event{Kind: "end", Attack: a.snapshot()})
				t.attack, t.below = nil, time.Time{}
			}
			continue
		}
		if !t.whole && t.pending == 0 {
			delete(s.targets, key)
		}
	}
	if now.Sub(s.minute) >= time.Minute {
		if !s.minute.IsZero() {
			for _, n := range s.nets {
				if n.minutes == 0 {
					n.base = n.minutePeak
				} else {
					n.base.pps = 0.9*n.base.pps + 0.1*n.minutePeak.pps
					n.base.bps = 0.9*n.base.bps + 0.1*n.minutePeak.bps
				}
				n.minutes++
				n.minutePeak = rates{}
			}
		}
		s.minute = now
	}
	s.mu.Unlock()
	s.send(events)
}

func (s *Stream) send(events []Event) {
	if s.notify == nil {
		return
	}
	for _, e := range events {
		s.notify(e)
	}
}

// Run ticks until ctx ends.
func (s *Stream) Run(ctx context.Context) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Tick(now)
		}
	}
}

// Active returns the attacks going on.
func (s *Stream) Active() []Attack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Attack
	for _, t := range s.targets {
		if t.attack != nil {
			out = append(out, t.attack.snapshot())
		}
	}
	slices.SortFunc(out, func(a, b Attack) int { return cmp.Or(a.Start.Compare(b.Start), a.Target.Compare(b.Target)) })
	return out
}

// Stats returns the counters.
func (s *Stream) Stats() StreamStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	for _, t := range s.targets {
		if !t.whole {
			st.Targets++
		}
	}
	for _, t := range s.targets {
		if t.attack != nil {
			st.Active++
		}
	}
	return st
}

// count adds a flow to the attack.
func (a *attackState) count(f *event.Flow, mult int64) {
	p, b := int64(f.Packets)*mult, int64(f.Bytes)*mult //nolint:gosec // G115: counters far below 2^63
	a.Packets += p
	a.Bytes += b
	a.Flows++
	v := store.FloodVectorOf(f.Proto, f.TCPFlags, f.SrcPort, f.DstPort)
	a.Vectors[v] += p
	a.VectorBytes[v] += b
	if f.SrcIP.IsValid() {
		if len(a.sources) < 1<<16 {
			a.sources[f.SrcIP] = struct{}{}
		}
		a.top.add(f.SrcIP, p)
	}
	a.ports.add(port{f.Proto, f.DstPort}, p)
	a.srcPorts.add(port{f.Proto, f.SrcPort}, p)
}

// peak records the rates r at now.
func (a *attackState) peak(now time.Time, r rates) {
	if r.pps > a.PeakPPS {
		a.PeakPPS, a.PeakAt = r.pps, now
	}
	a.PeakBPS, a.PeakFPS = max(a.PeakBPS, r.bps), max(a.PeakFPS, r.fps)
	slot := now.Truncate(10 * time.Second)
	if !a.sample.At.Equal(slot) {
		if !a.sample.At.IsZero() && len(a.Timeline) < 8640 {
			a.Timeline = append(a.Timeline, a.sample)
		}
		a.sample = Sample{At: slot}
	}
	a.sample.PPS, a.sample.BPS = max(a.sample.PPS, r.pps), max(a.sample.BPS, r.bps)
}

func (a *attackState) snapshot() Attack {
	c := a.Attack
	c.Vectors, c.VectorBytes = maps.Clone(a.Vectors), maps.Clone(a.VectorBytes)
	c.Sources = len(a.sources)
	c.TopSources = a.top.list(10, netip.Addr.String)
	c.TopPorts, c.TopSrcPort = a.ports.list(10, port.String), a.srcPorts.list(10, port.String)
	c.Timeline = append(slices.Clip(a.Timeline), a.sample)
	return c
}

// topK keeps the heaviest keys in bounded memory: at most topCap keys;
// when full, the keys no heavier than the mean are forgotten at once (a heavy key keeps
// coming back and stays; a key seen once among millions of spoofed
// sources does not), so an insertion costs O(1) on average.
type topK[K comparable] struct {
	m map[K]int64
}

const topCap = 4096

func (t *topK[K]) add(k K, n int64) {
	if t.m == nil {
		t.m = make(map[K]int64, 64)
	}
	if _, ok := t.m[k]; !ok && len(t.m) >= topCap {
		var sum int64
		for _, c := range t.m {
			sum += c
		}
		mean := sum / int64(len(t.m))
		for k2, c := range t.m {
			if c <= mean {
				delete(t.m, k2)
			}
		}
	}
	t.m[k] += n
}

// list returns the n heaviest keys, named by name.
func (t *topK[K]) list(n int, name func(K) string) []Count {
	out := make([]Count, 0, len(t.m))
	for k, v := range t.m {
		out = append(out, Count{name(k), v})
	}
	slices.SortFunc(out, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Packets, a.Packets), strings.Compare(a.Key, b.Key)) })
	return out[:min(n, len(out))]
}

// port is a protocol and port number.
type port struct {
	proto string
	n     uint16
}

func (p port) String() string { return p.proto + "/" + strconv.Itoa(int(p.n)) }
