#!/usr/bin/env bash
# Writes a large Zeek conn.log.gz for ingest benchmarks by replaying the real
# conn logs of ../shared/datasets/rita-missing-host-beacon (3 days, ~106k
# rows; the wrccdc set lacks its conn logs) over and over, each pass shifted
# by three days and with uids made unique, so that the data stays realistic
# (real addresses, states, byte counts) but never repeats a row.
#
# usage: bench/replay-conn.sh ROWS OUT.log.gz
set -euo pipefail
rows=${1:?rows}
out=${2:?output file}
src=${DATASETS:-$(dirname "$0")/../../shared/datasets}/rita-missing-host-beacon
[ -d "$src" ] || { echo "dataset $src not found" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The real rows, without headers, in time order; drop the _node_name column.
for f in "$src"/*/conn.*.log.gz; do zcat "$f"; done | grep -v '^#' | cut -f2- | sort -t$'\t' -k1,1n >"$tmp"
n=$(wc -l <"$tmp")
passes=$(( (rows + n - 1) / n ))
{
  printf '#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2024-04-19-00-00-01\n'
  printf '#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n'
  printf '#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n'
  awk -F'\t' -v OFS='\t' -v passes="$passes" -v rows="$rows" '
    { line[NR] = $0 }
    END {
      out = 0
      for (p = 0; p < passes && out < rows; p++) {
        shift = p * 259200
        for (i = 1; i <= NR && out < rows; i++) {
          split(line[i], f, "\t")
          split(f[1], t, ".")
          f[1] = (t[1] + shift) "." t[2]
          f[2] = f[2] p
          s = f[1]
          for (j = 2; j <= 21; j++) s = s OFS f[j]
          print s
          out++
        }
      }
    }' "$tmp"
  printf '#close\t2024-04-21-23-59-59\n'
} | gzip -6 >"$out"
echo "wrote $out: $rows rows ($(du -h "$out" | cut -f1))"
