package netflow

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// BenchmarkScenarioCapture decodes the scenario's IPFIX capture of the DDoS
// (or the capture DWELL_BENCH_PCAP names: bench/flows.sh gives the peer's)
// through the ingest Source, on one goroutine.
func BenchmarkScenarioCapture(b *testing.B) {
	path := os.Getenv("DWELL_BENCH_PCAP")
	if path == "" {
		path, _ = scenarioCapture(b)
	}
	data, err := os.ReadFile(path)
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

// BenchmarkDecodeSFlow decodes an sFlow v5 datagram of one flow sample.
func BenchmarkDecodeSFlow(b *testing.B) {
	p := sflowMessage()
	d := newDecoder()
	out := make([]event.Flow, 0, 8)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = d.decode(datagram{payload: p}, out[:0]); err != nil || len(out) != 1 {
			b.Fatal(err)
		}
	}
}
