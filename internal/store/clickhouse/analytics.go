package clickhouse

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytic queries in ClickHouse SQL. Rules of the 18.16 subset they
// keep to (docs/clickhouse.md): GROUP BY and ORDER BY name aliases, never
// positions; an alias never reuses a column's name; lists are literals
// (IN ('a', 'b')), which travel with the query to every shard; a subquery
// over a table is GLOBAL IN, so that on a cluster it runs once, not once
// per shard; no window functions, no WITH subqueries, no QUALIFY.

var _ store.Analytics = (*Store)(nil)

// where returns the condition for a window on column col.
func where(w store.Window, col string) string {
	conds := []string{"1"}
	if !w.Since.IsZero() {
		conds = append(conds, fmt.Sprintf("%s >= %d", col, w.Since.UnixMicro()))
	}
	if !w.Until.IsZero() {
		conds = append(conds, fmt.Sprintf("%s < %d", col, w.Until.UnixMicro()))
	}
	return strings.Join(conds, " AND ")
}

// addrList returns addresses as a literal list for IN.
func addrList(as []netip.Addr) string {
	ss := make([]string, len(as))
	for i, a := range as {
		ss[i] = a.String()
	}
	return stringList(ss)
}

// sidesCond keeps the records whose ends are where sides says.
func sidesCond(sides store.Sides, src, dst string) string {
	conds := []string{"1"}
	var list string
	for _, x := range []struct {
		col   string
		scope store.Scope
	}{{src, sides.Src}, {dst, sides.Dst}} {
		if x.scope == store.Anywhere {
			continue
		}
		if list == "" {
			list = addrList(sides.Inside)
		}
		op := " IN "
		if x.scope == store.Outside {
			op = " NOT IN "
		}
		conds = append(conds, "isNotNull("+x.col+") AND "+x.col+op+list)
	}
	return strings.Join(conds, " AND ")
}

// Span implements store.Analytics.
func (s *Store) Span(ctx context.Context, w store.Window) (first, last time.Time, n int64, ok bool, err error) {
	err = s.c.each(ctx, "span of conn", "SELECT min(ts), max(ts), count() FROM "+connsFrom(w)+" WHERE "+where(w, "ts"), func(r *tsvReader) error {
		first, last, n = r.Time(0), r.Time(1), r.Int(2)
		return nil
	})
	return first, last, n, err == nil && n > 0, err
}

const failedStates = `('REJ', 'S0', 'RSTOS0', 'RSTRH', 'SH', 'SHR')`

// pairKeys are the grouping keys of Pairs.
const pairKeys = `ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, ifNull(id_resp_h, '') AS k_b,
	ifNull(id_resp_p, 0) AS k_p, ifNull(proto, '') AS k_pr`

// Pairs implements store.Analytics. The pairs with enough records are
// found first, when no duration condition applies, and the full
// aggregates computed for those only; with both conditions the pair
// totals are checked here, over the stats that pass the duration (as the
// reference does).
func (s *Store) Pairs(ctx context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	cond := where(w, "ts") + " AND " + sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	if f.Dsts != nil {
		cond += " AND id_resp_h IN " + addrList(f.Dsts)
	}
	if f.Srcs != nil {
		cond += " AND id_orig_h IN " + addrList(f.Srcs)
	}
	if len(f.SkipDsts) > 0 {
		cond += " AND ifNull(id_resp_h, '') NOT IN " + addrList(f.SkipDsts)
	}
	having := "1"
	if f.MinDuration > 0 {
		secs := strconv.FormatFloat(f.MinDuration.Seconds(), 'f', -1, 64)
		having = "(ifNull(max(duration), 0) >= " + secs + " OR ifNull(sum(duration), 0) >= " + secs + ")"
	}
	if f.MinFailedShare > 0 {
		having += " AND countIf(conn_state IN " + failedStates + ") >= " + strconv.FormatFloat(f.MinFailedShare, 'f', -1, 64) + " * count()"
	}
	inGo := f.MinPairConns > 1 && (f.MinDuration > 0 || f.MinFailedShare > 0)
	from := connsFrom(w)
	if f.MinPairConns > 1 && !inGo {
		cond += ` AND (ifNull(sensor, ''), ifNull(id_orig_h, ''), ifNull(id_resp_h, '')) GLOBAL IN (
			SELECT ifNull(sensor, '') AS p_s, ifNull(id_orig_h, '') AS p_a, ifNull(id_resp_h, '') AS p_b FROM ` + from + ` WHERE ` + cond + `
			GROUP BY p_s, p_a, p_b HAVING count() >= ` + strconv.FormatInt(f.MinPairConns, 10) + `)`
	}
	q := `SELECT ` + pairKeys + `, count(), min(ts), max(ts), sum(duration), max(duration),
		ifNull(sum(orig_bytes), 0), ifNull(sum(resp_bytes), 0), countIf(conn_state IN ` + failedStates + `),
		uniqExact(` + dayOf("ts") + `),
		countIf(orig_pkts = 0), countIf(ifNull(orig_pkts, 1) > 0 AND ` + probeCond() + `)
		FROM ` + from + ` WHERE ` + cond + ` GROUP BY k_s, k_a, k_b, k_p, k_pr HAVING ` + having + `
		ORDER BY k_s, k_a, k_b, k_p, k_pr`
	var group []store.PairStat // one (sensor, src, dst), when totals are checked here
	flush := func() error {
		var total int64
		for _, p := range group {
			total += p.Conns
		}
		for i := range group {
			if total >= f.MinPairConns {
				if err := fn(&group[i]); err != nil {
					return err
				}
			}
		}
		group = group[:0]
		return nil
	}
	var p store.PairStat
	err := s.c.each(ctx, "pairs", q, func(r *tsvReader) error {
		p = store.PairStat{Sensor: r.Field(0), Src: r.Addr(1), Dst: r.Addr(2), DstPort: uint16(r.Int(3)), Proto: r.Field(4), //nolint:gosec // G115: UInt16 column
			Conns: r.Int(5), First: r.Time(6), Last: r.Time(7), Duration: r.Seconds(8), MaxDuration: r.Seconds(9),
			SrcBytes: r.Int(10), DstBytes: r.Int(11), Failed: r.Int(12), Days: r.Int(13), Silent: r.Int(14), Probes: r.Int(15)}
		if !inGo {
			return fn(&p)
		}
		if len(group) > 0 && (group[0].Sensor != p.Sensor || group[0].Src != p.Src || group[0].Dst != p.Dst) {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, p)
		return nil
	})
	if err == nil && inGo {
		err = flush()
	}
	return err
}

// DailyFlows implements store.Analytics.
func (s *Store) DailyFlows(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.DailyFlow) error) error {
	cond := where(w, "ts") + " AND " + sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	from := connsFrom(w)
	if f.MinPairSrcBytes > 0 {
		cond += ` AND (ifNull(sensor, ''), ifNull(id_orig_h, ''), ifNull(id_resp_h, '')) GLOBAL IN (
			SELECT ifNull(sensor, '') AS p_s, ifNull(id_orig_h, '') AS p_a, ifNull(id_resp_h, '') AS p_b FROM ` + from + ` WHERE ` + cond + `
			GROUP BY p_s, p_a, p_b HAVING sum(orig_bytes) >= ` + strconv.FormatInt(f.MinPairSrcBytes, 10) + `)`
	}
	q := `SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, ifNull(id_resp_h, '') AS k_b, ` + dayOf("ts") + ` AS k_d,
		count(), ifNull(sum(orig_bytes), 0), ifNull(sum(resp_bytes), 0), ifNull(max(orig_bytes), 0), min(ts), max(ts)
		FROM ` + from + ` WHERE ` + cond + ` GROUP BY k_s, k_a, k_b, k_d ORDER BY k_s, k_a, k_b, k_d`
	var d store.DailyFlow
	return s.c.each(ctx, "daily flows", q, func(r *tsvReader) error {
		d = store.DailyFlow{Sensor: r.Field(0), Src: r.Addr(1), Dst: r.Addr(2), Day: day(r.Int(3)), Conns: r.Int(4),
			SrcBytes: r.Int(5), DstBytes: r.Int(6), MaxSrcBytes: r.Int(7), First: r.Time(8), Last: r.Time(9)}
		return fn(&d)
	})
}

// day returns a UTC day number as its midnight.
func day(n int64) time.Time { return time.Unix(n*86400, 0).UTC() }

// HostDays implements store.Analytics.
func (s *Store) HostDays(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.HostDay) error) error {
	cond := where(w, "ts") + " AND " + sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	q := `SELECT ifNull(sensor, '') AS k_s, assumeNotNull(id_orig_h) AS k_a, ` + dayOf("ts") + ` AS k_d, ifNull(sum(orig_bytes), 0)
		FROM ` + connsFrom(w) + ` WHERE ` + cond + ` AND isNotNull(id_orig_h) GROUP BY k_s, k_a, k_d ORDER BY k_s, k_a, k_d`
	var h store.HostDay
	return s.c.each(ctx, "host days", q, func(r *tsvReader) error {
		h = store.HostDay{Sensor: r.Field(0), Src: r.Addr(1), Day: day(r.Int(2)), SrcBytes: r.Int(3)}
		return fn(&h)
	})
}

// Destinations implements store.Analytics.
func (s *Store) Destinations(ctx context.Context, w store.Window, clients []netip.Addr, fn func(*store.DstStat) error) error {
	q := `SELECT assumeNotNull(id_resp_h) AS k_b, uniqExactIf(id_orig_h, id_orig_h IN ` + addrList(clients) + `), count(), min(ts), max(ts)
		FROM ` + connsFrom(w) + ` WHERE ` + where(w, "ts") + ` AND isNotNull(id_resp_h) GROUP BY k_b ORDER BY k_b`
	var d store.DstStat
	return s.c.each(ctx, "destinations", q, func(r *tsvReader) error {
		d = store.DstStat{Dst: r.Addr(0), Clients: r.Int(1), Conns: r.Int(2), First: r.Time(3), Last: r.Time(4)}
		return fn(&d)
	})
}

// LocalAddrs implements store.Analytics: the window's distinct addresses
// that may be in local (a superset: whole bytes of an IPv6 prefix) are
// tested exactly here.
func (s *Store) LocalAddrs(ctx context.Context, w store.Window, local []netip.Prefix) ([]netip.Addr, error) {
	cond, from := where(w, "ts"), connsFrom(w)
	q := `SELECT DISTINCT a FROM (SELECT ifNull(id_orig_h, '') AS a FROM ` + from + ` WHERE ` + cond + `
		UNION ALL SELECT ifNull(id_resp_h, '') AS a FROM ` + from + ` WHERE ` + cond + `) WHERE a != '' AND ` + netCond("a", local)
	var out []netip.Addr
	err := s.c.each(ctx, "local addresses", q, func(r *tsvReader) error {
		if ip := r.Addr(0); ip.IsValid() && store.InNets(local, ip) {
			out = append(out, ip)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out, err
}

// netCond is a condition on address text col that holds for every
// address in nets (and a few more IPv6 ones).
func netCond(col string, nets []netip.Prefix) string {
	var conds []string
	for _, p := range nets {
		p = p.Masked()
		if p.Addr().Is4() {
			mask := uint32(0xffffffff) << (32 - p.Bits())
			if p.Bits() == 0 {
				mask = 0
			}
			o := p.Addr().As4()
			net := uint32(o[0])<<24 | uint32(o[1])<<16 | uint32(o[2])<<8 | uint32(o[3])
			v4 := func(text string) string {
				return fmt.Sprintf("(position(%s, ':') = 0 AND bitAnd(IPv4StringToNum(%s), %d) = %d)", text, text, mask, net)
			}
			conds = append(conds, v4(col), "(startsWith("+col+", '::ffff:') AND position("+col+", '.') > 0 AND "+v4("substring("+col+", 8)")+")")
			continue
		}
		b := p.Addr().As16()
		conds = append(conds, fmt.Sprintf("(position(%s, ':') > 0 AND startsWith(IPv6StringToNum(%s), unhex('%s')))", col, col, hex.EncodeToString(b[:p.Bits()/8])))
	}
	if len(conds) == 0 {
		return "0"
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// partRows is about how many records one part of a Series query covers.
const partRows = 8_000_000

// Series implements store.Analytics. As in the DuckDB store, a key's
// points travel as one "ms:size" string (store.ParsePoints) and are put
// in order here, in parts of the keys (by source address) so that the
// aggregation state stays small.
func (s *Store) Series(ctx context.Context, kind store.SeriesKind, w store.Window, f store.SeriesFilter, fn func(*store.Series) error) error {
	cond := where(w, "ts")
	table, src, key, keys := connsFrom(w), "id_orig_h", "id_resp_h", "k_s, k_a, k_b"
	point := "concat(toString(intDiv(ts, 1000)), ':', toString(ifNull(orig_ip_bytes, 0)))"
	having := "count() >= " + strconv.Itoa(max(f.MinCount, 1))
	extra := ""
	switch kind {
	case store.SeriesConn, store.SeriesSessions:
		if len(f.SkipDsts) > 0 {
			cond += " AND ifNull(id_resp_h, '') NOT IN " + addrList(f.SkipDsts)
		}
		if f.Dsts != nil {
			cond += " AND ifNull(id_resp_h, '') IN " + addrList(f.Dsts)
		}
		if kind == store.SeriesSessions {
			us := "toInt64(round(ifNull(duration, 0) * 1e6))"
			point = "concat(toString(intDiv(ts, 1000)), ':', toString(" + us + "))"
			extra = ", ifNull(id_resp_p, 0) AS k_p, ifNull(proto, '') AS k_pr"
			keys += ", k_p, k_pr"
			if f.MinDuration > 0 {
				// The keys long enough are found first: the points of the
				// others are never strung together.
				cond += ` AND (ifNull(sensor, ''), ifNull(id_orig_h, ''), ifNull(id_resp_h, ''), ifNull(id_resp_p, 0), ifNull(proto, '')) GLOBAL IN (
					SELECT ifNull(sensor, '') AS m_s, ifNull(id_orig_h, '') AS m_a, ifNull(id_resp_h, '') AS m_b, ifNull(id_resp_p, 0) AS m_p,
						ifNull(proto, '') AS m_pr FROM ` + table + ` WHERE ` + cond + `
					GROUP BY m_s, m_a, m_b, m_p, m_pr HAVING sum(` + us + `) >= ` + strconv.FormatInt(f.MinDuration.Microseconds(), 10) + `)`
			}
		}
	case store.SeriesTLSName:
		table, key, point = "ssl", "server_name", "toString(intDiv(ts, 1000))"
	case store.SeriesHTTPHost:
		table, key, point = "http", "host", "concat(toString(intDiv(ts, 1000)), ':', toString(ifNull(request_body_len, 0)))"
	default:
		return fmt.Errorf("BUG: unknown series kind %d", kind)
	}
	named := kind == store.SeriesTLSName || kind == store.SeriesHTTPHost
	if named && len(f.SkipNames) > 0 {
		cond += " AND ifNull(" + key + ", '') NOT IN " + stringList(f.SkipNames)
	}
	cond += " AND isNotNull(" + src + ") AND isNotNull(" + key + ")"
	v, err := s.c.scalar(ctx, "SELECT count() FROM "+table+" WHERE "+cond)
	if err != nil {
		return fmt.Errorf("series: %w", err)
	}
	rows, _ := strconv.ParseInt(v, 10, 64)
	parts := max(1, (rows+partRows-1)/partRows)
	var sr store.Series
	for part := range parts {
		q := fmt.Sprintf(`SELECT ifNull(sensor, '') AS k_s, assumeNotNull(%s) AS k_a, assumeNotNull(%s) AS k_b%s, arrayStringConcat(groupArray(%s), ',')
			FROM %s WHERE %s AND cityHash64(%s) %% %d = %d
			GROUP BY %s HAVING %s ORDER BY %s`,
			src, key, extra, point, table, cond, src, parts, part, keys, having, keys)
		err := s.c.each(ctx, "series", q, func(r *tsvReader) error {
			sr.Sensor, sr.Src, sr.Port, sr.Proto = r.Field(0), r.Addr(1), 0, ""
			if named {
				sr.Dst, sr.Name = netip.Addr{}, r.Field(2)
			} else {
				sr.Dst, sr.Name = r.Addr(2), ""
			}
			pointsAt := 3
			if kind == store.SeriesSessions {
				sr.Port, sr.Proto, pointsAt = uint16(r.Int(3)), r.Field(4), 5 //nolint:gosec // G115: UInt16 column
			}
			var err error
			if sr.Times, sr.Sizes, err = store.ParsePoints(sr.Times[:0], sr.Sizes[:0], r.Field(pointsAt)); err != nil {
				return err
			}
			store.SortSeries(&sr)
			return fn(&sr)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// OpenConns implements store.Analytics: per connection, the report with
// the longest duration (the last one), ties broken by file and line.
func (s *Store) OpenConns(ctx context.Context, w store.Window, fn func(*store.OpenConn) error) error {
	q := `SELECT ifNull(sensor, '') AS k_s, ifNull(uid, '') AS k_u, argMax(ifNull(id_orig_h, ''), o), argMax(ifNull(id_resp_h, ''), o),
		argMax(ifNull(id_resp_p, 0), o), argMax(ifNull(proto, ''), o), argMax(ifNull(service, ''), o), argMax(ts, o), argMax(duration, o),
		argMax(ifNull(orig_bytes, 0), o), argMax(ifNull(resp_bytes, 0), o)
		FROM (SELECT *, tuple(ifNull(duration, -1), ifNull(source_file, ''), ifNull(source_line, 0)) AS o FROM open_conn WHERE ` + where(w, "ts") + `)
		GROUP BY k_s, k_u ORDER BY k_s, k_u`
	var o store.OpenConn
	return s.c.each(ctx, "open connections", q, func(r *tsvReader) error {
		o = store.OpenConn{Sensor: r.Field(0), UID: r.Field(1), Src: r.Addr(2), Dst: r.Addr(3), DstPort: uint16(r.Int(4)), //nolint:gosec // G115: UInt16 column
			Proto: r.Field(5), Service: r.Field(6), Start: r.Time(7), Duration: r.Seconds(8), SrcBytes: r.Int(9), DstBytes: r.Int(10)}
		o.Reported = o.Start.Add(o.Duration)
		return fn(&o)
	})
}

// DNSNames implements store.Analytics.
func (s *Store) DNSNames(ctx context.Context, w store.Window, f store.DNSFilter, fn func(*store.DNSName) error) error {
	cond := where(w, "ts")
	if f.RCode != "" {
		cond += " AND ifNull(rcode_name, '') IN " + stringList([]string{f.RCode})
	}
	if f.Srcs != nil {
		cond += " AND ifNull(id_orig_h, '') IN " + addrList(f.Srcs)
	}
	q := `SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, assumeNotNull(query) AS k_q, ifNull(qtype_name, '') AS k_t,
		ifNull(rcode_name, '') AS k_r, ifNull(id_resp_h, '') AS k_d, count(), min(ts), max(ts)
		FROM dns WHERE ` + cond + ` AND isNotNull(query) GROUP BY k_s, k_a, k_q, k_t, k_r, k_d ORDER BY k_s, k_a, k_q, k_t, k_r, k_d`
	var d store.DNSName
	return s.c.each(ctx, "dns names", q, func(r *tsvReader) error {
		d = store.DNSName{Sensor: r.Field(0), Src: r.Addr(1), Query: r.Field(2), QType: r.Field(3), RCode: r.Field(4), Dst: r.Addr(5),
			Count: r.Int(6), First: r.Time(7), Last: r.Time(8)}
		return fn(&d)
	})
}

// ServerNames implements store.Analytics.
func (s *Store) ServerNames(ctx context.Context, w store.Window, fn func(*store.ServerName) error) error {
	cond := where(w, "ts")
	q := `SELECT k_s, k_a, k_n, sum(n) FROM (
			SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, assumeNotNull(server_name) AS k_n, count() AS n
			FROM ssl WHERE ` + cond + ` AND isNotNull(server_name) GROUP BY k_s, k_a, k_n
			UNION ALL
			SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, assumeNotNull(host) AS k_n, count() AS n
			FROM http WHERE ` + cond + ` AND isNotNull(host) GROUP BY k_s, k_a, k_n)
		GROUP BY k_s, k_a, k_n ORDER BY k_s, k_a, k_n`
	var n store.ServerName
	return s.c.each(ctx, "server names", q, func(r *tsvReader) error {
		n = store.ServerName{Sensor: r.Field(0), Src: r.Addr(1), Name: r.Field(2), Count: r.Int(3)}
		return fn(&n)
	})
}

// TLSSessions implements store.Analytics: handshakes are aggregated with
// their first certificate's key, then joined with the certificates
// aggregated per key.
func (s *Store) TLSSessions(ctx context.Context, w store.Window, fn func(*store.TLSSession) error) error {
	q := `SELECT k_s, k_a, k_b, k_p, k_sn, k_ja3, k_ja4, k_vs, k_sni, cert_k,
			ifNull(k_subj, c_subject) AS o_subj, ifNull(k_iss, c_issuer) AS o_iss, c_nb, c_na, arrayStringConcat(c_names, ','),
			est, n, f, l
		FROM (
			SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, ifNull(id_resp_h, '') AS k_b, ifNull(id_resp_p, 0) AS k_p,
				ifNull(server_name, '') AS k_sn, ifNull(ja3, '') AS k_ja3, ifNull(ja4, '') AS k_ja4, ifNull(validation_status, '') AS k_vs,
				multiIf(sni_matches_cert = 1, 'T', sni_matches_cert = 0, 'F', '') AS k_sni,
				if(notEmpty(cert_chain_fps), cert_chain_fps[1], if(notEmpty(cert_chain_fuids), cert_chain_fuids[1], '')) AS cert_k,
				subject AS k_subj, issuer AS k_iss, countIf(established = 1) AS est, count() AS n, min(ts) AS f, max(ts) AS l
			FROM ssl WHERE ` + where(w, "ts") + `
			GROUP BY k_s, k_a, k_b, k_p, k_sn, k_ja3, k_ja4, k_vs, k_sni, cert_k, k_subj, k_iss)
		ANY LEFT JOIN (
			SELECT ifNull(fingerprint, ifNull(id, '')) AS cert_k, ifNull(any(certificate_subject), '') AS c_subject,
				ifNull(any(certificate_issuer), '') AS c_issuer, max(certificate_not_valid_before) AS c_nb,
				max(certificate_not_valid_after) AS c_na, any(san_dns) AS c_names
			FROM x509 WHERE cert_k != '' GROUP BY cert_k) USING cert_k
		ORDER BY k_s, k_a, k_b, k_p, k_sn, k_ja3, k_ja4, k_vs, k_sni, cert_k, o_subj, o_iss`
	var t store.TLSSession
	return s.c.each(ctx, "tls sessions", q, func(r *tsvReader) error {
		t = store.TLSSession{Sensor: r.Field(0), Src: r.Addr(1), Dst: r.Addr(2), DstPort: uint16(r.Int(3)), ServerName: r.Field(4), //nolint:gosec // G115: UInt16 column
			JA3: r.Field(5), JA4: r.Field(6), ValidationStatus: r.Field(7), SNIMatchesCert: r.Field(8), CertFingerprint: r.Field(9),
			Subject: r.Field(10), Issuer: r.Field(11), NotBefore: r.Time(12), NotAfter: r.Time(13), CertNames: splitList(r.Field(14)),
			Established: r.Int(15), Count: r.Int(16), First: r.Time(17), Last: r.Time(18)}
		return fn(&t)
	})
}

// HTTPRequests implements store.Analytics.
func (s *Store) HTTPRequests(ctx context.Context, w store.Window, fn func(*store.HTTPRequest) error) error {
	q := `SELECT ifNull(sensor, '') AS k_s, ifNull(id_orig_h, '') AS k_a, ifNull(id_resp_h, '') AS k_b, ifNull(id_resp_p, 0) AS k_p,
		ifNull(host, '') AS k_h, ifNull(method, '') AS k_m, splitByChar('?', ifNull(uri, ''))[1] AS k_u, ifNull(user_agent, '') AS k_ua,
		count(), ifNull(sum(request_body_len), 0), min(ts), max(ts),
		countIf(arrayExists(x -> x IN ('` + strings.Join(store.ExecutableMIME(), "', '") + `'), resp_mime_types)),
		arrayStringConcat(arrayMap(x -> toString(x), arraySort(groupUniqArrayIf(assumeNotNull(status_code), isNotNull(status_code)))), ',')
		FROM http WHERE ` + where(w, "ts") + ` GROUP BY k_s, k_a, k_b, k_p, k_h, k_m, k_u, k_ua
		ORDER BY k_s, k_a, k_b, k_p, k_h, k_m, k_u, k_ua`
	var h store.HTTPRequest
	return s.c.each(ctx, "http requests", q, func(r *tsvReader) error {
		h = store.HTTPRequest{Sensor: r.Field(0), Src: r.Addr(1), Dst: r.Addr(2), DstPort: uint16(r.Int(3)), Host: r.Field(4), //nolint:gosec // G115: UInt16 column
			Method: r.Field(5), Path: r.Field(6), UserAgent: r.Field(7), Count: r.Int(8), RequestBytes: r.Int(9), First: r.Time(10),
			Last: r.Time(11), Executables: r.Int(12), Statuses: h.Statuses[:0]}
		for _, v := range splitList(r.Field(13)) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			h.Statuses = append(h.Statuses, n)
		}
		return fn(&h)
	})
}

// FloodVectors implements store.Analytics.
func (s *Store) FloodVectors(ctx context.Context, w store.Window, minPackets int64, fn func(*store.FloodVector) error) error {
	cond := where(w, "ts") + " AND isNotNull(dst_addr)"
	const scaled = "packets * greatest(ifNull(sampling, 1), 1)"
	minute := "intDiv(ts, 60000000)"
	if minPackets > 0 {
		cond += ` AND (ifNull(sensor, ''), ifNull(dst_addr, ''), ` + minute + `) GLOBAL IN (
			SELECT ifNull(sensor, '') AS p_s, ifNull(dst_addr, '') AS p_d, ` + minute + ` AS p_m FROM flow WHERE ` + cond + `
			GROUP BY p_s, p_d, p_m HAVING sum(` + scaled + `) >= ` + strconv.FormatInt(minPackets, 10) + `)`
	}
	ports := make([]string, 0, 20)
	for _, p := range store.ReflectionPorts() {
		ports = append(ports, strconv.Itoa(int(p)))
	}
	vector := `multiIf(proto = 'tcp' AND bitAnd(ifNull(tcp_flags, 0), 18) = 2, 'tcp-syn',
		proto = 'tcp' AND bitAnd(ifNull(tcp_flags, 0), 31) = 18, 'tcp-synack',
		proto = 'udp' AND ifNull(src_port, 0) = 0 AND ifNull(dst_port, 0) = 0, 'udp-fragment',
		proto = 'udp' AND src_port IN (` + strings.Join(ports, ", ") + `), concat('udp/', toString(assumeNotNull(src_port))), ifNull(proto, ''))`
	q := `SELECT ifNull(sensor, '') AS k_s, assumeNotNull(dst_addr) AS k_d, ` + minute + ` AS k_m, ` + vector + ` AS k_v,
		count(), sum(` + scaled + `), sum(bytes * greatest(ifNull(sampling, 1), 1)), uniqExact(src_addr)
		FROM flow WHERE ` + cond + ` GROUP BY k_s, k_d, k_m, k_v ORDER BY k_s, k_d, k_m, k_v`
	var v store.FloodVector
	return s.c.each(ctx, "flood vectors", q, func(r *tsvReader) error {
		v = store.FloodVector{Sensor: r.Field(0), Dst: r.Addr(1), Minute: time.Unix(r.Int(2)*60, 0).UTC(), Vector: r.Field(3),
			Flows: r.Int(4), Packets: r.Int(5), Bytes: r.Int(6), Sources: r.Int(7)}
		return fn(&v)
	})
}
