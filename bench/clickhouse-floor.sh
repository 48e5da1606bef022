#!/usr/bin/env bash
# ClickHouse's own storage work for dwell's conn rows, by table layout
# (issue #21, decision 0018): dwell ingests the conn file of
# bench/ingest.sh into a clickhouse-server started here on loopback; its
# rows are copied into Memory tables (not timed) in dwell's layout and in a
# compact one (addresses as integers, the uid as 16 bytes, codes for proto
# and state, no Nullable, no sensor and file on each row); then each is
# inserted server-side (INSERT ... SELECT, no client parsing) into a new
# MergeTree table ordered and partitioned as dwell's conn, once per dwell
# batch and in one statement; the compact rows also into a table ordered
# by time only (layout compact_ts), and ordered by time without the
# partitions by day (compact_flat), as the peer's is. Beside it, in the same run, the peer of
# bench/clickhouse-ingest.sh: clickhouse-client loading the decompressed
# file into 21 String columns.
#
# usage: bench/clickhouse-floor.sh [ROWS]     (default 5000000; RUNS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-5000000}
runs=${RUNS:-2}
out=bench/out
. bench/lib/timing.sh
input=$(conn_input "$rows")
tsv=$(conn_tsv "$rows")
go build -o "$out/dwell" ./cmd/dwell
. bench/lib/clickhouse-server.sh

echo "Machine: $(machine); ClickHouse $(q "SELECT version()"); input $input ($rows rows); $runs runs"
echo "dwell ingest --db clickhouse:// (.log.gz): $(secs "$out/dwell" ingest -q --db "clickhouse://127.0.0.1:$port/bench" "$input") s"

compact="ts Int64, uid FixedString(16), orig_hi UInt64, orig_lo UInt64, id_orig_p UInt16, resp_hi UInt64, resp_lo UInt64,
	id_resp_p UInt16, proto UInt8, service String, duration Float64, orig_bytes UInt64, resp_bytes UInt64, conn_state UInt8,
	local_orig UInt8, local_resp UInt8, missed_bytes UInt64, history String, orig_pkts UInt64, orig_ip_bytes UInt64,
	resp_pkts UInt64, resp_ip_bytes UInt64, tunnel_parents Array(String), community_id String, source_line UInt64,
	dwell_batch UInt64"
q "DROP DATABASE IF EXISTS fl"
q "CREATE DATABASE fl"
q "CREATE TABLE fl.stage_dwell AS bench.conn ENGINE = Memory"
q "INSERT INTO fl.stage_dwell SELECT * FROM bench.conn"
q "CREATE TABLE fl.stage_compact ($compact) ENGINE = Memory"
# Hashes of the text stand in for the integers: as many distinct values.
q "INSERT INTO fl.stage_compact SELECT ts, reinterpretAsFixedString(cityHash64(uid)), 0, cityHash64(id_orig_h) % 4294967296,
	ifNull(id_orig_p, 0), 0, cityHash64(id_resp_h) % 4294967296, ifNull(id_resp_p, 0), cityHash64(proto) % 3, ifNull(service, ''),
	ifNull(duration, 0), ifNull(orig_bytes, 0), ifNull(resp_bytes, 0), cityHash64(conn_state) % 13, ifNull(local_orig, 0),
	ifNull(local_resp, 0), ifNull(missed_bytes, 0), ifNull(history, ''), ifNull(orig_pkts, 0), ifNull(orig_ip_bytes, 0),
	ifNull(resp_pkts, 0), ifNull(resp_ip_bytes, 0), tunnel_parents, ifNull(community_id, ''), ifNull(source_line, 0), dwell_batch
	FROM bench.conn"
batches=$(q "SELECT arrayStringConcat(groupArray(toString(b)), ' ') FROM (SELECT DISTINCT dwell_batch AS b FROM fl.stage_dwell ORDER BY b)")
echo "dwell's batches: $(wc -w <<<"$batches"); each layout inserted once per batch, then in one statement"
mktable() {
	q "DROP TABLE IF EXISTS fl.t"
	if [ "$1" = dwell ]; then
		q "CREATE TABLE fl.t AS bench.conn"
	elif [ "$1" = compact_ts ]; then
		q "CREATE TABLE fl.t ($compact) ENGINE = MergeTree PARTITION BY intDiv(ts, 86400000000) ORDER BY ts"
	elif [ "$1" = compact_flat ]; then
		q "CREATE TABLE fl.t ($compact) ENGINE = MergeTree ORDER BY ts"
	else
		q "CREATE TABLE fl.t ($compact) ENGINE = MergeTree PARTITION BY intDiv(ts, 86400000000) ORDER BY (orig_hi, orig_lo, resp_hi, resp_lo, ts)"
	fi
}
stage() { [ "$1" = dwell ] && echo dwell || echo compact; }
perbatch() { for b in $batches; do q "INSERT INTO fl.t SELECT * FROM fl.stage_$(stage "$1") WHERE dwell_batch = $b"; done; }
calls() { for _ in $batches; do q "SELECT 1 FORMAT Null"; done; }
cols=""
for f in ts uid orig_h orig_p resp_h resp_p proto service duration orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes \
	history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents; do
	cols="$cols${cols:+, }$f String"
done
for i in $(seq "$runs"); do
	for layout in dwell compact compact_ts compact_flat; do
		mktable "$layout"
		a=$(secs perbatch "$layout")
		mktable "$layout"
		b=$(secs q "INSERT INTO fl.t SELECT * FROM fl.stage_$(stage "$layout")")
		echo "run $i, layout $layout: per batch $a s, one statement $b s"
	done
	q "DROP TABLE IF EXISTS fl.peer"
	q "CREATE TABLE fl.peer ($cols) ENGINE = MergeTree ORDER BY ts"
	echo "run $i, clickhouse-client INSERT ... FORMAT TSV: $(secs sh -c "'$client' --host 127.0.0.1 --port $((port + 1)) --query 'INSERT INTO fl.peer FORMAT TSV' <'$tsv'") s"
done
echo "the client's start-up, as many times as there are batches: $(secs calls) s"
