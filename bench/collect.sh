#!/usr/bin/env bash
# Flow collector rate over loopback, side by side (issue 20, TARGETS.md):
#
#   dwell serve   its collector (2 sockets, SO_REUSEPORT, 16 MiB buffers),
#                 decoding, the streaming DDoS detector and storage in DuckDB
#   goflow2       v2.2.6's collector (cmd/goflow2, 2 sockets), its records
#                 encoded (-format bin) to /dev/null
#   nfcapd        Debian's nfdump 1.7 collector (-B 16 MiB), writing its files
#
# Each gets the same offered load from bench/flowblast: the scenario's
# IPFIX export (1,330-byte datagrams of 28 flows with their template),
# RATE datagrams a second for SECS seconds, one sender. After each run the
# datagrams lost are read from the kernel (/proc/net/udp drops of the
# port) and from the tool where it counts them (dwell's
# dwell_collect_dropped_total, beside the flows that waited in its disk
# spool; goflow2's goflow2_flow_dropped_packets_total
# and its count of decoded messages). A rate is
# taken "without drop" when the kernel dropped nothing and the tool
# received and decoded every datagram.
#
# usage: bench/collect.sh [RATES] [SECS]    (default "25000 50000 100000 200000" 5)
set -euo pipefail
cd "$(dirname "$0")/.."
rates=${1:-"25000 50000 100000 200000"}
secs=${2:-5}
out=bench/out
mkdir -p "$out"
command -v nfcapd >/dev/null || { echo "nfcapd not found: apt-get install nfdump" >&2; exit 1; }
go build -o "$out/dwell" ./cmd/dwell
go build -o "$out/flowblast" ./bench/flowblast
(cd bench/goflowpeer && go build -o ../out/goflow2 github.com/netsampler/goflow2/v2/cmd/goflow2)  # a tool of that module (go.mod)
data=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$data"; }
trap cleanup EXIT
"$out/dwell" scenario -q --out "$data/scenario" --days 4 --hosts 30 --rate 2000
pcap="$data/scenario/flows/ddos.pcap"
port=29055
api=29078

waitport() { # port: until something listens on it
	local hex
	hex=$(printf ':%04X ' "$1")
	for _ in $(seq 100); do grep -q "$hex" /proc/net/udp && return 0; sleep 0.1; done
	echo "nothing listens on udp $1" >&2; return 1
}
metric() { # url name: the metric's value (summed over labels)
	curl -s "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {printf "%d", s}'
}

echo "| collector | offered datagrams/s | sent | kernel drops | tool's own loss | received and decoded |"
echo "|---|---|---|---|---|---|"
for rate in $rates; do
	# dwell serve
	rm -rf "$data/dwell.db"* 
	cat >"$data/dwell.yaml" <<YAML
store: $data/dwell.db
sensor: edge
serve:
  listen: 127.0.0.1:$api
  collect: {listen: ["127.0.0.1:$port"], sockets: 2}
  ddos: {networks: [{prefix: 10.20.0.0/16}]}
YAML
	"$out/dwell" serve --config "$data/dwell.yaml" >"$data/dwell.log" 2>&1 &
	pids+=($!); pid=$!
	waitport $port; sleep 1
	sent=$("$out/flowblast" -to 127.0.0.1:$port -rate "$rate" -for "${secs}s" "$pcap" | awk '{print $2}')
	sleep 3
	kd=$("$out/flowblast" -drops $port)
	got=$(metric "http://127.0.0.1:$api/metrics" dwell_collect_datagrams_total)
	lost=$(metric "http://127.0.0.1:$api/metrics" dwell_collect_dropped_total)
	spooled=$(metric "http://127.0.0.1:$api/metrics" dwell_collect_spooled_total)
	kill -INT "$pid"; wait "$pid" || true
	echo "| dwell serve | $rate | $sent | $kd | $lost flows dropped ($spooled spooled, stored later) | $got |"

	# goflow2
	"$out/goflow2" -listen "netflow://127.0.0.1:$port?count=2" -format bin -transport file -transport.file /dev/null \
		-addr 127.0.0.1:$api >"$data/goflow2.log" 2>&1 &
	pids+=($!); pid=$!
	waitport $port; sleep 1
	sent=$("$out/flowblast" -to 127.0.0.1:$port -rate "$rate" -for "${secs}s" "$pcap" | awk '{print $2}')
	sleep 3
	kd=$("$out/flowblast" -drops $port)
	got=$(metric "http://127.0.0.1:$api/metrics" goflow2_flow_process_nf_total)
	lost=$(metric "http://127.0.0.1:$api/metrics" goflow2_flow_dropped_packets_total)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	echo "| goflow2 | $rate | $sent | $kd | $lost datagrams | $got |"

	# nfcapd
	rm -rf "$data/nfcapd"; mkdir -p "$data/nfcapd"
	nfcapd -b 127.0.0.1 -p $port -w "$data/nfcapd" -B 16777216 >"$data/nfcapd.log" 2>&1 &
	pids+=($!); pid=$!
	waitport $port; sleep 1
	sent=$("$out/flowblast" -to 127.0.0.1:$port -rate "$rate" -for "${secs}s" "$pcap" | awk '{print $2}')
	sleep 3
	kd=$("$out/flowblast" -drops $port)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	flows=$(nfdump -R "$data/nfcapd" -q -o "fmt:%pr" 2>/dev/null | wc -l || echo 0)
	echo "| nfcapd | $rate | $sent | $kd | (not counted) | $flows flows |"
done
