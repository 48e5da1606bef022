package app

import (
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// BenchmarkFollowUnchanged times what each of dwell serve's polls costs
// when a followed Zeek directory holds weeks of rotated hourly files that
// are all stored already: the scenario's 14 days (every log type of each
// hour, about 2,000 files) ingested once, then ingested again, each file
// found unchanged. Its files are small: the time is per file, not per
// record. "opened" is a run that opens every file (dwell ingest's), "seen"
// a poll after another (dwell serve's: ingest.Seen).
//
//	go test -run '^$' -bench FollowUnchanged ./internal/app
func BenchmarkFollowUnchanged(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	sc := scenario.Default()
	sc.Rate = 500
	logs := filepath.Join(dir, "logs")
	if _, err := scenario.Generate(ctx, sc, logs, nil); err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Store = filepath.Join(dir, "d.db")
	cfg.ServeDefaults()
	st, err := openStore(ctx, cfg, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	s := servedOn(st, cfg)
	days, _ := filepath.Glob(filepath.Join(logs, "20*"))
	files, _ := filepath.Glob(filepath.Join(logs, "20*", "*"))
	a := s.app(io.Discard, io.Discard)
	run := func(b *testing.B, seen *ingest.Seen) *ingestResult {
		sum, err := a.ingest(ctx, s.store(), cfg, days, ingestMode{quiet: true, seen: seen})
		if err != nil {
			b.Fatal(err)
		}
		return sum
	}
	run(b, nil)
	for _, bc := range []struct {
		name string
		seen *ingest.Seen
	}{{"opened", nil}, {"seen", &ingest.Seen{}}} {
		b.Run(bc.name, func(b *testing.B) {
			run(b, bc.seen) // the poll before
			var sum *ingestResult
			for b.Loop() {
				sum = run(b, bc.seen)
			}
			if n := sum.Count(ingest.StatusUnchanged); n != len(files) {
				b.Fatalf("%d of %d files unchanged on the last run", n, len(files))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(files))/1e3, "µs/file")
			b.ReportMetric(float64(len(files)), "files")
		})
	}
}
