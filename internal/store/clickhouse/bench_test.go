package clickhouse

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// BenchmarkEncodeConn measures the RowBinary encoding of conn records,
// the CPU dwell spends per row of an insert.
func BenchmarkEncodeConn(b *testing.B) {
	t0 := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	rows := make([]event.Conn, 10_000)
	for i := range rows {
		rows[i] = event.Conn{TS: t0.Add(time.Duration(i) * time.Millisecond), UID: fmt.Sprintf("C%017d", i),
			SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), SrcPort: uint16(40000 + i%20000),
			DstIP: netip.MustParseAddr("198.51.100.7"), DstPort: 443, Proto: "tcp", Service: "ssl",
			Duration: event.Some(1500 * time.Millisecond), SrcBytes: event.Some[uint64](512), DstBytes: event.Some[uint64](4096),
			ConnState: "SF", LocalSrc: event.Some(true), LocalDst: event.Some(false), MissedBytes: event.Some[uint64](0),
			History: "ShADadFf", SrcPkts: event.Some[uint64](8), SrcIPBytes: event.Some[uint64](900), DstPkts: event.Some[uint64](9),
			DstIPBytes: event.Some[uint64](4600), Src: event.Source{Sensor: "brussels", File: "/nsm/conn.log.gz", Line: int64(i)}}
	}
	enc := newEncoder(store.NewSchema().Conn, layouts(), batchColumn)
	body, err := enc.encode(rows, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := enc.encode(rows, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}
