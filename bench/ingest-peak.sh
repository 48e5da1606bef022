#!/usr/bin/env bash
# Peak memory of ingest (issue #21's goal: ≤ 1.5 GiB, 1,572,864 KiB, with
# the default settings): /usr/bin/time around `dwell ingest -q` of the
# month of rotated directories (bench/ingest-rotated.sh's input) into a
# new store, RUNS times one after the other. A second binary (DWELL_B)
# alternates with this commit's, for a before/after in one sitting.
# Prints a Markdown table for docs/benchmarks.md.
#
# usage: bench/ingest-peak.sh [DAYS] [RATE]   (default 30 1000000; RUNS=3;
#        DWELL_B=path/to/other/dwell to alternate with it)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30}
rate=${2:-1000000}
runs=${RUNS:-3}
out=bench/out
. bench/lib/timing.sh
mkdir -p bench/data "$out"
go build -o "$out/dwell" ./cmd/dwell
scen=$(scenario_input "$days" "$rate")
dirs=("$scen"/20*-*-*)
bins=("$out/dwell")
[ -n "${DWELL_B:-}" ] && bins+=("$DWELL_B")
echo "Machine: $(machine); $runs runs of each build, alternating, each into a new store; input $scen."
echo
echo "| build | seconds | user CPU | peak (KiB) | rows stored |"
echo "|---|---|---|---|---|"
for i in $(seq "$runs"); do
	for bin in "${bins[@]}"; do
		echo "run $i/$runs: $bin" >&2
		rm -f "$out/peak.db" "$out/peak.db.wal"
		/usr/bin/time -o "$out/peak.time" -f "%e %U %M" "$bin" ingest -q --db "$out/peak.db" "${dirs[@]}"
		read -r s u m <"$out/peak.time"
		rows=$(zeek_rows "$bin" "$out/peak.db")
		echo "| $bin | $s | $u s | $m | $rows |"
	done
done
