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
	q := `SELECT coalesce(sensor, ''), a, count(DISTINCT query), coalesce(min(query), ''), count(DISTINCT id_orig_h), min(ts), max(ts)
		FROM (SELECT sensor, query, id_orig_h, ts, unnest(answers) AS a FROM dns WHERE ` + cond + ` AND len(answers) > 0)
		WHERE ` + addrPattern + ` GROUP BY ALL ORDER BY 1, 2`
	var res store.Resolution
	return s.each(ctx, "resolved addresses", q, args, func(r *sql.Rows) error {
		var a sql.NullString
		if err := r.Scan(&res.Sensor, &a, &res.Names, &res.Name, &res.Clients, &res.First, &res.Last); err != nil {
			return err
		}
		if res.Addr = addr(a); !res.Addr.IsValid() {
			return nil
		}
		res.First, res.Last = res.First.UTC(), res.Last.UTC()
		return fn(&res)
	})
}

// probeSQL is a connection Fanout counts as a probe.
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
	q := `SELECT sn, a, pr, ` + group + `, count(*), sum(n)::BIGINT, sum(pn)::BIGINT, min(f), max(l) FROM (
			SELECT coalesce(sensor, '') AS sn, id_orig_h AS a, coalesce(proto, '') AS pr, id_resp_h AS d, coalesce(id_resp_p, 0) AS p,
				count(*) AS n, count(*) FILTER (WHERE ` + probeSQL() + `) AS pn, min(ts) AS f, max(ts) AS l
			FROM conn WHERE ` + cond + ` AND id_orig_h IS NOT NULL AND id_resp_h IS NOT NULL AND coalesce(orig_pkts, 1) > 0 GROUP BY ALL)
		GROUP BY ALL HAVING count(*) >= ` + strconv.FormatInt(f.MinTargets, 10) + ` ORDER BY 1, 2, 3, 4`
	var x store.Fanout
	q, err := s.withConns(ctx, w, q)
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
		coalesce(duration, 0) AS dur, '' AS method, '' AS host, '' AS agent, '' AS mime, '' AS filename
		FROM conn WHERE ` + cond + ` AND id_orig_h IS NOT NULL AND coalesce(orig_bytes, 0) >= ` + min}
	all := args
	if w.Conns == store.ConnLog {
		parts = append(parts, `SELECT coalesce(sensor, ''), 'http', ts, coalesce(uid, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0),
			least(coalesce(request_body_len, 0), 9223372036854775807)::BIGINT, least(coalesce(response_body_len, 0), 9223372036854775807)::BIGINT, 0, coalesce(method, ''), coalesce(host, ''),
			coalesce(user_agent, ''), coalesce(orig_mime_types[1], ''), coalesce(orig_filenames[1], '')
			FROM http WHERE `+cond+` AND id_orig_h IS NOT NULL AND coalesce(request_body_len, 0) >= `+min,
			`SELECT * FROM (SELECT coalesce(sensor, ''), 'files', ts, coalesce(uid, ''),
				CASE WHEN len(tx_hosts) > 0 THEN tx_hosts[1] WHEN is_orig THEN id_orig_h ELSE id_resp_h END AS src,
				CASE WHEN len(tx_hosts) > 0 THEN rx_hosts[1] WHEN is_orig THEN id_resp_h ELSE id_orig_h END,
				coalesce(id_resp_p, 0), least(coalesce(seen_bytes, 0), 9223372036854775807)::BIGINT, 0, 0, '', '', '', coalesce(mime_type, ''), coalesce(filename, '')
				FROM files WHERE `+cond+` AND coalesce(seen_bytes, 0) >= `+min+`) WHERE src IS NOT NULL`)
		all = append(append(append([]any{}, args...), args...), args...)
	}
	sc, sargs := sidesCond(f.Sides, "src", "dst")
	all = append(append([]any{}, all...), sargs...)
	q := `SELECT * FROM (` + strings.Join(parts, " UNION ALL ") + `) WHERE ` + sc + ` ORDER BY sensor, src, dst, ts, log, uid, sent`
	var u store.Upload
	q, err := s.withConns(ctx, w, q)
	if err != nil {
		return err
	}
	return s.each(ctx, "uploads", q, all, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var port int64
		var dur float64
		if err := r.Scan(&u.Sensor, &u.Log, &u.TS, &u.UID, &src, &dst, &port, &u.Bytes, &u.Received, &dur,
			&u.Method, &u.Host, &u.Agent, &u.MIME, &u.Filename); err != nil {
			return err
		}
		u.Src, u.Dst, u.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT columns
		u.TS, u.Duration = u.TS.UTC(), seconds(sql.NullFloat64{Float64: dur, Valid: true})
		return fn(&u)
	})
}
