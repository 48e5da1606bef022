package duckdb

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
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

// Retro-hunting in DuckDB, in two steps. First the live indicators and
// the summary's values meet in hash joins on integers, their match keys:
// the id of a value (a hash of its kind and text), the registered domain
// of a name (as an id), the buckets of 65,536 addresses of a network
// (bkey). DuckDB hands a Bloom filter of a join's keys down to the scan
// of the summary, which passes about a thousand of its rows to the join
// instead of all of them. The joins read the summary's narrow key columns
// only and name the pairs they find: an indicator and a summary row, each
// by rowid. Then the rows named are read whole, by rowid, once however
// many pairs name them, in parts read at once, and merged here into
// sightings (a port each, and in a window a day each, make several rows
// of one sighting); a name matched by its registered domain is checked
// here against the indicator's. Reading the summary's wide columns
// (values, days, peers) in each join was three quarters of its time:
// DuckDB reads every vector of the table for them, whatever the join
// keeps; read by rowid, only the vectors that hold the rows named.
// Networks, public suffixes (dynamic-DNS zones: they match names by
// suffix) and networks wider than 4,096 buckets (an IPv4 /4) take joins
// of their own, added only when there are such indicators. Decision 0005
// has the measurements.

// matchJoin matches exact values, and names by their registered domain.
// VALS is the relation of summary rows (matchValues).
const matchJoin = `
	SELECT p.r, v.src, v.rid
	FROM (SELECT rowid AS r, port, mkey FROM intel_indicator WHERE NOT revoked AND mkey IS NOT NULL) p
	JOIN VALS v ON v.mkey = p.mkey
	WHERE p.port = 0 OR v.port = p.port OR v.kind = 'domain'`

// netJoin matches networks of up to 4,096 buckets by the buckets they span.
const netJoin = `
	SELECT p.r, v.src, v.rid
	FROM (SELECT rowid AS r, lo_hi, lo_lo, hi_lo, xor(lo_hi, unnest(range((lo_lo >> 16)::BIGINT, (hi_lo >> 16)::BIGINT + 1))::UBIGINT) AS b
		FROM intel_indicator WHERE NOT revoked AND type = 'cidr' AND lo_hi = hi_hi AND (hi_lo >> 16) - (lo_lo >> 16) < 4096) p
	JOIN VALS v ON v.bkey = p.b
	WHERE v.addr_hi = p.lo_hi AND v.addr_lo BETWEEN p.lo_lo AND p.hi_lo`

// suffixJoin matches indicators that are public suffixes themselves.
const suffixJoin = `
	SELECT i.rowid, v.src, v.rid
	FROM intel_indicator i JOIN VALS v ON v.suffix = i.value
	WHERE NOT i.revoked AND i.type = 'domain' AND i.regdom IS NULL AND v.kind = 'domain'`

// wideJoin matches networks of more than 4,096 buckets: within one /64 by
// a range on the low half, wider than a /64 by one on the high half.
const wideJoin = `
	SELECT i.rowid, v.src, v.rid
	FROM intel_indicator i JOIN VALS v ON v.addr_hi BETWEEN i.lo_hi AND i.hi_hi
		AND (i.lo_hi < i.hi_hi OR v.addr_lo BETWEEN i.lo_lo AND i.hi_lo)
	WHERE NOT i.revoked AND i.type = 'cidr' AND (i.lo_hi < i.hi_hi OR (i.hi_lo >> 16) - (i.lo_lo >> 16) >= 4096)`

// keyCols are the summary columns the joins read.
const keyCols = `kind, port, suffix, addr_hi, addr_lo, mkey, bkey`

// The summary rows the joins name are in obs_value or in obs_daily: the
// relation they join (matchValues) says which in its column src.
const (
	srcValue = iota // obs_value
	srcDaily        // obs_daily
	nsrc
)

// srcTable names the table of src.
func srcTable(src int) string {
	if src == srcDaily {
		return "obs_daily"
	}
	return "obs_value"
}

// fetchRows returns the query that reads summary rows of src by rowid,
// whole, with their days and peers as comma-separated strings: those from
// rowid $1 to $2 whose bit is set in $3, a BIT string (as text: its first
// bit stands for rowid $1). As a filter of the scan, this reads only the
// vectors that hold such rows; a semi join on a list of rowids read every
// vector from the first to the last, and took half a millisecond more for
// the benchmark's matches.
func fetchRows(src int) string {
	days := `v.days`
	if src == srcDaily {
		days = `strftime(v.day, '%Y-%m-%d')`
	}
	return `SELECT v.rowid, v.kind, v.sensor, v.log, v.value, v."first", v."last", v.count, ` + days + `, v.peers FROM ` + srcTable(src) +
		` v WHERE v.rowid BETWEEN $1 AND $2 AND get_bit($3::BIT, (v.rowid - $1)::INTEGER) = 1`
}

// maxBitSpan bounds the rowids a fetchRows bitmap spans (a byte each):
// parts are cut to fit. Store.maxBitSpan, when set (tests), replaces it.
const maxBitSpan = 1 << 22

// matchStateQuery reads what a match needs to know first: the last batch
// compacted into obs_value and the last one written (a reader's
// all-history match reads the daily rows in between), and how many live
// indicators netJoin, suffixJoin and wideJoin have to match.
const matchStateQuery = `SELECT (SELECT value FROM dwell_meta WHERE key = '` + mergedKey + `'), (SELECT max(seq) FROM obs_daily),
	(SELECT value FROM dwell_meta WHERE key = '` + mergingKey + `'),
	count(*) FILTER (WHERE type = 'cidr' AND lo_hi = hi_hi AND (hi_lo >> 16) - (lo_lo >> 16) < 4096),
	count(*) FILTER (WHERE type = 'domain' AND regdom IS NULL),
	count(*) FILTER (WHERE type = 'cidr' AND (lo_hi < hi_hi OR (hi_lo >> 16) - (lo_lo >> 16) >= 4096))
	FROM intel_indicator WHERE NOT revoked`

// MatchIndicators implements store.Analytics. Over all history it reads
// obs_value and the daily rows not yet compacted into it (none when the
// store is open for writing: it compacts them first); over a window, the
// daily rows of the UTC days the window touches.
func (s *Store) MatchIndicators(ctx context.Context, w store.Window, fn func(*event.Sighting) error) error {
	pairs, rows, inds, err := s.match(ctx, w)
	if err != nil {
		return fmt.Errorf("matching indicators: %w", err)
	}
	var m sightingMerge
	for _, p := range pairs {
		r, ind := rows[p.src][p.rid], inds[p.ind]
		if r == nil {
			return fmt.Errorf("matching indicators: row %d of %s, named by a join, was not read back", p.rid, srcTable(p.src))
		}
		if r.kind == string(event.IOCDomain) && !nameMatches(r.value, ind.value) {
			continue // another name of the indicator's registered domain
		}
		m.add(ind.key, r)
	}
	return m.emit(fn)
}

// match runs the joins of a match over w and reads the summary rows and
// indicators they name.
func (s *Store) match(ctx context.Context, w store.Window) ([]matchPair, [nsrc]map[int64]*summaryRow, map[int64]matchedIndicator, error) {
	var rows [nsrc]map[int64]*summaryRow
	if s.wconn != nil {
		// The joins name summary rows and indicators by rowid, which
		// writing changes (compacting rewrites summary rows, storing
		// indicators renumbers them): nothing is written until the
		// rows named are read. A reader's file cannot change.
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.matchUncompacted { // compacting what waits is cheaper than reading it here
			if err := s.compact(ctx); err != nil {
				return nil, rows, nil, err
			}
		}
	}
	st, err := s.matchState(ctx)
	if err != nil {
		return nil, rows, nil, err
	}
	vals, args := s.matchValues(w, st)
	pairs, err := s.joinKeys(ctx, st, vals, args)
	if err != nil {
		return nil, rows, nil, err
	}
	s.matchMu.Lock()
	pause := s.matchPause
	s.matchMu.Unlock()
	if pause != nil {
		pause()
	}
	rows, inds, err := s.readPairs(ctx, pairs)
	return pairs, rows, inds, err
}

// joinKeys runs the joins of a match on the summary rows vals and returns
// the pairs they name. The joins read the summary apart, and at once:
// DuckDB runs a union of them one after the other, each on one core (the
// summary is a single row group). They match disjoint sets of
// indicators: no pair comes twice.
func (s *Store) joinKeys(ctx context.Context, st matchState, vals string, args []any) ([]matchPair, error) {
	joins := []string{matchJoin}
	for _, j := range []struct {
		n    int64
		join string
	}{{st.nets, netJoin}, {st.suffixes, suffixJoin}, {st.wide, wideJoin}} {
		if j.n > 0 {
			joins = append(joins, j.join)
		}
	}
	found := make([][]matchPair, len(joins))
	g, gctx := errgroup.WithContext(ctx)
	for i, j := range joins {
		g.Go(func() (err error) {
			found[i], err = s.runJoin(gctx, strings.Replace(j, "VALS", vals, 1), args)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(found...), nil
}

// readPairs reads the summary rows and the indicators that pairs name,
// by source and rowid: the rows in parts read at once (vectorParts,
// spanParts).
func (s *Store) readPairs(ctx context.Context, pairs []matchPair) ([nsrc]map[int64]*summaryRow, map[int64]matchedIndicator, error) {
	var rows [nsrc]map[int64]*summaryRow
	var parts [][]int64
	var srcs []int
	for src := range nsrc {
		for _, ids := range vectorParts(rowIDs(pairs, src), fetchParts) {
			for _, ids := range spanParts(ids, cmp.Or(s.maxBitSpan, maxBitSpan)) {
				parts, srcs = append(parts, ids), append(srcs, src)
			}
		}
	}
	got := make([]map[int64]*summaryRow, len(parts))
	var inds map[int64]matchedIndicator
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParts + 1) // and the indicators
	for i, ids := range parts {
		g.Go(func() (err error) {
			got[i], err = s.summaryRows(gctx, srcs[i], ids)
			return err
		})
	}
	g.Go(func() (err error) {
		inds, err = s.matchedIndicators(gctx, pairs)
		return err
	})
	if err := g.Wait(); err != nil {
		return rows, nil, err
	}
	for i, part := range got {
		if rows[srcs[i]] == nil {
			rows[srcs[i]] = part
		} else {
			maps.Copy(rows[srcs[i]], part)
		}
	}
	return rows, inds, nil
}

// matchPair is a pair a join names: an indicator and a summary row, by
// rowid.
type matchPair struct {
	ind, rid int64
	src      int
}

// runJoin runs one join of the match and returns the pairs it names.
func (s *Store) runJoin(ctx context.Context, q string, args []any) ([]matchPair, error) {
	rows, err := s.queryPrepared(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	var out []matchPair
	for rows.Next() {
		var p matchPair
		if err := rows.Scan(&p.ind, &p.src, &p.rid); err != nil {
			return nil, err
		}
		if p.src < 0 || p.src >= nsrc {
			return nil, fmt.Errorf("BUG: summary source %d", p.src)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// rowIDs returns the distinct rowids of src that pairs name, in order.
func rowIDs(pairs []matchPair, src int) []int64 {
	var ids []int64
	for _, p := range pairs {
		if p.src == src {
			ids = append(ids, p.rid)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// fetchParts is how many parts a match reads the rows it names in at
// once: one per core of this machine's benchmark (docs/benchmarks.md).
const fetchParts = 2

// vectorSize is the rows of a DuckDB vector, which a scan reads whole.
const vectorSize = 2048

// vectorParts splits sorted rowids into at most n parts that span about
// as many of DuckDB's vectors each. Reading rows by rowid costs about as
// much as reading all the vectors that hold them (0.15 to 0.2 ms each in
// obs_value, whose days and peers are long): parts read at once divide
// that among cores.
func vectorParts(ids []int64, n int) [][]int64 {
	newVector := func(i int) bool { return i == 0 || ids[i]/vectorSize != ids[i-1]/vectorSize }
	vectors := 0
	for i := range ids {
		if newVector(i) {
			vectors++
		}
	}
	if vectors == 0 {
		return nil
	}
	per := (vectors + n - 1) / n
	var out [][]int64
	start, seen := 0, 0
	for i := range ids {
		if newVector(i) {
			if seen == per {
				out = append(out, ids[start:i])
				start, seen = i, 0
			}
			seen++
		}
	}
	return append(out, ids[start:])
}

// spanParts cuts sorted rowids into parts that each span less than span
// rowids.
func spanParts(ids []int64, span int64) [][]int64 {
	var out [][]int64
	start := 0
	for i, id := range ids {
		if id-ids[start] >= span {
			out = append(out, ids[start:i])
			start = i
		}
	}
	if start < len(ids) {
		out = append(out, ids[start:])
	}
	return out
}

// summaryRow is a summary row a match names, as fetchRows reads it.
type summaryRow struct {
	kind, sensor, log, value string
	first, last              time.Time
	count                    int64
	// Days and peers, comma-separated as stored: each distinct and in
	// text order within a row.
	days, peers string
	// How many days, and the first store.MaxPeers peers parsed: a
	// sighting of this row alone has these (most sightings).
	ndays int64
	addrs []netip.Addr
}

// parse sets r's ndays and addrs from its days and peers.
func (r *summaryRow) parse() {
	if r.days != "" {
		r.ndays = int64(strings.Count(r.days, ",") + 1)
	}
	if r.peers == "" {
		return
	}
	n := min(strings.Count(r.peers, ",")+1, store.MaxPeers)
	r.addrs = make([]netip.Addr, 0, n)
	for p := range strings.SplitSeq(r.peers, ",") {
		if n == 0 {
			break
		}
		n--
		if a, err := netip.ParseAddr(p); err == nil {
			r.addrs = append(r.addrs, a)
		}
	}
}

// summaryRows reads the rows of src with the given rowids, sorted and
// spanning less than maxBitSpan.
func (s *Store) summaryRows(ctx context.Context, src int, ids []int64) (map[int64]*summaryRow, error) {
	lo, hi := ids[0], ids[len(ids)-1]
	bits := make([]byte, hi-lo+1)
	for i := range bits {
		bits[i] = '0'
	}
	for _, id := range ids {
		bits[id-lo] = '1'
	}
	rows, err := s.queryPrepared(ctx, fetchRows(src), lo, hi, string(bits))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	out := make(map[int64]*summaryRow, len(ids))
	all := make([]summaryRow, len(ids)) // a row per rowid at most
	for n := 0; rows.Next(); n++ {
		if n == len(all) {
			return nil, fmt.Errorf("BUG: more summary rows than rowids")
		}
		var id int64
		r := &all[n]
		var first, last sql.NullTime
		var days, peers sql.NullString
		if err := rows.Scan(&id, &r.kind, &r.sensor, &r.log, &r.value, &first, &last, &r.count, &days, &peers); err != nil {
			return nil, err
		}
		r.first, r.last, r.days, r.peers = utc(first), utc(last), days.String, peers.String
		r.parse() // here, as parts are read at once
		out[id] = r
	}
	return out, rows.Err()
}

// matchedIndicator is what a match needs of an indicator: its key, and
// its value to check names against.
type matchedIndicator struct{ key, value string }

// matchedIndicators returns the indicators pairs name, by rowid. They are
// kept: rowids change only when indicators are stored (PutIndicators
// forgets them), and matches find mostly the same indicators again.
func (s *Store) matchedIndicators(ctx context.Context, pairs []matchPair) (map[int64]matchedIndicator, error) {
	s.matchMu.Lock()
	defer s.matchMu.Unlock()
	if s.matchInds == nil {
		s.matchInds = map[int64]matchedIndicator{}
	}
	var missing []int64
	for _, p := range pairs {
		if _, ok := s.matchInds[p.ind]; !ok {
			s.matchInds[p.ind] = matchedIndicator{} // asked once
			missing = append(missing, p.ind)
		}
	}
	if len(missing) > 0 {
		if err := s.readIndicators(ctx, missing); err != nil {
			s.matchInds = nil
			return nil, err
		}
	}
	out := make(map[int64]matchedIndicator, len(missing))
	for _, p := range pairs {
		out[p.ind] = s.matchInds[p.ind]
	}
	return out, nil
}

// readIndicators reads the keys and values of indicators by rowid into
// s.matchInds. Call with s.matchMu held.
func (s *Store) readIndicators(ctx context.Context, ids []int64) error {
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, "key", value FROM intel_indicator WHERE rowid IN (SELECT unnest(?::BIGINT[]))`, ids)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	for rows.Next() {
		var id int64
		var ind matchedIndicator
		if err := rows.Scan(&id, &ind.key, &ind.value); err != nil {
			return err
		}
		s.matchInds[id] = ind
	}
	return rows.Err()
}

// nameMatches reports whether name is the indicator's name ind or one of
// its subdomains.
func nameMatches(name, ind string) bool {
	return name == ind || len(name) > len(ind) && strings.HasSuffix(name, ind) && name[len(name)-len(ind)-1] == '.'
}

// queryPrepared runs q, prepared once per store (stmtCache).
func (s *Store) queryPrepared(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	stmt, err := s.stmts.prepare(ctx, s.db, q) //nolint:sqlclosecheck // kept, closed with the store (stmtCache.close)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
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
	merged               string   // dwell_meta's summary_merged
	merging              *merging // a compaction cut short (summary_merging)
	last                 int64    // the last batch in obs_daily
	nets, suffixes, wide int64    // live indicators for netJoin, suffixJoin and wideJoin
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
	var merged, merging sql.NullString
	var last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, matchStateQuery).Scan(&merged, &last, &merging, &st.nets, &st.suffixes, &st.wide); err != nil {
		return st, err
	}
	st.merged, st.last, st.merging = merged.String, last.Int64, parseMerging(merging.String)
	s.matchSt = &st
	return st, nil
}

// matchValues returns the relation of summary rows a match joins (their
// source, rowid and key columns), given the last batch compacted and the
// last one written as the store records them.
func (s *Store) matchValues(w store.Window, recorded matchState) (string, []any) {
	daily := fmt.Sprintf(`SELECT %d AS src, rowid AS rid, %s FROM obs_daily`, srcDaily, keyCols)
	if !w.Since.IsZero() || !w.Until.IsZero() {
		first, last := store.WindowDays(w)
		return `(` + daily + ` WHERE day BETWEEN ? AND ?)`, []any{first, last}
	}
	values := fmt.Sprintf(`SELECT %d AS src, rowid AS rid, %s FROM obs_value`, srcValue, keyCols)
	// The daily rows of the batches after the last one compacted; none,
	// as a writer compacts first. The bound is a constant so that the
	// scan skips row groups by their min-max (batches are appended in
	// order).
	merged, last, part := s.merged, s.seq, s.merging.mergedPart()
	if s.wconn == nil || s.matchUncompacted {
		merged = 0
		_, _ = fmt.Sscan(recorded.merged, &merged) // none yet: 0
		last, part = recorded.last, recorded.merging.mergedPart()
	}
	if last <= merged {
		return `(` + values + `)`, nil
	}
	cond := ` WHERE seq > ` + fmt.Sprint(merged)
	if part != "" {
		// A compaction cut short merged these into obs_value already.
		cond += ` AND NOT ` + part
	}
	return `(` + values + ` UNION ALL ` + daily + cond + `)`, nil
}

// sightingMerge merges the summary rows of each indicator, sensor, log and
// value (one per port and, in a window, per day) into sightings.
type sightingMerge struct {
	index map[sightingKey]*mergedSighting
	out   []*mergedSighting
}

// sightingKey is a sighting's indicator, sensor, log and value.
type sightingKey struct{ ind, sensor, log, value string }

type mergedSighting struct {
	event.Sighting
	rows []*summaryRow // for their days and peers
}

// add merges a summary row that indicator ind matched.
func (m *sightingMerge) add(ind string, r *summaryRow) {
	k := sightingKey{ind, r.sensor, r.log, r.value}
	if m.index == nil {
		m.index = map[sightingKey]*mergedSighting{}
	}
	x := m.index[k]
	if x == nil {
		x = &mergedSighting{Sighting: event.Sighting{Key: ind, Sensor: r.sensor, Log: r.log, Observed: r.value, First: r.first, Last: r.last}}
		m.index[k] = x
		m.out = append(m.out, x)
	}
	x.Count += r.count
	if !r.first.IsZero() && (x.First.IsZero() || r.first.Before(x.First)) {
		x.First = r.first
	}
	if r.last.After(x.Last) {
		x.Last = r.last
	}
	x.rows = append(x.rows, r)
}

// emit hands the sightings over in the order of their keys, each with the
// first store.MaxPeers peers in text order.
func (m *sightingMerge) emit(fn func(*event.Sighting) error) error {
	slices.SortFunc(m.out, func(a, b *mergedSighting) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
			strings.Compare(a.Observed, b.Observed))
	})
	for _, x := range m.out {
		if len(x.rows) == 1 {
			// Shared with any other sighting of the row: clipped, so that
			// appending to one leaves the other alone.
			x.Days, x.Peers = x.rows[0].ndays, slices.Clip(x.rows[0].addrs)
		} else {
			x.Days = int64(len(union(x.rows, func(r *summaryRow) string { return r.days })))
			peers := union(x.rows, func(r *summaryRow) string { return r.peers })
			for _, p := range peers[:min(len(peers), store.MaxPeers)] {
				if a, err := netip.ParseAddr(p); err == nil {
					x.Peers = append(x.Peers, a)
				}
			}
		}
		if err := fn(&x.Sighting); err != nil {
			return err
		}
	}
	return nil
}

// union returns the distinct items of the rows' comma-separated lists, in
// text order.
func union(rows []*summaryRow, list func(*summaryRow) string) []string {
	var out []string
	for _, r := range rows {
		for item := range strings.SplitSeq(list(r), ",") {
			if item != "" {
				out = append(out, item)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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
