package clickhouse

import (
	"context"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytics of what hosts reached and sent: names that resolved to
// addresses, fan-out to many targets, transfers.

// addrText keeps the values of col written as addresses (DNS answers
// that are not names, TXT data...): dotted digits, or hex digits and
// colons. The text is parsed again in Go, which drops what only looks
// like one.
func addrText(col string) string {
	return "(match(" + col + `, '^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$') OR (position(` + col + `, ':') > 0 AND match(` + col + `, '^[0-9a-fA-F:.]+$')))`
}

// Resolved implements store.Analytics. Answers are kept when written as
// addresses and parsed again here, which drops what only looks like one.
func (s *Store) Resolved(ctx context.Context, w store.Window, fn func(*store.Resolution) error) error {
	q := `SELECT ifNull(sensor, '') AS k_s, a AS k_a, ifNull(min(query), ''), min(ts), max(ts)
		FROM (SELECT sensor, query, ts, arrayJoin(answers) AS a FROM dns WHERE ` + where(w, "ts") + ` AND notEmpty(answers))
		WHERE ` + addrText("a") + `
		GROUP BY k_s, k_a ORDER BY k_s, k_a`
	var res store.Resolution
	return s.c.each(ctx, "resolved addresses", q, func(r *tsvReader) error {
		res = store.Resolution{Sensor: r.Field(0), Addr: r.Addr(1), Name: r.Field(2), First: r.Time(3), Last: r.Time(4)}
		if !res.Addr.IsValid() {
			return nil
		}
		return fn(&res)
	})
}

// probeCond is a connection Fanout (and PairStat.Probes) counts as a
// probe.
func probeCond() string {
	return "conn_state IN ('" + strings.Join(store.ProbeStates(), "', '") + "') AND ifNull(resp_bytes, 0) = 0"
}

// Fanout implements store.Analytics.
func (s *Store) Fanout(ctx context.Context, w store.Window, f store.FanoutFilter, fn func(*store.Fanout) error) error {
	group, target := "ifNull(id_resp_p, 0)", "id_resp_h"
	if f.By == store.FanoutByHost {
		group, target = "assumeNotNull(id_resp_h)", "ifNull(id_resp_p, 0)"
	}
	q := `SELECT ifNull(sensor, '') AS k_s, assumeNotNull(id_orig_h) AS k_a, ifNull(proto, '') AS k_pr, ` + group + ` AS k_g,
		uniqExact(` + target + `), count(), countIf(` + probeCond() + `), min(ts), max(ts)
		FROM ` + connsFrom(w) + ` WHERE ` + where(w, "ts") + ` AND isNotNull(id_orig_h) AND isNotNull(id_resp_h) AND ifNull(orig_pkts, 1) > 0
		GROUP BY k_s, k_a, k_pr, k_g HAVING uniqExact(` + target + `) >= ` + strconv.FormatInt(f.MinTargets, 10) + `
		ORDER BY k_s, k_a, k_pr, k_g`
	var x store.Fanout
	return s.c.each(ctx, "fan-out", q, func(r *tsvReader) error {
		x = store.Fanout{Sensor: r.Field(0), Src: r.Addr(1), Proto: r.Field(2), Targets: r.Int(4), Conns: r.Int(5), Probes: r.Int(6),
			First: r.Time(7), Last: r.Time(8)}
		if f.By == store.FanoutByHost {
			x.Dst = r.Addr(3)
		} else {
			x.Port = uint16(r.Int(3)) //nolint:gosec // G115: UInt16 column
		}
		return fn(&x)
	})
}

// Uploads implements store.Analytics. The parts of the union cast every
// column: ClickHouse 18.16 unites only identical types.
func (s *Store) Uploads(ctx context.Context, w store.Window, f store.UploadFilter, fn func(*store.Upload) error) error {
	cond, min := where(w, "ts"), strconv.FormatInt(f.MinBytes, 10)
	parts := []string{`SELECT ifNull(sensor, '') AS u_s, 'conn' AS u_log, ts AS u_ts, ifNull(uid, '') AS u_uid, assumeNotNull(id_orig_h) AS u_src,
		ifNull(id_resp_h, '') AS u_dst, toUInt16(ifNull(id_resp_p, 0)) AS u_port, toInt64(ifNull(orig_bytes, 0)) AS u_sent,
		toInt64(ifNull(resp_bytes, 0)) AS u_recv, toFloat64(ifNull(duration, 0)) AS u_dur, '' AS u_m, '' AS u_h, '' AS u_ua, '' AS u_mime, '' AS u_fn,
		'' AS u_uri, '' AS u_md5, '' AS u_sha1, '' AS u_sha256, ifNull(source_file, '') AS u_file, toInt64(ifNull(source_line, 0)) AS u_line
		FROM ` + connsFrom(w) + ` WHERE ` + cond + ` AND isNotNull(id_orig_h) AND ifNull(orig_bytes, 0) >= ` + min}
	if w.Conns == store.ConnLog {
		parts = append(parts, `SELECT ifNull(sensor, ''), 'http', ts, ifNull(uid, ''), assumeNotNull(id_orig_h), ifNull(id_resp_h, ''),
			toUInt16(ifNull(id_resp_p, 0)), toInt64(ifNull(request_body_len, 0)), toInt64(ifNull(response_body_len, 0)), toFloat64(0),
			ifNull(method, ''), ifNull(host, ''), ifNull(user_agent, ''), if(notEmpty(orig_mime_types), orig_mime_types[1], ''),
			if(notEmpty(orig_filenames), orig_filenames[1], ''), ifNull(uri, ''), '', '', '', ifNull(source_file, ''), toInt64(ifNull(source_line, 0))
			FROM http WHERE `+cond+` AND isNotNull(id_orig_h) AND ifNull(request_body_len, 0) >= `+min,
			`SELECT f_s, 'files', f_ts, f_uid, f_src, f_dst, f_port, f_sent, toInt64(0), toFloat64(0), '', '', '', f_mime, f_fn, '',
				f_md5, f_sha1, f_sha256, f_file, f_line FROM (
				SELECT ifNull(sensor, '') AS f_s, ts AS f_ts, ifNull(uid, '') AS f_uid,
					multiIf(notEmpty(tx_hosts), tx_hosts[1], ifNull(is_orig, 0) = 1, ifNull(id_orig_h, ''), ifNull(id_resp_h, '')) AS f_src,
					multiIf(notEmpty(tx_hosts), if(notEmpty(rx_hosts), rx_hosts[1], ''), ifNull(is_orig, 0) = 1, ifNull(id_resp_h, ''), ifNull(id_orig_h, '')) AS f_dst,
					toUInt16(ifNull(id_resp_p, 0)) AS f_port, toInt64(ifNull(seen_bytes, 0)) AS f_sent, ifNull(mime_type, '') AS f_mime,
					ifNull(filename, '') AS f_fn, ifNull(md5, '') AS f_md5, ifNull(sha1, '') AS f_sha1, ifNull(sha256, '') AS f_sha256,
					ifNull(source_file, '') AS f_file, toInt64(ifNull(source_line, 0)) AS f_line
				FROM files WHERE `+cond+` AND ifNull(seen_bytes, 0) >= `+min+`) WHERE f_src != ''`)
	}
	q := `SELECT * FROM (` + strings.Join(parts, " UNION ALL ") + `) WHERE ` + sidesCond(f.Sides, "u_src", "nullIf(u_dst, '')") + `
		ORDER BY u_s, u_src, u_dst = '', u_dst, u_ts, u_log, u_uid, u_sent`
	var u store.Upload
	return s.c.each(ctx, "uploads", q, func(r *tsvReader) error {
		u = store.Upload{Sensor: r.Field(0), Log: r.Field(1), TS: r.Time(2), UID: r.Field(3), Src: r.Addr(4), Dst: r.Addr(5),
			DstPort: uint16(r.Int(6)), Bytes: r.Int(7), Received: r.Int(8), Duration: r.Seconds(9), //nolint:gosec // G115: UInt16 column
			Method: r.Field(10), Host: r.Field(11), Agent: r.Field(12), MIME: r.Field(13), Filename: r.Field(14),
			URI: r.Field(15), MD5: r.Field(16), SHA1: r.Field(17), SHA256: r.Field(18), File: r.Field(19), Line: r.Int(20)}
		return fn(&u)
	})
}

// PassiveDNS implements store.Analytics. Each part casts its columns:
// ClickHouse 18.16 unites only identical types.
func (s *Store) PassiveDNS(ctx context.Context, w store.Window, f store.NameFilter, fn func(*store.NameAddr) error) error {
	cond := where(w, "ts")
	keep := "1"
	if len(f.Addrs) > 0 || len(f.Names) > 0 || len(f.Labels) > 0 {
		parts := []string{"p_a IN " + addrList(f.Addrs), "p_n IN " + stringList(f.Names)}
		if len(f.Labels) > 0 {
			parts = append(parts, "hasAny(splitByChar('.', p_n), array"+stringList(f.Labels)+")")
		}
		for _, name := range f.Names {
			parts = append(parts, "endsWith(p_n, "+quoteString("."+name)+")")
		}
		keep = "(" + strings.Join(parts, " OR ") + ")"
	}
	q := `SELECT p_log, p_n, p_a, count(), min(p_ts), max(p_ts) FROM (
			SELECT 'dns' AS p_log, lower(ifNull(query, '')) AS p_n, arrayJoin(answers) AS p_a, ts AS p_ts FROM dns
				WHERE ` + cond + ` AND notEmpty(answers) AND ifNull(query, '') != ''
			UNION ALL SELECT 'ssl', lower(ifNull(server_name, '')), ifNull(id_resp_h, ''), ts FROM ssl WHERE ` + cond + ` AND ifNull(server_name, '') != ''
			UNION ALL SELECT 'http', lower(ifNull(host, '')), ifNull(id_resp_h, ''), ts FROM http WHERE ` + cond + ` AND ifNull(host, '') != ''
				AND position(ifNull(host, ''), ':') = 0 AND NOT match(ifNull(host, ''), '^[0-9.]+$'))
		WHERE ` + addrText("p_a") + ` AND ` + keep + `
		GROUP BY p_log, p_n, p_a ORDER BY p_n, p_a, p_log`
	var x store.NameAddr
	return s.c.each(ctx, "passive DNS", q, func(r *tsvReader) error {
		x = store.NameAddr{Log: r.Field(0), Name: r.Field(1), Addr: r.Addr(2), Count: r.Int(3), First: r.Time(4), Last: r.Time(5)}
		if !x.Addr.IsValid() {
			return nil
		}
		return fn(&x)
	})
}

// ServerPrints implements store.Analytics.
func (s *Store) ServerPrints(ctx context.Context, w store.Window, f store.PrintFilter, fn func(*store.ServerPrint) error) error {
	cond := where(w, "ts")
	keep := "1"
	if len(f.Addrs) > 0 || len(f.Values) > 0 {
		keep = "(s_a IN " + addrList(f.Addrs) + " OR s_v IN " + stringList(f.Values) + ")"
	}
	q := `SELECT s_k, s_v, s_a, count(), uniqExact(s_c), min(s_ts), max(s_ts) FROM (
			SELECT '` + store.PrintCert + `' AS s_k, cert_chain_fps[1] AS s_v, ifNull(id_resp_h, '') AS s_a, id_orig_h AS s_c, ts AS s_ts FROM ssl
				WHERE ` + cond + ` AND notEmpty(cert_chain_fps)
			UNION ALL SELECT '` + store.PrintJA3S + `', ifNull(ja3s, ''), ifNull(id_resp_h, ''), id_orig_h, ts FROM ssl WHERE ` + cond + ` AND ifNull(ja3s, '') != ''
			UNION ALL SELECT '` + store.PrintJA4S + `', ifNull(ja4s, ''), ifNull(id_resp_h, ''), id_orig_h, ts FROM ssl WHERE ` + cond + ` AND ifNull(ja4s, '') != ''
			UNION ALL SELECT '` + store.PrintServer + `', ifNull(server, ''), ifNull(id_resp_h, ''), id_orig_h, ts FROM http WHERE ` + cond + ` AND ifNull(server, '') != '')
		WHERE s_a != '' AND s_v != '' AND ` + keep + ` GROUP BY s_k, s_v, s_a ORDER BY s_k, s_v, s_a`
	var x store.ServerPrint
	return s.c.each(ctx, "server fingerprints", q, func(r *tsvReader) error {
		x = store.ServerPrint{Kind: r.Field(0), Value: r.Field(1), Addr: r.Addr(2), Count: r.Int(3), Clients: r.Int(4), First: r.Time(5), Last: r.Time(6)}
		if !x.Addr.IsValid() {
			return nil
		}
		return fn(&x)
	})
}
