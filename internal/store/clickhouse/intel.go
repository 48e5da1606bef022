package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
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
	body, err := newEncoder(s.intel.Indicators).encode(rows, s.version())
	if err != nil {
		return 0, 0, err
	}
	// Sending the same rows twice after a lost answer is harmless: a
	// key's newest version is read, and both copies are the same.
	q := "INSERT INTO intel_indicator (" + columnList(s.intel.Indicators.Info(), "version") + ") FORMAT RowBinary"
	for attempt := 1; ; attempt++ {
		err = s.c.insertOnce(ctx, s.c.nodes[0], q, body, syncInsert)
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
	return s.setMeta(ctx, "state:"+key, value)
}

// State implements store.IntelReader.
func (s *Store) State(ctx context.Context, key string) (string, error) {
	return s.meta(ctx, "state:"+key)
}

// MatchIndicators implements store.Analytics. The live indicators are read
// and turned into conditions on the summary's keys: exact values, the
// registered domains and suffixes of domain indicators, and the /16
// buckets or ranges of networks. ClickHouse aggregates the daily rows that
// meet them per value, log, sensor and port; each indicator is then
// matched exactly (store.Matches) against those values here, and the
// sightings merged per indicator, sensor, log and value.
func (s *Store) MatchIndicators(ctx context.Context, w store.Window, fn func(*event.Sighting) error) error {
	var live []event.Indicator
	err := s.Indicators(ctx, func(i *event.Indicator) error {
		if !i.Revoked && i.Type.Matchable() {
			live = append(live, *i)
		}
		return nil
	})
	if err != nil || len(live) == 0 {
		return err
	}
	m := newMatcher(live)
	first, last := store.WindowDays(w)
	q := fmt.Sprintf(`SELECT kind, value, log, sensor, port, sum(count), min(first), max(last),
			arrayStringConcat(arrayMap(d -> toString(d), groupUniqArray(%s)), ','),
			arrayStringConcat(arraySlice(arraySort(groupUniqArrayArray(splitByChar(',', ifNull(peers, '')))), 1, %d), ',')
		FROM obs_daily WHERE day >= %d AND day <= %d AND (%s)
		GROUP BY kind, value, log, sensor, port`, dayOf("day"), store.MaxPeers+1, first.UnixMicro(), last.UnixMicro(), m.cond())
	type sKey struct{ ind, sensor, log, value string }
	type sAgg struct {
		s     event.Sighting
		days  map[string]bool
		peers []string
	}
	out := map[sKey]*sAgg{}
	err = s.c.each(ctx, "matching indicators", q, func(r *tsvReader) error {
		kind, value, log, sensor, port := event.IOCType(r.Field(0)), r.Field(1), r.Field(2), r.Field(3), uint16(r.Int(4)) //nolint:gosec // G115: UInt16 column
		for _, ind := range m.candidates(kind, value) {
			if !store.Matches(ind, kind, value, port) {
				continue
			}
			k := sKey{ind.Key(), sensor, log, value}
			a := out[k]
			if a == nil {
				a = &sAgg{s: event.Sighting{Key: k.ind, Sensor: sensor, Log: log, Observed: value, First: r.Time(6), Last: r.Time(7)}, days: map[string]bool{}}
				out[k] = a
			}
			a.s.Count += r.Int(5)
			a.s.First, a.s.Last = event.Earliest(a.s.First, r.Time(6)), event.Latest(a.s.Last, r.Time(7))
			for _, d := range splitList(r.Field(8)) {
				a.days[d] = true
			}
			a.peers = append(a.peers, splitList(r.Field(9))...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	res := make([]event.Sighting, 0, len(out))
	for _, a := range out {
		a.s.Days = int64(len(a.days))
		slices.Sort(a.peers)
		a.peers = slices.Compact(a.peers)
		for _, p := range a.peers {
			if len(a.s.Peers) == store.MaxPeers {
				break
			}
			if ip, err := netip.ParseAddr(p); err == nil {
				a.s.Peers = append(a.s.Peers, ip)
			}
		}
		res = append(res, a.s)
	}
	slices.SortFunc(res, func(a, b event.Sighting) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
			strings.Compare(a.Observed, b.Observed))
	})
	for i := range res {
		if err := fn(&res[i]); err != nil {
			return err
		}
	}
	return nil
}

// matcher indexes indicators by the keys the summary is searched on.
type matcher struct {
	exact    map[string][]*event.Indicator // kind NUL value
	regdom   map[string][]*event.Indicator // domain indicators by registered domain
	suffix   map[string][]*event.Indicator // public-suffix domain indicators
	nets     []*event.Indicator            // CIDR indicators
	buckets  map[[2]uint64]bool            // /16 buckets (high half, low half >> 16) of narrow networks
	wide     [][4]uint64                   // ranges of wider ones
	kindVals map[event.IOCType][]string
}

func newMatcher(inds []event.Indicator) *matcher {
	m := &matcher{exact: map[string][]*event.Indicator{}, regdom: map[string][]*event.Indicator{}, suffix: map[string][]*event.Indicator{},
		buckets: map[[2]uint64]bool{}, kindVals: map[event.IOCType][]string{}}
	for idx := range inds {
		i := &inds[idx]
		switch i.Type {
		case event.IOCDomain:
			if r := store.IndicatorRegDomain(i.Value); r != "" {
				m.regdom[r] = append(m.regdom[r], i)
			} else {
				m.suffix[i.Value] = append(m.suffix[i.Value], i)
			}
		case event.IOCCIDR:
			p, err := netip.ParsePrefix(i.Value)
			if err != nil {
				continue
			}
			m.nets = append(m.nets, i)
			loHi, loLo, hiHi, hiLo := store.PrefixRange(p)
			if loHi == hiHi && (hiLo>>16)-(loLo>>16) < 4096 {
				for b := loLo >> 16; b <= hiLo>>16; b++ {
					m.buckets[[2]uint64{loHi, b}] = true
				}
			} else {
				m.wide = append(m.wide, [4]uint64{loHi, loLo, hiHi, hiLo})
			}
		default:
			k := string(i.Type) + "\x00" + i.Value
			if len(m.exact[k]) == 0 {
				m.kindVals[i.Type] = append(m.kindVals[i.Type], i.Value)
			}
			m.exact[k] = append(m.exact[k], i)
		}
	}
	return m
}

// cond returns the SQL condition selecting the summary rows that may match.
func (m *matcher) cond() string {
	var conds []string
	kinds := make([]event.IOCType, 0, len(m.kindVals))
	for k := range m.kindVals {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		conds = append(conds, "(kind = "+quoteString(string(k))+" AND value IN "+stringList(m.kindVals[k])+")")
	}
	if len(m.regdom) > 0 {
		conds = append(conds, "(kind = 'domain' AND regdom IN "+stringList(sortedKeys(m.regdom))+")")
	}
	if len(m.suffix) > 0 {
		conds = append(conds, "(kind = 'domain' AND suffix IN "+stringList(sortedKeys(m.suffix))+")")
	}
	if len(m.buckets) > 0 {
		var b strings.Builder
		for k := range m.buckets {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "(%d,%d)", k[0], k[1])
		}
		conds = append(conds, "(kind = 'ip' AND (assumeNotNull(addr_hi), bitShiftRight(assumeNotNull(addr_lo), 16)) IN ("+b.String()+"))")
	}
	for _, r := range m.wide {
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// candidates returns the indicators an observed value may match.
func (m *matcher) candidates(kind event.IOCType, value string) []*event.Indicator {
	out := m.exact[string(kind)+"\x00"+value]
	switch kind {
	case event.IOCDomain:
		reg, suffix := store.NameKeys(value)
		out = append(append(slices.Clip(out), m.regdom[reg]...), m.suffix[suffix]...)
	case event.IOCIP:
		out = append(slices.Clip(out), m.nets...)
	}
	return out
}
