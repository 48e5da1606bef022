package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// BenchmarkFollowUnchanged times what each of dwell serve's polls costs
// when a followed Zeek directory holds weeks of rotated hourly files that
// are all stored already: the scenario's 14 days (every log type of each
// hour, about 2,000 files) ingested once, then ingested again, each file
// found unchanged. Its files are small: the time is per file, not per
// record.
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
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	s := servedOn(st, cfg)
	days, _ := filepath.Glob(filepath.Join(logs, "20*"))
	ingest := func(b *testing.B) string {
		var out, errs strings.Builder
		if code := s.Run(ctx, append([]string{"ingest", "--complete"}, days...), &out, &errs); code != ExitOK {
			b.Fatalf("ingest: %s", errs.String())
		}
		return out.String()
	}
	ingest(b)
	files, _ := filepath.Glob(filepath.Join(logs, "20*", "*"))
	var out string
	for b.Loop() {
		out = ingest(b)
	}
	if want := fmt.Sprintf(" %d unchanged", len(files)); !strings.Contains(out, want) {
		b.Fatalf("want%s on the second ingest, got:\n%s", want, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(files))/1e3, "µs/file")
	b.ReportMetric(float64(len(files)), "files")
}
