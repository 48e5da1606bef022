#!/usr/bin/env bash
# Splits the rotated directory's shortfall (bench/ingest-rotated.sh) into
# its two causes, side by side, runs alternating:
#   rotated   dwell ingest DAY_DIRS...    DAYS days of the scenario as Zeek
#                                          rotates them (hourly files of six logs)
#   joined    dwell ingest TYPE.log.gz... the same records, one file a log
#                                          type (each type's hours joined
#                                          under one header)
# then each joined type alone, once. Rotated over joined is what the
# files cost; a type's rate over conn's is what its rows cost. Prints a
# Markdown table for docs/benchmarks.md.
#
# usage: bench/ingest-joined.sh [DAYS] [RATE]   (default 3 1000000: the
#        first DAYS days of the scenario of bench/ingest-rotated.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-3}
rate=${2:-1000000}
runs=${RUNS:-2}
out=bench/out
. bench/lib/timing.sh
go build -o "$out/dwell" ./cmd/dwell
scen=$(scenario_input 30 "$rate")
mapfile -t dirs < <(printf '%s\n' "$scen"/20*-*-* | head -n "$days")
types=(conn dns http ssl x509 files)
joined="$out/joined-${days}d"
if [ ! -s "$joined/files.log.gz" ]; then
	mkdir -p "$joined"
	for t in "${types[@]}"; do
		mapfile -t fs < <(for d in "${dirs[@]}"; do ls "$d"/"$t".*.log.gz; done)
		{
			gzip -dc "${fs[0]}" | grep '^#' | grep -v '^#close'
			for f in "${fs[@]}"; do gzip -dc "$f" | grep -v '^#'; done
			gzip -dc "${fs[-1]}" | grep '^#close'
		} | gzip -1 >"$joined/$t.log.gz"
	done
fi
count() { "$out/dwell" query --db "$1" --format csv "$2" | tail -1; }
: >"$out/join-rot.txt"
: >"$out/join-all.txt"
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	rm -f "$out"/join-*.db "$out"/join-*.db.wal
	secs "$out/dwell" ingest -q --db "$out/join-rot.db" "${dirs[@]}" >>"$out/join-rot.txt"
	secs "$out/dwell" ingest -q --db "$out/join-all.db" "$joined"/*.log.gz >>"$out/join-all.txt"
done
rotRows=$(zeek_rows "$out/dwell" "$out/join-rot.db")
allRows=$(zeek_rows "$out/dwell" "$out/join-all.db")
[ "$rotRows" = "$allRows" ] || { echo "rotated stored $rotRows rows, joined $allRows" >&2; exit 1; }
r=$(median <"$out/join-rot.txt")
j=$(median <"$out/join-all.txt")
files=$(find "${dirs[@]}" -name '*.log.gz' | wc -l)
echo "Machine: $(machine); median of $runs alternating runs, each into a new DuckDB store."
echo
echo "| input | rows stored | seconds | rows/s | vs joined |"
echo "|---|---|---|---|---|"
echo "| rotated: $days days, $files hourly files | $rotRows | $r | $(div "$rotRows" "$r" "%.0f") | $(div "$j" "$r" "%.2f") |"
echo "| joined: the same records, 6 files | $allRows | $j | $(div "$allRows" "$j" "%.0f") | 1.00 |"
echo
echo "Each type joined, alone, once:"
echo
echo "| log | rows | seconds | rows/s | vs conn |"
echo "|---|---|---|---|---|"
connRate=""
for t in "${types[@]}"; do
	rm -f "$out/join-one.db" "$out/join-one.db.wal"
	s=$(secs "$out/dwell" ingest -q --db "$out/join-one.db" "$joined/$t.log.gz")
	n=$(count "$out/join-one.db" "SELECT count(*) FROM $t")
	rr=$(div "$n" "$s" "%.0f")
	[ -n "$connRate" ] || connRate=$rr
	echo "| $t | $n | $s | $rr | $(div "$rr" "$connRate" "%.2f") |"
done
