#!/usr/bin/env bash
# Packet-capture analysis beside its peers, on one large capture built from
# every Ethernet capture of the shared datasets (bench/pcapbuild: the files
# repeated, shifted in time, to SIZE, default 1GiB):
#
#   1. tshark (Debian's) writing comparable fields per packet (addresses,
#      ports, TCP flags and length, DNS names and answers, HTTP method,
#      URI, host and status, TLS SNI and cipher) against bench/pcapread
#      writing dwell's records (conn, dns, http, ssl, x509, files), both to
#      /dev/null, paired by farm-bench;
#   2. gopacket's DecodingLayerParser decoding every packet's layers
#      (bench/pcappeer), the raw decode rate, beside dwell's own decoding
#      of the same packets alone (BenchmarkDecode);
#   3. dwell ingest of the capture into a new DuckDB store, peak RSS.
#
# usage: bench/pcap.sh [SIZE] [DATASETS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
data=${2:-../shared/datasets}
command -v tshark >/dev/null || { echo "tshark not found: apt-get install tshark" >&2; exit 1; }
out=bench/out
mkdir -p "$out"
cap="$out/big-$size.pcap"
[ -s "$cap" ] || go run ./bench/pcapbuild -o "$cap" -size "$size" "$data"
ls -l "$cap"
go build -o "$out/pcapread" ./bench/pcapread
go build -o "$out/dwell" ./cmd/dwell
(cd bench/pcappeer && go build -o "../out/pcappeer" .)
fields="-e frame.number -e frame.time_epoch -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport -e tcp.flags -e tcp.len -e dns.qry.name -e dns.a -e http.request.method -e http.request.uri -e http.host -e http.response.code -e tls.handshake.extensions_server_name -e tls.handshake.ciphersuite"
echo "== dwell pcapread (A) against tshark -T fields (B)"
farm-bench -n 3 --warmup 0 --timeout 3000 --vs "sh -c 'exec tshark -r $cap -T fields $fields >/dev/null 2>&1'" -- \
	sh -c "exec $out/pcapread $cap >/dev/null 2>&1"
echo "== gopacket DecodingLayerParser (raw decode, the capture in memory)"
for _ in 1 2 3; do "$out/pcappeer" "$cap"; done
echo "== dwell's own decoding alone (BenchmarkDecode, the capture in memory)"
DWELL_BENCH_PCAP="$PWD/$cap" go test ./internal/ingest/pcap -run '^$' -bench '^BenchmarkDecode$' -benchtime 3x -count 3
echo "== dwell pcapread, records only counted"
for _ in 1 2 3; do /usr/bin/time -f '%e s wall, %M KiB peak' "$out/pcapread" -count "$cap"; done
echo "== dwell ingest into DuckDB"
db=$(mktemp -d)/bench.db
/usr/bin/time -f '%e s wall, %M KiB peak' "$out/dwell" ingest --db "$db" "$cap"
rm -rf "$(dirname "$db")"
