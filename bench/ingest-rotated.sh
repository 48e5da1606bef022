#!/usr/bin/env bash
# Ingest rate of a rotated log directory against one large file (issue
# #21's "many-files variant"), side by side, runs alternating:
#   dwell ingest FILE           one large conn.log.gz (bench/ingest.sh's input)
#   dwell ingest DAY_DIRS...    the scenario's layout: hourly rotated files of
#                               every Zeek log (conn, dns, http, ssl, x509,
#                               files), one directory a day
# Rates are stored rows per second; the ratio is the rotated directory's
# rate over the single file's. Prints a Markdown table for
# docs/benchmarks.md.
#
# usage: bench/ingest-rotated.sh [DAYS] [RATE] [ROWS]   (default 30 1000000 5000000;
#        the scenario is generated into bench/data when missing, ~4 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30}
rate=${2:-1000000}
rows=${3:-5000000}
runs=${RUNS:-2}
out=bench/out
. bench/lib/timing.sh
input=$(conn_input "$rows")
go build -o "$out/dwell" ./cmd/dwell
scen=$(scenario_input "$days" "$rate")
dirs=("$scen"/20*-*-*)
: >"$out/rot-file.txt"
: >"$out/rot-dirs.txt"
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	rm -f "$out/rot-file.db" "$out/rot-file.db.wal" "$out/rot-dirs.db" "$out/rot-dirs.db.wal"
	secs "$out/dwell" ingest -q --db "$out/rot-file.db" "$input" >>"$out/rot-file.txt"
	secs "$out/dwell" ingest -q --db "$out/rot-dirs.db" "${dirs[@]}" >>"$out/rot-dirs.txt"
done
count() { "$out/dwell" query --db "$1" --format csv "$2" | tail -1; }
fileRows=$(count "$out/rot-file.db" "SELECT count(*) FROM conn")
dirRows=$(zeek_rows "$out/dwell" "$out/rot-dirs.db")
files=$(find "${dirs[@]}" -name '*.log.gz' | wc -l)
f=$(median <"$out/rot-file.txt")
d=$(median <"$out/rot-dirs.txt")
fr=$(div "$fileRows" "$f" "%.0f")
dr=$(div "$dirRows" "$d" "%.0f")
cat <<TABLE
Machine: $(machine); median of $runs alternating runs, each into a new DuckDB store.

| input | rows stored | seconds | rows/s | vs the single file |
|---|---|---|---|---|
| one \`conn.log.gz\` ($input) | $fileRows | $f | $fr | 1.00 |
| rotated directories: $days days, $files hourly files of six logs ($scen) | $dirRows | $d | $dr | $(div "$dr" "$fr" "%.2f") |
TABLE
