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
	"github.com/dwell-nsm/dwell/internal/scenario"
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

// TestNarrowedHuntKeepsIncidents: the incidents dwell incidents shows are
// those of the last full hunt; a hunt narrowed by --since, --detectors or
// --min-score prints its own and keeps them; a window on another year
// says it holds nothing; impossible options are refused.
func TestNarrowedHuntKeepsIncidents(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and hunts a scenario; skipped with -short")
	}
	cfg := scenario.Default()
	cfg.Days, cfg.Hosts, cfg.Rate = 4, 40, 10_000
	dir := t.TempDir()
	if _, err := scenario.Generate(t.Context(), cfg, dir, nil); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	if code, out, errOut := runDwell(t, "hunt", "--db", db, dir); code != ExitOK {
		t.Fatalf("full hunt: exit %d\n%s%s", code, out, errOut)
	}
	_, before, _ := runDwell(t, "incidents", "--db", db, "--format", "json")
	if !strings.Contains(before, `"id"`) {
		t.Fatalf("the full hunt kept no incident:\n%s", before)
	}
	for _, args := range [][]string{{"--detectors", "iocmatch"}, {"--min-score", "0.99"}, {"--since", "2025-03-04"}} {
		code, _, errOut := runDwell(t, append([]string{"hunt", "--db", db}, args...)...)
		if code != ExitOK || !strings.Contains(errOut, "narrowed hunt") {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
		if _, after, _ := runDwell(t, "incidents", "--db", db, "--format", "json"); after != before {
			t.Errorf("%v changed the kept incidents", args)
		}
	}
	code, _, errOut := runDwell(t, "hunt", "--db", db, "--since", "2030-01-01")
	if code == ExitOK || !strings.Contains(errOut, "holds no records") || !strings.Contains(errOut, "2025-03-03") {
		t.Errorf("--since 2030: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{{"--since", "2025-03-05", "--until", "2025-03-04"}, {"--min-score", "5"}, {"--min-score", "-3"}} {
		if code, _, errOut := runDwell(t, append([]string{"hunt", "--db", db}, args...)...); code != ExitUsage {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
}
