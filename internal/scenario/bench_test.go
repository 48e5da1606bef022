package scenario

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
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
	cfg := Config{Days: 4, Hosts: 300}.withDefaults()
	m := newModel(cfg)
	p := newPlan(m)
	hb := &hourBufs{}
	h := 24 + 10 // a working morning
	gen := &hourGen{m: m, hour: h, start: cfg.Start.Add(time.Duration(h) * time.Hour), rng: p.rng, b: &hb.b, certs: map[string]bool{}}
	gen.background(40_000)
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		e := &enc{b: out[:0]}
		for i := range hb.b.Conns {
			e.conn(&hb.b.Conns[i])
		}
		for i := range hb.b.TLS {
			e.ssl(&hb.b.TLS[i])
		}
		for i := range hb.b.DNS {
			e.dns(&hb.b.DNS[i])
		}
		out = e.b
	}
	b.SetBytes(int64(len(out)))
	b.ReportMetric(float64(len(hb.b.Conns))*float64(b.N)/b.Elapsed().Seconds(), "conn_rows/s")
}

// BenchmarkCompressHour compresses an hour of Zeek TSV (conn, ssl, dns)
// as the generator does: the cost that bounds its speed (docs/benchmarks.md).
// Bytes are the uncompressed text.
func BenchmarkCompressHour(b *testing.B) {
	cfg := Config{Days: 4, Hosts: 300}.withDefaults()
	m := newModel(cfg)
	p := newPlan(m)
	hb := &hourBufs{}
	h := 24 + 10
	gen := &hourGen{m: m, hour: h, start: cfg.Start.Add(time.Duration(h) * time.Hour), rng: p.rng, b: &hb.b, certs: map[string]bool{}}
	gen.background(40_000)
	e := &enc{}
	for i := range hb.b.Conns {
		e.conn(&hb.b.Conns[i])
	}
	for i := range hb.b.TLS {
		e.ssl(&hb.b.TLS[i])
	}
	for i := range hb.b.DNS {
		e.dns(&hb.b.DNS[i])
	}
	for _, level := range []int{gzip.BestSpeed, gzip.HuffmanOnly} {
		b.Run(strconv.Itoa(level), func(b *testing.B) {
			var out bytes.Buffer
			zw, err := gzip.NewWriterLevel(&out, level)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(e.b)))
			for b.Loop() {
				out.Reset()
				zw.Reset(&out)
				if _, err := zw.Write(e.b); err != nil {
					b.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len())/float64(len(e.b)), "ratio")
		})
	}
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
