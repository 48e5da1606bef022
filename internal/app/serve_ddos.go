package app

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dwell-nsm/dwell/internal/alert"
	"github.com/dwell-nsm/dwell/internal/collect"
	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/console"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/ddos"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/mitigate"
)

// defence is dwell serve's live DDoS defence: the flow collector, the
// streaming detector it feeds and the mitigation of what that finds
// (docs/ddos.md). Its configuration is read at start; a change to
// serve.collect, serve.ddos or serve.mitigation needs a restart.
type defence struct {
	col      *collect.Collector
	stream   *ddos.Stream
	mit      *mitigate.Mitigator
	speakers []*mitigate.Speaker
	events   chan ddos.Event
	alerts   chan *alert.Alert
	// lost counts attack events the handler could not take (a full
	// queue): the detector never waits for it.
	lost     atomic.Int64
	attacks  *prometheus.CounterVec
	mitigate *prometheus.CounterVec
}

// collectorStateFile keeps the exporters' templates across restarts.
const collectorStateFile = "flow-templates.json"

// newDefence builds the defence serve.collect asks for and binds its
// sockets; nil when no collector is configured.
func (s *served) newDefence(ctx context.Context, cfg *config.Config, audit *console.Audit) (*defence, error) {
	c := cfg.Serve.Collect
	if len(c.Listen) == 0 {
		return nil, nil
	}
	ccfg := collect.Config{Listen: c.Listen, Sockets: c.Sockets, ReadBuffer: c.ReadBuffer, Queue: c.Queue,
		Sensor: cmp.Or(c.Sensor, cfg.Sensor), StateFile: filepath.Join(cfg.Serve.StateDir, collectorStateFile),
		Spool: filepath.Join(cfg.Serve.StateDir, "flow-spool"), SpoolMax: c.SpoolMax}
	for _, p := range c.Exporters {
		pf, _ := detect.ParsePrefix(p) // validated
		ccfg.Exporters = append(ccfg.Exporters, pf)
	}
	d := &defence{col: collect.New(ccfg, s.logger), events: make(chan ddos.Event, 1024), alerts: make(chan *alert.Alert, 1024)}
	dc := cfg.Serve.DDoS
	scfg := ddos.StreamConfig{MinSources: dc.MinSources, EndAfter: time.Duration(dc.EndAfter), EndRatio: dc.EndRatio,
		MaxHold: time.Duration(dc.MaxHold)}
	mcfg := mitigate.Config{MaxRoutes: cfg.Serve.Mitigation.MaxRoutes, Hold: time.Duration(cfg.Serve.Mitigation.Hold), DryRun: cfg.Serve.Mitigation.DryRun}
	for _, n := range dc.Networks {
		p, _ := netip.ParsePrefix(n.Prefix) // validated
		scfg.Networks = append(scfg.Networks, ddos.Network{Prefix: p, PPS: n.PPS, BPS: n.BPS, FPS: n.FPS, Baseline: n.Baseline,
			NetPPS: n.NetworkPPS, NetBPS: n.NetworkBPS, NetFPS: n.NetworkFPS, VectorPPS: n.VectorPPS})
		mcfg.Protected = append(mcfg.Protected, mitigate.Protected{Prefix: p.Masked(), Blackhole: n.Blackhole, FlowSpec: n.FlowSpec,
			RateLimit: float32(n.RateLimit)})
	}
	for _, p := range cfg.Serve.Mitigation.Infrastructure {
		pf, _ := detect.ParsePrefix(p) // validated
		mcfg.Infrastructure = append(mcfg.Infrastructure, pf)
	}
	var anns []mitigate.Announcer
	for _, b := range cfg.Serve.Mitigation.BGP {
		bc := mitigate.BGPConfig{Peer: b.Peer, LocalAddr: b.LocalAddr, LocalAS: b.LocalAS, PeerAS: b.PeerAS, Community: b.Community,
			HoldTime: time.Duration(b.HoldTime)}
		bc.RouterID, _ = netip.ParseAddr(b.RouterID)
		bc.NextHop, _ = netip.ParseAddr(b.NextHop)
		bc.NextHop6, _ = netip.ParseAddr(b.NextHop6)
		sp, err := mitigate.NewSpeaker(bc, s.logger)
		if err != nil {
			return nil, err
		}
		d.speakers = append(d.speakers, sp)
		anns = append(anns, sp)
	}
	if n := cfg.Serve.Mitigation.NFTables; n != nil {
		anns = append(anns, &mitigate.NFTables{Family: n.Family, Table: n.Table, Set4: n.Set4, Set6: n.Set6})
	}
	if len(cfg.Serve.Mitigation.Exec) > 0 {
		anns = append(anns, &mitigate.Exec{Command: cfg.Serve.Mitigation.Exec})
	}
	d.mit = mitigate.New(mcfg, anns, s.logger, func(action, object, detail string) {
		if err := audit.Log(s.now(), "dwell", action, object, detail); err != nil {
			s.logger.Error("audit", "err", err)
		}
	})
	d.stream = ddos.NewStream(scfg, func(e ddos.Event) {
		select {
		case d.events <- e:
		default:
			d.lost.Add(1)
		}
	})
	if err := d.col.Listen(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// run runs the defence until ctx ends; the routes it announced are
// withdrawn before it returns.
func (d *defence) run(ctx context.Context, s *served) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.stream.Run(ctx) })
	wg.Go(func() { d.mit.Run(ctx) })
	for _, sp := range d.speakers {
		wg.Go(func() { sp.Run(ctx) })
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-d.alerts:
				s.dispatch(ctx, []*alert.Alert{a})
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-d.events:
				d.handle(ctx, s, e)
			}
		}
	})
	st := s.store()
	err := d.col.Run(ctx, func(fs []event.Flow) { d.stream.Observe(time.Now(), fs) }, func(ctx context.Context, fs []event.Flow) error {
		return st.Write(ctx, &event.Batch{Flows: fs})
	})
	// Withdraw while the BGP sessions are still up: a clean stop takes
	// its routes back rather than leaving them to the peers' hold timers.
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	d.mit.WithdrawAll(wctx)
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("flow collector: %w", err)
	}
	return nil
}

// handle mitigates an attack that started or ended, and announces it.
func (d *defence) handle(ctx context.Context, s *served, e ddos.Event) {
	a := e.Attack
	d.attacks.WithLabelValues(e.Kind).Inc()
	s.logger.Warn("ddos "+e.Kind, "attack", a.ID, "target", a.Target, "trigger", a.Trigger, "vectors", a.Vector(), "summary", a.Summary())
	switch e.Kind {
	case "start":
		outcome := "announced"
		if err := d.mit.Start(ctx, a.ID, a.Dst(), mitigationVectors(&a)); err != nil {
			outcome = "refused_or_failed"
		}
		d.mitigate.WithLabelValues(outcome).Inc()
	case "update":
		// A new main vector: its rule joins the routes the attack holds
		// (those already announced stay until the attack ends).
		_ = d.mit.Start(ctx, a.ID, a.Dst(), mitigationVectors(&a))
		return
	default:
		d.mit.End(a.ID)
	}
	severity := "high"
	if a.PeakPPS >= 1e6 || a.PeakBPS >= 1e10 {
		severity = "critical"
	}
	al := &alert.Alert{Event: "ddos_" + e.Kind, At: s.now(), Incident: a.ID, Severity: severity, Class: "ddos", Summary: a.Summary(),
		Hosts: []string{hostOrNet(a.Dst())}, Attack: []string{"T1498"}, DwellStart: a.Start, LastSeen: s.now(), TLP: "amber"}
	for _, r := range d.mit.Announced() {
		if r.Dst == a.Dst() {
			al.Changes = append(al.Changes, "mitigated: "+r.String())
		}
	}
	if severityRank(al.Severity) < severityRank(s.cfg.Load().Serve.Alerts.MinSeverity) {
		return // below serve.alerts.min_severity: logged above, not announced
	}
	select {
	case d.alerts <- al:
	default:
		d.lost.Add(1)
	}
}

// mitigationVectors are an attack's main vectors with their packets'
// mean length.
func mitigationVectors(a *ddos.Attack) []mitigate.Vector {
	var out []mitigate.Vector
	for _, v := range a.Vector() {
		out = append(out, mitigate.Vector{Name: v, MeanLength: a.MeanLength(v)})
	}
	return out
}

// hostOrNet names an attacked destination: an address, or a network.
func hostOrNet(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// register adds the defence's metrics to reg.
func (d *defence) register(reg *prometheus.Registry) {
	d.attacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_ddos_attacks_total",
		Help: "Attacks the streaming DDoS detector started and ended."}, []string{"event"})
	d.mitigate = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_ddos_mitigations_total",
		Help: "Attacks mitigated (routes announced) or not (refused by the safety rules, or failed)."}, []string{"outcome"})
	cs := &collectStats{col: d.col}
	cs.add("dwell_collect_datagrams_total", "Flow export datagrams received.", func(s collect.Stats) int64 { return s.Datagrams })
	cs.add("dwell_collect_flows_total", "Flow records decoded.", func(s collect.Stats) int64 { return s.Flows })
	cs.add("dwell_collect_bad_total", "Datagrams that were not a flow message or were malformed.", func(s collect.Stats) int64 { return s.Bad })
	cs.add("dwell_collect_refused_total", "Datagrams from exporters not in serve.collect.exporters.", func(s collect.Stats) int64 { return s.Refused })
	cs.add("dwell_collect_dropped_total", "Flows decoded but not stored (the store queue and the spool were full, or a write failed).",
		func(s collect.Stats) int64 { return s.Dropped })
	cs.add("dwell_collect_stored_total", "Flows written to the store.", func(s collect.Stats) int64 { return s.Stored })
	cs.add("dwell_collect_spooled_total", "Flows that waited on disk for the store (state_dir/flow-spool).", func(s collect.Stats) int64 { return s.Spooled })
	cs.add("dwell_collect_kernel_drops_total", "Datagrams the kernel dropped on the collector's sockets (receive buffers full).",
		func(s collect.Stats) int64 { return s.KernelDrops })
	cs.add("dwell_collect_unknown_template_total", "Data sets that arrived before their template.", func(s collect.Stats) int64 { return s.Unknown })
	reg.MustRegister(d.attacks, d.mitigate, cs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dwell_ddos_active_attacks", Help: "Attacks going on."},
			func() float64 { return float64(d.stream.Stats().Active) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dwell_ddos_routes", Help: "Mitigation routes held (announced, or would be in dry-run mode)."},
			func() float64 { return float64(len(d.mit.Announced())) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dwell_ddos_events_lost_total", Help: "Attack events not handled: their queue was full."},
			func() float64 { return float64(d.lost.Load()) }),
	)
}

// collectStats exposes the collector's counters, its Stats read once per
// scrape (they include the kernel's drop counts, read from /proc).
type collectStats struct {
	col   *collect.Collector
	descs []*prometheus.Desc
	get   []func(collect.Stats) int64
}

func (c *collectStats) add(name, help string, get func(collect.Stats) int64) {
	c.descs = append(c.descs, prometheus.NewDesc(name, help, nil, nil))
	c.get = append(c.get, get)
}

// Describe implements prometheus.Collector.
func (c *collectStats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collectStats) Collect(ch chan<- prometheus.Metric) {
	s := c.col.Stats()
	for i, d := range c.descs {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(c.get[i](s)))
	}
}
