package store

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// BenchmarkSummarize measures the summary kept at ingest for retro-hunts:
// one row group of conn records and a tenth as many DNS records, with as
// many distinct values as a batch of bench/scenario.sh's data holds (300
// hosts, ~15,000 distinct values per batch).
func BenchmarkSummarize(b *testing.B) {
	const rows = 122880
	batch := &event.Batch{}
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		batch.Conns = append(batch.Conns, event.Conn{
			TS: base.Add(time.Duration(i) * 7 * time.Millisecond), SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(i % 300 / 256), byte(i % 300)}),
			DstIP: netip.AddrFrom4([4]byte{byte(20 + i%5000/256), byte(i % 5000), 100, 7}), DstPort: []uint16{443, 80, 53, 8443}[i%4],
			Src: event.Source{Sensor: "bench"},
		})
		if i%10 == 0 {
			batch.DNS = append(batch.DNS, event.DNS{TS: base.Add(time.Duration(i) * 7 * time.Millisecond),
				SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(i % 300 / 256), byte(i % 300)}), Query: fmt.Sprintf("host%d.example%d.com", i%2000, i%2000%113),
				Answers: []string{fmt.Sprintf("198.51.100.%d", i%251)}, Src: event.Source{Sensor: "bench"}})
		}
	}
	benchSummarize(b, batch, rows)
}

// BenchmarkSummarizeVaried is BenchmarkSummarize on traffic shaped like
// the replayed conn logs of bench/ingest.sh (RITA's): 15,000 sources and
// 16,000 destination address and port pairs (876 addresses) over a day
// and a half, so that a batch holds about 60,000 daily rows (48,000 in a
// batch of those logs) with long lists of peers.
func BenchmarkSummarizeVaried(b *testing.B) {
	const rows = 122880
	batch := &event.Batch{}
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		j := uint32(i) * 2654435761
		src, pair := j%15000, (j>>7)%16000
		dst := pair % 876
		batch.Conns = append(batch.Conns, event.Conn{
			TS:      base.Add(time.Duration(i) * 36 * time.Hour / rows),
			SrcIP:   netip.AddrFrom4([4]byte{172, 16, byte(src >> 8), byte(src)}),
			DstIP:   netip.AddrFrom4([4]byte{64, 225, byte(dst >> 8), byte(dst)}),
			DstPort: uint16(pair) + 1, Src: event.Source{Sensor: "bench"},
		})
	}
	benchSummarize(b, batch, rows)
}

// benchSummarize times Summarize over batch, of rows conn records.
func benchSummarize(b *testing.B, batch *event.Batch, rows int) {
	b.ReportAllocs()
	b.SetBytes(int64(rows) * 150) // about a Zeek TSV conn line per row
	var values int
	for b.Loop() {
		values = len(Summarize(batch))
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(values), "daily-rows/batch")
}
