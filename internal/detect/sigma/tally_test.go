package sigma

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/detecttest"
	"github.com/dwell-nsm/dwell/internal/event"
)

// TestTally checks that the detector's running totals give Detect's
// findings whatever order the events come in (detecttest.Tally): the
// regression suite's events under all its rules, and a correlation whose
// events come shuffled, some at one instant.
func TestTally(t *testing.T) {
	t.Run("regression-suite", func(t *testing.T) {
		root := filepath.Join(datasets, "sigma-regression")
		if _, err := os.Stat(root); err != nil {
			t.Skipf("shared dataset absent (%v): skipping", err)
		}
		b := &event.Batch{}
		_ = filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(p, ".evtx") {
				b.Host = append(b.Host, readEVTX(t, p)...)
			}
			return nil
		})
		env := &detect.Env{Local: detect.DefaultLocal(), Sigma: detect.SigmaSetup{Rules: []string{
			filepath.Join(root, "rules"), filepath.Join(root, "rules-emerging-threats"), filepath.Join(root, "rules-threat-hunting")}}}
		if fs := detecttest.Tally(t, New(env), b); len(fs) < 200 {
			t.Errorf("%d findings: too few to compare", len(fs))
		}
	})
	t.Run("correlation", func(t *testing.T) {
		dir := t.TempDir()
		rules := `title: Failed logon
id: 11111111-1111-1111-1111-111111111111
name: failed_logon
logsource: {product: windows, service: security}
detection:
  s:
    EventID: 4625
  condition: s
level: low
---
title: Password guessing
id: 22222222-2222-2222-2222-222222222222
correlation:
  type: value_count
  rules: [failed_logon]
  group-by: [IpAddress]
  timespan: 10m
  condition: {field: TargetUserName, gte: 3}
  generate: true
level: high
`
		if err := os.WriteFile(filepath.Join(dir, "r.yml"), []byte(rules), 0o644); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2025, 3, 1, 8, 0, 0, 999, time.UTC)
		b := &event.Batch{}
		for i := range 40 {
			at := t0.Add(time.Duration(i/3) * time.Minute) // three at each instant
			b.Host = append(b.Host, event.HostEvent{TS: at, Channel: "Security", EventID: 4625, Computer: "DC" + string(rune('1'+i%2)),
				Fields: []event.Field{{Name: "TargetUserName", Value: "u" + string(rune('a'+i%7))}, {Name: "IpAddress", Value: "10.0.0." + string(rune('1'+i%2))}},
				Src:    event.Source{Sensor: "s" + string(rune('1'+i%2)), File: "s.evtx", Line: int64(i)}})
		}
		fs := detecttest.Tally(t, New(&detect.Env{Sigma: detect.SigmaSetup{Rules: []string{dir}}}), b)
		corr := 0
		for _, f := range fs {
			if f.Evidence["correlation"] != nil {
				corr++
			}
		}
		if corr == 0 || corr == len(fs) {
			t.Errorf("%d findings, %d of correlations: want both kinds", len(fs), corr)
		}
	})
}
