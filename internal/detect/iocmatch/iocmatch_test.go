package iocmatch

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func TestFindings(t *testing.T) {
	ctx := context.Background()
	m := storetest.NewMem()
	for _, b := range storetest.IntelData() {
		if err := m.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	d := New(&detect.Env{Local: detect.DefaultLocal()}, Config{})
	if fs, err := d.Detect(ctx, m, store.Window{}); err != nil || len(fs) != 0 {
		t.Fatalf("no intel: %d findings, %v", len(fs), err)
	}
	inds := storetest.IntelIndicators()
	expired := event.Indicator{Source: "old", Type: event.IOCIP, Value: "198.51.100.23", Confidence: 90, Actionable: true,
		ValidUntil: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, _, err := m.PutIndicators(ctx, append(inds, expired)); err != nil {
		t.Fatal(err)
	}
	fs, err := d.Detect(ctx, m, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	var c2, late, sub *detect.Finding
	for i := range fs {
		f := &fs[i]
		ev := f.Evidence["indicator"].(map[string]any)
		switch {
		case ev["source"] == "test" && ev["value"] == "198.51.100.23" && f.Evidence["log"] == "conn" && f.Sensor == "site-a":
			c2 = f
		case ev["source"] == "old":
			late = f
		case ev["value"] == "t.cdn-metrics.example.org":
			sub = f
		}
		if f.Score < 0 || f.Score > 1 || f.Summary == "" || len(f.Attack) == 0 {
			t.Errorf("bad finding %+v", f)
		}
	}
	if c2 == nil || !c2.Src.IsValid() || !strings.HasPrefix(c2.Src.String(), "10.0.0.") || c2.Dst != netip.MustParseAddr("198.51.100.23") || c2.Score < 0.8 {
		t.Fatalf("C2 finding: %+v", c2)
	}
	if c2.FirstSeen.IsZero() || !c2.FirstSeen.Before(c2.LastSeen) || c2.Attack[0] != "T1071.001" {
		t.Errorf("C2 finding times or ATT&CK: %+v", c2)
	}
	if late == nil || late.Score >= c2.Score/1.5 || !strings.Contains(late.Summary, "after the indicator's validity ended") {
		t.Errorf("expired indicator: %+v", late)
	}
	if sub == nil || sub.Domain != "a1b2.t.cdn-metrics.example.org" || !strings.Contains(sub.Summary, "under t.cdn-metrics.example.org") {
		t.Errorf("subdomain: %+v", sub)
	}
}

// TestBroadIndicatorsNotMatched: indicators too broad to match on
// (intel.Scope), stored before dwell refused them at import, give no
// finding; the real ones beside them still do.
func TestBroadIndicatorsNotMatched(t *testing.T) {
	ctx := context.Background()
	m := storetest.NewMem()
	for _, b := range storetest.IntelData() {
		if err := m.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	broad := []event.Indicator{{Source: "careless", Type: event.IOCCIDR, Value: "10.0.0.0/8", Confidence: 90, Actionable: true},
		{Source: "careless", Type: event.IOCCIDR, Value: "0.0.0.0/0", Confidence: 90, Actionable: true}}
	if _, _, err := m.PutIndicators(ctx, append(storetest.IntelIndicators(), broad...)); err != nil {
		t.Fatal(err)
	}
	fs, err := New(&detect.Env{Local: detect.DefaultLocal()}, Config{}).Detect(ctx, m, store.Window{})
	if err != nil || len(fs) == 0 {
		t.Fatalf("%d findings, %v", len(fs), err)
	}
	for _, f := range fs {
		if ev := f.Evidence["indicator"].(map[string]any); ev["source"] == "careless" {
			t.Errorf("a finding from a broad indicator: %s", f.Summary)
		}
	}
}
