package zeek

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// benchInput returns real Zeek logs of one type from the RITA dataset,
// decompressed and concatenated (headers included), or skips.
func benchInput(b *testing.B, log string) []byte {
	b.Helper()
	files, _ := filepath.Glob(filepath.Join(datasets, "rita-missing-host-beacon", "*", log+".*.log.gz"))
	if len(files) == 0 {
		b.Skip("dataset rita-missing-host-beacon not found under " + datasets)
	}
	var buf bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(&buf, zr); err != nil {
			b.Fatal(err)
		}
	}
	return buf.Bytes()
}

func benchDecode(b *testing.B, data []byte, name, format string) {
	sp := newSpecs()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	batch := &event.Batch{}
	var rows int64
	for b.Loop() {
		in := &ingest.Input{Path: name, Sensor: "bench", Hint: ingest.KindHint(name), Final: true}
		src := newSource(bytes.NewReader(data), in, format, sp)
		for {
			err := src.Next(context.Background(), batch, 65536)
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
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkTSVConn(b *testing.B) {
	benchDecode(b, benchInput(b, "conn"), "conn.log", FormatTSV)
}

func BenchmarkTSVDNS(b *testing.B) {
	benchDecode(b, benchInput(b, "dns"), "dns.log", FormatTSV)
}

func BenchmarkTSVHTTP(b *testing.B) {
	benchDecode(b, benchInput(b, "http"), "http.log", FormatTSV)
}

func BenchmarkJSONConn(b *testing.B) {
	data := benchInput(b, "conn")
	// Convert the TSV rows to Zeek JSON lines for a like-for-like comparison.
	var out bytes.Buffer
	sp := newSpecs()
	_ = sp
	var fields []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "#fields\t") {
			fields = strings.Split(l, "\t")[1:]
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		vals := strings.Split(l, "\t")
		out.WriteByte('{')
		for i, f := range fields {
			if i > 0 {
				out.WriteByte(',')
			}
			v := vals[i]
			switch {
			case v == "-":
				v = "null"
			case f == "uid" || f == "id.orig_h" || f == "id.resp_h" || f == "proto" || f == "service" || f == "conn_state" || f == "history" || f == "_node_name":
				v = `"` + v + `"`
			case v == "T":
				v = "true"
			case v == "F":
				v = "false"
			case v == "(empty)":
				v = "[]"
			}
			out.WriteString(`"` + f + `":` + v)
		}
		out.WriteString("}\n")
	}
	benchDecode(b, out.Bytes(), "conn.log", FormatJSON)
}
