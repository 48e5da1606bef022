package app

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	cfg := config.Default()
	cfg.Store = db
	cfg.ServeDefaults()
	st, err := openStore(t.Context(), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	s := &served{st: st, logger: slog.New(slog.DiscardHandler), now: time.Now, data: make(chan time.Time, 1)}
	s.cfg.Store(cfg)
	newServeMetrics(s)
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
	_, timings = hunt()
	for _, name := range []string{"host ", "sigma "} {
		if !strings.Contains(timings, name) {
			t.Errorf("%q did not run again after Windows events:\n%s", name, timings)
		}
	}
	if !strings.Contains(timings, "taken from the last hunt") {
		t.Errorf("the network detectors ran again for Windows events:\n%s", timings)
	}
}
