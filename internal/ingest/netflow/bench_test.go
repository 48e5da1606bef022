package netflow

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// BenchmarkScenarioCapture decodes the scenario's IPFIX capture of the
// DDoS through the ingest Source.
func BenchmarkScenarioCapture(b *testing.B) {
	cfg := scenario.Default()
	cfg.Days, cfg.Hosts, cfg.Rate = 4, 30, 2000
	dir := b.TempDir()
	truth, err := scenario.Generate(b.Context(), cfg, dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(truth.DDoS.FlowFile)))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var flows int
	var batch event.Batch
	for b.Loop() {
		src, err := open(bytes.NewReader(data), &ingest.Input{Path: "ddos.pcap", Head: data[:event.HeadSize], Final: true})
		if err != nil {
			b.Fatal(err)
		}
		for {
			batch.Reset()
			err := src.Next(context.Background(), &batch, 8192)
			flows += len(batch.Flows)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(flows)/b.Elapsed().Seconds(), "flows/s")
}
