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
	batch := connBatch()
	rows := len(batch.Conns)
	s, err := duckdb.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	b.ReportAllocs()
	b.SetBytes(int64(rows) * 150) // about a Zeek TSV conn line per row
	for b.Loop() {
		if err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// connBatch is one row group of realistic conn records.
func connBatch() *event.Batch {
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
	return batch
}

// BenchmarkWriteFlow measures the write path of flow records, as the
// live collector writes them: batches of 50,000 IPFIX records.
func BenchmarkWriteFlow(b *testing.B) {
	const rows = 50_000
	batch := &event.Batch{}
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	exporter := netip.MustParseAddr("10.20.0.1")
	for i := range rows {
		ts := base.Add(time.Duration(i) * time.Millisecond)
		batch.Flows = append(batch.Flows, event.Flow{TS: ts, End: ts.Add(55 * time.Second),
			SrcIP: netip.AddrFrom4([4]byte{byte(1 + i%200), byte(i >> 8), byte(i), 7}), SrcPort: uint16(1024 + i%60000),
			DstIP: netip.AddrFrom4([4]byte{10, 20, 0, byte(i % 251)}), DstPort: 443, Proto: "tcp", TCPFlags: 0x02,
			Packets: uint64(40_000 + i), Bytes: uint64(2_400_000 + i), Exporter: exporter, Export: event.ExportIPFIX,
			Src: event.Source{Sensor: "edge", File: "udp:10.20.0.1", Line: int64(i / 28)}})
	}
	s, err := duckdb.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	b.ReportAllocs()
	b.SetBytes(rows * 47) // an IPFIX record of the scenario's template
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

// BenchmarkFlowSessions measures the stitching of flow records into
// sessions (store.FlowSessions) on 100,000 records: "stitch" asks for a
// new window end each time, so the sessions are stitched anew; "kept"
// asks again for the same one, as a hunt's detectors do after the first.
// Each iteration reads Pairs over the sessions.
func BenchmarkFlowSessions(b *testing.B) {
	const rows = 100_000
	ctx := context.Background()
	batch := &event.Batch{}
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	exporter := netip.MustParseAddr("10.0.0.1")
	for i := range rows {
		// 2,000 hosts, 50 records each: a session of a few records per
		// (host, server, port), cut by the active timeout or by silence.
		host, n := i%2000, i/2000
		ts := base.Add(time.Duration(n)*45*time.Second + time.Duration(host)*time.Millisecond)
		batch.Flows = append(batch.Flows, event.Flow{TS: ts, End: ts.Add(30 * time.Second),
			SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(host >> 8), byte(host)}), SrcPort: uint16(40000 + n/5),
			DstIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(host % 97)}), DstPort: 443, Proto: "tcp", TCPFlags: 0x18,
			Packets: 20, Bytes: 9000, Exporter: exporter, Export: event.ExportIPFIX,
			Src: event.Source{Sensor: "bench", File: "/flows/bench.pcap", Line: int64(i + 1)}})
	}
	s, err := duckdb.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Write(ctx, batch); err != nil {
		b.Fatal(err)
	}
	end := base.Add(24 * time.Hour)
	for _, kept := range []bool{false, true} {
		b.Run(map[bool]string{false: "stitch", true: "kept"}[kept], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(rows * 60) // about an IPFIX record per flow
			i, pairs := 0, 0
			for b.Loop() {
				w := store.Window{Until: end, Conns: store.FlowSessions}
				if !kept {
					w.Until = end.Add(time.Duration(i) * time.Microsecond)
				}
				i++
				pairs = 0
				if err := s.Pairs(ctx, w, store.PairFilter{}, func(*store.PairStat) error { pairs++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(pairs), "pairs")
		})
	}
}

// BenchmarkWriteConnTwoWriters measures whether DuckDB overlaps one
// transaction's commit with another's insert: two Stores of one file
// write at once (each its own input; an op is a batch each), beside one
// Store writing the same two batches in turn, with one DuckDB thread and
// with one per core.
func BenchmarkWriteConnTwoWriters(b *testing.B) {
	batch := connBatch()
	rows := len(batch.Conns)
	for _, threads := range []int{1, 0} {
		for _, writers := range []int{1, 2} {
			b.Run(fmt.Sprintf("threads=%d/writers=%d", threads, writers), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "bench.db")
				stores := make([]*duckdb.Store, writers)
				batches := [2]*event.Batch{{Conns: batch.Conns}, {Conns: batch.Conns}}
				for i := range stores {
					s, err := duckdb.Open(context.Background(), path, duckdb.Options{Threads: threads})
					if err != nil {
						b.Fatal(err)
					}
					defer func() { _ = s.Close() }()
					stores[i] = s
				}
				b.ReportAllocs()
				b.SetBytes(2 * int64(rows) * 150)
				op := 0
				for b.Loop() {
					op++
					errs := make(chan error, 2)
					for k := range batches {
						batches[k].Progress = []event.Progress{{ID: event.InputID(fmt.Sprint("in", k)), HeadLen: 4096, Path: fmt.Sprint("/logs/", k),
							Offset: int64(op), Line: int64(op), Rows: int64(op)}}
						if writers == 1 {
							errs <- stores[0].Write(context.Background(), batches[k])
							continue
						}
						go func() { errs <- stores[k].Write(context.Background(), batches[k]) }()
					}
					for range batches {
						if err := <-errs; err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(2*float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
