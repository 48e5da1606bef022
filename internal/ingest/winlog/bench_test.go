package winlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecode decodes the JSON lines of the Security Datasets
// captures (unzipped into $DWELL_BENCH_JSONL, a directory), or the
// package's sample shapes when it is not set.
func BenchmarkDecode(b *testing.B) {
	var lines [][]byte
	if dir := os.Getenv("DWELL_BENCH_JSONL"); dir != "" {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range bytes.Split(data, []byte("\n")) {
				if len(bytes.TrimSpace(l)) > 0 {
					lines = append(lines, l)
				}
			}
		}
	} else {
		for _, l := range shapes {
			lines = append(lines, []byte(l))
		}
	}
	var size int64
	for _, l := range lines {
		size += int64(len(l))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if _, err := Decode(l); err != nil && os.Getenv("DWELL_BENCH_JSONL") == "" {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(lines))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
