package evtx

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

func benchRead(b *testing.B, files [][]byte, workers int) {
	var size int64
	for _, f := range files {
		size += int64(len(f))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	records := 0
	for b.Loop() {
		records = 0
		for _, data := range files {
			rd := Reader{}
			st, err := rd.ReadAll(context.Background(), bytes.NewReader(data), int64(len(data)), workers, func(*event.HostEvent) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			records += st.Records
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSynthetic reads a 3,000-record file of logon events in which
// every chunk is full.
func BenchmarkSynthetic(b *testing.B) {
	benchRead(b, [][]byte{build(logons(3000))}, 1)
}

// datasetFiles loads the EVTX files of the shared datasets named by
// $DWELL_BENCH_EVTX (a directory; default: all of them).
func datasetFiles(b *testing.B) [][]byte {
	root := os.Getenv("DWELL_BENCH_EVTX")
	if root == "" {
		root = datasets
	}
	var files [][]byte
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".evtx") {
			if data, err := os.ReadFile(p); err == nil {
				files = append(files, data)
			}
		}
		return nil
	})
	if len(files) == 0 {
		b.Skipf("no EVTX files under %s", root)
	}
	return files
}

// BenchmarkDatasets reads every EVTX file of the shared datasets (540
// files, 102 MB, 42,000 records) on one goroutine.
func BenchmarkDatasets(b *testing.B) { benchRead(b, datasetFiles(b), 1) }

// BenchmarkDatasetsParallel is BenchmarkDatasets with two chunk workers
// per file.
func BenchmarkDatasetsParallel(b *testing.B) { benchRead(b, datasetFiles(b), 2) }
