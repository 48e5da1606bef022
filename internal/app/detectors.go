package app

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/beacon"
	"github.com/dwell-nsm/dwell/internal/detect/c2"
	"github.com/dwell-nsm/dwell/internal/detect/ddos"
	"github.com/dwell-nsm/dwell/internal/detect/deadc2"
	"github.com/dwell-nsm/dwell/internal/detect/dga"
	"github.com/dwell-nsm/dwell/internal/detect/dnstunnel"
	"github.com/dwell-nsm/dwell/internal/detect/exfil"
	"github.com/dwell-nsm/dwell/internal/detect/hostlog"
	"github.com/dwell-nsm/dwell/internal/detect/httpanom"
	"github.com/dwell-nsm/dwell/internal/detect/iocmatch"
	"github.com/dwell-nsm/dwell/internal/detect/lateral"
	"github.com/dwell-nsm/dwell/internal/detect/longconn"
	"github.com/dwell-nsm/dwell/internal/detect/rare"
	"github.com/dwell-nsm/dwell/internal/detect/scan"
	"github.com/dwell-nsm/dwell/internal/detect/sigma"
	"github.com/dwell-nsm/dwell/internal/detect/suricata"
	"github.com/dwell-nsm/dwell/internal/detect/tlsanom"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/settled"
)

// detectorFactory builds a detector for an environment.
type detectorFactory func(env *detect.Env) detect.Detector

// detectorRegistry is every detector dwell has, by name: the one place
// they are listed. It is built per call, never held globally.
func detectorRegistry() map[string]detectorFactory {
	return map[string]detectorFactory{
		"beacon":    func(env *detect.Env) detect.Detector { return beacon.New(env, beacon.Config{}) },
		"longconn":  func(env *detect.Env) detect.Detector { return longconn.New(env, longconn.Config{}) },
		"dnstunnel": func(env *detect.Env) detect.Detector { return dnstunnel.New(env, dnstunnel.Config{}) },
		"exfil":     func(env *detect.Env) detect.Detector { return exfil.New(env, exfil.Config{}) },
		"rare":      func(env *detect.Env) detect.Detector { return rare.New(env, rare.Config{}) },
		"tlsanom":   func(env *detect.Env) detect.Detector { return tlsanom.New(env, tlsanom.Config{}) },
		"httpanom":  func(env *detect.Env) detect.Detector { return httpanom.New(env, httpanom.Config{}) },
		"lateral":   func(env *detect.Env) detect.Detector { return lateral.New(env, lateral.Config{}) },
		"iocmatch":  func(env *detect.Env) detect.Detector { return iocmatch.New(env, iocmatch.Config{}) },
		"ddos":      func(env *detect.Env) detect.Detector { return ddos.New(env, ddos.Config{}) },
		"c2":        func(env *detect.Env) detect.Detector { return c2.New(env, c2.Config{}) },
		"deadc2":    func(env *detect.Env) detect.Detector { return deadc2.New(env, deadc2.Config{}) },
		"scan":      func(env *detect.Env) detect.Detector { return scan.New(env, scan.Config{}) },
		"dga":       func(env *detect.Env) detect.Detector { return dga.New(env, dga.Config{}) },
		"host":      func(env *detect.Env) detect.Detector { return hostlog.New(env, hostlog.Config{}) },
		"sigma":     func(env *detect.Env) detect.Detector { return sigma.New(env) },
		"suricata":  func(env *detect.Env) detect.Detector { return suricata.New(env) },
	}
}

// environment builds the detectors' environment from the configuration.
func environment(cfg *config.Config) (*detect.Env, error) {
	env := &detect.Env{Local: detect.DefaultLocal()}
	if len(cfg.Networks.Local) > 0 {
		env.Local = nil
		for _, n := range cfg.Networks.Local {
			p, err := detect.ParsePrefix(n)
			if err != nil {
				return nil, fmt.Errorf("networks.local: %w", err)
			}
			env.Local = append(env.Local, p)
		}
	}
	for _, n := range cfg.Allow.Nets {
		p, err := detect.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("allow.nets: %w", err)
		}
		env.Allow.Nets = append(env.Allow.Nets, p)
	}
	env.Allow.Domains = slices.Clone(cfg.Allow.Domains)
	env.Sigma = detect.SigmaSetup{Rules: slices.Clone(cfg.Sigma.Rules), Logsources: cfg.Sigma.Logsources, Placeholders: cfg.Sigma.Placeholders}
	for _, s := range cfg.Allow.Pairs {
		p, err := detect.ParsePair(s)
		if err != nil {
			return nil, fmt.Errorf("allow.pairs: %w", err)
		}
		env.Allow.Pairs = append(env.Allow.Pairs, p)
	}
	return env, nil
}

// detectors returns the configured detectors, in the order of
// config.DetectorNames.
func detectors(env *detect.Env, names []string) ([]detect.Detector, error) {
	if len(names) == 0 {
		names = config.DetectorNames()
	}
	reg := detectorRegistry()
	var out []detect.Detector
	for _, n := range config.DetectorNames() {
		if !slices.Contains(names, n) {
			continue
		}
		f, ok := reg[n]
		if !ok {
			return nil, fmt.Errorf("BUG: detector %q is not registered", n)
		}
		out = append(out, f(env))
	}
	return out, nil
}

// huntResult is what a hunt found and how long each detector took (its
// pass over flow sessions as "NAME (flows)").
type huntResult struct {
	Findings []detect.Finding
	Timings  map[string]time.Duration
	// Merged, Settled and Extended count the aggregate queries answered
	// from settled history kept between hunts, those that read it to keep
	// it, and those that added the days the cut moved over (dwell serve).
	Merged, Settled, Extended int64
	// Reused counts the detector runs taken from the memo; Tallied those
	// of incremental detectors from their kept tallies.
	Reused, Tallied int
	// Alone counts the detector runs that ran out of the store's memory
	// beside others and were run again by themselves.
	Alone int
}

// job is one detector over one window.
type job struct {
	d detect.Detector
	w store.Window
}

// key names the job in the memo.
func (j job) key() string { return j.d.Name() + "|" + j.w.Conns.String() }

// runDetectors runs ds over the store in window w, two at a time, sharing
// one cache of aggregates: over Zeek's conn log, and, where the store
// holds flow records, the detectors that judge connections alone over
// the sessions stitched from them as well (a finding the conn log gave
// already is not repeated from the flows). Behavioural findings that
// nothing else supports stay below high (detect.Corroborate), a host's
// channels with a peer-to-peer network are one finding
// (detect.GroupPeers), and so are the findings of several detectors about
// one channel (detect.MergeChannels). Findings come back sorted by score.
func runDetectors(ctx context.Context, st store.Reader, env *detect.Env, ds []detect.Detector, w store.Window) (*huntResult, error) {
	return runDetectorsMemo(ctx, st, env, ds, w, nil)
}

// runDetectorsMemo is runDetectors that, given a memo and a hunt of all
// history, takes a detector's findings from the memo when none of its
// inputs changed since it ran, and an incremental detector's from its
// kept tally (dwell serve).
func runDetectorsMemo(ctx context.Context, st store.Reader, env *detect.Env, ds []detect.Detector, w store.Window, m *memo) (*huntResult, error) {
	if !w.Since.IsZero() || !w.Until.IsZero() {
		m = nil
	}
	var now map[string]uint64
	if m != nil {
		now = m.gens.snapshot()
	}
	var cache *detect.Cache
	var before settled.Counts
	if m != nil {
		// Aggregates over history before the cut are kept between
		// hunts and merged with the records after it (decision 0017).
		before = m.settled.Counts()
		cache = detect.NewCache(settled.New(st, &m.settled))
	} else {
		cache = detect.NewCache(st)
	}
	var jobs []job
	for _, d := range ds {
		jobs = append(jobs, job{d, w})
	}
	flows, err := st.Count(ctx, event.KindFlow)
	if err != nil {
		return nil, err
	}
	if flows > 0 {
		fw := w
		fw.Conns = store.FlowSessions
		for _, d := range ds {
			if _, ok := d.(detect.SessionsToo); ok {
				jobs = append(jobs, job{d, fw})
			}
		}
	}
	results := make([][]detect.Finding, len(jobs))
	timings := make([]time.Duration, len(jobs))
	var reused, tallied atomic.Int32
	run := func(ctx context.Context, i int) error {
		j := jobs[i]
		key := j.key()
		start := time.Now()
		if inc, ok := j.d.(detect.Incremental); ok && m != nil {
			fs, read, err := m.tallies.findings(ctx, inc, cache, j.w)
			if err != nil {
				return fmt.Errorf("detector %s: %w", j.d.Name(), err)
			}
			results[i], timings[i] = fs, time.Since(start)
			tallied.Add(1)
			how := "tallied"
			if read {
				how = "tally_read"
			}
			m.count(j.d.Name(), how)
			m.keep(key, now, fs)
			return nil
		}
		fs, err := j.d.Detect(ctx, cache, j.w)
		if err == nil {
			if _, ok := j.d.(detect.Corroborated); ok {
				err = detect.Corroborate(ctx, cache, j.w, env, fs)
			}
		}
		if err != nil {
			return fmt.Errorf("detector %s (%s): %w", j.d.Name(), j.w.Conns, err)
		}
		results[i], timings[i] = fs, time.Since(start)
		if m != nil {
			m.keep(key, now, fs)
			m.count(j.d.Name(), "run")
		}
		return nil
	}
	// Detectors run side by side and share the store's memory_limit. One
	// that runs out of it beside others (a month of TLS sessions beside
	// another detector's aggregation did, now and then) is run again
	// alone once the others are done, rather than failing the hunt.
	var todo []int
	for i, j := range jobs {
		if m != nil {
			if fs, ok := m.lookup(j.key(), j.d.Name(), now); ok {
				results[i] = fs
				reused.Add(1)
				m.count(j.d.Name(), "reused")
				continue
			}
		}
		todo = append(todo, i)
	}
	var alone []int
	var aloneMu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.GOMAXPROCS(0)))
	for _, i := range todo {
		g.Go(func() error {
			err := run(gctx, i)
			if errors.Is(err, store.ErrOutOfMemory) && len(todo) > 1 {
				aloneMu.Lock()
				alone = append(alone, i)
				aloneMu.Unlock()
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.Sort(alone)
	for _, i := range alone {
		if err := run(ctx, i); err != nil {
			return nil, err
		}
	}
	res := &huntResult{Timings: map[string]time.Duration{}, Reused: int(reused.Load()), Tallied: int(tallied.Load()), Alone: len(alone)}
	if m != nil {
		c := m.settled.Counts()
		res.Merged, res.Settled, res.Extended = c.Merged-before.Merged, c.Settled-before.Settled, c.Extended-before.Extended
		m.countSettled(res.Merged, res.Settled, res.Extended, c.Passed-before.Passed)
	}
	seen := map[string]bool{}
	for i, fs := range results {
		if jobs[i].w.Conns == store.ConnLog {
			for _, f := range fs {
				seen[findingKey(&f)] = true
			}
			res.Findings = append(res.Findings, fs...)
		}
		name := jobs[i].d.Name()
		if jobs[i].w.Conns == store.FlowSessions {
			name += " (flows)"
		}
		res.Timings[name] += timings[i]
	}
	for i, fs := range results {
		if jobs[i].w.Conns != store.FlowSessions {
			continue
		}
		for _, f := range fs {
			if seen[findingKey(&f)] {
				continue
			}
			if f.Evidence == nil {
				f.Evidence = map[string]any{}
			}
			f.Evidence["records"] = "flow"
			res.Findings = append(res.Findings, f)
		}
	}
	res.Findings = detect.MergeChannels(detect.GroupPeers(res.Findings, env))
	detect.Sort(res.Findings)
	return res, nil
}

// findingKey names what a finding is about, the same from the conn log
// and from flows: its detector and its two ends in either order.
func findingKey(f *detect.Finding) string {
	a, b := f.Src, f.Dst
	if b.Less(a) {
		a, b = b, a
	}
	return f.Detector + "|" + a.String() + "|" + b.String() + "|" + f.Domain
}
