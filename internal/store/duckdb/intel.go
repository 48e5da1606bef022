package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Intel in DuckDB: indicators in intel_indicator, sightings in
// intel_sighting, source state in dwell_meta, and the value summary in two
// tables. Every ingest batch appends its values per UTC day to obs_daily,
// numbered by batch (seq): a plain append, as cheap as the records'. From
// time to time the batches appended since the last time are compacted
// into obs_value, one row per value, log, sensor and port over all time,
// and dwell_meta's summary_merged records the last batch compacted. An
// all-history retro-hunt reads obs_value and the daily rows of the batches
// after it; a windowed one reads obs_daily. (An upsert per batch into
// obs_value instead made ingest 2.5 times slower: decision 0005.)

const sightingDDL = `CREATE TABLE IF NOT EXISTS intel_sighting (
	"key" VARCHAR NOT NULL, sensor VARCHAR NOT NULL, log VARCHAR NOT NULL, observed VARCHAR NOT NULL,
	"first" TIMESTAMP, "last" TIMESTAMP, count UBIGINT, days UBIGINT, peers VARCHAR[])`

// intelScans are the table functions of the intel tables.
type intelScans struct {
	daily      *scan[store.DailyRow]
	indicators *scan[store.IndicatorRow]
}

func newIntelScans(s *store.IntelSchema, tag string) (*intelScans, error) {
	var is intelScans
	var errs [2]error
	is.daily, errs[0] = newScan(s.Daily, tag)
	is.indicators, errs[1] = newScan(s.Indicators, tag)
	return &is, errors.Join(errs[:]...)
}

// summarize appends a batch's observable values (store.Summarize) to
// obs_daily.
func (s *Store) summarize(ctx context.Context, tx *sql.Tx, daily []store.DailyRow) error {
	if len(daily) == 0 {
		return nil
	}
	s.seq++
	for i := range daily {
		daily[i].Seq = s.seq
	}
	s.unmerged += len(daily)
	return insert(ctx, tx, s.iscans.daily, daily)
}

// mergedKey names the last batch compacted into obs_value in dwell_meta.
const mergedKey = "summary_merged"

// mergingKey names a compaction under way in dwell_meta: "FROM TO PIECES
// NEXT" (merging.String). Pieces commit one at a time, so that a month's
// summary is not rebuilt in one transaction (which held every piece's
// deleted and inserted rows in memory until its commit, and ran out of a
// 640MB memory_limit); the pieces before NEXT are in obs_value.
const mergingKey = "summary_merging"

// merging is a compaction under way: the daily rows of batches FROM+1 to
// TO, merged into obs_value in PIECES pieces by a hash of the value's id,
// of which the first NEXT are done.
type merging struct {
	from, to, pieces, next int64
}

func (m *merging) String() string { return fmt.Sprintf("%d %d %d %d", m.from, m.to, m.pieces, m.next) }

// parseMerging reads dwell_meta's mergingKey ("" or malformed: none).
func parseMerging(v string) *merging {
	var m merging
	if n, err := fmt.Sscan(v, &m.from, &m.to, &m.pieces, &m.next); err != nil || n != 4 || m.pieces <= 0 || m.next >= m.pieces || m.to <= m.from {
		return nil
	}
	return &m
}

// mergedPart is the SQL condition of the daily rows that a compaction
// under way has merged into obs_value already ("" for none).
func (m *merging) mergedPart() string {
	if m == nil || m.next == 0 {
		return ""
	}
	return fmt.Sprintf("(seq > %d AND seq <= %d AND hash(id) %% %d < %d)", m.from, m.to, m.pieces, m.next)
}

// compactEvery is how many daily rows may wait before Write compacts them
// (besides Close, which compacts what is left).
const compactEvery = 1 << 20

// loadSummaryState reads the last batch numbers at open.
func (s *Store) loadSummaryState(ctx context.Context) error {
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM obs_daily`).Scan(&s.seq); err != nil {
		return fmt.Errorf("reading the summary state: %w", err)
	}
	var merged, merging sql.NullString
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT value FROM dwell_meta WHERE key = ?), (SELECT value FROM dwell_meta WHERE key = ?)`,
		mergedKey, mergingKey).Scan(&merged, &merging)
	if err != nil {
		return fmt.Errorf("reading the summary state: %w", err)
	}
	s.merged = 0
	_, _ = fmt.Sscan(merged.String, &s.merged) // none yet: 0
	s.merging = parseMerging(merging.String)
	return nil
}

// compact merges the daily rows of the batches after the last compacted
// one into obs_value: the rows of the values they touch are rebuilt from
// their old all-time row and the new days. A compaction cut short (a
// crash, an error) is finished first. Call with s.mu held.
func (s *Store) compact(ctx context.Context) error {
	for {
		if s.merging == nil {
			if s.seq <= s.merged {
				s.unmerged = 0
				return nil
			}
			// The values are merged in pieces (by a hash of their id) of
			// at most compactChunk rows and compactBytes of lists read:
			// the lists of days and peers are aggregated in memory, and
			// over all history they would not fit in a small
			// memory_limit (a 30-day ingest under 768MB did not, before
			// pieces). Only the values the new rows touch are read.
			var rows, bytes int64
			err := s.wconn.QueryRowContext(ctx, fmt.Sprintf(`WITH new AS (SELECT id, peers FROM obs_daily WHERE seq > %d AND seq <= %d),
				old AS (SELECT days, peers FROM obs_value WHERE id IN (SELECT id FROM new))
				SELECT (SELECT count(*) FROM new) + (SELECT count(*) FROM old),
					(SELECT coalesce(sum(16 + coalesce(length(peers), 0)), 0) FROM new) +
					(SELECT coalesce(sum(length(days) + coalesce(length(peers), 0)), 0) FROM old)`,
				s.merged, s.seq)).Scan(&rows, &bytes)
			if err != nil {
				return fmt.Errorf("compacting the intel summary: %w", err)
			}
			chunk := int64(cmp.Or(s.compactChunk, defaultCompactChunk))
			s.merging = &merging{from: s.merged, to: s.seq, pieces: max(rows/chunk, bytes/compactBytes) + 1}
		}
		m := s.merging
		// A piece's aggregation is the largest allocation of an ingest,
		// DuckDB's and outside Go's heap. The room Go's heap keeps for
		// growth (up to its soft limit) goes back to the system first, so
		// that the two peaks do not add up (the month of logs in
		// docs/benchmarks.md peaked when they did).
		debug.FreeOSMemory()
		for m.next < m.pieces {
			if err := s.commitPiece(ctx, m); err != nil {
				return fmt.Errorf("compacting the intel summary: %w", err)
			}
			m.next++
		}
		s.merged, s.merging, s.unmerged = m.to, nil, 0
	}
}

// commitPiece merges the next piece of m and records it, in one
// transaction: the last piece records the compaction done.
func (s *Store) commitPiece(ctx context.Context, m *merging) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := s.compactPiece(ctx, tx, m.from, m.to, m.pieces, m.next); err != nil {
		return err
	}
	upsert := `INSERT INTO dwell_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	if done := m.next+1 == m.pieces; done {
		if _, err := tx.ExecContext(ctx, upsert, mergedKey, fmt.Sprint(m.to)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM dwell_meta WHERE key = ?`, mergingKey); err != nil {
			return err
		}
	} else {
		next := *m
		next.next++
		if _, err := tx.ExecContext(ctx, upsert, mergingKey, next.String()); err != nil {
			return err
		}
	}
	if s.failPiece != nil {
		if err := s.failPiece(m.next); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// defaultCompactChunk is how many summary rows compact reads at a time.
const defaultCompactChunk = 1 << 20

// compactBytes is how many bytes of days and peers lists compact reads at
// a time: a month's values carry lists of hundreds of bytes, and a piece
// works on several times its lists' size.
const compactBytes = 64 << 20

// compactPiece merges the values whose id hashes to piece (of pieces).
func (s *Store) compactPiece(ctx context.Context, tx *sql.Tx, from, to, pieces, piece int64) error {
	part := fmt.Sprintf("hash(id) %% %d = %d", pieces, piece)
	stmts := []string{
		// Scalars, days and peers are aggregated apart: distinct rows and
		// a window spill to disk, where list aggregates over millions of
		// rows would have to fit in memory.
		fmt.Sprintf(`CREATE OR REPLACE TEMP TABLE obs_merge AS
		WITH new AS (SELECT * FROM obs_daily WHERE seq > %d AND seq <= %d AND %s),
		old AS (SELECT * FROM obs_value WHERE %s AND id IN (SELECT DISTINCT id FROM new)),
		agg AS (SELECT id, log, sensor, port, any_value(kind) AS kind, any_value(value) AS value, any_value(regdom) AS regdom,
				any_value(suffix) AS suffix, any_value(addr_hi) AS addr_hi, any_value(addr_lo) AS addr_lo, sum(count)::UBIGINT AS count,
				min("first") AS "first", max("last") AS "last", any_value(mkey) AS mkey, any_value(bkey) AS bkey
			FROM (SELECT id, log, sensor, port, kind, value, regdom, suffix, addr_hi, addr_lo, count, "first", "last", mkey, bkey FROM old
				UNION ALL SELECT id, log, sensor, port, kind, value, regdom, suffix, addr_hi, addr_lo, count, "first", "last", mkey, bkey FROM new)
			GROUP BY id, log, sensor, port),
		d AS (SELECT id, log, sensor, port, array_to_string(list(day ORDER BY day), ',') AS days
			FROM (SELECT id, log, sensor, port, unnest(string_split(days, ',')) AS day FROM old
				UNION SELECT id, log, sensor, port, strftime(day, '%%Y-%%m-%%d') FROM new)
			GROUP BY id, log, sensor, port),
		p AS (SELECT id, log, sensor, port, array_to_string(list(peer ORDER BY peer), ',') AS peers
			FROM (SELECT *, row_number() OVER (PARTITION BY id, log, sensor, port ORDER BY peer) AS r
				FROM (SELECT id, log, sensor, port, unnest(string_split(peers, ',')) AS peer FROM old WHERE peers IS NOT NULL
					UNION SELECT id, log, sensor, port, unnest(string_split(peers, ',')) FROM new WHERE peers IS NOT NULL))
			WHERE r <= %d GROUP BY id, log, sensor, port)
		SELECT agg.*, d.days, p.peers FROM agg JOIN d USING (id, log, sensor, port) LEFT JOIN p USING (id, log, sensor, port)`,
			from, to, part, part, store.MaxPeers),
		`DELETE FROM obs_value WHERE id IN (SELECT id FROM obs_merge)`,
		`INSERT INTO obs_value (id, kind, value, log, sensor, port, regdom, suffix, addr_hi, addr_lo, count, "first", "last", days, peers, mkey, bkey)
			SELECT id, kind, value, log, sensor, port, regdom, suffix, addr_hi, addr_lo, count, "first", "last", days, peers, mkey, bkey FROM obs_merge`,
		`DROP TABLE obs_merge`,
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// PutIndicators implements store.IntelWriter.
func (s *Store) PutIndicators(ctx context.Context, inds []event.Indicator) (added, updated int, err error) {
	if s.ro {
		return 0, 0, s.readOnlyError()
	}
	if len(inds) == 0 {
		return 0, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := store.IndicatorRows(inds, time.Now().UTC())
	keys := make([]string, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var known int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM intel_indicator WHERE "key" IN (SELECT unnest(?::VARCHAR[]))`, utf8Args([]any{keys})...).Scan(&known); err != nil {
		return 0, 0, fmt.Errorf("storing indicators: %w", err)
	}
	if err := insertWith(ctx, tx, s.iscans.indicators, rows, "INSERT OR REPLACE INTO", ""); err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("storing indicators: %w", err)
	}
	s.matchMu.Lock()
	s.matchSt, s.matchInds = nil, nil // the indicators and their rowids changed
	s.matchMu.Unlock()
	return len(rows) - known, known, nil
}

// DeleteIndicators implements store.IntelWriter.
func (s *Store) DeleteIndicators(ctx context.Context, source string) (int, error) {
	if s.ro {
		return 0, s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.wconn.ExecContext(ctx, `DELETE FROM intel_indicator WHERE source = ?`, utf8Args([]any{source})...)
	if err != nil {
		return 0, fmt.Errorf("deleting the indicators of %s: %w", source, err)
	}
	n, _ := res.RowsAffected()
	s.matchMu.Lock()
	s.matchSt, s.matchInds = nil, nil // the indicators and their rowids changed
	s.matchMu.Unlock()
	return int(n), nil
}

// PutSightings implements store.IntelWriter.
func (s *Store) PutSightings(ctx context.Context, sightings []event.Sighting) error {
	if s.ro {
		return s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, `DELETE FROM intel_sighting`); err != nil {
		return fmt.Errorf("storing sightings: %w", err)
	}
	const per = 200
	for start := 0; start < len(sightings); start += per {
		chunk := sightings[start:min(start+per, len(sightings))]
		var q strings.Builder
		q.WriteString(`INSERT INTO intel_sighting VALUES `)
		args := make([]any, 0, 9*len(chunk))
		for i, x := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?::VARCHAR[])")
			peers := make([]string, len(x.Peers))
			for j, p := range x.Peers {
				peers[j] = p.String()
			}
			args = append(args, x.Key, x.Sensor, x.Log, x.Observed, x.First.UTC(), x.Last.UTC(), x.Count, x.Days, peers)
		}
		if _, err := tx.ExecContext(ctx, q.String(), utf8Args(args)...); err != nil {
			return fmt.Errorf("storing sightings: %w", err)
		}
	}
	return tx.Commit()
}

// SetState implements store.IntelWriter.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	if s.ro {
		return s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.wconn.ExecContext(ctx, `INSERT INTO dwell_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		utf8Args([]any{"state:" + key, value})...)
	return err
}

// State implements store.IntelReader.
func (s *Store) State(ctx context.Context, key string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM dwell_meta WHERE key = ?`, utf8Args([]any{"state:" + key})...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Indicators implements store.IntelReader.
func (s *Store) Indicators(ctx context.Context, fn func(*event.Indicator) error) error {
	q := `SELECT source, type, value, port, ref, grp, name, valid_from, valid_until, confidence, tlp, tags, attack,
		actionable, revoked, modified FROM intel_indicator ORDER BY "key"`
	var i event.Indicator
	return s.each(ctx, "indicators", q, nil, func(r *sql.Rows) error {
		var src, typ, value, ref, grp, name, tlp sql.NullString
		var from, until, modified sql.NullTime
		var conf sql.NullInt64
		var port int64
		var tags, attack any
		var actionable, revoked sql.NullBool
		if err := r.Scan(&src, &typ, &value, &port, &ref, &grp, &name, &from, &until, &conf, &tlp, &tags, &attack, &actionable, &revoked, &modified); err != nil {
			return err
		}
		i = event.Indicator{Source: src.String, Type: event.IOCType(typ.String), Value: value.String, Port: uint16(port), //nolint:gosec // G115: USMALLINT column
			Ref: ref.String, Group: grp.String, Name: name.String, ValidFrom: utc(from), ValidUntil: utc(until), Confidence: -1,
			TLP: tlp.String, Tags: strList(tags), Attack: strList(attack), Actionable: actionable.Bool, Revoked: revoked.Bool, Modified: utc(modified)}
		if conf.Valid {
			i.Confidence = int(conf.Int64)
		}
		return fn(&i)
	})
}

func utc(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// strList reads a VARCHAR[] column.
func strList(v any) []string {
	l, _ := v.([]any)
	if len(l) == 0 {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func addrList2(v any) []netip.Addr {
	var out []netip.Addr
	for _, s := range strList(v) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Sightings implements store.IntelReader.
func (s *Store) Sightings(ctx context.Context, fn func(*event.Sighting) error) error {
	q := `SELECT "key", sensor, log, observed, "first", "last", count, days, peers FROM intel_sighting ORDER BY "key", sensor, log, observed`
	return s.each(ctx, "sightings", q, nil, func(r *sql.Rows) error {
		return scanSighting(r, fn)
	})
}

func scanSighting(r *sql.Rows, fn func(*event.Sighting) error) error {
	var x event.Sighting
	var first, last sql.NullTime
	var count, days int64
	var peers any
	if err := r.Scan(&x.Key, &x.Sensor, &x.Log, &x.Observed, &first, &last, &count, &days, &peers); err != nil {
		return err
	}
	x.First, x.Last, x.Count, x.Days, x.Peers = utc(first), utc(last), count, days, addrList2(peers)
	return fn(&x)
}

// backfillPending marks a store migrated to the summary with records
// already in it: the summary is built from them when the writer opens.
const backfillPending = "summary_backfill"

// backfillSummary notes, during the migration, whether there are records
// to summarise.
func (s *Store) backfillSummary(ctx context.Context, tx *sql.Tx) error {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM conn) + (SELECT count(*) FROM dns) + (SELECT count(*) FROM http)
		+ (SELECT count(*) FROM ssl) + (SELECT count(*) FROM x509) + (SELECT count(*) FROM files)`).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO dwell_meta VALUES (?, 'pending') ON CONFLICT (key) DO UPDATE SET value = excluded.value`, backfillPending)
	return err
}

// runBackfill builds the summary of records stored before it existed,
// reading them back a slice of rows at a time.
func (s *Store) runBackfill(ctx context.Context) error {
	var v string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM dwell_meta WHERE key = ?`, backfillPending).Scan(&v); errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	// Start over: a backfill cut short left part of the summary.
	for _, q := range []string{"DELETE FROM obs_value", "DELETE FROM obs_daily",
		"DELETE FROM dwell_meta WHERE key IN ('" + mergedKey + "', '" + mergingKey + "')"} {
		if _, err := s.wconn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	s.seq, s.merged, s.unmerged, s.merging = 0, 0, 0, nil
	const chunk = 500_000
	readers := []struct {
		table, cols string
		add         func(b *event.Batch, r *sql.Rows) error
	}{
		{"conn", "ts, id_orig_h, id_resp_h, coalesce(id_resp_p, 0), coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var c event.Conn
			var src, dst sql.NullString
			var port int64
			if err := r.Scan(&c.TS, &src, &dst, &port, &c.Src.Sensor); err != nil {
				return err
			}
			c.SrcIP, c.DstIP, c.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
			b.Conns = append(b.Conns, c)
			return nil
		}},
		{"dns", "ts, id_orig_h, coalesce(query, ''), answers, coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var d event.DNS
			var src sql.NullString
			var answers any
			if err := r.Scan(&d.TS, &src, &d.Query, &answers, &d.Src.Sensor); err != nil {
				return err
			}
			d.SrcIP, d.Answers = addr(src), strList(answers)
			b.DNS = append(b.DNS, d)
			return nil
		}},
		{"http", "ts, id_orig_h, coalesce(host, ''), coalesce(uri, ''), coalesce(user_agent, ''), coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var h event.HTTP
			var src sql.NullString
			if err := r.Scan(&h.TS, &src, &h.Host, &h.URI, &h.UserAgent, &h.Src.Sensor); err != nil {
				return err
			}
			h.SrcIP = addr(src)
			b.HTTP = append(b.HTTP, h)
			return nil
		}},
		{"ssl", "ts, id_orig_h, coalesce(server_name, ''), coalesce(ja3, ''), coalesce(ja3s, ''), coalesce(ja4, ''), cert_chain_fps, coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var t event.TLS
			var src sql.NullString
			var fps any
			if err := r.Scan(&t.TS, &src, &t.ServerName, &t.JA3, &t.JA3S, &t.JA4, &fps, &t.Src.Sensor); err != nil {
				return err
			}
			t.SrcIP, t.CertChainFPs = addr(src), strList(fps)
			b.TLS = append(b.TLS, t)
			return nil
		}},
		{"x509", "ts, coalesce(fingerprint, ''), coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var x event.X509
			if err := r.Scan(&x.TS, &x.Fingerprint, &x.Src.Sensor); err != nil {
				return err
			}
			b.X509 = append(b.X509, x)
			return nil
		}},
		{"flow", "ts, src_addr, dst_addr, coalesce(dst_port, 0), coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var f event.Flow
			var src, dst sql.NullString
			var port int64
			if err := r.Scan(&f.TS, &src, &dst, &port, &f.Src.Sensor); err != nil {
				return err
			}
			f.SrcIP, f.DstIP, f.DstPort = addr(src), addr(dst), uint16(port) //nolint:gosec // G115: USMALLINT column
			b.Flows = append(b.Flows, f)
			return nil
		}},
		{"files", "ts, id_orig_h, coalesce(md5, ''), coalesce(sha1, ''), coalesce(sha256, ''), coalesce(sensor, '')", func(b *event.Batch, r *sql.Rows) error {
			var f event.File
			var src sql.NullString
			if err := r.Scan(&f.TS, &src, &f.MD5, &f.SHA1, &f.SHA256, &f.Src.Sensor); err != nil {
				return err
			}
			f.SrcIP = addr(src)
			b.Files = append(b.Files, f)
			return nil
		}},
	}
	for _, rd := range readers {
		for off := int64(0); ; off += chunk {
			b := &event.Batch{}
			// The stored form has the rowid; the columns read are none
			// of its coded ones, whose other values only the view adds.
			q := fmt.Sprintf(`SELECT %s FROM %s ORDER BY rowid LIMIT %d OFFSET %d`, rd.cols, s.stored(rd.table), chunk, off)
			if err := s.each(ctx, "summarising "+rd.table, q, nil, func(r *sql.Rows) error { return rd.add(b, r) }); err != nil {
				return err
			}
			if b.Len() == 0 {
				break
			}
			tx, err := s.begin(ctx)
			if err != nil {
				return err
			}
			if err := s.summarize(ctx, tx, store.Summarize(b)); err != nil {
				_ = tx.Rollback()
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			if s.unmerged >= compactEvery {
				if err := s.compact(ctx); err != nil {
					return err
				}
			}
		}
	}
	if err := s.compact(ctx); err != nil {
		return err
	}
	_, err := s.wconn.ExecContext(ctx, `DELETE FROM dwell_meta WHERE key = ?`, backfillPending)
	return err
}
