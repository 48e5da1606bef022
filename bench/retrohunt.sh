#!/usr/bin/env bash
# Retro-hunt at the scale TARGETS.md names: 10,000 indicators against all
# of 30 days x 1 M conn/day (issue #5: <= 1 % of a full scan of the conn
# table), measured side by side with the naive retro-hunt, a scan of the
# conn table for the indicator addresses.
#
#   dwell ingest conn + dns logs      builds the store and its summary
#   dwell intel import iocs.csv       10,000 indicators, retro-hunted at once
#   dwell intel retrohunt             all stored indicators over all history
#   dwell query "... FROM conn WHERE id_orig_h IN (...) OR id_resp_h IN (...)"
#                                     the peer: the addresses alone, one scan
#
# The scenario data is made by bench/scenario.sh (or here if missing).
# Prints a Markdown table for docs/benchmarks.md.
#
# usage: [REUSE=1] bench/retrohunt.sh [DAYS] [RATE]   (default 30 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
days=${1:-30}
rate=${2:-1000000}
data=bench/data/scenario-${days}d-${rate}
out=bench/out
db=$out/retro.db
mkdir -p "$out"
go build -o "$out/dwell" ./cmd/dwell

timed() { # label command... -> appends "label seconds maxrss_kb" to $out/retrohunt.txt
	local label=$1
	shift
	/usr/bin/time -f "$label %e %M" -a -o "$out/retrohunt.txt" "$@"
}
[ -f "$out/retrohunt.txt" ] && cp "$out/retrohunt.txt" "$out/retrohunt.last"
: >"$out/retrohunt.txt"

if [ ! -f "$data/truth.json" ]; then
	rm -rf "$data"
	"$out/dwell" scenario -q --out "$data" --days "$days" --rate "$rate"
fi
if [ -z "${REUSE:-}" ] || [ ! -f "$db" ]; then # REUSE=1: keep the store of the last run
	rm -f "$db" "$db.wal"
	timed ingest "$out/dwell" ingest -q --db "$db" "$data"/*/conn.*.log.gz "$data"/*/dns.*.log.gz >/dev/null
else
	grep '^ingest ' "$out/retrohunt.last" >>"$out/retrohunt.txt" || true
fi

# 10,000 indicators: the planted campaign's addresses and domains, and
# random addresses, networks, domains, URLs and hashes (seeded).
python3 - "$data/truth.json" "$out/iocs.csv" "$out/iocs-ips.txt" <<'PY'
import json, random, sys
truth = json.load(open(sys.argv[1]))
rnd = random.Random(5)
rows = [(ip, "ip-dst") for ip in truth["campaign"]["external_ips"]]
rows += [(d, "domain") for d in truth["campaign"]["domains"]]
def ip():
    while True:
        a = rnd.randint(1, 223)
        if a not in (10, 127):
            return f"{a}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
word = lambda: "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(5, 12)))
while len(rows) < 6000:
    rows.append((ip(), "ip-dst"))
for _ in range(500):
    a = ip().rsplit(".", 1)[0]
    rows.append((a + ".0/24", "ip-dst"))
for _ in range(2000):
    rows.append((f"{word()}.{word()}.{rnd.choice(['com', 'net', 'org', 'example', 'info'])}", "domain"))
for _ in range(500):
    rows.append((f"http://{word()}.{word()}.com/{word()}/{word()}.php", "url"))
while len(rows) < 10000:
    rows.append(("".join(rnd.choice("0123456789abcdef") for _ in range(64)), "sha256"))
with open(sys.argv[2], "w") as f:
    f.write("value,type,comment\n")
    for v, t in rows:
        f.write(f"{v},{t},bench\n")
with open(sys.argv[3], "w") as f:
    for v, t in rows:
        if t == "ip-dst" and "/" not in v:
            f.write(v + "\n")
PY

timed import "$out/dwell" intel import --db "$db" --source bench "$out/iocs.csv" >"$out/retrohunt-import.txt"
timed retrohunt "$out/dwell" intel retrohunt --db "$db" >"$out/retrohunt-sightings.txt"
# The addresses travel as one string (an argument may not exceed 128 KiB).
list=$(paste -sd, "$out/iocs-ips.txt")
peer="WITH l AS (SELECT unnest(string_split('$list', ',')) AS ip)
SELECT ip, count(*) AS n, min(ts), max(ts) FROM (
  SELECT id_orig_h AS ip, ts FROM conn WHERE id_orig_h IN (SELECT ip FROM l)
  UNION ALL SELECT id_resp_h, ts FROM conn WHERE id_resp_h IN (SELECT ip FROM l)) GROUP BY ip ORDER BY ip"
timed scan "$out/dwell" query --db "$db" --format csv "$peer" >"$out/retrohunt-scan.txt"

# The same two queries in process, warm, as Go benchmarks (no process
# start, no store opening, no output); the retro-hunt, a hundred times faster,
# runs more often so that its first run (which prepares its statements)
# weighs as little in its mean as the scan's first in the scan's.
export DWELL_BENCH_DB=$PWD/$db DWELL_BENCH_IPS=$PWD/$out/iocs-ips.txt
{
	go test -run '^$' -bench 'RetrohuntDB' -benchtime 200x -count 3 ./internal/store/duckdb
	go test -run '^$' -bench 'ConnScanDB' -benchtime 20x -count 3 ./internal/store/duckdb
} >"$out/retrohunt-go.txt"

get() { awk -v l="$1" -v f="$2" '$1 == l {print $f}' "$out/retrohunt.txt"; }
median() { grep "^Benchmark$1" "$out/retrohunt-go.txt" | awk '{print $3 / 1e6}' | sort -n | sed -n 2p; }
conns=$(python3 -c "import json; print(json.load(open('$data/truth.json'))['counts']['conn'])")
matched=$(grep -o 'matched in [0-9.]*[mµ]*s' "$out/retrohunt-sightings.txt" | head -1)
sightings=$(grep -o '^[0-9]* indicator(s), [0-9]* sighting(s)' "$out/retrohunt-sightings.txt" | head -1)
scanned=$(($(wc -l <"$out/retrohunt-scan.txt") - 1))
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
cat <<TABLE
Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3).
Data: \`dwell scenario --days $days --rate $rate\`, $conns conn rows (plus dns); 10,000 indicators
(6,000 addresses, 500 /24 networks, 2,005 domains, 500 URLs, 1,995 SHA-256; 12 of them the planted campaign's).

| step | seconds | peak RSS | result |
|---|---|---|---|
| \`dwell ingest\` conn + dns (builds the summary) | $(get ingest 2) | $(($(get ingest 3) / 1024)) MB | |
| \`dwell intel import\` 10,000 indicators + retro-hunt | $(get import 2) | $(($(get import 3) / 1024)) MB | |
| \`dwell intel retrohunt\` (whole command) | $(get retrohunt 2) | $(($(get retrohunt 3) / 1024)) MB | $sightings, $matched |
| peer: one scan of conn for the 6,000 addresses | $(get scan 2) | $(($(get scan 3) / 1024)) MB | $scanned addresses seen |


Whole commands, retro-hunt / scan: $(awk -v a="$(get retrohunt 2)" -v b="$(get scan 2)" 'BEGIN {printf "%.1f %%", 100 * a / b}')

In process, warm (\`go test -bench 'RetrohuntDB|ConnScanDB' ./internal/store/duckdb\`, median of 3 × 200 and 3 × 20):

| query | ms |
|---|---|
| MatchIndicators, all history | $(median RetrohuntDB) |
| peer: the conn scan | $(median ConnScanDB) |

In process, retro-hunt / scan: $(awk -v a="$(median RetrohuntDB)" -v b="$(median ConnScanDB)" 'BEGIN {printf "%.2f %%", 100 * a / b}')
TABLE
