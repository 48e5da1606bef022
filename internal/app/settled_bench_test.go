package app

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// BenchmarkServedSettled times a hunt under dwell serve once an hour of
// Zeek logs arrived (every log type of the hour, ingested through the
// server; the ingest is not timed), with the aggregate queries' settled
// history kept between hunts ("settled") and with every query reading all
// history ("history"). The store holds the default scenario (14 days, 100,000 staff connections a
// day; $DWELL_BENCH_DAYS and $DWELL_BENCH_RATE change it) but its last
// day, whose hours arrive one per iteration; it is built once in
// $DWELL_BENCH_DIR (a temporary directory otherwise).
// $DWELL_BENCH_HUNT_MEMORY sets serve.hunt_memory (512MB), and
// $DWELL_BENCH_CPUPROFILE names a CPU profile of the settled case's last
// hunt. At most 12
// iterations a sub-benchmark:
//
//	go test -run '^$' -bench ServedSettled -benchtime 5x ./internal/app
func BenchmarkServedSettled(b *testing.B) {
	ctx := context.Background()
	sc := scenario.Default()
	for _, v := range []struct {
		env string
		to  *int
	}{{"DWELL_BENCH_DAYS", &sc.Days}, {"DWELL_BENCH_RATE", &sc.Rate}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatal(err)
			}
			*v.to = n
		}
	}
	dir := os.Getenv("DWELL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	name := "settled-" + strconv.Itoa(sc.Days) + "-" + strconv.Itoa(sc.Rate)
	logs, db := filepath.Join(dir, name), filepath.Join(dir, name+".db")
	if _, err := os.Stat(logs); err != nil {
		if _, err := scenario.Generate(ctx, sc, logs, nil); err != nil {
			b.Fatal(err)
		}
	}
	days, err := filepath.Glob(filepath.Join(logs, "20*"))
	if err != nil || len(days) < 2 {
		b.Fatalf("scenario days: %v %v", days, err)
	}
	cfg := config.Default()
	cfg.Store = db
	cfg.ServeDefaults()
	if _, err := os.Stat(db); err != nil {
		start := time.Now()
		if code, out, errOut := runDwell(b, append([]string{"ingest", "-q", "--db", db, "--complete"}, days[:len(days)-1]...)...); code != ExitOK {
			b.Fatalf("ingest: %s%s", out, errOut)
		}
		b.Logf("stored %d days in %v", len(days)-1, time.Since(start).Round(time.Second))
	}
	// The last day's hours, each every log type of it; a copy of the
	// store, so that each run starts from the same history.
	var hours [][]string
	for h := range 24 {
		files, _ := filepath.Glob(filepath.Join(days[len(days)-1], "*."+time.Date(0, 1, 1, h, 0, 0, 0, time.UTC).Format("15:04:05")+"-*.log.gz"))
		if len(files) > 0 {
			hours = append(hours, files)
		}
	}
	work := filepath.Join(b.TempDir(), "d.db")
	if err := copyFile(db, work); err != nil {
		b.Fatal(err)
	}
	cfg.Store = work
	st, err := openStore(ctx, cfg, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	next := 0
	run := func(b *testing.B, keep bool) {
		c := *cfg
		if m := os.Getenv("DWELL_BENCH_HUNT_MEMORY"); m != "" {
			c.Serve.HuntMemory = m
		}
		if !keep {
			c.Serve.HuntMemory = "0"
		}
		s := servedOn(st, &c)
		cmd := func(args ...string) string {
			var errs strings.Builder
			if code := s.Run(ctx, args, io.Discard, &errs); code != ExitOK {
				b.Fatalf("%v: %s", args, errs.String())
			}
			return errs.String()
		}
		cmd("hunt", "--format", "json") // the first hunt reads settled history
		var timings string
		for b.Loop() {
			if next == len(hours) || b.N > 12 {
				b.Fatalf("%d hours of logs for %d iterations: use -benchtime 5x", len(hours)-next, b.N)
			}
			b.StopTimer()
			cmd(append([]string{"ingest", "-q", "--complete"}, hours[next]...)...)
			next++
			b.StartTimer()
			stop := profileHunt(b, keep)
			timings = cmd("hunt", "--format", "json", "--timings")
			stop()
		}
		// go test keeps ten lines of a benchmark's log: how the queries
		// were answered first, then the slowest detectors.
		var counts []string
		for line := range strings.Lines(timings) {
			if strings.Contains(line, "aggregate queries") {
				counts = append(counts, strings.TrimSpace(line))
			}
		}
		b.Logf("the last hunt: %s\n%s", strings.Join(counts, "; "), timings)
		b.ReportMetric(float64(s.memo.settled.Counts().Bytes)/1e6, "settled_MB")
	}
	b.Run("history", func(b *testing.B) { run(b, false) })
	b.Run("settled", func(b *testing.B) { run(b, true) })
}

// profileHunt writes a CPU profile of a timed hunt of the settled case to
// $DWELL_BENCH_CPUPROFILE when set, each hunt's replacing the last's (go
// test's -cpuprofile would take in the ingests and the first hunt too),
// and returns what stops it.
func profileHunt(b *testing.B, keep bool) (stop func()) {
	path := os.Getenv("DWELL_BENCH_CPUPROFILE")
	if path == "" || !keep {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// copyFile copies a file.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
