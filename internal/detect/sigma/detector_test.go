package sigma

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestDetector hunts the regression suite's events, all in one store, with
// all its rules: every rule fires on its own events, as a finding that
// names the rule, the computer, the techniques and the records.
func TestDetector(t *testing.T) {
	root := filepath.Join(datasets, "sigma-regression")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	var evtxs []string
	_ = filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".evtx") {
			evtxs = append(evtxs, p)
		}
		return nil
	})
	b := &event.Batch{}
	for _, p := range evtxs {
		b.Host = append(b.Host, readEVTX(t, p)...)
	}
	m := storetest.NewMem()
	if err := m.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	env := &detect.Env{Local: detect.DefaultLocal(), Sigma: detect.SigmaSetup{Rules: []string{
		filepath.Join(root, "rules"), filepath.Join(root, "rules-emerging-threats"), filepath.Join(root, "rules-threat-hunting")}}}
	fs, err := New(env).Detect(context.Background(), m, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, f := range fs {
		id, _ := f.Evidence["rule_id"].(string)
		fired[id] = true
		if f.Host == "" || f.Detector != "sigma" || len(f.Evidence["records"].([]map[string]any)) == 0 || !strings.Contains(f.Summary, "Sigma rule") {
			t.Errorf("finding %+v", f)
		}
	}
	_, rules, errs := Load(env.Sigma)
	for _, e := range errs {
		// The suite ships one network device rule (Cisco): not a Windows log.
		if !strings.Contains(e.Error(), "Product:cisco") {
			t.Errorf("refused: %v", e)
		}
	}
	for _, r := range rules {
		if r.Logsource.Product == "windows" && !fired[r.ID] && !strings.Contains(r.File, "cisco") {
			t.Errorf("rule %s (%s) did not fire on the suite", r.ID, r.Title)
		}
	}
	// ATT&CK tags become technique ids.
	for _, f := range fs {
		if f.Evidence["rule_id"] == "7dbbcac2-57a0-45ac-b306-ff30a8bd2981" && !slices.Contains(f.Attack, "T1685") {
			t.Errorf("attack %v", f.Attack)
		}
	}
}

// TestDetectorCorrelation runs a correlation over stored events: five
// failed logons for one account within ten minutes fire it, four for
// another do not; the base rule makes no finding of its own.
func TestDetectorCorrelation(t *testing.T) {
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
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 10m
  condition: {gte: 5}
level: high
tags: [attack.credential-access, attack.t1110.001]
`
	if err := os.WriteFile(filepath.Join(dir, "r.yml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	b := &event.Batch{}
	add := func(at time.Duration, user string) {
		b.Host = append(b.Host, event.HostEvent{TS: t0.Add(at), Channel: "Security", EventID: 4625, Computer: "DC1",
			Fields: []event.Field{{Name: "TargetUserName", Value: user}}, Src: event.Source{File: "s.evtx", Line: int64(at)}})
	}
	for i := range 5 {
		add(time.Duration(i)*time.Minute, "alice")
	}
	for i := range 4 {
		add(time.Duration(i)*time.Minute, "bob")
	}
	m := storetest.NewMem()
	if err := m.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	fs, err := New(&detect.Env{Sigma: detect.SigmaSetup{Rules: []string{dir}}}).Detect(context.Background(), m, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	if f.Evidence["correlation"] != "event_count" || f.Evidence["group"].(map[string]string)["TargetUserName"] != "alice" ||
		f.Host != "DC1" || !slices.Contains(f.Attack, "T1110.001") || f.Evidence["stage"] != "credential-access" || f.Score != 0.75 {
		t.Errorf("finding %+v", f)
	}
}
