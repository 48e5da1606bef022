#!/usr/bin/env bash
# EVTX reading beside libevtx (Debian libevtx-utils: evtxexport), on every
# .evtx file of the shared datasets (540 files, 102 MB):
#
#   1. agreement: bench/evtxagree compares, record by record, what dwell
#      and evtxexport read (event id, time, computer, channel, every data
#      value);
#   2. speed inside the process: BenchmarkSynthetic (full chunks of logon
#      events) and BenchmarkDatasets (the 540 files), one goroutine;
#   3. speed as whole processes: evtxexport -f xml per file, against
#      bench/evtxread writing one JSON line per record, one file at a time.
#
# usage: bench/evtx.sh [DATASETS_DIR]   (default ../shared/datasets)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets}
command -v evtxexport >/dev/null || { echo "evtxexport not found: apt-get install libevtx-utils" >&2; exit 1; }
out=bench/out
mkdir -p "$out"
go build -o "$out/evtxagree" ./bench/evtxagree
go build -o "$out/evtxread" ./bench/evtxread
list=$(mktemp)
trap 'rm -f "$list"' EXIT
find "$data" -name '*.evtx' | sort >"$list"
echo "== agreement ($(wc -l <"$list") files)"
"$out/evtxagree" "$data" | head -8
echo "== Go benchmarks"
DWELL_DATASETS="$data" go test -run '^$' -bench 'Synthetic|Datasets$' -benchmem -count 3 ./internal/ingest/evtx | grep Benchmark
for _ in 1 2 3; do
	echo "== evtxexport (peer), every file"
	/usr/bin/time -f '%e s wall, %U s user, %M KiB peak' sh -c "while IFS= read -r f; do evtxexport -f xml \"\$f\"; done <'$list' >/dev/null 2>&1"
	echo "== dwell evtxread, every file"
	/usr/bin/time -f '%e s wall, %U s user, %M KiB peak' sh -c "tr '\n' '\0' <'$list' | xargs -0 '$out/evtxread' -j 1 >/dev/null 2>&1"
done
