package duckdb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The analytics over connections read the table conn. Over flow sessions
// (store.FlowSessions) the query is prefixed with a common table
// expression of that name over the sessions stitched from the flow
// records as store.Sessions does (sessionsSQL): records grouped by
// sensor, exporter, protocol and endpoints in either order; a new session where a record starts more
// than the gap after every earlier record of its group ended (a running
// max over the group in start order); the originator by arg_min; counts
// per direction times the sampling interval. Records that start at or
// after the window's end are left out, as the reference does.
//
// A hunt asks for sessions some thirty times, and stitching sorts every
// flow record three times over; so the sessions of each window end are
// stitched once, into a table of an in-memory database attached to the
// store (a database, not a temporary table: those belong to one
// connection of the pool), and read from there until a write of flows
// makes them stale. A stale table is dropped once no query reads it: a
// hunt runs while live ingest writes, and a detector's query must not
// lose its table because another detector asked after a write.

// sessionCache holds the stitched sessions, per window end.
type sessionCache struct {
	mu       sync.Mutex
	attached bool
	gen      uint64                   // the store's flow-write generation the tables hold
	tables   map[string]*sessionTable // window end (as in sessionsSQL) -> its current table
	order    []string                 // the keys of tables, oldest first
	retired  []*sessionTable          // stale or evicted tables some query still reads
	next     int                      // number of the next table
}

// sessionTable is one table of stitched sessions and the queries reading
// it.
type sessionTable struct {
	name string
	refs int
}

// keptSessions is how many window ends keep their sessions: a hunt asks
// for one; a console that looks at many drops the oldest.
const keptSessions = 4

// sessionsDB is the attached database's name.
const sessionsDB = "dwell_sessions"

// withConns returns query q, which reads the table conn, prefixed with
// what w needs to read flow sessions instead: a CTE named conn over the
// sessions' table, made first if this window end has none. done must be
// called once the query has been read (it is never nil): until then the
// table stays, whatever is written meanwhile.
func (s *Store) withConns(ctx context.Context, w store.Window, q string) (query string, done func(), err error) {
	if w.Conns != store.FlowSessions {
		return q, func() {}, nil
	}
	t, err := s.sessionsTable(ctx, w)
	if err != nil {
		return "", func() {}, fmt.Errorf("stitching flow records into sessions: %w", err)
	}
	var once sync.Once
	release := func() { once.Do(func() { s.releaseSessions(ctx, t) }) }
	return "WITH conn AS (SELECT * FROM " + t.name + ") " + strings.TrimLeft(q, " \t\n"), release, nil
}

// sessionsTable returns the table of w's sessions, stitching them first
// if flows were written since or this window end is new, with a reference
// the caller gives back with releaseSessions. Callers of one window end
// wait for the first to finish.
func (s *Store) sessionsTable(ctx context.Context, w store.Window) (*sessionTable, error) {
	c := &s.sessions
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.attached {
		// READ_WRITE: a store opened read-only opens what it attaches
		// read-only too, unless told.
		if _, err := s.db.ExecContext(ctx, "ATTACH ':memory:' AS "+sessionsDB+" (READ_WRITE)"); err != nil {
			return nil, err
		}
		c.attached = true
	}
	if gen := s.flowWrites.Load(); gen != c.gen || c.tables == nil {
		for _, key := range c.order {
			c.retired = append(c.retired, c.tables[key])
		}
		c.gen, c.tables, c.order = gen, map[string]*sessionTable{}, nil
	}
	body := sessionsSQL(w)
	if t, ok := c.tables[body]; ok {
		t.refs++
		return t, nil
	}
	if len(c.order) >= keptSessions {
		c.retired = append(c.retired, c.tables[c.order[0]])
		delete(c.tables, c.order[0])
		c.order = c.order[1:]
	}
	s.dropRetired(ctx)
	t := &sessionTable{name: sessionsDB + ".s" + strconv.Itoa(c.next)}
	c.next++
	if _, err := s.db.ExecContext(ctx, "CREATE TABLE "+t.name+" AS "+body); err != nil {
		return nil, err
	}
	c.tables[body], t.refs = t, 1
	c.order = append(c.order, body)
	return t, nil
}

// releaseSessions gives back a reference sessionsTable returned; the last
// reference to a table no longer current drops it.
func (s *Store) releaseSessions(ctx context.Context, t *sessionTable) {
	c := &s.sessions
	c.mu.Lock()
	defer c.mu.Unlock()
	t.refs--
	s.dropRetired(context.WithoutCancel(ctx))
}

// dropRetired drops the retired tables no query reads; one that fails to
// drop is tried again next time. c.mu is held.
func (s *Store) dropRetired(ctx context.Context) {
	c := &s.sessions
	kept := c.retired[:0]
	for _, t := range c.retired {
		if t.refs > 0 {
			kept = append(kept, t)
			continue
		}
		if _, err := s.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t.name); err != nil {
			kept = append(kept, t)
		}
	}
	clear(c.retired[len(kept):])
	c.retired = kept
}

// sessionsSQL returns the query that stitches the flow records that
// start before w's end. The end is a literal, so that the text names the
// window end in the cache.
func sessionsSQL(w store.Window) string {
	until := "true"
	if !w.Until.IsZero() {
		until = "ts < TIMESTAMP '" + w.Until.UTC().Format("2006-01-02 15:04:05.999999") + "'"
	}
	const key = "sensor, exporter, proto, ka, kpa, kb, kpb"
	const order = "ORDER BY ts, te, source_file, source_line"
	gap := strconv.FormatInt(store.SessionGap.Microseconds(), 10)
	return `WITH f AS (
			SELECT ts, greatest(coalesce(ts_end, ts), ts) AS te, coalesce(sensor, '') AS sensor, coalesce(exporter, '') AS exporter,
				coalesce(proto, '') AS proto, coalesce(src_addr, '') AS sa, coalesce(src_port, 0) AS sp, coalesce(dst_addr, '') AS da,
				coalesce(dst_port, 0) AS dp, coalesce(tcp_flags, 0) AS flags, coalesce(packets, 0) AS pk, coalesce(bytes, 0) AS nb,
				greatest(coalesce(sampling, 1), 1) AS smp, source_file, source_line
			FROM flow WHERE ` + until + ` AND coalesce(export_format, '') <> '` + event.ExportPcap + `'),
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
				greatest(nb::HUGEINT - pk::HUGEINT * ((CASE WHEN contains(sa, ':') THEN 40 ELSE 20 END) +
					(CASE WHEN proto = 'tcp' THEN 20 WHEN proto IN ('udp', 'icmp', 'ipv6-icmp') THEN 8 ELSE 0 END)), 0) * smp AS pay
			FROM o),
		x AS (
			SELECT sensor, proto, min(ts) AS ts, max(te) AS te, any_value(oh) AS oh, any_value(op) AS op,
				CASE WHEN any_value(oh) = ka AND any_value(op) = kpa THEN kb ELSE ka END AS rh,
				CASE WHEN any_value(oh) = ka AND any_value(op) = kpa THEN kpb ELSE kpa END AS rp,
				sum(CASE WHEN fo THEN pay ELSE 0 END) AS ob, sum(CASE WHEN fo THEN 0 ELSE pay END) AS rb,
				sum(CASE WHEN fo THEN pk::HUGEINT * smp ELSE 0 END) AS opk, sum(CASE WHEN fo THEN 0 ELSE pk::HUGEINT * smp END) AS rpk,
				sum(CASE WHEN fo THEN nb::HUGEINT * smp ELSE 0 END) AS oib, sum(CASE WHEN fo THEN 0 ELSE nb::HUGEINT * smp END) AS rib,
				bit_or(CASE WHEN fo THEN flags ELSE 0 END) AS ofl, bit_or(CASE WHEN fo THEN 0 ELSE flags END) AS rfl, bool_or(NOT fo) AS replied,
				arg_min(source_file, (ts, te, source_file, source_line)) AS source_file,
				arg_min(source_line, (ts, te, source_file, source_line)) AS source_line
			FROM d GROUP BY ` + key + `, sid)
		SELECT ts, NULL::VARCHAR AS uid, oh AS id_orig_h, op::USMALLINT AS id_orig_p, rh AS id_resp_h, rp::USMALLINT AS id_resp_p,
			proto, NULL::VARCHAR AS service, epoch_us(te - ts) / 1e6 AS duration, least(ob, 9223372036854775807)::UBIGINT AS orig_bytes, least(rb, 9223372036854775807)::UBIGINT AS resp_bytes,
			` + sessionStateSQL() + ` AS conn_state, least(opk, 9223372036854775807)::UBIGINT AS orig_pkts, least(oib, 9223372036854775807)::UBIGINT AS orig_ip_bytes,
			least(rpk, 9223372036854775807)::UBIGINT AS resp_pkts, least(rib, 9223372036854775807)::UBIGINT AS resp_ip_bytes, NULLIF(sensor, '') AS sensor, source_file, source_line
		FROM x`
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
