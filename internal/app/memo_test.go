package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// TestServedHuntReusesDetectors: inside dwell serve, a hunt with nothing
// new takes every detector's findings from the last one; new Windows
// events rerun only the detectors that read them; the findings are the
// same as a hunt that reran everything.
func TestServedHuntReusesDetectors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	if code, out, errOut := runDwell(t, "ingest", "--db", db, "--complete", "../../examples/zeek"); code != ExitOK {
		t.Fatalf("ingest: %s%s", out, errOut)
	}
	rules := filepath.Join(dir, "rules")
	if err := os.MkdirAll(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rules, "r.yml"), []byte(`title: Shell under a web server
id: 33333333-3333-3333-3333-333333333333
name: web_shell
logsource: {product: windows, category: process_creation}
detection:
  s:
    ParentImage|endswith: '\w3wp.exe'
  condition: s
level: high
---
title: Logons
id: 44444444-4444-4444-4444-444444444444
name: logon
logsource: {product: windows, service: security}
detection:
  s:
    EventID: 4624
  condition: s
level: informational
---
title: Many logons of one account
id: 55555555-5555-5555-5555-555555555555
correlation:
  type: event_count
  rules: [logon]
  group-by: [TargetUserName]
  timespan: 1h
  condition: {gte: 3}
level: low
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Store = db
	cfg.Sigma.Rules = []string{rules}
	cfg.ServeDefaults()
	s := openServed(t, cfg)
	st := s.st
	hunt := func() (string, string) {
		t.Helper()
		var out, errs strings.Builder
		if code := s.Run(context.Background(), []string{"hunt", "--format", "json", "--timings"}, &out, &errs); code != ExitOK {
			t.Fatalf("hunt: %s", errs.String())
		}
		return out.String(), errs.String()
	}
	first, timings := hunt()
	if strings.Contains(timings, "taken from the last hunt") {
		t.Fatalf("the first hunt reused runs: %s", timings)
	}
	second, timings := hunt()
	if !strings.Contains(timings, "detector run(s) taken from the last hunt") || second != first {
		t.Errorf("a hunt with nothing new: %s (same findings: %v)", timings, second == first)
	}
	// Windows events arrive: host, sigma and iocmatch run again, the
	// network detectors do not.
	sc := scenario.Default()
	sc.Days, sc.Hosts, sc.Rate = 4, 30, 1000
	if _, err := scenario.Generate(t.Context(), sc, filepath.Join(dir, "scenario"), nil); err != nil {
		t.Fatal(err)
	}
	var errs strings.Builder
	if code := s.Run(context.Background(), []string{"ingest", "--complete", filepath.Join(dir, "scenario", "hostlogs")}, io.Discard, &errs); code != ExitOK {
		t.Fatalf("ingest of host events: %s", errs.String())
	}
	third, timings := hunt()
	for _, name := range []string{"host ", "sigma "} {
		if !strings.Contains(timings, name) {
			t.Errorf("%q did not run again after Windows events:\n%s", name, timings)
		}
	}
	if !strings.Contains(timings, "taken from the last hunt") || !strings.Contains(timings, "from their running tallies") {
		t.Errorf("the network detectors ran again for Windows events, or the tallies were not used:\n%s", timings)
	}
	for _, c := range []struct {
		detector, how string
		min           float64
	}{{"host", "tally_read", 1}, {"host", "tallied", 1}, {"sigma", "tallied", 1}, {"beacon", "run", 1}, {"beacon", "reused", 2}} {
		var m dto.Metric
		if err := s.metrics.detectorRuns.WithLabelValues(c.detector, c.how).Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetCounter().GetValue(); n < c.min {
			t.Errorf("dwell_hunt_detector_runs_total{detector=%q,how=%q} = %v, want at least %v", c.detector, c.how, n, c.min)
		}
	}
	// The tallies were fed the ingested batches: a server started anew,
	// which reads all history from the store, finds the same.
	fresh := servedOn(st, cfg)
	var out strings.Builder
	errs.Reset()
	if code := fresh.Run(context.Background(), []string{"hunt", "--format", "json"}, &out, &errs); code != ExitOK {
		t.Fatalf("hunt: %s", errs.String())
	}
	for _, want := range []string{`"detector": "host"`, `"rule_title": "Shell under a web server"`, `"correlation": "event_count"`} {
		if !strings.Contains(third, want) {
			t.Errorf("no finding with %s to compare", want)
		}
	}
	if out.String() != third {
		t.Errorf("the tallies fed as records were stored found otherwise than history read at once:\n%s\n---\n%s", third, out.String())
	}
}
