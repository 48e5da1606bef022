package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytics of what hosts reached and sent: names that resolved to
// addresses, fan-out to many targets, transfers.

// addrPattern keeps DNS answers written as addresses; the text is parsed
// again in Go, which drops what only looks like one.
const addrPattern = `(regexp_full_match(a, '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+') OR (contains(a, ':') AND regexp_full_match(a, '[0-9a-fA-F:.]+')))`

// Resolved implements store.Analytics.
func (s *Store) Resolved(ctx context.Context, w store.Window, fn func(*store.Resolution) error) error {
	cond, args := where(w, "")
	q := `SELECT coalesce(sensor, ''), a, coalesce(min(query), ''), min(ts), max(ts)
		FROM (SELECT sensor, query, ts, unnest(answers) AS a FROM dns WHERE ` + cond + ` AND len(answers) > 0)
		WHERE ` + addrPattern + ` GROUP BY ALL ORDER BY 1, 2`
	var res store.Resolution
	return s.each(ctx, "resolved addresses", q, args, func(r *sql.Rows) error {
		var a sql.NullString
		if err := r.Scan(&res.Sensor, &a, &res.Name, &res.First, &res.Last); err != nil {
			return err
		}
		if res.Addr = addr(a); !res.Addr.IsValid() {
			return nil
		}
		res.First, res.Last = res.First.UTC(), res.Last.UTC()
		return fn(&res)
	})
}

// probeSQL is a connection Fanout (and PairStat.Probes) counts as a probe.
func probeSQL() string {
	return "conn_state IN ('" + strings.Join(store.ProbeStates(), "', '") + "') AND coalesce(resp_bytes, 0) = 0"
}

// Fanout implements store.Analytics. The distinct (destination, port)
// combinations of each source are found first, by a plain aggregation,
// and counted per port or destination after: far cheaper in DuckDB than
// a distinct count over every record.
func (s *Store) Fanout(ctx context.Context, w store.Window, f store.FanoutFilter, fn func(*store.Fanout) error) error {
	cond, args := where(w, "")
	group := "p"
	if f.By == store.FanoutByHost {
		group = "d"
	}
	// proto is grouped as it is stored (a code in DuckDB's conn,
	// layout.go), made text once a group.
	q := `SELECT sn, a, coalesce(pr, ''), ` + group + `, count(*), sum(n)::BIGINT, sum(pn)::BIGINT, min(f), max(l) FROM (
			SELECT coalesce(sensor, '') AS sn, id_orig_h AS a, proto AS pr, id_resp_h AS d, coalesce(id_resp_p, 0) AS p,
				count(*) AS n, count(*) FILTER (WHERE ` + probeSQL() + `) AS pn, min(ts) AS f, max(ts) AS l
			FROM conn WHERE ` + cond + ` AND id_orig_h IS NOT NULL AND id_resp_h IS NOT NULL AND coalesce(orig_pkts, 1) > 0 GROUP BY ALL)
		GROUP BY ALL HAVING count(*) >= ` + strconv.FormatInt(f.MinTargets, 10) + ` ORDER BY 1, 2, 3, 4`
	var x store.Fanout
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "fan-out", q, args, func(r *sql.Rows) error {
		var src sql.NullString
		var key any
		if err := r.Scan(&x.Sensor, &src, &x.Proto, &key, &x.Targets, &x.Conns, &x.Probes, &x.First, &x.Last); err != nil {
			return err
		}
		x.Src, x.Port, x.Dst = addr(src), 0, addr(sql.NullString{})
		switch k := key.(type) {
		case string:
			x.Dst = addr(sql.NullString{String: k, Valid: true})
		case uint16:
			x.Port = k
		case int64:
			x.Port = uint16(k) //nolint:gosec // G115: a USMALLINT column
		default:
			return fmt.Errorf("fan-out key of type %T", key)
		}
		x.First, x.Last = x.First.UTC(), x.Last.UTC()
		return fn(&x)
	})
}

// Uploads implements store.Analytics.
func (s *Store) Uploads(ctx context.Context, w store.Window, f store.UploadFilter, fn func(*store.Upload) error) error {
	cond, args := where(w, "")
	min := strconv.FormatInt(f.MinBytes, 10)
	parts := []string{`SELECT coalesce(sensor, '') AS sensor, 'conn' AS log, ts, coalesce(uid, '') AS uid, id_orig_h AS src, id_resp_h AS dst,
		coalesce(id_resp_p, 0) AS port, least(coalesce(orig_bytes, 0), 9223372036854775807)::BIGINT AS sent, least(coalesce(resp_bytes, 0), 9223372036854775807)::BIGINT AS received,
		coalesce(duration, 0) AS dur, '' AS method, '' AS host, '' AS agent, '' AS mime, '' AS filename,
		'' AS uri, '' AS md5, '' AS sha1, '' AS sha256, coalesce(source_file, '') AS file, coalesce(source_line, 0)::BIGINT AS line
		FROM conn WHERE ` + cond + ` AND id_orig_h IS NOT NULL AND coalesce(orig_bytes, 0) >= ` + min}
	all := args
	if w.Conns == store.ConnLog {
		parts = append(parts, `SELECT coalesce(sensor, ''), 'http', ts, coalesce(uid, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0),
			least(coalesce(request_body_len, 0), 9223372036854775807)::BIGINT, least(coalesce(response_body_len, 0), 9223372036854775807)::BIGINT, 0, coalesce(method, ''), coalesce(host, ''),
			coalesce(user_agent, ''), coalesce(orig_mime_types[1], ''), coalesce(orig_filenames[1], ''),
			coalesce(uri, ''), '', '', '', coalesce(source_file, ''), coalesce(source_line, 0)::BIGINT
			FROM http WHERE `+cond+` AND id_orig_h IS NOT NULL AND coalesce(request_body_len, 0) >= `+min,
			`SELECT * FROM (SELECT coalesce(sensor, ''), 'files', ts, coalesce(uid, ''),
				CASE WHEN len(tx_hosts) > 0 THEN tx_hosts[1] WHEN is_orig THEN id_orig_h ELSE id_resp_h END AS src,
				CASE WHEN len(tx_hosts) > 0 THEN rx_hosts[1] WHEN is_orig THEN id_resp_h ELSE id_orig_h END,
				coalesce(id_resp_p, 0), least(coalesce(seen_bytes, 0), 9223372036854775807)::BIGINT, 0, 0, '', '', '', coalesce(mime_type, ''), coalesce(filename, ''),
				'', coalesce(md5, ''), coalesce(sha1, ''), coalesce(sha256, ''), coalesce(source_file, ''), coalesce(source_line, 0)::BIGINT
				FROM files WHERE `+cond+` AND coalesce(seen_bytes, 0) >= `+min+`) WHERE src IS NOT NULL`)
		all = append(append(append([]any{}, args...), args...), args...)
	}
	sc, sargs := sidesCond(f.Sides, "src", "dst")
	all = append(append([]any{}, all...), sargs...)
	q := `SELECT * FROM (` + strings.Join(parts, " UNION ALL ") + `) WHERE ` + sc + ` ORDER BY sensor, src, dst, ts, log, uid, sent`
	var u store.Upload
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "uploads", q, all, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var port int64
		var dur float64
		if err := r.Scan(&u.Sensor, &u.Log, &u.TS, &u.UID, &src, &dst, &port, &u.Bytes, &u.Received, &dur,
			&u.Method, &u.Host, &u.Agent, &u.MIME, &u.Filename, &u.URI, &u.MD5, &u.SHA1, &u.SHA256, &u.File, &u.Line); err != nil {
			return err
		}
		u.Src, u.Dst, u.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT columns
		u.TS, u.Duration = u.TS.UTC(), seconds(sql.NullFloat64{Float64: dur, Valid: true})
		return fn(&u)
	})
}

// PassiveDNS implements store.Analytics.
func (s *Store) PassiveDNS(ctx context.Context, w store.Window, f store.NameFilter, fn func(*store.NameAddr) error) error {
	cond, args := where(w, "")
	all := append(append(append([]any{}, args...), args...), args...)
	keep := "true"
	if len(f.Addrs) > 0 || len(f.Names) > 0 || len(f.Labels) > 0 {
		parts := []string{"a IN (SELECT unnest(?::VARCHAR[]))", "n IN (SELECT unnest(?::VARCHAR[]))",
			"list_has_any(string_split(n, '.'), ?::VARCHAR[])"}
		all = append(all, addrList(f.Addrs), f.Names, f.Labels)
		for _, name := range f.Names {
			parts = append(parts, "ends_with(n, ?)")
			all = append(all, "."+name)
		}
		keep = "(" + strings.Join(parts, " OR ") + ")"
	}
	q := `SELECT log, n, a, count(*)::BIGINT, min(ts), max(ts) FROM (
			SELECT 'dns' AS log, lower(query) AS n, unnest(answers) AS a, ts FROM dns WHERE ` + cond + ` AND len(answers) > 0 AND coalesce(query, '') <> ''
			UNION ALL SELECT 'ssl', lower(server_name), id_resp_h, ts FROM ssl WHERE ` + cond + ` AND coalesce(server_name, '') <> ''
			UNION ALL SELECT 'http', lower(host), id_resp_h, ts FROM http WHERE ` + cond + ` AND coalesce(host, '') <> ''
				AND NOT contains(host, ':') AND NOT regexp_full_match(host, '[0-9.]+'))
		WHERE a IS NOT NULL AND ` + addrPattern + ` AND ` + keep + ` GROUP BY ALL ORDER BY n, a, log`
	var x store.NameAddr
	return s.each(ctx, "passive DNS", q, all, func(r *sql.Rows) error {
		var a sql.NullString
		if err := r.Scan(&x.Log, &x.Name, &a, &x.Count, &x.First, &x.Last); err != nil {
			return err
		}
		if x.Addr = addr(a); !x.Addr.IsValid() {
			return nil
		}
		x.First, x.Last = x.First.UTC(), x.Last.UTC()
		return fn(&x)
	})
}

// ServerPrints implements store.Analytics.
func (s *Store) ServerPrints(ctx context.Context, w store.Window, f store.PrintFilter, fn func(*store.ServerPrint) error) error {
	cond, args := where(w, "")
	all := append(append(append(append([]any{}, args...), args...), args...), args...)
	keep := "true"
	if len(f.Addrs) > 0 || len(f.Values) > 0 {
		keep = "(a IN (SELECT unnest(?::VARCHAR[])) OR v IN (SELECT unnest(?::VARCHAR[])))"
		all = append(all, addrList(f.Addrs), f.Values)
	}
	q := `SELECT k, v, a, count(*)::BIGINT, count(DISTINCT c)::BIGINT, min(ts), max(ts) FROM (
			SELECT '` + store.PrintCert + `' AS k, cert_chain_fps[1] AS v, id_resp_h AS a, id_orig_h AS c, ts FROM ssl
				WHERE ` + cond + ` AND len(coalesce(cert_chain_fps, [])) > 0
			UNION ALL SELECT '` + store.PrintJA3S + `', ja3s, id_resp_h, id_orig_h, ts FROM ssl WHERE ` + cond + ` AND coalesce(ja3s, '') <> ''
			UNION ALL SELECT '` + store.PrintJA4S + `', ja4s, id_resp_h, id_orig_h, ts FROM ssl WHERE ` + cond + ` AND coalesce(ja4s, '') <> ''
			UNION ALL SELECT '` + store.PrintServer + `', server, id_resp_h, id_orig_h, ts FROM http WHERE ` + cond + ` AND coalesce(server, '') <> '')
		WHERE a IS NOT NULL AND coalesce(v, '') <> '' AND ` + keep + ` GROUP BY ALL ORDER BY k, v, a`
	var x store.ServerPrint
	return s.each(ctx, "server fingerprints", q, all, func(r *sql.Rows) error {
		var a sql.NullString
		if err := r.Scan(&x.Kind, &x.Value, &a, &x.Count, &x.Clients, &x.First, &x.Last); err != nil {
			return err
		}
		if x.Addr = addr(a); !x.Addr.IsValid() {
			return nil
		}
		x.First, x.Last = x.First.UTC(), x.Last.UTC()
		return fn(&x)
	})
}
