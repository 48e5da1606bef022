#!/usr/bin/env bash
# Two versions of the retro-hunt side by side: BenchmarkRetrohuntDB
# (internal/store/duckdb) built at two git revisions and run in turns on
# the store bench/retrohunt.sh left, so that both see the same machine
# (its speed wanders by a third here). Prints the fastest and the median
# time of each.
#
# usage: bench/retrohunt-ab.sh REV_A REV_B [ROUNDS]   (default 8 rounds of 100 matches)
#   e.g. bench/retrohunt-ab.sh HEAD~1 HEAD
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:?usage: bench/retrohunt-ab.sh REV_A REV_B [ROUNDS]}
b=${2:?usage: bench/retrohunt-ab.sh REV_A REV_B [ROUNDS]}
rounds=${3:-8}
db=$PWD/bench/out/retro.db
[ -f "$db" ] || {
	echo "no store at $db: run bench/retrohunt.sh first" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

for rev in "$a" "$b"; do
	git worktree add --detach "$tmp/src" "$rev" >/dev/null 2>&1
	(cd "$tmp/src" && go test -c -o "$tmp/$(git rev-parse --short "$rev").test" ./internal/store/duckdb)
	git worktree remove --force "$tmp/src"
done

export DWELL_BENCH_DB=$db
for _ in $(seq "$rounds"); do
	for rev in "$a" "$b"; do
		id=$(git rev-parse --short "$rev")
		"$tmp/$id.test" -test.run '^$' -test.bench RetrohuntDB -test.benchtime 100x |
			awk -v r="$rev ($id)" '/^Benchmark/ {print r "\t" $3 / 1e6}'
	done
done >"$tmp/times"

echo "| revision | fastest ms | median ms | runs |"
echo "|---|---|---|---|"
for rev in "$a" "$b"; do
	id=$(git rev-parse --short "$rev")
	awk -F'\t' -v r="$rev ($id)" '$1 == r {print $2}' "$tmp/times" | sort -n |
		awk -v r="$rev ($id)" '{t[NR] = $1} END {printf "| %s | %.2f | %.2f | %d |\n", r, t[1], t[int((NR + 1) / 2)], NR}'
done
