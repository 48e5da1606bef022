package app

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestHuntRITAFixture runs dwell hunt end to end on RITA's fixture: the
// beacon pair is the top beacon finding in the JSON output, with RITA's
// own figures as evidence. Then the same hunt on the in-memory reference
// store gives the same findings: the DuckDB analytics agree with the
// reference implementations on real data.
func TestHuntRITAFixture(t *testing.T) {
	dir := filepath.Join(datasets, "rita-missing-host-beacon")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runDwell(t, "hunt", "--db", db, "--format", "json", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Findings []detect.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out[:min(len(out), 500)])
	}
	var top *detect.Finding
	for i := range doc.Findings {
		if doc.Findings[i].Detector == "beacon" {
			top = &doc.Findings[i]
			break
		}
	}
	if top == nil || top.Src.String() != "73.54.23.243" || top.Dst.String() != "64.225.56.201" {
		t.Fatalf("top beacon %+v", top)
	}
	rita, _ := top.Evidence["rita"].(map[string]any)
	if rita["connections"] != float64(331) || math.Abs(rita["score"].(float64)-0.963) > 0.01 {
		t.Errorf("rita evidence %v", rita)
	}

	// The same hunt over the reference store.
	m := storetest.NewMem()
	cands, _ := ingest.Discover([]string{dir})
	if _, err := ingest.New(m, ingest.Options{Formats: zeek.Formats()}).Run(context.Background(), cands); err != nil {
		t.Fatal(err)
	}
	env, _ := environment(config.Default())
	ds, _ := detectors(env, nil)
	res, err := runDetectors(context.Background(), m, env, ds, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != len(doc.Findings) {
		t.Fatalf("reference store: %d findings, DuckDB: %d", len(res.Findings), len(doc.Findings))
	}
	for i := range res.Findings {
		a, b := res.Findings[i], doc.Findings[i]
		if a.Detector != b.Detector || a.Src != b.Src || a.Dst != b.Dst || a.Domain != b.Domain || math.Abs(a.Score-b.Score) > 1e-3 {
			t.Fatalf("finding %d differs:\n reference %v %v %v %v %.4f\n duckdb    %v %v %v %v %.4f", i, a.Detector, a.Src, a.Dst, a.Domain, a.Score,
				b.Detector, b.Src, b.Dst, b.Domain, b.Score)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"2024-04-19":           time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC),
		"2024-04-19T08:00:00Z": time.Date(2024, 4, 19, 8, 0, 0, 0, time.UTC),
		"30d":                  now.AddDate(0, 0, -30),
		"12h":                  now.Add(-12 * time.Hour),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "12x", "2024-13-01"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

// TestHuntWithoutStore: hunting a store that does not exist says so and
// creates nothing (dwell hunt opens stores for writing, to keep its
// incidents).
func TestHuntWithoutStore(t *testing.T) {
	db := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut := runDwell(t, "hunt", "--db", db)
	if code != ExitFail || !strings.Contains(errOut, "no store at") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("the hunt created a store")
	}
}
