package clickhouse

import (
	"strconv"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytics over connections read the table conn; over flow sessions
// (store.FlowSessions) they read a subquery that stitches the flow
// records as store.Sessions does, in the SQL of ClickHouse 18.16, which
// has no window functions: each group's records are collected in an
// array sorted by start, and a record starts a new session when every
// earlier record ended more than the gap before it began. That count is
// found for all records at once: the ends and the starts less the gap
// are sorted together, ends after starts of the same value, and a
// running sum of ends read at each start counts the ends before it;
// as a record's end is never before its start, only earlier records
// can have ended by then, so the record starts a session when the count
// is its index less one. The arrays are then unrolled into rows and
// aggregated per session.

// connsFrom returns what the analytics over connections read in w: the
// table conn, or the sessions subquery.
func connsFrom(w store.Window) string {
	if w.Conns != store.FlowSessions {
		return "conn"
	}
	until := "1"
	if !w.Until.IsZero() {
		until = "ts < " + strconv.FormatInt(w.Until.UnixMicro(), 10)
	}
	gap := strconv.FormatInt(store.SessionGap.Microseconds(), 10)
	// ClickHouse 18.16 loses the columns a lambda reads from outside it
	// when an outer query aggregates its result, so lambdas read their
	// arguments only: d, per record of the session, is (sent by the
	// originator, flags, packets, payload, IP bytes), counts times the
	// sampling interval.
	hdr := "(if(position(x.1, ':') > 0, 40, 20) + multiIf(pr = 'tcp', 20, pr IN ('udp', 'icmp', 'ipv6-icmp'), 8, 0))"
	dirs := `arrayMap((x, o, p, pr) -> (x.1 = o AND x.2 = p, x.3, x.4 * x.6, greatest(toInt64(x.5) - toInt64(x.4) * ` + hdr + `, 0) * toInt64(x.6), x.5 * x.6),
		s_fl, replicate(s_oh, s_fl), replicate(s_op, s_fl), replicate(q_p, s_fl))`
	sum := func(orig bool, field string) string {
		if orig {
			return "toUInt64(arraySum(arrayMap(y -> if(y.1, " + field + ", 0), s_d)))"
		}
		return "toUInt64(arraySum(arrayMap(y -> if(y.1, 0, " + field + "), s_d)))"
	}
	oflags := "arrayReduce('groupBitOr', arrayMap(y -> if(y.1, y.2, 0), s_d))"
	rflags := "arrayReduce('groupBitOr', arrayMap(y -> if(y.1, 0, y.2), s_d))"
	replied := "arrayExists(y -> NOT y.1, s_d)"
	state := `multiIf(q_p != 'tcp', if(` + replied + `, 'SF', 'S0'),
		NOT ` + replied + ` AND bitAnd(` + oflags + `, 2) != 0 AND bitAnd(` + oflags + `, 16) = 0, 'S0',
		NOT ` + replied + `, 'OTH',
		bitAnd(` + rflags + `, 4) != 0 AND bitAnd(` + rflags + `, 2) = 0, 'REJ',
		bitAnd(` + oflags + `, 2) = 0 OR bitAnd(` + rflags + `, 2) = 0, 'OTH',
		bitAnd(bitOr(` + oflags + `, ` + rflags + `), 1) != 0, 'SF',
		bitAnd(` + oflags + `, 4) != 0, 'RSTO',
		bitAnd(` + rflags + `, 4) != 0, 'RSTR', 'S1')`
	origKey := "(intDiv(fl.1, 1000), fl.6 >= fl.4, fl.3, fl.4)"
	firstKey := "(fl.1, fl.2, fl.11, fl.12)"
	return `(SELECT * FROM (SELECT s_ts AS ts, CAST(NULL AS Nullable(String)) AS uid, s_oh AS id_orig_h, s_op AS id_orig_p,
		if(s_oh = g_a AND s_op = g_pa, g_b, g_a) AS id_resp_h, if(s_oh = g_a AND s_op = g_pa, g_pb, g_pa) AS id_resp_p,
		q_p AS proto, CAST(NULL AS Nullable(String)) AS service, (s_te - s_ts) / 1e6 AS duration,
		` + sum(true, "y.4") + ` AS orig_bytes, ` + sum(false, "y.4") + ` AS resp_bytes, ` + state + ` AS conn_state,
		` + sum(true, "y.3") + ` AS orig_pkts, ` + sum(true, "y.5") + ` AS orig_ip_bytes,
		` + sum(false, "y.3") + ` AS resp_pkts, ` + sum(false, "y.5") + ` AS resp_ip_bytes,
		q_s AS sensor, s_file AS source_file, s_line AS source_line
	FROM (SELECT *, ` + dirs + ` AS s_d FROM (
		SELECT g_s AS q_s, g_p AS q_p, g_a, g_pa, g_b, g_pb, min(fl.1) AS s_ts, max(fl.2) AS s_te,
			argMin(fl.3, ` + origKey + `) AS s_oh, argMin(fl.4, ` + origKey + `) AS s_op,
			groupArray((fl.3, fl.4, fl.7, fl.8, fl.9, fl.10)) AS s_fl,
			argMin(fl.11, ` + firstKey + `) AS s_file, argMin(fl.12, ` + firstKey + `) AS s_line
		FROM (
			SELECT g_s, g_e, g_p, g_a, g_pa, g_b, g_pb, g_fl,
				arrayMap(x -> x.1, g_fl) AS h_st, arrayMap(x -> x.2, g_fl) AS h_en,
				arraySort(arrayConcat(arrayMap(e -> (e, 1), h_en), arrayMap(b -> (b - ` + gap + `, 0), h_st))) AS h_ev,
				arrayFilter((c, x) -> x.2 = 0, arrayCumSum(arrayMap(x -> x.2, h_ev)), h_ev) AS h_cnt,
				arrayCumSum(arrayMap((c, i) -> c + 1 = i, h_cnt, arrayEnumerate(h_cnt))) AS h_sid
			FROM (
				SELECT f_s AS g_s, f_e AS g_e, f_p AS g_p, if(f_fwd, f_sa, f_da) AS g_a, if(f_fwd, f_sp, f_dp) AS g_pa,
					if(f_fwd, f_da, f_sa) AS g_b, if(f_fwd, f_dp, f_sp) AS g_pb,
					arraySort(x -> (x.1, x.2, x.11, x.12),
						groupArray((f_ts, f_te, f_sa, f_sp, f_da, f_dp, f_fl, f_pk, f_nb, f_smp, f_file, f_line))) AS g_fl
				FROM (
					SELECT ifNull(sensor, '') AS f_s, ifNull(toString(exporter), '') AS f_e, ifNull(proto, '') AS f_p, ts AS f_ts,
						greatest(ifNull(ts_end, ts), ts) AS f_te, ifNull(src_addr, '') AS f_sa, toUInt16(ifNull(src_port, 0)) AS f_sp,
						ifNull(dst_addr, '') AS f_da, toUInt16(ifNull(dst_port, 0)) AS f_dp, toUInt64(ifNull(tcp_flags, 0)) AS f_fl,
						toUInt64(ifNull(packets, 0)) AS f_pk, toUInt64(ifNull(bytes, 0)) AS f_nb,
						toUInt64(greatest(ifNull(sampling, 1), 1)) AS f_smp, ifNull(source_file, '') AS f_file,
						toUInt64(ifNull(source_line, 0)) AS f_line, f_sa < f_da OR (f_sa = f_da AND f_sp <= f_dp) AS f_fwd
					FROM flow WHERE ` + until + ` AND ifNull(export_format, '') != '` + event.ExportPcap + `')
				GROUP BY g_s, g_e, g_p, g_a, g_pa, g_b, g_pb))
		ARRAY JOIN g_fl AS fl, h_sid AS sid
		GROUP BY g_s, g_e, g_p, g_a, g_pa, g_b, g_pb, sid))))`
}
