package zeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// datasetBad lists the malformed lines the shared datasets really contain;
// every other Zeek log there must read without a bad line.
var datasetBad = map[string]int64{
	"rita-parser-edgecases/has_unknown_field/http.log": 1, // line 9 has 29 of 30 fields
	"rita-parser-edgecases/truncated/conn.log":         1, // cut mid-record
	"rita-parser-edgecases/truncated/conn_top.log":     1, // cut mid-record, no header
	"rita-parser-edgecases/truncated/conn_json.log":    2, // a port of 93145, then a cut record
}

// readAll decompresses a file if it is gzip.
func readAll(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// dataLines counts what an independent reading calls records: non-empty
// lines that are not '#' headers (TSV) and not a header row of names.
func dataLines(data []byte) int64 {
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "ts\t") {
			continue
		}
		n++
	}
	return n
}

// TestDatasets reads every Zeek log of the shared datasets and checks that
// each data line is a record, a counted bad line, or a counted line of a
// log type dwell does not store: nothing is lost silently.
func TestDatasets(t *testing.T) {
	dirs := []string{"rita-parser-edgecases", "rita-missing-host-beacon", "wrccdc-2018-zeek", "zeek-btest-pcap-to-logs/baselines"}
	formats := Formats()
	seen := 0
	for _, dir := range dirs {
		root := filepath.Join(datasets, dir)
		if _, err := os.Stat(root); err != nil {
			t.Logf("skipping %s: %v", dir, err)
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(datasets, path)
			data := readAll(t, path)
			in := &ingest.Input{Path: rel, Sensor: "t", Hint: ingest.KindHint(path), Final: true, Head: data[:min(len(data), event.HeadSize)]}
			var format *ingest.Format
			for i := range formats {
				if formats[i].Detect(in) {
					format = &formats[i]
					break
				}
			}
			if format == nil {
				return nil // README, MANIFEST, a text file named conn.log, conn-summary: not logs
			}
			seen++
			src, err := format.Open(bytes.NewReader(data), in)
			if err != nil {
				t.Fatal(err)
			}
			b := &event.Batch{}
			for {
				err := src.Next(context.Background(), b, 1<<20)
				b.Reset()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", rel, err)
				}
			}
			rep := src.Report()
			var skipped int64
			for _, n := range rep.SkippedTypes {
				skipped += n
			}
			want := dataLines(data)
			if got := rep.Rows + rep.Bad + skipped; got != want {
				t.Errorf("%s: %d records + %d bad + %d skipped = %d, file has %d data lines", rel, rep.Rows, rep.Bad, skipped, got, want)
			}
			if rep.Bad != datasetBad[rel] {
				t.Errorf("%s: %d bad lines, want %d: %v", rel, rep.Bad, datasetBad[rel], rep.Errors)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen == 0 {
		t.Skip("no datasets found under " + datasets)
	}
	t.Logf("%d Zeek logs read", seen)
}
