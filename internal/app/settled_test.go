package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/store"
)

// TestServedHuntSettled: inside dwell serve, the network detectors'
// aggregate queries keep their answers over settled history between
// hunts and merge them with the records since; after new days of Zeek
// logs the served hunt finds exactly what a hunt reading all history
// finds, and a late log of an old day is merged correctly too.
func TestServedHuntSettled(t *testing.T) {
	dir := t.TempDir()
	sc := scenario.Default()
	sc.Days, sc.Hosts, sc.Rate = 7, 40, 2000
	if _, err := scenario.Generate(t.Context(), sc, filepath.Join(dir, "scenario"), nil); err != nil {
		t.Fatal(err)
	}
	days, err := filepath.Glob(filepath.Join(dir, "scenario", "20*"))
	if err != nil || len(days) != sc.Days {
		t.Fatalf("scenario days: %v %v", days, err)
	}
	cfg := config.Default()
	cfg.Store = filepath.Join(dir, "d.db")
	cfg.ServeDefaults()
	s := openServed(t, cfg)
	st := s.st
	ingest := func(paths ...string) {
		t.Helper()
		var errs strings.Builder
		if code := s.Run(context.Background(), append([]string{"ingest", "--complete"}, paths...), io.Discard, &errs); code != ExitOK {
			t.Fatalf("ingest %v: %s", paths, errs.String())
		}
	}
	settledLine := regexp.MustCompile(`(\d+) aggregate queries merged settled history kept from earlier hunts with the records since; (\d+) read it to keep it; (\d+) extended`)
	hunt := func(what string) (out string, merged, read, extended int) {
		t.Helper()
		var o, errs strings.Builder
		if code := s.Run(context.Background(), []string{"hunt", "--format", "json", "--timings"}, &o, &errs); code != ExitOK {
			t.Fatalf("%s: hunt: %s", what, errs.String())
		}
		if m := settledLine.FindStringSubmatch(errs.String()); m != nil {
			merged, _ = strconv.Atoi(m[1])
			read, _ = strconv.Atoi(m[2])
			extended, _ = strconv.Atoi(m[3])
		}
		return o.String(), merged, read, extended
	}
	fresh := func(what, want string) {
		t.Helper()
		none := *cfg
		none.Serve.HuntMemory = "0" // keeps nothing: every query reads all history
		f := servedOn(st, &none)
		var out, errs strings.Builder
		if code := f.Run(context.Background(), []string{"hunt", "--format", "json"}, &out, &errs); code != ExitOK {
			t.Fatalf("%s: hunt: %s", what, errs.String())
		}
		if out.String() != want {
			t.Errorf("%s: the served hunt with settled history found otherwise than history read at once:\n%s\n---\n%s", what, want, out.String())
		}
	}
	ingest(days[:4]...)
	if _, merged, read, _ := hunt("first"); merged != 0 && read == 0 {
		t.Errorf("first hunt: %d merged, %d read; want settled history read", merged, read)
	}
	// A hunt of one detector keeps what the others use.
	var o, errs strings.Builder
	if code := s.Run(context.Background(), []string{"hunt", "--detectors", "dga", "--format", "json"}, &o, &errs); code != ExitOK {
		t.Fatalf("hunt --detectors dga: %s", errs.String())
	}
	// Another day: after the cut (the midnight a day before the newest
	// record's day). Every query merges what was kept.
	ingest(days[4])
	out, merged, read, _ := hunt("after another day")
	if merged == 0 || read != 0 {
		t.Errorf("after another day: %d queries merged, %d read settled history; want all merged", merged, read)
	}
	for _, want := range []string{`"detector": "beacon"`, `"detector": "dnstunnel"`, `"detector": "httpanom"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no finding with %s to compare", want)
		}
	}
	fresh("after another day", out)
	var m dto.Metric
	if err := s.metrics.settledQueries.WithLabelValues("merged").Write(&m); err != nil || m.GetCounter().GetValue() < float64(merged) {
		t.Errorf("dwell_hunt_aggregate_queries_total{how=\"merged\"} = %v, %v; want at least %d", m.GetCounter().GetValue(), err, merged)
	}

	// A late conn log of the first day, under another name: before the
	// cut, so what was kept is dropped and read again.
	late := filepath.Join(dir, "late")
	if err := os.MkdirAll(late, 0o755); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(days[0], "conn.*.log.gz"))
	if len(logs) == 0 {
		t.Fatal("no conn log on the first day")
	}
	var lines []string
	for i, line := range strings.Split(string(gunzip(t, logs[len(logs)/2])), "\n") {
		if !strings.HasPrefix(line, "#") && i%3 == 0 && line != "" {
			f := strings.Split(line, "\t")
			f[1] = "L" + f[1] // another connection, of the same pairs and day
			line = strings.Join(f, "\t")
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(filepath.Join(late, "conn.log"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ingest(late)
	out, _, read, _ = hunt("after a late log")
	if read == 0 {
		t.Errorf("after a late log before the cut: settled history was not read again")
	}
	fresh("after a late log", out)

	// The last two days take the newest record three days past the cut:
	// the cut moves, and what was kept is extended over the days it moved
	// over.
	ingest(days[5:]...)
	out, _, read, extended := hunt("after the cut moved")
	if read != 0 || extended == 0 {
		t.Errorf("after the cut moved: %d read settled history, %d extended it; want all extended", read, extended)
	}
	fresh("after the cut moved", out)
}

// openServed opens cfg's store, closed when the test ends, and returns
// a server of it (servedOn).
func openServed(t *testing.T, cfg *config.Config) *served {
	t.Helper()
	st, err := openStore(t.Context(), cfg, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return servedOn(st, cfg)
}

// servedOn returns a server of st under cfg, as dwell serve makes one,
// without its loops: commands run through its Run.
func servedOn(st store.Store, cfg *config.Config) *served {
	s := &served{st: st, logger: slog.New(slog.DiscardHandler), now: time.Now, data: make(chan time.Time, 1)}
	s.setConfig(cfg)
	newServeMetrics(s)
	return s
}
