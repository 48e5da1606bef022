package duckdb_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
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

// The retro-hunt side by side with its peer, on a store bench/retrohunt.sh
// built (DWELL_BENCH_DB) and the addresses among its indicators
// (DWELL_BENCH_IPS, one per line): MatchIndicators over all history, and
// one scan of conn for those addresses.

func benchStore(b *testing.B) *duckdb.Store {
	b.Helper()
	path := os.Getenv("DWELL_BENCH_DB")
	if path == "" {
		b.Skip("DWELL_BENCH_DB names no store (bench/retrohunt.sh sets it)")
	}
	s, err := duckdb.Open(context.Background(), path, duckdb.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func BenchmarkRetrohuntDB(b *testing.B) {
	s := benchStore(b)
	n := 0
	for b.Loop() {
		n = 0
		if err := s.MatchIndicators(context.Background(), store.Window{}, func(*event.Sighting) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "sightings")
}

func BenchmarkConnScanDB(b *testing.B) {
	s := benchStore(b)
	ips, err := os.ReadFile(os.Getenv("DWELL_BENCH_IPS"))
	if err != nil {
		b.Skip("DWELL_BENCH_IPS names no address list")
	}
	list := strings.Join(strings.Fields(string(ips)), ",")
	q := `WITH l AS (SELECT unnest(string_split('` + list + `', ',')) AS ip)
		SELECT ip, count(*) AS n, min(ts), max(ts) FROM (
			SELECT id_orig_h AS ip, ts FROM conn WHERE id_orig_h IN (SELECT ip FROM l)
			UNION ALL SELECT id_resp_h, ts FROM conn WHERE id_resp_h IN (SELECT ip FROM l)) GROUP BY ip ORDER BY ip`
	n := 0
	for b.Loop() {
		rows, err := s.Query(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for rows.Next() {
			n++
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "addresses-seen")
}
