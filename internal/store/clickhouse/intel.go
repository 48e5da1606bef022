package clickhouse

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Intel in ClickHouse: indicators in intel_indicator (a row per import,
// the newest version of a key wins), sightings in intel_sighting (each
// PutSightings a new generation; readers take the newest), source state
// in dwell_meta, and the value summary in obs_daily alone. There is no
// obs_value: ClickHouse reads the daily rows of the values indicators
// name through its primary key (kind, value, day) and aggregates them
// where they are, so the compaction the DuckDB store needs buys nothing
// here.

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
	known := 0
	const per = 10_000
	for start := 0; start < len(rows); start += per {
		keys := make([]string, 0, per)
		for _, r := range rows[start:min(start+per, len(rows))] {
			keys = append(keys, r.Key)
		}
		v, err := s.c.scalar(ctx, "SELECT uniqExact(key) FROM intel_indicator WHERE key IN "+stringList(keys))
		if err != nil {
			return 0, 0, fmt.Errorf("storing indicators: %w", err)
		}
		n, _ := strconv.Atoi(v)
		known += n
	}
	body, err := s.enc.indicators.encode(rows, s.version())
	if err != nil {
		return 0, 0, err
	}
	// Sending the same rows twice after a lost answer is harmless: a
	// key's newest version is read, and both copies are the same.
	for attempt := 1; ; attempt++ {
		err = s.c.insertOnce(ctx, s.c.nodes[0], s.enc.indicators.insert, body, syncInsert)
		if err == nil || !retryable(err) || attempt > s.c.retries {
			break
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, 0, err
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("storing indicators: %w", err)
	}
	return len(rows) - known, known, nil
}

// DeleteIndicators implements store.IntelWriter: every version of the
// source's keys goes, on every node.
func (s *Store) DeleteIndicators(ctx context.Context, source string) (int, error) {
	if s.ro {
		return 0, s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	source, _ = event.EscapeText(source) // as stored
	v, err := s.c.scalar(ctx, "SELECT uniqExact(key) FROM intel_indicator WHERE source = "+quoteString(source))
	if err != nil {
		return 0, fmt.Errorf("deleting the indicators of %s: %w", source, err)
	}
	n, _ := strconv.Atoi(v)
	if n == 0 {
		return 0, nil
	}
	if err := s.deleteWhere(ctx, "intel_indicator", "source = "+quoteString(source)); err != nil {
		return 0, fmt.Errorf("deleting the indicators of %s: %w", source, err)
	}
	return n, nil
}

// Indicators implements store.IntelReader.
func (s *Store) Indicators(ctx context.Context, fn func(*event.Indicator) error) error {
	want := []string{"key", "source", "type", "value", "port", "ref", "grp", "name", "valid_from", "valid_until", "confidence", "tlp",
		"tags", "attack", "actionable", "revoked", "modified"}
	var b strings.Builder
	b.WriteString("SELECT key")
	for _, c := range want[1:] {
		switch c {
		case "tags", "attack":
			fmt.Fprintf(&b, ", arrayStringConcat(arrayMap(x -> replaceAll(x, ',', '%%2C'), argMax(%s, version)), ',')", quote(c))
		default:
			fmt.Fprintf(&b, ", argMax(%s, version)", quote(c))
		}
	}
	b.WriteString(" FROM intel_indicator GROUP BY key ORDER BY key")
	var i event.Indicator
	return s.c.each(ctx, "indicators", b.String(), func(r *tsvReader) error {
		i = event.Indicator{Source: r.Field(1), Type: event.IOCType(r.Field(2)), Value: r.Field(3), Port: uint16(r.Int(4)), //nolint:gosec // G115: UInt16 column
			Ref: r.Field(5), Group: r.Field(6), Name: r.Field(7), ValidFrom: r.Time(8), ValidUntil: r.Time(9), Confidence: -1,
			TLP: r.Field(11), Tags: commaList(r.Field(12)), Attack: commaList(r.Field(13)), Actionable: r.Int(14) == 1,
			Revoked: r.Int(15) == 1, Modified: r.Time(16)}
		if !r.Null(10) {
			i.Confidence = int(r.Int(10))
		}
		return fn(&i)
	})
}

// commaList splits a list whose items had their commas escaped as %2C.
func commaList(s string) []string {
	items := splitList(s)
	for i, it := range items {
		items[i] = strings.ReplaceAll(it, "%2C", ",")
	}
	return items
}

// PutSightings implements store.IntelWriter: the sightings become a new
// generation, and older ones are deleted in the background.
func (s *Store) PutSightings(ctx context.Context, sightings []event.Sighting) error {
	if s.ro {
		return s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.version()
	const per = 1000
	for start := 0; start < len(sightings); start += per {
		var q strings.Builder
		q.WriteString("INSERT INTO intel_sighting (gen, key, sensor, log, observed, first, last, count, days, peers) VALUES ")
		for i, x := range sightings[start:min(start+per, len(sightings))] {
			if i > 0 {
				q.WriteString(", ")
			}
			peers := make([]string, len(x.Peers))
			for j, p := range x.Peers {
				peers[j] = quoteString(p.String())
			}
			fmt.Fprintf(&q, "(%d, %s, %s, %s, %s, %d, %d, %d, %d, [%s])", gen, quoteString(x.Key), quoteString(x.Sensor), quoteString(x.Log),
				quoteString(x.Observed), x.First.UnixMicro(), x.Last.UnixMicro(), x.Count, x.Days, strings.Join(peers, ","))
		}
		if err := s.c.exec(ctx, s.c.nodes[0], q.String(), syncInsert); err != nil {
			return fmt.Errorf("storing sightings: %w", err)
		}
	}
	if err := s.setMeta(ctx, "sightings_gen", fmt.Sprint(gen)); err != nil {
		return err
	}
	for _, n := range s.c.nodes {
		q := fmt.Sprintf("ALTER TABLE %s DELETE WHERE gen < %d", quote(s.localName("intel_sighting")), gen)
		if err := s.c.exec(ctx, n, q, nil); err != nil {
			return fmt.Errorf("removing old sightings: %w", err)
		}
	}
	return nil
}

// Sightings implements store.IntelReader.
func (s *Store) Sightings(ctx context.Context, fn func(*event.Sighting) error) error {
	v, err := s.meta(ctx, "sightings_gen")
	if err != nil || v == "" {
		return err
	}
	gen, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return fmt.Errorf("bad sightings_gen %q in dwell_meta", v)
	}
	q := fmt.Sprintf(`SELECT key, sensor, log, observed, first, last, count, days, arrayStringConcat(peers, ',') FROM intel_sighting
		WHERE gen = %d ORDER BY key, sensor, log, observed`, gen)
	var x event.Sighting
	return s.c.each(ctx, "sightings", q, func(r *tsvReader) error {
		x = event.Sighting{Key: r.Field(0), Sensor: r.Field(1), Log: r.Field(2), Observed: r.Field(3), First: r.Time(4), Last: r.Time(5),
			Count: r.Int(6), Days: r.Int(7), Peers: addrs(r.Field(8))}
		return fn(&x)
	})
}

func addrs(list string) []netip.Addr {
	var out []netip.Addr
	for _, s := range splitList(list) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// SetState implements store.IntelWriter.
func (s *Store) SetState(ctx context.Context, key, value string) error {
	if s.ro {
		return s.readOnlyError()
	}
	key, _ = event.EscapeText(key) // as the DuckDB store keeps them
	value, _ = event.EscapeText(value)
	return s.setMeta(ctx, "state:"+key, value)
}

// State implements store.IntelReader.
func (s *Store) State(ctx context.Context, key string) (string, error) {
	key, _ = event.EscapeText(key)
	return s.meta(ctx, "state:"+key)
}

// MatchIndicators implements store.Analytics. The live indicators become
// conditions on obs_daily's keys (store.IndicatorMatcher); ClickHouse
// aggregates the rows that meet them per value, log, sensor and port, and
// each is matched exactly here.
func (s *Store) MatchIndicators(ctx context.Context, w store.Window, fn func(*event.Sighting) error) error {
	var inds []event.Indicator
	err := s.Indicators(ctx, func(i *event.Indicator) error {
		inds = append(inds, *i)
		return nil
	})
	if err != nil {
		return err
	}
	m := store.NewIndicatorMatcher(inds)
	if m.Empty() {
		return nil
	}
	first, last := store.WindowDays(w)
	q := fmt.Sprintf(`SELECT kind, value, log, sensor, port, sum(count), min(first), max(last),
			arrayStringConcat(arrayMap(d -> toString(d), groupUniqArray(%s)), ','),
			arrayStringConcat(arraySlice(arraySort(groupUniqArrayArray(splitByChar(',', ifNull(peers, '')))), 1, %d), ',')
		FROM obs_daily WHERE day >= %d AND day <= %d AND (%s)
		GROUP BY kind, value, log, sensor, port`, dayOf("day"), store.MaxPeers+1, first.UnixMicro(), last.UnixMicro(), matchCond(m))
	found := m.NewSightings()
	err = s.c.each(ctx, "matching indicators", q, func(r *tsvReader) error {
		found.Add(event.IOCType(r.Field(0)), r.Field(1), r.Field(2), r.Field(3), uint16(r.Int(4)), r.Int(5), r.Time(6), r.Time(7), //nolint:gosec // G115: UInt16 column
			splitList(r.Field(8)), splitList(r.Field(9)))
		return nil
	})
	if err != nil {
		return err
	}
	res := found.Result()
	for i := range res {
		if err := fn(&res[i]); err != nil {
			return err
		}
	}
	return nil
}

// matchCond returns the condition selecting the summary rows that may
// match m's indicators.
func matchCond(m *store.IndicatorMatcher) string {
	var conds []string
	kinds, values := m.Values()
	for _, k := range kinds {
		conds = append(conds, "(kind = "+quoteString(string(k))+" AND value IN "+stringList(values[k])+")")
	}
	if r := m.RegDomains(); len(r) > 0 {
		conds = append(conds, "(kind = 'domain' AND regdom IN "+stringList(r)+")")
	}
	if sfx := m.Suffixes(); len(sfx) > 0 {
		conds = append(conds, "(kind = 'domain' AND suffix IN "+stringList(sfx)+")")
	}
	if bs := m.Buckets(); len(bs) > 0 {
		var b strings.Builder
		for i, k := range bs {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,%d)", k[0], k[1])
		}
		conds = append(conds, "(kind = 'ip' AND (assumeNotNull(addr_hi), bitShiftRight(assumeNotNull(addr_lo), 16)) IN ("+b.String()+"))")
	}
	for _, r := range m.Ranges() {
		if r[0] == r[2] {
			conds = append(conds, fmt.Sprintf("(kind = 'ip' AND addr_hi = %d AND addr_lo >= %d AND addr_lo <= %d)", r[0], r[1], r[3]))
		} else {
			conds = append(conds, fmt.Sprintf("(kind = 'ip' AND addr_hi >= %d AND addr_hi <= %d)", r[0], r[2]))
		}
	}
	if len(conds) == 0 {
		return "0"
	}
	return strings.Join(conds, " OR ")
}
