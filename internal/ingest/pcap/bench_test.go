package pcap

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
)

// benchCapture is the capture the benchmarks read: $DWELL_BENCH_PCAP (a
// large one built by bench/pcapbuild), or the largest of the shared ones.
func benchCapture(b *testing.B) []byte {
	p := os.Getenv("DWELL_BENCH_PCAP")
	if p == "" {
		p = filepath.Join(dataset(b, "labelled-network"), "caldera-c2-beacons/sandcat.pcap")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Skipf("no capture to read: %v", err)
	}
	return data
}

// BenchmarkSource reads a whole capture into records: capture reading,
// IP and TCP analysis, DNS, HTTP and TLS, files hashed.
func BenchmarkSource(b *testing.B) {
	data := benchCapture(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var rows int64
	for b.Loop() {
		in := &ingest.Input{Path: "bench.pcap", Head: data[:min(len(data), event.HeadSize)], Final: true}
		src, err := open(bytes.NewReader(data), in)
		if err != nil {
			b.Fatal(err)
		}
		var batch event.Batch
		for {
			err := src.Next(context.Background(), &batch, 4096)
			batch.Reset()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		rows = src.Report().Rows
	}
	b.ReportMetric(float64(rows), "records/op")
}
