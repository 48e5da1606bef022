package sigma

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
)

var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()

// testInfo is a regression test's info.yml.
type testInfo struct {
	RuleMetadata []struct {
		ID string `yaml:"id"`
	} `yaml:"rule_metadata"`
	Tests []struct {
		Type       string `yaml:"type"`
		MatchCount int    `yaml:"match_count"`
		Path       string `yaml:"path"`
	} `yaml:"regression_tests_info"`
}

func readEVTX(t *testing.T, path string) []event.HostEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	var out []event.HostEvent
	rd := evtx.Reader{File: path}
	if _, err := rd.ReadAll(context.Background(), f, fi.Size(), 1, func(e *event.HostEvent) error {
		if !e.Carved {
			out = append(out, *e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSigmaRegression runs SigmaHQ's own regression suite: each EVTX must
// make its rule fire at least match_count times, with log-source gating
// on (the configuration SigmaHQ's CI uses).
func TestSigmaRegression(t *testing.T) {
	root := filepath.Join(datasets, "sigma-regression")
	thor, err := LoadConfig(filepath.Join(root, "config", "thor.yml"))
	if err != nil {
		t.Skipf("shared dataset sigma-regression absent (%v): skipping", err)
	}
	t.Run("thor.yml", func(t *testing.T) { regression(t, root, thor) })
	t.Run("built-in", func(t *testing.T) { regression(t, root, DefaultConfig()) })
}

// regression runs the suite with one log-source configuration.
func regression(t *testing.T, root string, cfg *Config) {
	byID := map[string]*Rule{}
	var loadErrs []error
	for _, d := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		rules, errs := LoadDir(filepath.Join(root, d), Options{})
		loadErrs = append(loadErrs, errs...)
		for _, r := range rules {
			byID[r.ID] = r
		}
	}
	for _, e := range loadErrs {
		t.Logf("refused: %v", e)
	}
	var infos []string
	_ = filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "info.yml" {
			infos = append(infos, p)
		}
		return nil
	})
	pass, total := 0, 0
	for _, p := range infos {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var info testInfo
		if err := yaml.Unmarshal(data, &info); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(info.RuleMetadata) == 0 {
			continue
		}
		id := info.RuleMetadata[0].ID
		for _, tc := range info.Tests {
			if tc.Type != "evtx" {
				continue
			}
			total++
			r := byID[id]
			if r == nil {
				t.Errorf("%s: rule %s not loaded", tc.Path, id)
				continue
			}
			en, errs := NewEngine([]*Rule{r}, cfg)
			if len(errs) > 0 {
				t.Errorf("%s: %v", tc.Path, errs[0])
				continue
			}
			n := 0
			for _, e := range readEVTX(t, filepath.Join(root, tc.Path)) {
				en.Match(&e, func(*Rule) { n++ })
			}
			if n >= max(tc.MatchCount, 1) {
				pass++
				continue
			}
			t.Errorf("%s (%s): fired %d times, want %d", r.Title, strings.TrimPrefix(tc.Path, "regression_data/"), n, max(tc.MatchCount, 1))
		}
	}
	t.Logf("SigmaHQ regression suite: %d of %d pass", pass, total)
	if total != 202 {
		t.Errorf("%d runnable tests, the suite has 202", total)
	}
}

// TestPrefilterChangesNothing matches every event of the shared datasets
// with the suite's rules twice, with and without the prefilter: the same
// rules must fire on the same events.
func TestPrefilterChangesNothing(t *testing.T) {
	root := filepath.Join(datasets, "sigma-regression")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	var rules []*Rule
	for _, d := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		rs, _ := LoadDir(filepath.Join(root, d), Options{})
		rules = append(rules, rs...)
	}
	fast, _ := NewEngine(rules, DefaultConfig())
	slow, _ := NewEngine(rules, DefaultConfig())
	slow.Unfiltered = true
	var evtxs []string
	_ = filepath.WalkDir(datasets, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".evtx") {
			evtxs = append(evtxs, p)
		}
		return nil
	})
	diff, total := 0, 0
	for _, p := range evtxs {
		for _, e := range readEVTX(t, p) {
			var a, b []string
			fast.Match(&e, func(r *Rule) { a = append(a, r.ID) })
			slow.Match(&e, func(r *Rule) { b = append(b, r.ID) })
			slices.Sort(a)
			slices.Sort(b)
			total += len(b)
			if !slices.Equal(a, b) {
				diff++
				if diff < 5 {
					t.Errorf("%s record %d: prefiltered %v, unfiltered %v", p, e.RecordID, a, b)
				}
			}
		}
	}
	if diff > 0 || total == 0 {
		t.Errorf("%d events differ (%d matches unfiltered)", diff, total)
	}
}
