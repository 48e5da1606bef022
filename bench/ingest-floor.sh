#!/usr/bin/env bash
# The floor under dwell's ingest, by table layout (issue #21): DuckDB's own
# INSERTs and COMMITs of the same conn rows in dwell's transactions of
# 122,880 rows, with no Go hand-off (bench/duckdbfloor), for dwell's conn
# layout and more compact ones; beside, in the same run, dwell ingest and
# DuckDB's read_csv bulk load of the same file (the peers of
# bench/ingest.sh). Then the cost of formatting integer addresses back to
# text in queries (duckdbfloor -view).
#
# usage: bench/ingest-floor.sh [ROWS]     (default 5000000; RUNS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-5000000}
runs=${RUNS:-2}
out=bench/out
. bench/lib/timing.sh
input=$(conn_input "$rows")
go build -o "$out/dwell" ./cmd/dwell
go build -o "$out/duckdbload" ./bench/duckdbload
go build -o "$out/duckdbfloor" ./bench/duckdbfloor
echo "Machine: $(machine); input $input ($rows rows); $runs runs, alternating"
for i in $(seq "$runs"); do
	echo "== run $i/$runs"
	for layout in dwell uid nosrc compact1 compact2; do
		"$out/duckdbfloor" -db "$out/floor.db" -layout "$layout" "$input"
	done
	rm -f "$out/dwell.db" "$out/dwell.db.wal"
	echo "dwell ingest: $(secs "$out/dwell" ingest -q --db "$out/dwell.db" "$input") s"
	"$out/duckdbload" -db "$out/duckdb-load.db" "$input"
done
rm -f "$out/floor.db" "$out/floor.db.wal"
echo "== queries over text and integer addresses (best of 3)"
"$out/duckdbfloor" -view -db "$out/floor.db" "$input"
rm -f "$out/floor.db" "$out/floor.db.wal"
