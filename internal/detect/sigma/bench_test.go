package sigma

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

// BenchmarkEngine runs the 203 rules of SigmaHQ's regression suite over
// the EVTX files of the shared datasets (42,000 records), gated by log
// source as in the hunt.
func BenchmarkEngine(b *testing.B) {
	root := filepath.Join(datasets, "sigma-regression")
	cfg, err := LoadConfig(filepath.Join(root, "config", "thor.yml"))
	if err != nil {
		b.Skipf("shared datasets absent: %v", err)
	}
	var rules []*Rule
	for _, d := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		rs, _ := LoadDir(filepath.Join(root, d), Options{})
		rules = append(rules, rs...)
	}
	en, _ := NewEngine(rules, cfg)
	var evs []event.HostEvent
	var size int64
	t := &testing.T{}
	_ = filepath.WalkDir(datasets, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".evtx") {
			if fi, err := os.Stat(p); err == nil {
				size += fi.Size()
			}
			evs = append(evs, readEVTX(t, p)...)
		}
		return nil
	})
	b.SetBytes(size)
	b.ReportAllocs()
	hits := 0
	for b.Loop() {
		hits = 0
		for i := range evs {
			en.Match(&evs[i], func(*Rule) { hits++ })
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(hits), "matches")
	b.ReportMetric(float64(len(rules)), "rules")
}
