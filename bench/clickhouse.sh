#!/usr/bin/env bash
# The 30-day scenario (bench/scenario.sh's data) ingested and hunted on
# DuckDB and on a single-node ClickHouse server started here on loopback,
# side by side on the same machine (issue #7).
#
#   dwell ingest --db FILE.db          conn + dns logs into DuckDB
#   dwell ingest --db clickhouse://    the same into ClickHouse
#   dwell hunt   on each               all network detectors
#
# Prints a Markdown table for docs/benchmarks.md. Needs Debian's
# clickhouse-server and the data of `make bench-scenario` (generated here
# when missing; ~8 GB).
#
# usage: bench/clickhouse.sh [DAYS] [RATE]   (default 30 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30}
rate=${2:-1000000}
out=bench/out
mkdir -p "$out"
. bench/lib/timing.sh
go build -o "$out/dwell" ./cmd/dwell
data=$(scenario_input "$days" "$rate")

. bench/lib/clickhouse-server.sh
url="clickhouse://127.0.0.1:$port/bench"

timed() { # label command... -> appends "label seconds maxrss_kb" to $out/clickhouse.txt
	local label=$1
	shift
	/usr/bin/time -f "$label %e %M" -a -o "$out/clickhouse.txt" "$@" >/dev/null
}
: >"$out/clickhouse.txt"
logs=("$data"/*/conn.*.log.gz "$data"/*/dns.*.log.gz)
rm -f "$out/ch-duck.db" "$out/ch-duck.db.wal"
timed ingest-duckdb "$out/dwell" ingest -q --db "$out/ch-duck.db" "${logs[@]}"
timed hunt-duckdb "$out/dwell" hunt --db "$out/ch-duck.db" --findings --format json
"$out/dwell" hunt --db "$out/ch-duck.db" --findings --format json >"$out/ch-duck.json"
timed ingest-clickhouse "$out/dwell" ingest -q --db "$url" "${logs[@]}"
chsize=$(du -sh "$ch/data" | cut -f1)
timed hunt-clickhouse "$out/dwell" hunt --db "$url" --findings --format json
"$out/dwell" hunt --db "$url" --findings --format json >"$out/ch-ch.json"
same=$(python3 - "$out/ch-duck.json" "$out/ch-ch.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["findings"] for p in sys.argv[1:])
key = lambda f: (f["detector"], f.get("sensor"), f.get("src"), f.get("dst"), f.get("domain"), f["summary"])
ka, kb = {key(f): f["score"] for f in a}, {key(f): f["score"] for f in b}
diff = sum(1 for k in ka.keys() | kb.keys() if k not in ka or k not in kb or abs(ka[k] - kb[k]) > 1e-9)
print(f"{len(a)} findings on DuckDB, {len(b)} on ClickHouse, {diff} different")
PY
)

conns=$(python3 -c "import json; print(json.load(open('$data/truth.json'))['counts']['conn'])")
dns=$(python3 -c "import json; print(json.load(open('$data/truth.json'))['counts']['dns'])")
get() { awk -v l="$1" -v f="$2" '$1 == l {print $f}' "$out/clickhouse.txt"; }
rate_of() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.0f", n / s}'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cat <<TABLE
Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3); ClickHouse $(curl -s "http://127.0.0.1:$port/?query=SELECT%20version()") on the same machine (loopback).
Data: \`dwell scenario --days $days --rate $rate\`, conn and dns logs: $((conns + dns)) rows. Findings: $same.

| store | ingest s | ingest rows/s | ingest peak RSS (dwell) | hunt s | hunt peak RSS (dwell) |
|---|---|---|---|---|---|
| DuckDB (embedded) | $(get ingest-duckdb 2) | $(rate_of "$((conns + dns))" "$(get ingest-duckdb 2)") | $(($(get ingest-duckdb 3) / 1024)) MB | $(get hunt-duckdb 2) | $(($(get hunt-duckdb 3) / 1024)) MB |
| ClickHouse, one server ($chsize on disk) | $(get ingest-clickhouse 2) | $(rate_of "$((conns + dns))" "$(get ingest-clickhouse 2)") | $(($(get ingest-clickhouse 3) / 1024)) MB | $(get hunt-clickhouse 2) | $(($(get hunt-clickhouse 3) / 1024)) MB |
TABLE
