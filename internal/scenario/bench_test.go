package scenario

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dwell-nsm/dwell/internal/event"
)

// BenchmarkGenerate writes four days of a 300-host ministry at 125,000
// staff connections a day: generation, encoding, sorting, compression and
// files. Bytes are the gzip files written; conn_rows/s is the figure issue
// #4 names.
func BenchmarkGenerate(b *testing.B) {
	b.ReportAllocs()
	var conns, bytes int64
	start := time.Now()
	for b.Loop() {
		dir := b.TempDir()
		truth, err := Generate(b.Context(), Config{Days: 4, Hosts: 300, Rate: 125_000, Seed: 1}, dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		conns += truth.Counts["conn"]
		bytes += dirBytes(b, dir)
	}
	b.SetBytes(bytes / int64(b.N))
	b.ReportMetric(float64(conns)/time.Since(start).Seconds(), "conn_rows/s")
}

// BenchmarkEncodeHour encodes an hour of background traffic as Zeek TSV,
// without compression: the encoder's own speed.
func BenchmarkEncodeHour(b *testing.B) {
	hour := benchHour()
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out = encodeHour(out[:0], hour)
	}
	b.SetBytes(int64(len(out)))
	b.ReportMetric(float64(len(hour.Conns))*float64(b.N)/b.Elapsed().Seconds(), "conn_rows/s")
}

// BenchmarkCompressHour compresses an hour of Zeek TSV (conn, ssl, dns)
// as the generator does: the cost that bounds its speed (docs/benchmarks.md).
// Bytes are the uncompressed text.
func BenchmarkCompressHour(b *testing.B) {
	text := encodeHour(nil, benchHour())
	for _, level := range []int{gzip.BestSpeed, gzip.HuffmanOnly} {
		b.Run(strconv.Itoa(level), func(b *testing.B) {
			var out bytes.Buffer
			zw, err := gzip.NewWriterLevel(&out, level)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				if _, err := zw.Write(text); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len())/float64(len(text)), "ratio")
		})
	}
}

// benchHour generates a working morning's background traffic: 40,000
// staff connections of a 300-host ministry.
func benchHour() *event.Batch {
	cfg := Config{Days: 4, Hosts: 300}.withDefaults()
	m := newModel(cfg)
	p := newPlan(m)
	hb := &hourBufs{}
	h := 24 + 10 // a working morning
	gen := &hourGen{m: m, hour: h, start: cfg.Start.Add(time.Duration(h) * time.Hour), rng: p.rng, b: &hb.b, certs: map[string]bool{}}
	gen.background(40_000)
	return &hb.b
}

// encodeHour appends the hour's conn, ssl and dns records to out as Zeek
// TSV, in the order generated.
func encodeHour(out []byte, hour *event.Batch) []byte {
	e := &enc{b: out}
	for i := range hour.Conns {
		e.conn(&hour.Conns[i])
	}
	for i := range hour.TLS {
		e.ssl(&hour.TLS[i])
	}
	for i := range hour.DNS {
		e.dns(&hour.DNS[i])
	}
	return e.b
}

func dirBytes(b *testing.B, dir string) int64 {
	b.Helper()
	var n int64
	for _, f := range mustGlob(b, dir+"/*/*") {
		n += f
	}
	return n
}

func mustGlob(b *testing.B, pattern string) []int64 {
	b.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil {
		b.Fatal(err)
	}
	var sizes []int64
	for _, n := range names {
		st, err := os.Stat(n)
		if err != nil {
			b.Fatal(err)
		}
		sizes = append(sizes, st.Size())
	}
	return sizes
}
