package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Retro-hunting in DuckDB: the live indicators and the summary's values
// meet in hash joins on integers, their match keys: the id of a value (a
// hash of its kind and text), the registered domain of a name (as an id),
// the buckets of 65,536 addresses of a network (bkey). Each candidate pair
// is then compared in full. DuckDB hands a Bloom filter of the join's
// keys down to the scan of the summary, which passes about a thousand of
// its rows to the join instead of all of them. The few rows of one
// sighting (a port each) are merged here rather than in SQL, whose list
// aggregates cost more than the join. Networks, public suffixes
// (dynamic-DNS zones: they match names by suffix) and networks wider than
// 4,096 buckets (an IPv4 /4) take joins of their own, added only when
// there are such indicators. Decision 0005 has the measurements.

// matchJoin matches exact values and names. VALS is the values' relation.
const matchJoin = `
	SELECT p.r, v.sensor, v.log, v.value, v."first", v."last", v.count, v.days, v.peers
	FROM (SELECT rowid AS r, value, port, mkey FROM intel_indicator WHERE NOT revoked AND mkey IS NOT NULL) p
	JOIN VALS v ON v.mkey = p.mkey
	WHERE CASE WHEN v.kind = 'domain' THEN v.value = p.value OR ends_with(v.value, '.' || p.value)
		ELSE v.id = p.mkey AND (p.port = 0 OR v.port = p.port) END`

// netJoin matches networks of up to 4,096 buckets by the buckets they span.
const netJoin = `
	SELECT p.r, v.sensor, v.log, v.value, v."first", v."last", v.count, v.days, v.peers
	FROM (SELECT rowid AS r, lo_hi, lo_lo, hi_lo, xor(lo_hi, unnest(range((lo_lo >> 16)::BIGINT, (hi_lo >> 16)::BIGINT + 1))::UBIGINT) AS b
		FROM intel_indicator WHERE NOT revoked AND type = 'cidr' AND lo_hi = hi_hi AND (hi_lo >> 16) - (lo_lo >> 16) < 4096) p
	JOIN VALS v ON v.bkey = p.b
	WHERE v.addr_hi = p.lo_hi AND v.addr_lo BETWEEN p.lo_lo AND p.hi_lo`

// suffixJoin matches indicators that are public suffixes themselves.
const suffixJoin = `
	SELECT i.rowid, v.sensor, v.log, v.value, v."first", v."last", v.count, v.days, v.peers
	FROM intel_indicator i JOIN VALS v ON v.suffix = i.value
	WHERE NOT i.revoked AND i.type = 'domain' AND i.regdom IS NULL AND v.kind = 'domain'`

// wideJoin matches networks of more than 4,096 buckets: within one /64 by
// a range on the low half, wider than a /64 by one on the high half.
const wideJoin = `
	SELECT i.rowid, v.sensor, v.log, v.value, v."first", v."last", v.count, v.days, v.peers
	FROM intel_indicator i JOIN VALS v ON v.addr_hi BETWEEN i.lo_hi AND i.hi_hi
		AND (i.lo_hi < i.hi_hi OR v.addr_lo BETWEEN i.lo_lo AND i.hi_lo)
	WHERE NOT i.revoked AND i.type = 'cidr' AND (i.lo_hi < i.hi_hi OR (i.hi_lo >> 16) - (i.lo_lo >> 16) >= 4096)`

// matchStateQuery reads what a match needs to know first: the last batch
// compacted into obs_value and the last one written (a reader's
// all-history match reads the daily rows in between), and how many live
// indicators netJoin, suffixJoin and wideJoin have to match.
const matchStateQuery = `SELECT (SELECT value FROM dwell_meta WHERE key = '` + mergedKey + `'), (SELECT max(seq) FROM obs_daily),
	count(*) FILTER (WHERE type = 'cidr' AND lo_hi = hi_hi AND (hi_lo >> 16) - (lo_lo >> 16) < 4096),
	count(*) FILTER (WHERE type = 'domain' AND regdom IS NULL),
	count(*) FILTER (WHERE type = 'cidr' AND (lo_hi < hi_hi OR (hi_lo >> 16) - (lo_lo >> 16) >= 4096))
	FROM intel_indicator WHERE NOT revoked`

// valueCols are the summary columns the joins read.
const valueCols = `id, kind, value, log, sensor, port, suffix, addr_hi, addr_lo, count, "first", "last", mkey, bkey`

// MatchIndicators implements store.Analytics. Over all history it reads
// obs_value and the daily rows not yet compacted into it (none when the
// store is open for writing: it compacts them first); over a window, the
// daily rows of the UTC days the window touches.
func (s *Store) MatchIndicators(ctx context.Context, w store.Window, fn func(*event.Sighting) error) error {
	if s.wconn != nil && !s.matchUncompacted { // the writer compacts what waits first: cheaper than reading it here
		s.mu.Lock()
		err := s.compact(ctx)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	// The joins name indicators by rowid, which storing indicators
	// changes: none are stored until the keys are read.
	s.indMu.RLock()
	defer s.indMu.RUnlock()
	st, err := s.matchState(ctx)
	if err != nil {
		return fmt.Errorf("matching indicators: %w", err)
	}
	vals, args := s.matchValues(w, st.merged, st.last)
	// The joins read the summary apart, and at once: DuckDB runs a union
	// of them one after the other, each on one core (the summary is a
	// single row group).
	joins := []string{matchJoin}
	for _, j := range []struct {
		n    int64
		join string
	}{{st.nets, netJoin}, {st.suffixes, suffixJoin}, {st.wide, wideJoin}} {
		if j.n > 0 {
			joins = append(joins, j.join)
		}
	}
	merges := make([]sightingMerge, len(joins))
	g, gctx := errgroup.WithContext(ctx)
	for i, j := range joins {
		g.Go(func() error { return s.runJoin(gctx, strings.Replace(j, "VALS", vals, 1), args, &merges[i]) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("matching indicators: %w", err)
	}
	m := &merges[0]
	for i := 1; i < len(merges); i++ {
		m.absorb(&merges[i])
	}
	if err := s.indicatorKeys(ctx, m.out); err != nil {
		return fmt.Errorf("matching indicators: %w", err)
	}
	return m.emit(fn)
}

// indicatorKeys sets the key of each sighting's indicator from its rowid.
// The keys are kept: rowids change only when indicators are stored
// (PutIndicators forgets them), and matches find mostly the same
// indicators again.
func (s *Store) indicatorKeys(ctx context.Context, out []mergedSighting) error {
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	if s.matchKeys == nil {
		s.matchKeys = map[int64]string{}
	}
	var missing []string
	for i := range out {
		if _, ok := s.matchKeys[out[i].ind]; !ok {
			s.matchKeys[out[i].ind] = "" // asked once
			missing = append(missing, strconv.FormatInt(out[i].ind, 10))
		}
	}
	if len(missing) > 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT rowid, "key" FROM intel_indicator WHERE rowid IN (SELECT unnest(?::VARCHAR[])::BIGINT)`, missing)
		if err != nil {
			s.matchKeys = nil
			return err
		}
		defer func() { _ = rows.Close() }() // errors surface through rows.Err
		for rows.Next() {
			var id int64
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				s.matchKeys = nil
				return err
			}
			s.matchKeys[id] = key
		}
		if err := rows.Err(); err != nil {
			s.matchKeys = nil
			return err
		}
	}
	for i := range out {
		out[i].Key = s.matchKeys[out[i].ind]
	}
	return nil
}

// runJoin runs one join of the match and merges its rows into m.
func (s *Store) runJoin(ctx context.Context, q string, args []any, m *sightingMerge) error {
	stmt, err := s.stmts.prepare(ctx, s.db, q) //nolint:sqlclosecheck // kept, closed with the store (stmtCache.close)
	if err != nil {
		return err
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	for rows.Next() {
		if err := m.add(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// stmtCache keeps the statements a store runs again and again (the
// retro-hunt's), prepared once: planning the match took a third of it.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// prepare returns q prepared on db.
func (c *stmtCache) prepare(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, q) //nolint:sqlclosecheck // kept, closed by close
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// close closes the statements.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// matchState is what matchStateQuery reads.
type matchState struct {
	merged               string // dwell_meta's summary_merged
	last                 int64  // the last batch in obs_daily
	nets, suffixes, wide int64  // live indicators for netJoin, suffixJoin and wideJoin
}

// matchState returns the state of the summary and the indicators. A
// reader keeps it: its file cannot change while it is open (DuckDB lets
// no process write it then). A writer keeps the indicator counts until it
// stores indicators, and knows its batches itself.
func (s *Store) matchState(ctx context.Context) (matchState, error) {
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	if s.matchSt != nil && !s.matchUncompacted {
		return *s.matchSt, nil
	}
	var st matchState
	var merged sql.NullString
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, matchStateQuery).Scan(&merged, &last, &st.nets, &st.suffixes, &st.wide); err != nil {
		return st, err
	}
	st.merged, st.last = merged.String, last.Int64
	s.matchSt = &st
	return st, nil
}

// matchValues returns the relation of summary values a match reads, given
// the last batch compacted and the last one written as the store records
// them.
func (s *Store) matchValues(w store.Window, recordedMerged string, recordedLast int64) (string, []any) {
	if !w.Since.IsZero() || !w.Until.IsZero() {
		first, last := store.WindowDays(w)
		return `(SELECT ` + valueCols + `, strftime(day, '%Y-%m-%d') AS days, peers FROM obs_daily WHERE day BETWEEN ? AND ?)`,
			[]any{first, last}
	}
	// The daily rows of the batches after the last one compacted; none,
	// as a writer compacts first. The bound is a constant so that the
	// scan skips row groups by their min-max (batches are appended in
	// order).
	merged, last := s.merged, s.seq
	if s.wconn == nil || s.matchUncompacted {
		merged = 0
		_, _ = fmt.Sscan(recordedMerged, &merged) // none yet: 0
		last = recordedLast
	}
	if last <= merged {
		return "obs_value", nil // read directly, its columns as needed
	}
	return `(SELECT ` + valueCols + `, days, peers FROM obs_value UNION ALL SELECT ` + valueCols +
		`, strftime(day, '%Y-%m-%d'), peers FROM obs_daily WHERE seq > ` + fmt.Sprint(merged) + `)`, nil
}

// sightingMerge merges the matched summary rows of each indicator, sensor,
// log and value (one per port and, in a window, per day) into sightings.
type sightingMerge struct {
	index map[sightingKey]int
	out   []mergedSighting
}

// sightingKey is a sighting's indicator (its rowid: the key is looked up
// for the matches only), sensor, log and value.
type sightingKey struct {
	ind                int64
	sensor, log, value string
}

type mergedSighting struct {
	event.Sighting
	ind int64 // the indicator's rowid
	// The days and peers of its rows, comma-separated as stored: each
	// distinct and in text order within a row.
	days, peers []string
}

// add merges one row of the match.
func (m *sightingMerge) add(r *sql.Rows) error {
	var k sightingKey
	var first, last sql.NullTime
	var count int64
	var days, peers sql.NullString
	if err := r.Scan(&k.ind, &k.sensor, &k.log, &k.value, &first, &last, &count, &days, &peers); err != nil {
		return err
	}
	if m.index == nil {
		m.index = map[sightingKey]int{}
	}
	i, ok := m.index[k]
	if !ok {
		i = len(m.out)
		m.index[k] = i
		m.out = append(m.out, mergedSighting{ind: k.ind, Sighting: event.Sighting{Sensor: k.sensor, Log: k.log, Observed: k.value,
			First: utc(first), Last: utc(last)}})
	}
	x := &m.out[i]
	x.Count += count
	if f := utc(first); !f.IsZero() && (x.First.IsZero() || f.Before(x.First)) {
		x.First = f
	}
	if l := utc(last); l.After(x.Last) {
		x.Last = l
	}
	x.days, x.peers = append(x.days, days.String), append(x.peers, peers.String)
	return nil
}

// absorb merges the sightings of o into m. (The joins match disjoint sets
// of indicators, so this is mostly an append.)
func (m *sightingMerge) absorb(o *sightingMerge) {
	if m.index == nil {
		m.index = map[sightingKey]int{}
	}
	for i := range o.out {
		x := &o.out[i]
		k := sightingKey{x.ind, x.Sensor, x.Log, x.Observed}
		j, ok := m.index[k]
		if !ok {
			m.index[k] = len(m.out)
			m.out = append(m.out, *x)
			continue
		}
		y := &m.out[j]
		y.Count += x.Count
		if !x.First.IsZero() && (y.First.IsZero() || x.First.Before(y.First)) {
			y.First = x.First
		}
		if x.Last.After(y.Last) {
			y.Last = x.Last
		}
		y.days, y.peers = append(y.days, x.days...), append(y.peers, x.peers...)
	}
}

// emit hands the sightings over in the order of their keys, each with the
// first store.MaxPeers peers in text order.
func (m *sightingMerge) emit(fn func(*event.Sighting) error) error {
	slices.SortFunc(m.out, func(a, b mergedSighting) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
			strings.Compare(a.Observed, b.Observed))
	})
	for i := range m.out {
		x := &m.out[i]
		days := union(x.days)
		x.Days = int64(len(days))
		peers := union(x.peers)
		for _, p := range peers[:min(len(peers), store.MaxPeers)] {
			if a, err := netip.ParseAddr(p); err == nil {
				x.Peers = append(x.Peers, a)
			}
		}
		if err := fn(&x.Sighting); err != nil {
			return err
		}
	}
	return nil
}

// union returns the distinct items of comma-separated lists, in text
// order. One list (most sightings have one row) is taken as it is: the
// store keeps each distinct and in order.
func union(lists []string) []string {
	var out []string
	for _, l := range lists {
		for item := range strings.SplitSeq(l, ",") {
			if item != "" {
				out = append(out, item)
			}
		}
	}
	if len(lists) > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}

// addMatchKeys adds the match key columns (schema 4) to the summary and
// the indicators, and computes them for the rows stored before: in SQL
// where they are functions of stored columns (ids, addresses), here where
// they need store.ValueID (registered domains, indicators).
func addMatchKeys(ctx context.Context, tx *sql.Tx) error {
	for _, c := range []string{"obs_daily.mkey", "obs_daily.bkey", "obs_value.mkey", "obs_value.bkey", "intel_indicator.mkey"} {
		t, col, _ := strings.Cut(c, ".")
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t+` ADD COLUMN IF NOT EXISTS `+col+` UBIGINT`); err != nil {
			return fmt.Errorf("adding %s: %w", c, err)
		}
	}
	regdoms, err := column(ctx, tx, `SELECT DISTINCT regdom FROM (SELECT regdom FROM obs_value WHERE kind = 'domain'
		UNION ALL SELECT regdom FROM obs_daily WHERE kind = 'domain') WHERE regdom IS NOT NULL`)
	if err != nil {
		return err
	}
	keys := make([]string, len(regdoms))
	for i, r := range regdoms {
		keys[i] = strconv.FormatUint(store.ValueID(event.IOCDomain, r), 10)
	}
	for _, t := range []string{"obs_daily", "obs_value"} {
		stmts := []struct {
			q    string
			args []any
		}{
			{`UPDATE ` + t + ` SET mkey = id, bkey = CASE kind WHEN 'ip' THEN xor(addr_hi, addr_lo >> 16) END WHERE kind <> 'domain'`, nil},
			{`UPDATE ` + t + ` SET mkey = k.mkey FROM (SELECT unnest(?::VARCHAR[]) AS regdom, unnest(?::VARCHAR[])::UBIGINT AS mkey) k
				WHERE ` + t + `.kind = 'domain' AND ` + t + `.regdom = k.regdom`, []any{regdoms, keys}},
		}
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
				return fmt.Errorf("computing %s.mkey: %w", t, err)
			}
		}
	}
	ikeys, mkeys, err := indicatorMatchKeys(ctx, tx)
	if err != nil {
		return fmt.Errorf("computing intel_indicator.mkey: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE intel_indicator SET mkey = k.mkey
		FROM (SELECT unnest(?::VARCHAR[]) AS "key", unnest(?::VARCHAR[])::UBIGINT AS mkey) k WHERE intel_indicator."key" = k."key"`, ikeys, mkeys)
	if err != nil {
		return fmt.Errorf("computing intel_indicator.mkey: %w", err)
	}
	return nil
}

// indicatorMatchKeys returns the stored indicators' keys and match keys
// (as text), for those that have one.
func indicatorMatchKeys(ctx context.Context, tx *sql.Tx) (keys, mkeys []string, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT "key", type, value FROM intel_indicator`)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	for rows.Next() {
		var k string
		var i event.Indicator
		if err := rows.Scan(&k, &i.Type, &i.Value); err != nil {
			return nil, nil, err
		}
		if m := store.NewIndicatorRow(i, time.Time{}).MatchKey; m.Valid {
			keys, mkeys = append(keys, k), append(mkeys, strconv.FormatUint(m.V, 10))
		}
	}
	return keys, mkeys, rows.Err()
}

// column returns the strings a one-column query yields.
func column(ctx context.Context, tx *sql.Tx, q string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
