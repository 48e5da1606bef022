package duckdb_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// BenchmarkWriteConn measures the store's write path alone: batches of one
// row group of realistic conn records into a DuckDB file.
func BenchmarkWriteConn(b *testing.B) {
	const rows = 122880
	batch := &event.Batch{}
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	states := []string{"SF", "S0", "REJ", "RSTO", "SH"}
	for i := range rows {
		batch.Conns = append(batch.Conns, event.Conn{
			TS: base.Add(time.Duration(i) * 7 * time.Millisecond), UID: fmt.Sprintf("C%017x", i*2654435761),
			SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), SrcPort: uint16(1024 + i%60000),
			DstIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 251)}), DstPort: 443, Proto: "tcp", Service: "ssl",
			Duration: event.Some(time.Duration(i%5000) * time.Millisecond), SrcBytes: event.Some(uint64(i % 4000)),
			DstBytes: event.Some(uint64(i % 90000)), ConnState: states[i%len(states)], LocalSrc: event.Some(true),
			LocalDst: event.Some(false), MissedBytes: event.Some[uint64](0), History: "ShADadFf",
			SrcPkts: event.Some(uint64(i % 20)), SrcIPBytes: event.Some(uint64(i % 5000)), DstPkts: event.Some(uint64(i % 30)),
			DstIPBytes: event.Some(uint64(i % 95000)), Src: event.Source{Sensor: "bench", File: "/logs/conn.log.gz", Line: int64(i + 9)},
		})
	}
	s, err := duckdb.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	b.ReportAllocs()
	b.SetBytes(rows * 150) // about a Zeek TSV conn line per row
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
