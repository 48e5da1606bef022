package app

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/beacon"
	"github.com/dwell-nsm/dwell/internal/detect/ddos"
	"github.com/dwell-nsm/dwell/internal/detect/dnstunnel"
	"github.com/dwell-nsm/dwell/internal/detect/exfil"
	"github.com/dwell-nsm/dwell/internal/detect/httpanom"
	"github.com/dwell-nsm/dwell/internal/detect/iocmatch"
	"github.com/dwell-nsm/dwell/internal/detect/lateral"
	"github.com/dwell-nsm/dwell/internal/detect/longconn"
	"github.com/dwell-nsm/dwell/internal/detect/rare"
	"github.com/dwell-nsm/dwell/internal/detect/tlsanom"
	"github.com/dwell-nsm/dwell/internal/store"
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

// huntResult is what a hunt found and how long each detector took.
type huntResult struct {
	Findings []detect.Finding
	Timings  map[string]time.Duration
}

// runDetectors runs ds over the store in window w, two at a time, sharing
// one cache of aggregates, and returns the findings sorted by score.
func runDetectors(ctx context.Context, st store.Reader, ds []detect.Detector, w store.Window) (*huntResult, error) {
	cache := detect.NewCache(st)
	results := make([][]detect.Finding, len(ds))
	timings := make([]time.Duration, len(ds))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.GOMAXPROCS(0)))
	for i, d := range ds {
		g.Go(func() error {
			start := time.Now()
			fs, err := d.Detect(ctx, cache, w)
			if err != nil {
				return fmt.Errorf("detector %s: %w", d.Name(), err)
			}
			results[i], timings[i] = fs, time.Since(start)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res := &huntResult{Timings: map[string]time.Duration{}}
	for i, fs := range results {
		res.Findings = append(res.Findings, fs...)
		res.Timings[ds[i].Name()] = timings[i]
	}
	detect.Sort(res.Findings)
	return res, nil
}
