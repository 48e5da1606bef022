package duckdb

import (
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytics over connections read the table conn. Over flow sessions
// (store.FlowSessions) the query is prefixed with a common table
// expression of that name, which stitches the flow records as
// store.Sessions does: records grouped by sensor, exporter, protocol and
// endpoints in either order; a new session where a record starts more
// than the gap after every earlier record of its group ended (a running
// max over the group in start order); the originator by arg_min; counts
// per direction times the sampling interval. Records that start at or
// after the window's end are left out, as the reference does.

// sessionsCTE returns the CTE for window w, or "" when w reads the conn
// log. The window's end is a literal: the CTE is put before queries whose
// parameters it must not shift.
func sessionsCTE(w store.Window) string {
	if w.Conns != store.FlowSessions {
		return ""
	}
	until := "true"
	if !w.Until.IsZero() {
		until = "ts < TIMESTAMP '" + w.Until.UTC().Format("2006-01-02 15:04:05.999999") + "'"
	}
	const key = "sensor, exporter, proto, ka, kpa, kb, kpb"
	const order = "ORDER BY ts, te, source_file, source_line"
	gap := strconv.FormatInt(store.SessionGap.Microseconds(), 10)
	return `WITH conn AS (
		WITH f AS (
			SELECT ts, greatest(coalesce(ts_end, ts), ts) AS te, coalesce(sensor, '') AS sensor, coalesce(exporter, '') AS exporter,
				coalesce(proto, '') AS proto, coalesce(src_addr, '') AS sa, coalesce(src_port, 0) AS sp, coalesce(dst_addr, '') AS da,
				coalesce(dst_port, 0) AS dp, coalesce(tcp_flags, 0) AS flags, coalesce(packets, 0) AS pk, coalesce(bytes, 0) AS nb,
				greatest(coalesce(sampling, 1), 1) AS smp, source_file, source_line
			FROM flow WHERE ` + until + `),
		k AS (
			SELECT *, CASE WHEN (sa, sp) <= (da, dp) THEN sa ELSE da END AS ka, CASE WHEN (sa, sp) <= (da, dp) THEN sp ELSE dp END AS kpa,
				CASE WHEN (sa, sp) <= (da, dp) THEN da ELSE sa END AS kb, CASE WHEN (sa, sp) <= (da, dp) THEN dp ELSE sp END AS kpb
			FROM f),
		g AS (
			SELECT *, max(te) OVER (PARTITION BY ` + key + ` ` + order + ` ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev FROM k),
		s AS (
			SELECT *, sum(CASE WHEN prev IS NULL OR epoch_us(ts) - epoch_us(prev) > ` + gap + ` THEN 1 ELSE 0 END)
				OVER (PARTITION BY ` + key + ` ` + order + ` ROWS UNBOUNDED PRECEDING) AS sid FROM g),
		o AS (
			SELECT *, arg_min(sa, (epoch_ms(ts), CASE WHEN dp >= sp THEN 1 ELSE 0 END, sa, sp)) OVER (PARTITION BY ` + key + `, sid) AS oh,
				arg_min(sp, (epoch_ms(ts), CASE WHEN dp >= sp THEN 1 ELSE 0 END, sa, sp)) OVER (PARTITION BY ` + key + `, sid) AS op
			FROM s),
		d AS (
			SELECT *, sa = oh AND sp = op AS fo,
				greatest(nb::BIGINT - pk::BIGINT * ((CASE WHEN contains(sa, ':') THEN 40 ELSE 20 END) +
					(CASE WHEN proto = 'tcp' THEN 20 WHEN proto IN ('udp', 'icmp', 'ipv6-icmp') THEN 8 ELSE 0 END)), 0) * smp::BIGINT AS pay
			FROM o),
		x AS (
			SELECT sensor, proto, min(ts) AS ts, max(te) AS te, any_value(oh) AS oh, any_value(op) AS op,
				CASE WHEN any_value(oh) = ka AND any_value(op) = kpa THEN kb ELSE ka END AS rh,
				CASE WHEN any_value(oh) = ka AND any_value(op) = kpa THEN kpb ELSE kpa END AS rp,
				sum(CASE WHEN fo THEN pay ELSE 0 END) AS ob, sum(CASE WHEN fo THEN 0 ELSE pay END) AS rb,
				sum(CASE WHEN fo THEN pk * smp ELSE 0 END) AS opk, sum(CASE WHEN fo THEN 0 ELSE pk * smp END) AS rpk,
				sum(CASE WHEN fo THEN nb * smp ELSE 0 END) AS oib, sum(CASE WHEN fo THEN 0 ELSE nb * smp END) AS rib,
				bit_or(CASE WHEN fo THEN flags ELSE 0 END) AS ofl, bit_or(CASE WHEN fo THEN 0 ELSE flags END) AS rfl, bool_or(NOT fo) AS replied,
				arg_min(source_file, (ts, te, source_file, source_line)) AS source_file,
				arg_min(source_line, (ts, te, source_file, source_line)) AS source_line
			FROM d GROUP BY ` + key + `, sid)
		SELECT ts, NULL::VARCHAR AS uid, oh AS id_orig_h, op::USMALLINT AS id_orig_p, rh AS id_resp_h, rp::USMALLINT AS id_resp_p,
			proto, NULL::VARCHAR AS service, epoch_us(te - ts) / 1e6 AS duration, ob::UBIGINT AS orig_bytes, rb::UBIGINT AS resp_bytes,
			` + sessionStateSQL() + ` AS conn_state, opk::UBIGINT AS orig_pkts, oib::UBIGINT AS orig_ip_bytes,
			rpk::UBIGINT AS resp_pkts, rib::UBIGINT AS resp_ip_bytes, NULLIF(sensor, '') AS sensor, source_file, source_line
		FROM x)
	`
}

// sessionStateSQL is store.SessionState over x's ORed flags of (ofl)
// and to (rfl) the originator.
func sessionStateSQL() string {
	return `CASE WHEN proto != 'tcp' THEN (CASE WHEN replied THEN 'SF' ELSE 'S0' END)
		WHEN NOT replied AND (ofl & 2) != 0 AND (ofl & 16) = 0 THEN 'S0'
		WHEN NOT replied THEN 'OTH'
		WHEN (rfl & 4) != 0 AND (rfl & 2) = 0 THEN 'REJ'
		WHEN (ofl & 2) = 0 OR (rfl & 2) = 0 THEN 'OTH'
		WHEN ((ofl | rfl) & 1) != 0 THEN 'SF'
		WHEN (ofl & 4) != 0 THEN 'RSTO'
		WHEN (rfl & 4) != 0 THEN 'RSTR'
		ELSE 'S1' END`
}

// withConns prefixes query q, which reads the table conn, with what w
// needs to read flow sessions instead.
func withConns(w store.Window, q string) string {
	cte := sessionsCTE(w)
	if cte == "" {
		return q
	}
	return cte + strings.TrimLeft(q, " \t\n")
}
