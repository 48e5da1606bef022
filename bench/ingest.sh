#!/usr/bin/env bash
# Ingest throughput, measured side by side on one file (TARGETS.md):
#   gzip -dc FILE >/dev/null        the decompression floor
#   dwell ingest FILE               Zeek TSV .log.gz -> DuckDB store, all checks
#   duckdbload FILE                 DuckDB's own CSV bulk load of the same file
# Runs alternate, RUNS times each; the medians and ratios are printed as a
# Markdown table for docs/benchmarks.md.
#
# usage: bench/ingest.sh [ROWS]     (default 10000000; input cached in bench/data)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000000}
runs=${RUNS:-3}
out=bench/out
. bench/lib/timing.sh
input=$(conn_input "$rows")

go build -o "$out/dwell" ./cmd/dwell
go build -o "$out/duckdbload" ./bench/duckdbload


: >"$out/gzip.txt"; : >"$out/dwell.txt"; : >"$out/duckdb.txt"
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	secs sh -c "gzip -dc '$input' >/dev/null" >>"$out/gzip.txt"
	rm -f "$out/dwell.db" "$out/dwell.db.wal"
	secs "$out/dwell" ingest -q --db "$out/dwell.db" "$input" >>"$out/dwell.txt"
	secs "$out/duckdbload" -db "$out/duckdb-load.db" "$input" >>"$out/duckdb.txt"
done
stored=$("$out/dwell" query --db "$out/dwell.db" --format csv "SELECT count(*) FROM conn" | tail -1)
g=$(median <"$out/gzip.txt"); d=$(median <"$out/dwell.txt"); k=$(median <"$out/duckdb.txt")
rate() { div "$rows" "$1" "%.0f"; }
cat <<TABLE
Machine: $(machine); input $input ($(du -hL "$input" | cut -f1), $rows rows, $stored stored); median of $runs alternating runs.

| command | seconds | rows/s | vs gzip -dc |
|---|---|---|---|
| \`gzip -dc FILE >/dev/null\` | $g | $(rate "$g") | 1.00 |
| \`dwell ingest FILE\` | $d | $(rate "$d") | $(div "$d" "$g" "%.2f") |
| DuckDB \`read_csv\` bulk load (bench/duckdbload) | $k | $(rate "$k") | $(div "$k" "$g" "%.2f") |
TABLE
