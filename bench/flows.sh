#!/usr/bin/env bash
# Flow decoding beside goflow2 (TARGETS.md: flow decode >= goflow2), on the
# same packets: the IPFIX capture of the scenario's DDoS.
#
#   goflowpeer CAPTURE       goflow2 v2's decoders on the UDP payloads, read
#                            into memory first (decoding alone is timed)
#   BenchmarkScenarioCapture dwell's Source on the same file: pcap records,
#                            Ethernet/IP/UDP and IPFIX to event.Flow
#
# Both on one goroutine. usage: bench/flows.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
go build -o "$out/dwell" ./cmd/dwell
(cd bench/goflowpeer && go build -o "../out/goflowpeer" .)
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"$out/dwell" scenario -q --out "$data" --days 4 --hosts 30 --rate 2000
pcap="$data/flows/ddos.pcap"
for _ in 1 2 3; do
	"$out/goflowpeer" "$pcap"
	DWELL_BENCH_PCAP="$pcap" go test -run '^$' -bench ScenarioCapture -benchmem ./internal/ingest/netflow | grep Benchmark
done
