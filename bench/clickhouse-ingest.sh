#!/usr/bin/env bash
# ClickHouse ingest, side by side with ClickHouse's own loader (issue #21):
#   clickhouse-client INSERT ... FORMAT TSV   the decompressed Zeek conn.log,
#                                             header lines removed, into a
#                                             table of its 21 fields as String
#                                             (the cheapest load: no parsing
#                                             of times, addresses or numbers)
#   dwell ingest --db clickhouse://           the .log.gz as it is: parsed,
#                                             checked, typed, with provenance
# into one clickhouse-server started here on loopback (bench/lib), runs
# alternating, RUNS times each, tables dropped between runs. Prints a
# Markdown table for docs/benchmarks.md.
#
# usage: bench/clickhouse-ingest.sh [ROWS]   (default 5000000; input cached in bench/data)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-5000000}
runs=${RUNS:-3}
out=bench/out
. bench/lib/timing.sh
input=$(conn_input "$rows")
tsv=$(conn_tsv "$rows")
go build -o "$out/dwell" ./cmd/dwell

. bench/lib/clickhouse-server.sh
cols=""
for f in ts uid orig_h orig_p resp_h resp_p proto service duration orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes \
	history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents; do
	cols="$cols${cols:+, }$f String"
done
: >"$out/ch-client.txt"
: >"$out/ch-dwell.txt"
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	q "DROP DATABASE IF EXISTS peer"
	q "CREATE DATABASE peer"
	q "CREATE TABLE peer.conn ($cols) ENGINE = MergeTree ORDER BY ts"
	secs sh -c "'$client' --host 127.0.0.1 --port $((port + 1)) --query 'INSERT INTO peer.conn FORMAT TSV' <'$tsv'" >>"$out/ch-client.txt"
	q "DROP DATABASE IF EXISTS bench"
	secs "$out/dwell" ingest -q --db "clickhouse://127.0.0.1:$port/bench" "$input" >>"$out/ch-dwell.txt"
done
peer=$(q "SELECT count() FROM peer.conn")
stored=$(q "SELECT count() FROM bench.conn")
c=$(median <"$out/ch-client.txt")
d=$(median <"$out/ch-dwell.txt")
rate() { div "$rows" "$1" "%.0f"; }
cat <<TABLE
Machine: $(machine); ClickHouse $(q "SELECT version()") on the same machine (loopback, one server). Input $input ($rows rows; $peer loaded by the client, $stored stored by dwell); median of $runs alternating runs.

| command | seconds | rows/s | vs clickhouse-client |
|---|---|---|---|
| \`clickhouse-client INSERT ... FORMAT TSV\` (decompressed, 21 String columns) | $c | $(rate "$c") | 1.00 |
| \`dwell ingest --db clickhouse://\` (.log.gz) | $d | $(rate "$d") | $(div "$d" "$c" "%.2f") |
TABLE
