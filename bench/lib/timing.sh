# Sourced by the bench scripts: timing helpers and the machine line.

# secs command... prints the command's elapsed seconds (its output dropped).
secs() {
	local s e
	s=$(date +%s%N)
	"$@" >/dev/null
	e=$(date +%s%N)
	awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f\n", (e - s) / 1e9}'
}

# median prints the median of the numbers on standard input.
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

# div A B FORMAT prints A / B in printf's FORMAT ("%.0f" for a rate,
# "%.2f" for a ratio).
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN {printf f, a / b}'; }

# machine prints the cores, CPU, memory and Go version.
machine() {
	echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB; $(go version | cut -d' ' -f3)"
}

# conn_input ROWS: the replayed conn.log.gz of ROWS rows in bench/data, made when missing.
conn_input() {
	local input="bench/data/conn-$1.log.gz"
	mkdir -p bench/data bench/out
	[ -s "$input" ] || bench/replay-conn.sh "$1" "$input" >&2
	echo "$input"
}

# scenario_input DAYS RATE: the scenario of DAYS days at RATE staff
# connections a day in bench/data (hourly rotated Zeek logs, a directory a
# day), generated with bench/out/dwell when missing.
scenario_input() {
	local scen="bench/data/scenario-$1d-$2"
	[ -f "$scen/truth.json" ] || bench/out/dwell scenario -q --out "$scen" --days "$1" --rate "$2" >&2
	echo "$scen"
}

# conn_tsv ROWS: the decompressed conn.log of conn_input ROWS without Zeek's
# header lines (what clickhouse-client loads), made when missing.
conn_tsv() {
	local tsv="bench/data/conn-$1.tsv"
	[ -s "$tsv" ] || gzip -dc "$(conn_input "$1")" | grep -v '^#' >"$tsv"
	echo "$tsv"
}

# zeek_rows DWELL DB prints the records stored in DB's tables of the six
# Zeek logs the scenario writes (conn, dns, http, ssl, x509, files).
zeek_rows() {
	"$1" query --db "$2" --format csv "SELECT (SELECT count(*) FROM conn) + (SELECT count(*) FROM dns) + (SELECT count(*) FROM http) + (SELECT count(*) FROM ssl) + (SELECT count(*) FROM x509) + (SELECT count(*) FROM files)" | tail -1
}
