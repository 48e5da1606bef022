package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/internal/store"
)

var _ store.Analytics = (*Store)(nil)

// where returns the SQL condition and arguments for a window on column ts
// of table alias a ("" for none).
func where(w store.Window, a string) (string, []any) {
	col := "ts"
	if a != "" {
		col = a + ".ts"
	}
	var conds []string
	var args []any
	if !w.Since.IsZero() {
		conds = append(conds, col+" >= ?")
		args = append(args, w.Since.UTC())
	}
	if !w.Until.IsZero() {
		conds = append(conds, col+" < ?")
		args = append(args, w.Until.UTC())
	}
	if len(conds) == 0 {
		return "true", nil
	}
	return strings.Join(conds, " AND "), args
}

// each runs query and calls scan for every row.
func (s *Store) each(ctx context.Context, what, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, query, utf8Args(args)...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, outOfMemory(err))
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, outOfMemory(err))
	}
	return nil
}

// outOfMemory marks DuckDB's out-of-memory errors as store.ErrOutOfMemory,
// keeping their text.
func outOfMemory(err error) error {
	var e *duckdb.Error
	if errors.As(err, &e) && e.Type == duckdb.ErrorTypeOutOfMemory {
		return oomError{err}
	}
	return err
}

// oomError is an error that ran out of the store's memory.
type oomError struct{ error }

// Is implements errors.Is for store.ErrOutOfMemory.
func (oomError) Is(target error) bool { return target == store.ErrOutOfMemory }

// Unwrap returns DuckDB's error.
func (e oomError) Unwrap() error { return e.error }

// addr parses an address column; NULL or garbage is the zero Addr.
func addr(s sql.NullString) netip.Addr {
	a, _ := netip.ParseAddr(s.String)
	return a
}

func seconds(f sql.NullFloat64) time.Duration {
	if !f.Valid || math.IsNaN(f.Float64) || math.IsInf(f.Float64, 0) {
		return 0
	}
	return time.Duration(math.Round(f.Float64*1e6)) * time.Microsecond
}

// Span implements store.Analytics.
func (s *Store) Span(ctx context.Context, w store.Window) (first, last time.Time, n int64, ok bool, err error) {
	cond, args := where(w, "")
	var f, l sql.NullTime
	q, done, err := s.withConns(ctx, w, "SELECT min(ts), max(ts), count(*) FROM conn WHERE "+cond)
	defer done()
	if err != nil {
		return first, last, 0, false, err
	}
	err = s.db.QueryRowContext(ctx, q, utf8Args(args)...).Scan(&f, &l, &n)
	if err != nil {
		return first, last, 0, false, fmt.Errorf("span of conn: %w", err)
	}
	return f.Time.UTC(), l.Time.UTC(), n, n > 0 && f.Valid, nil
}

// failedStates are conn_state values of connections that were refused or
// never answered.
const failedStates = `('REJ', 'S0', 'RSTOS0', 'RSTRH', 'SH', 'SHR')`

// Pairs implements store.Analytics.
func (s *Store) Pairs(ctx context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	cond, args := where(w, "")
	sc, sargs := sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	cond += " AND " + sc
	args = append(args, sargs...)
	if f.Dsts != nil {
		cond += " AND id_resp_h IN (SELECT unnest(?::VARCHAR[]))"
		args = append(args, addrList(f.Dsts))
	}
	if f.Srcs != nil {
		cond += " AND id_orig_h IN (SELECT unnest(?::VARCHAR[]))"
		args = append(args, addrList(f.Srcs))
	}
	if len(f.SkipDsts) > 0 {
		cond += " AND id_resp_h NOT IN (SELECT unnest(?::VARCHAR[]))"
		args = append(args, addrList(f.SkipDsts))
	}
	// The stats that pass MinDuration, then the pairs that pass
	// MinPairConns, are found first with cheap aggregates, and the full
	// ones (a distinct count of days is the costly part) computed for those
	// only. Numbers are written into the SQL rather than bound: DuckDB plans
	// conditions on parameters far worse (see Series).
	from := "conn"
	// proto is grouped and joined as it is stored (a code in DuckDB's
	// conn, layout.go), made text once a group: NULL is the only empty.
	keys := "coalesce(sensor, '') AS s, id_orig_h AS a, id_resp_h AS b, coalesce(id_resp_p, 0) AS p, proto AS pr"
	on := "coalesce(conn.sensor, '') = k.s AND conn.id_orig_h = k.a AND conn.id_resp_h = k.b AND coalesce(conn.id_resp_p, 0) = k.p AND conn.proto IS NOT DISTINCT FROM k.pr"
	var keyArgs []any
	if f.MinDuration > 0 || f.MinPairConns > 1 || f.MinFailedShare > 0 {
		secs := strconv.FormatFloat(f.MinDuration.Seconds(), 'f', -1, 64)
		share := strconv.FormatFloat(f.MinFailedShare, 'f', -1, 64)
		inner := `SELECT ` + keys + `, count(*) AS n FROM conn WHERE ` + cond + ` GROUP BY 1, 2, 3, 4, 5
			HAVING (coalesce(max(duration), 0) >= ` + secs + ` OR coalesce(sum(duration), 0) >= ` + secs + `)
			AND count(*) FILTER (WHERE conn_state IN ` + failedStates + `) >= ` + share + ` * count(*)`
		if f.MinPairConns > 1 {
			inner = `SELECT * FROM (` + inner + `) QUALIFY sum(n) OVER (PARTITION BY s, a, b) >= ` + strconv.FormatInt(f.MinPairConns, 10)
		}
		from = "conn SEMI JOIN (" + inner + ") AS k ON " + on
		keyArgs = args
	}
	q := `SELECT coalesce(sensor, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(proto, ''),
		count(*), min(ts), max(ts), sum(duration), max(duration),
		least(coalesce(sum(orig_bytes), 0), 9223372036854775807)::BIGINT, least(coalesce(sum(resp_bytes), 0), 9223372036854775807)::BIGINT,
		count(*) FILTER (WHERE conn_state IN ` + failedStates + `),
		count(DISTINCT date_trunc('day', ts)),
		count(*) FILTER (WHERE orig_pkts = 0), count(*) FILTER (WHERE coalesce(orig_pkts, 1) > 0 AND ` + probeSQL() + `)
		FROM ` + from + ` WHERE ` + cond + ` GROUP BY 1, 2, 3, 4, proto ORDER BY 1, 2, 3, 4, 5`
	args = append(append([]any{}, keyArgs...), args...)
	var p store.PairStat
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "pairs", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var dur, maxDur sql.NullFloat64
		var port int64
		if err := r.Scan(&p.Sensor, &src, &dst, &port, &p.Proto, &p.Conns, &p.First, &p.Last, &dur, &maxDur,
			&p.SrcBytes, &p.DstBytes, &p.Failed, &p.Days, &p.Silent, &p.Probes); err != nil {
			return err
		}
		p.Src, p.Dst, p.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
		p.First, p.Last = p.First.UTC(), p.Last.UTC()
		p.Duration, p.MaxDuration = seconds(dur), seconds(maxDur)
		return fn(&p)
	})
}

// DailyFlows implements store.Analytics. The pairs that sent enough are
// found first and the days of those only aggregated: far cheaper than a
// window over every pair's days.
func (s *Store) DailyFlows(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.DailyFlow) error) error {
	cond, args := where(w, "")
	sc, sargs := sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	cond += " AND " + sc
	args = append(args, sargs...)
	from := "conn"
	if f.MinPairSrcBytes > 0 {
		from = `conn SEMI JOIN (SELECT coalesce(sensor, '') AS s, id_orig_h AS a, id_resp_h AS b FROM conn WHERE ` + cond + `
			GROUP BY ALL HAVING sum(orig_bytes) >= ` + strconv.FormatInt(f.MinPairSrcBytes, 10) + `) AS big
			ON coalesce(conn.sensor, '') = big.s AND conn.id_orig_h = big.a AND conn.id_resp_h = big.b`
		args = append(append([]any{}, args...), args...)
	}
	q := `SELECT coalesce(sensor, ''), id_orig_h, id_resp_h, date_trunc('day', ts) AS day,
		count(*), least(coalesce(sum(orig_bytes), 0), 9223372036854775807)::BIGINT, least(coalesce(sum(resp_bytes), 0), 9223372036854775807)::BIGINT,
		least(coalesce(max(orig_bytes), 0), 9223372036854775807)::BIGINT, min(ts), max(ts)
		FROM ` + from + ` WHERE ` + cond + ` GROUP BY ALL ORDER BY 1, 2, 3, 4`
	var d store.DailyFlow
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "daily flows", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		if err := r.Scan(&d.Sensor, &src, &dst, &d.Day, &d.Conns, &d.SrcBytes, &d.DstBytes, &d.MaxSrcBytes, &d.First, &d.Last); err != nil {
			return err
		}
		d.Src, d.Dst = addr(src), addr(dst)
		d.Day, d.First, d.Last = d.Day.UTC(), d.First.UTC(), d.Last.UTC()
		return fn(&d)
	})
}

// HostDays implements store.Analytics.
func (s *Store) HostDays(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.HostDay) error) error {
	cond, args := where(w, "")
	sc, sargs := sidesCond(f.Sides, "id_orig_h", "id_resp_h")
	cond += " AND " + sc
	args = append(args, sargs...)
	q := `SELECT coalesce(sensor, ''), id_orig_h, date_trunc('day', ts) AS day, least(coalesce(sum(orig_bytes), 0), 9223372036854775807)::BIGINT
		FROM conn WHERE ` + cond + ` AND id_orig_h IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3`
	var h store.HostDay
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "host days", q, args, func(r *sql.Rows) error {
		var src sql.NullString
		if err := r.Scan(&h.Sensor, &src, &h.Day, &h.SrcBytes); err != nil {
			return err
		}
		h.Src, h.Day = addr(src), h.Day.UTC()
		return fn(&h)
	})
}

// Destinations implements store.Analytics.
func (s *Store) Destinations(ctx context.Context, w store.Window, clients []netip.Addr, fn func(*store.DstStat) error) error {
	cond, args := where(w, "c")
	q := `SELECT c.id_resp_h, count(DISTINCT l.a), count(*), min(c.ts), max(c.ts)
		FROM conn c LEFT JOIN (SELECT unnest(?::VARCHAR[]) AS a) l ON c.id_orig_h = l.a
		WHERE ` + cond + ` AND c.id_resp_h IS NOT NULL GROUP BY 1 ORDER BY 1`
	args = append([]any{addrList(clients)}, args...)
	var d store.DstStat
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return err
	}
	return s.each(ctx, "destinations", q, args, func(r *sql.Rows) error {
		var dst sql.NullString
		if err := r.Scan(&dst, &d.Clients, &d.Conns, &d.First, &d.Last); err != nil {
			return err
		}
		d.Dst, d.First, d.Last = addr(dst), d.First.UTC(), d.Last.UTC()
		return fn(&d)
	})
}

// LocalAddrs implements store.Analytics: the window's distinct addresses
// are tested against the networks in SQL (a superset for long IPv6
// prefixes), then exactly here.
func (s *Store) LocalAddrs(ctx context.Context, w store.Window, local []netip.Prefix) ([]netip.Addr, error) {
	cond, args := where(w, "")
	_, maybe := netCond("a", local)
	q := `SELECT a FROM (SELECT id_orig_h AS a FROM conn WHERE ` + cond + ` UNION SELECT id_resp_h FROM conn WHERE ` + cond + `)
		WHERE a IS NOT NULL AND ` + maybe
	var out []netip.Addr
	q, done, err := s.withConns(ctx, w, q)
	defer done()
	if err != nil {
		return nil, err
	}
	err = s.each(ctx, "local addresses", q, append(args, args...), func(r *sql.Rows) error {
		var a sql.NullString
		if err := r.Scan(&a); err != nil {
			return err
		}
		if ip := addr(a); ip.IsValid() && store.InNets(local, ip) {
			out = append(out, ip)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out, err
}

// Series implements store.Analytics. A key's times and sizes travel as
// one comma-separated string of "ms:size" pairs (far cheaper through the
// driver than a list of boxed values), aggregated in no order and sorted
// here: DuckDB's ordered aggregates sort every group apart and took five
// times longer over 31 M rows than the plain aggregate and a sort in Go.
func (s *Store) Series(ctx context.Context, kind store.SeriesKind, w store.Window, f store.SeriesFilter, fn func(*store.Series) error) error {
	cond, args := where(w, "")
	table, src, key, point := "conn", "id_orig_h", "id_resp_h", "epoch_ms(ts)::VARCHAR || ':' || coalesce(orig_ip_bytes, 0)::VARCHAR"
	having := "count(*) >= " + strconv.Itoa(max(f.MinCount, 1))
	switch kind {
	case store.SeriesConn, store.SeriesSessions:
		if len(f.SkipDsts) > 0 {
			cond += " AND id_resp_h NOT IN (SELECT unnest(?::VARCHAR[]))"
			args = append(args, addrList(f.SkipDsts))
		}
		if f.Dsts != nil {
			cond += " AND id_resp_h IN (SELECT unnest(?::VARCHAR[]))"
			args = append(args, addrList(f.Dsts))
		}
		if kind == store.SeriesSessions {
			key = "id_resp_h, coalesce(id_resp_p, 0), coalesce(proto, '')"
			us := "coalesce(round(duration * 1e6), 0)::BIGINT"
			point = "epoch_ms(ts)::VARCHAR || ':' || " + us + "::VARCHAR"
			if f.MinDuration > 0 {
				// The keys long enough are found first: the points of the
				// others are never strung together.
				cond += ` AND (coalesce(sensor, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(proto, '')) IN (
					SELECT (coalesce(sensor, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(proto, '')) FROM conn WHERE ` + cond + `
					GROUP BY ALL HAVING sum(` + us + `) >= ` + strconv.FormatInt(f.MinDuration.Microseconds(), 10) + `)`
				args = append(args, args...)
			}
		}
	case store.SeriesTLSName:
		table, key, point = "ssl", "server_name", "epoch_ms(ts)::VARCHAR"
	case store.SeriesHTTPHost:
		table, key, point = "http", "host", "epoch_ms(ts)::VARCHAR || ':' || coalesce(request_body_len, 0)::VARCHAR"
	default:
		return fmt.Errorf("BUG: unknown series kind %d", kind)
	}
	if table != "conn" && len(f.SkipNames) > 0 {
		cond += " AND " + key + " NOT IN (SELECT unnest(?::VARCHAR[]))"
		args = append(args, f.SkipNames)
	}
	prefix := ""
	if table == "conn" {
		// The prefix alone: the queries below add their text to it.
		p, done, err := s.withConns(ctx, w, "")
		defer done()
		if err != nil {
			return err
		}
		prefix = p + " "
	}
	// The aggregation holds every point of the keys it is working on: in
	// parts of about partRows records (by source address), it stays small.
	var rows int64
	if err := s.db.QueryRowContext(ctx, prefix+"SELECT count(*) FROM "+table+" WHERE "+cond, utf8Args(args)...).Scan(&rows); err != nil {
		return fmt.Errorf("series: %w", err)
	}
	parts := max(1, (rows+partRows-1)/partRows)
	var sr store.Series
	for part := range parts {
		// The part and the count are literals: as parameters, DuckDB
		// evaluated the hash condition ten times slower.
		q := prefix + `SELECT coalesce(sensor, ''), ` + src + `, ` + key + `, string_agg(` + point + `, ',')
			FROM ` + table + ` WHERE ` + cond + ` AND ` + src + ` IS NOT NULL AND ` + strings.Split(key, ",")[0] + ` IS NOT NULL
			AND hash(` + src + `) % ` + strconv.FormatInt(parts, 10) + ` = ` + strconv.FormatInt(part, 10) + `
			GROUP BY ALL HAVING ` + having + ` ORDER BY 1, 2, 3`
		err := s.each(ctx, "series", q, args, func(r *sql.Rows) error {
			var srcText, keyText sql.NullString
			var points string
			sr.Port, sr.Proto = 0, ""
			dest := []any{&sr.Sensor, &srcText, &keyText}
			var port int64
			if kind == store.SeriesSessions {
				dest = append(dest, &port, &sr.Proto)
			}
			if err := r.Scan(append(dest, &points)...); err != nil {
				return err
			}
			sr.Src = addr(srcText)
			if table == "conn" {
				sr.Dst, sr.Name = addr(keyText), ""
				sr.Port = uint16(port) //nolint:gosec // G115: USMALLINT column
			} else {
				sr.Dst, sr.Name = netip.Addr{}, keyText.String
			}
			var err error
			if sr.Times, sr.Sizes, err = store.ParsePoints(sr.Times[:0], sr.Sizes[:0], points); err != nil {
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

// partRows is about how many records one part of a Series query covers.
const partRows = 8_000_000

// OpenConns implements store.Analytics.
func (s *Store) OpenConns(ctx context.Context, w store.Window, fn func(*store.OpenConn) error) error {
	cond, args := where(w, "")
	q := `SELECT coalesce(sensor, ''), coalesce(uid, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(proto, ''),
		coalesce(service, ''), ts, duration, least(coalesce(orig_bytes, 0), 9223372036854775807)::BIGINT, least(coalesce(resp_bytes, 0), 9223372036854775807)::BIGINT
		FROM open_conn WHERE ` + cond + `
		QUALIFY row_number() OVER (PARTITION BY sensor, uid ORDER BY duration DESC NULLS LAST, source_file DESC, source_line DESC) = 1
		ORDER BY 1, 2`
	var o store.OpenConn
	return s.each(ctx, "open connections", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var dur sql.NullFloat64
		var port int64
		if err := r.Scan(&o.Sensor, &o.UID, &src, &dst, &port, &o.Proto, &o.Service, &o.Start, &dur, &o.SrcBytes, &o.DstBytes); err != nil {
			return err
		}
		o.Src, o.Dst, o.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
		o.Start = o.Start.UTC()
		o.Duration = seconds(dur)
		o.Reported = o.Start.Add(o.Duration)
		return fn(&o)
	})
}

// DNSNames implements store.Analytics.
func (s *Store) DNSNames(ctx context.Context, w store.Window, f store.DNSFilter, fn func(*store.DNSName) error) error {
	cond, args := where(w, "")
	if f.RCode != "" {
		cond += " AND rcode_name = ?"
		args = append(args, f.RCode)
	}
	if f.Srcs != nil {
		cond += " AND id_orig_h IN (SELECT unnest(?::VARCHAR[]))"
		args = append(args, addrList(f.Srcs))
	}
	q := `SELECT coalesce(sensor, ''), id_orig_h, query, coalesce(qtype_name, ''), coalesce(rcode_name, ''), coalesce(id_resp_h, ''),
		count(*), min(ts), max(ts)
		FROM dns WHERE ` + cond + ` AND query IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3, 4, 5, 6`
	var d store.DNSName
	return s.each(ctx, "dns names", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		if err := r.Scan(&d.Sensor, &src, &d.Query, &d.QType, &d.RCode, &dst, &d.Count, &d.First, &d.Last); err != nil {
			return err
		}
		d.Src, d.Dst = addr(src), addr(dst)
		d.First, d.Last = d.First.UTC(), d.Last.UTC()
		return fn(&d)
	})
}

// ServerNames implements store.Analytics.
func (s *Store) ServerNames(ctx context.Context, w store.Window, fn func(*store.ServerName) error) error {
	cond, args := where(w, "")
	q := `SELECT sensor, src, name, sum(n)::BIGINT FROM (
			SELECT coalesce(sensor, '') AS sensor, id_orig_h AS src, server_name AS name, count(*) AS n
			FROM ssl WHERE ` + cond + ` AND server_name IS NOT NULL GROUP BY ALL
			UNION ALL
			SELECT coalesce(sensor, ''), id_orig_h, host, count(*)
			FROM http WHERE ` + cond + ` AND host IS NOT NULL GROUP BY ALL)
		GROUP BY ALL ORDER BY 1, 2, 3`
	args = append(args, args...)
	var n store.ServerName
	return s.each(ctx, "server names", q, args, func(r *sql.Rows) error {
		var src sql.NullString
		if err := r.Scan(&n.Sensor, &src, &n.Name, &n.Count); err != nil {
			return err
		}
		n.Src = addr(src)
		return fn(&n)
	})
}

// TLSSessions implements store.Analytics.
func (s *Store) TLSSessions(ctx context.Context, w store.Window, fn func(*store.TLSSession) error) error {
	cond, args := where(w, "s")
	// The records are grouped first and the certificates joined to the
	// groups after: joined first, every record carried its certificate's
	// list of names through the aggregation, which over a month of ssl
	// records (2.5 M sessions) did not fit in the default memory_limit.
	q := `WITH certs AS (
			SELECT coalesce(fingerprint, id) AS key, any_value(certificate_subject) AS subject, any_value(certificate_issuer) AS issuer,
				max(certificate_not_valid_before) AS not_before, max(certificate_not_valid_after) AS not_after,
				any_value(san_dns) AS names
			FROM x509 WHERE coalesce(fingerprint, id) IS NOT NULL GROUP BY 1),
		sess AS (
			SELECT s.sensor, s.id_orig_h, s.id_resp_h, s.id_resp_p, s.server_name, s.ja3, s.ja4, s.validation_status, s.sni_matches_cert,
				coalesce(s.cert_chain_fps[1], s.cert_chain_fuids[1], '') AS cert, s.subject, s.issuer,
				count(*) FILTER (WHERE s.established) AS est, count(*) AS n, min(s.ts) AS f, max(s.ts) AS l
			FROM ssl s WHERE ` + cond + `
			GROUP BY s.sensor, s.id_orig_h, s.id_resp_h, s.id_resp_p, s.server_name, s.ja3, s.ja4, s.validation_status,
				s.sni_matches_cert, cert, s.subject, s.issuer)
		SELECT coalesce(s.sensor, ''), s.id_orig_h, s.id_resp_h, coalesce(s.id_resp_p, 0), coalesce(s.server_name, ''),
			coalesce(s.ja3, ''), coalesce(s.ja4, ''), coalesce(s.validation_status, ''),
			CASE WHEN s.sni_matches_cert THEN 'T' WHEN NOT s.sni_matches_cert THEN 'F' ELSE '' END,
			s.cert, coalesce(s.subject, c.subject, ''), coalesce(s.issuer, c.issuer, ''),
			c.not_before, c.not_after, c.names, s.est, s.n, s.f, s.l
		FROM sess s LEFT JOIN certs c ON c.key = nullif(s.cert, '')
		ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12`
	var t store.TLSSession
	return s.each(ctx, "tls sessions", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var port int64
		var nb, na sql.NullTime
		var names any
		if err := r.Scan(&t.Sensor, &src, &dst, &port, &t.ServerName, &t.JA3, &t.JA4, &t.ValidationStatus, &t.SNIMatchesCert,
			&t.CertFingerprint, &t.Subject, &t.Issuer, &nb, &na, &names, &t.Established, &t.Count, &t.First, &t.Last); err != nil {
			return err
		}
		t.Src, t.Dst, t.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
		t.NotBefore, t.NotAfter = nb.Time.UTC(), na.Time.UTC()
		if !nb.Valid {
			t.NotBefore = time.Time{}
		}
		if !na.Valid {
			t.NotAfter = time.Time{}
		}
		t.CertNames = strs(names)
		t.First, t.Last = t.First.UTC(), t.Last.UTC()
		return fn(&t)
	})
}

// HTTPRequests implements store.Analytics.
func (s *Store) HTTPRequests(ctx context.Context, w store.Window, fn func(*store.HTTPRequest) error) error {
	cond, args := where(w, "")
	q := `SELECT coalesce(sensor, ''), id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(host, ''), coalesce(method, ''),
		coalesce(split_part(uri, '?', 1), ''), coalesce(user_agent, ''),
		count(*), least(coalesce(sum(request_body_len), 0), 9223372036854775807)::BIGINT,
		count(*) FILTER (WHERE list_has_any(resp_mime_types, ['` + strings.Join(store.ExecutableMIME(), "', '") + `'])), min(ts), max(ts),
		list(DISTINCT status_code ORDER BY status_code) FILTER (WHERE status_code IS NOT NULL)
		FROM http WHERE ` + cond + ` GROUP BY ALL ORDER BY 1, 2, 3, 4, 5, 6, 7, 8`
	var h store.HTTPRequest
	return s.each(ctx, "http requests", q, args, func(r *sql.Rows) error {
		var src, dst sql.NullString
		var port int64
		var statuses any
		if err := r.Scan(&h.Sensor, &src, &dst, &port, &h.Host, &h.Method, &h.Path, &h.UserAgent, &h.Count, &h.RequestBytes,
			&h.Executables, &h.First, &h.Last, &statuses); err != nil {
			return err
		}
		h.Src, h.Dst, h.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
		h.First, h.Last = h.First.UTC(), h.Last.UTC()
		h.Statuses = h.Statuses[:0]
		if l, ok := statuses.([]any); ok {
			for _, v := range l {
				switch n := v.(type) {
				case uint64:
					h.Statuses = append(h.Statuses, int64(n)) //nolint:gosec // G115: HTTP status codes are small
				case int64:
					h.Statuses = append(h.Statuses, n)
				}
			}
		}
		return fn(&h)
	})
}

// strs converts a scanned VARCHAR[] to []string.
func strs(v any) []string {
	l, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// vectorSQL is store.FloodVectorOf in SQL.
func vectorSQL(ports string) string {
	return `CASE WHEN proto = 'tcp' AND (coalesce(tcp_flags, 0) & 18) = 2 THEN 'tcp-syn'
		WHEN proto = 'tcp' AND (coalesce(tcp_flags, 0) & 31) = 18 THEN 'tcp-synack'
		WHEN proto = 'udp' AND coalesce(src_port, 0) = 0 AND coalesce(dst_port, 0) = 0 THEN 'udp-fragment'
		WHEN proto = 'udp' AND src_port IN (` + ports + `) THEN 'udp/' || src_port::VARCHAR ELSE coalesce(proto, '') END`
}

// portList returns ports as a SQL list.
func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}

// FloodVectors implements store.Analytics.
func (s *Store) FloodVectors(ctx context.Context, w store.Window, minPackets int64, fn func(*store.FloodVector) error) error {
	cond, args := where(w, "")
	cond += " AND dst_addr IS NOT NULL"
	const scaled = "(packets::HUGEINT * greatest(coalesce(sampling, 1), 1))"
	if minPackets > 0 {
		cond += ` AND (coalesce(sensor, ''), dst_addr, date_trunc('minute', ts)) IN (
			SELECT (coalesce(sensor, ''), dst_addr, date_trunc('minute', ts)) FROM flow WHERE ` + cond + `
			GROUP BY ALL HAVING sum(` + scaled + `) >= ` + strconv.FormatInt(minPackets, 10) + `)`
		args = append(append([]any{}, args...), args...)
	}
	q := `SELECT coalesce(sensor, ''), dst_addr, date_trunc('minute', ts), ` + vectorSQL(portList(store.ReflectionPorts())) + ` AS v,
		count(*), least(sum(` + scaled + `), 9223372036854775807)::BIGINT,
		least(sum(bytes::HUGEINT * greatest(coalesce(sampling, 1), 1)), 9223372036854775807)::BIGINT, count(DISTINCT src_addr)
		FROM flow WHERE ` + cond + ` GROUP BY ALL ORDER BY 1, 2, 3, 4`
	var v store.FloodVector
	return s.each(ctx, "flood vectors", q, args, func(r *sql.Rows) error {
		var dst sql.NullString
		if err := r.Scan(&v.Sensor, &dst, &v.Minute, &v.Vector, &v.Flows, &v.Packets, &v.Bytes, &v.Sources); err != nil {
			return err
		}
		v.Dst, v.Minute = addr(dst), v.Minute.UTC()
		return fn(&v)
	})
}
