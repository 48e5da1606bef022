#!/usr/bin/env bash
# Scenario generation, ingest and hunt at the scale TARGETS.md names:
# 30 days x 1 M conn/day (plus ~0.2 M dns/day) from `dwell scenario`.
#
#   dwell scenario --days 30 --rate 1000000    generation (issue #4: >= 1 M conn rows/s)
#   gzip -dc conn logs | gzip -1               the same conn bytes through gzip -1 alone (peer)
#   dwell ingest conn + dns logs               the hunt's peer: ingesting the same data
#   dwell hunt                                 all network detectors (target <= 60 s, <= 2 GiB RSS)
#
# Prints a Markdown table for docs/benchmarks.md. Needs ~8 GB of disk.
#
# usage: bench/scenario.sh [DAYS] [RATE]   (default 30 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30}
rate=${2:-1000000}
data=bench/data/scenario-${days}d-${rate}
out=bench/out
mkdir -p "$out"
go build -o "$out/dwell" ./cmd/dwell

timed() { # label command... -> appends "label seconds maxrss_kb" to $out/scenario.txt
	local label=$1
	shift
	/usr/bin/time -f "$label %e %M" -a -o "$out/scenario.txt" "$@" >/dev/null
}
: >"$out/scenario.txt"

rm -rf "$data"
timed generate "$out/dwell" scenario -q --out "$data" --days "$days" --rate "$rate"
conns=$(python3 -c "import json,sys; print(json.load(open('$data/truth.json'))['counts']['conn'])")
dns=$(python3 -c "import json,sys; print(json.load(open('$data/truth.json'))['counts']['dns'])")
timed gzip1 sh -c "cat $data/*/conn.*.log.gz | gzip -dc | gzip -1 >/dev/null"

rm -f "$out/hunt.db" "$out/hunt.db.wal"
timed ingest "$out/dwell" ingest -q --db "$out/hunt.db" "$data"/*/conn.*.log.gz "$data"/*/dns.*.log.gz
timed hunt "$out/dwell" hunt --db "$out/hunt.db" --format json

get() { awk -v l="$1" -v f="$2" '$1 == l {print $f}' "$out/scenario.txt"; }
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cat <<TABLE
Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3).
Data: \`dwell scenario --days $days --rate $rate\`: $conns conn rows, $dns dns rows ($(du -sh "$data" | cut -f1) on disk).

| step | seconds | rate | peak RSS |
|---|---|---|---|
| \`dwell scenario\` (all logs, flows, host events) | $(get generate 2) | $(rate_of "$conns" "$(get generate 2)") conn rows/s | $(($(get generate 3) / 1024)) MB |
| conn logs through \`gzip -dc \| gzip -1\` (peer) | $(get gzip1 2) | $(rate_of "$conns" "$(get gzip1 2)") conn rows/s | — |
| \`dwell ingest\` conn + dns | $(get ingest 2) | $(rate_of "$((conns + dns))" "$(get ingest 2)") rows/s | $(($(get ingest 3) / 1024)) MB |
| \`dwell hunt\` (all detectors) | $(get hunt 2) | $(rate_of "$((conns + dns))" "$(get hunt 2)") rows/s | $(($(get hunt 3) / 1024)) MB |
TABLE
