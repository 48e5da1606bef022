package sigma

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/detecttest"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
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

// dnsRows is a store whose dns table answers SELECT * with its queries
// (and counts the reads); its record count is the queries'.
type dnsRows struct {
	*storetest.Mem
	queries []string
	reads   int
}

func (d *dnsRows) Query(_ context.Context, q string) (store.Rows, error) {
	if q != "SELECT * FROM dns" {
		return nil, fmt.Errorf("unexpected query %q", q)
	}
	d.reads++
	return &staticRows{cols: []string{"ts", "id_orig_h", "query"}, rows: d.queries}, nil
}

func (d *dnsRows) Count(ctx context.Context, k event.Kind) (int64, error) {
	if k == event.KindDNS {
		return int64(len(d.queries)), nil
	}
	return d.Mem.Count(ctx, k)
}

type staticRows struct {
	cols []string
	rows []string
	i    int
	cur  []any
}

func (r *staticRows) Columns() []string { return r.cols }
func (r *staticRows) Next() bool {
	if r.i >= len(r.rows) {
		return false
	}
	r.cur = []any{"2025-03-01T08:00:00Z", "10.0.0.5", r.rows[r.i]}
	r.i++
	return true
}
func (r *staticRows) Values() []any { return r.cur }
func (r *staticRows) Err() error    { return nil }
func (r *staticRows) Close() error  { return nil }

// TestNetworkRulesReadOnChange: a tally's rules over the network tables
// read a table again only when its records changed, and always for a
// window other than all history.
func TestNetworkRulesReadOnChange(t *testing.T) {
	dir := t.TempDir()
	rule := "title: Update domain queried\nid: n1\nlogsource: {product: zeek, service: dns}\n" +
		"detection:\n  s:\n    query|endswith: '.example.org'\n  condition: s\nlevel: low\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := &dnsRows{Mem: storetest.NewMem(), queries: []string{"a.example.org"}}
	d := New(&detect.Env{Sigma: detect.SigmaSetup{Rules: []string{dir}}})
	tl := d.Tally()
	finish := func(w store.Window) []detect.Finding {
		t.Helper()
		fs, err := d.Finish(ctx, r, w, tl, tl.Findings())
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	first := finish(store.Window{})
	if len(first) != 1 || r.reads != 1 {
		t.Fatalf("%d findings, %d reads", len(first), r.reads)
	}
	first[0].Evidence["events"] = "changed by the caller"
	if again := finish(store.Window{}); r.reads != 1 || len(again) != 1 || again[0].Evidence["events"] == "changed by the caller" {
		t.Errorf("nothing changed: %d reads, %+v", r.reads, again)
	}
	r.queries = append(r.queries, "b.example.org")
	if fs := finish(store.Window{}); r.reads != 2 || len(fs) != 1 || fs[0].Evidence["events"] != 2 {
		t.Errorf("a record added: %d reads, %+v", r.reads, fs)
	}
	finish(store.Window{Since: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)})
	finish(store.Window{})
	if r.reads != 4 {
		t.Errorf("a window, then all history again: %d reads, want 4", r.reads)
	}
}
