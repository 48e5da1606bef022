package evtx_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/ingest/ingesttest"
)

func run(t *testing.T, sink *ingesttest.Sink, paths ...string) *ingest.Summary {
	t.Helper()
	cands, err := ingest.Discover(paths)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := ingest.New(sink, ingest.Options{Formats: evtx.Formats(), Sensor: "dc1", BatchRows: 500,
		Now: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }}).Run(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestIngestSamples ingests the edge-case samples twice: every record once
// (the upstream counts, plus what is carved), none the second time.
func TestIngestSamples(t *testing.T) {
	dir := filepath.Join(datasets, "evtx-parser-edgecases")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.evtx"))
	var sink ingesttest.Sink
	sum := run(t, &sink, files...)
	if n := sum.Count(ingest.StatusIngested); n != 23 {
		t.Fatalf("%d of 23 files ingested: %+v", n, sum.Files)
	}
	if got := sink.Rows(event.KindWinlog) + int64(len(sink.Held())); got < 18000 {
		t.Errorf("%d records stored or held", got)
	}
	if d := sink.Doubles(); len(d) > 0 {
		t.Errorf("records stored twice: %v", d[:min(len(d), 5)])
	}
	again := run(t, &sink, files...)
	if again.Rows != 0 || again.Count(ingest.StatusUnchanged) != 23 {
		t.Errorf("second ingest: %d rows, %+v", again.Rows, again.Files)
	}
}

var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()
