package store

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Retro-hunting by conditions on the summary, as the ClickHouse store does
// it: the live indicators become conditions on the summary's keys (exact
// values, registered domains, public suffixes, /16 buckets and ranges of
// networks), the backend aggregates the summary rows that meet them where
// the data is, and each row is matched exactly here (Matches) and added to
// its indicators' sightings. (The DuckDB store joins in SQL instead: there,
// reading 10,000 indicators through the driver alone takes 6.5 ms, and the
// whole match this way 92 ms against the joins' 5 to 6: decision 0005.)

// IndicatorMatcher indexes the live, matchable indicators by the keys the
// summary is searched on.
type IndicatorMatcher struct {
	exact   map[string][]*event.Indicator // kind NUL value
	values  map[event.IOCType][]string    // exact values per kind
	regdom  map[string][]*event.Indicator // domain indicators by registered domain
	suffix  map[string][]*event.Indicator // public-suffix domain indicators
	nets    []*event.Indicator            // network indicators
	buckets map[[2]uint64]bool            // /16 buckets (high half, low half >> 16) of narrow networks
	ranges  [][4]uint64                   // 128-bit bounds of wider ones
}

// NewIndicatorMatcher indexes the indicators of inds that are neither
// revoked nor of a type dwell cannot match. It keeps pointers into inds.
func NewIndicatorMatcher(inds []event.Indicator) *IndicatorMatcher {
	m := &IndicatorMatcher{exact: map[string][]*event.Indicator{}, values: map[event.IOCType][]string{},
		regdom: map[string][]*event.Indicator{}, suffix: map[string][]*event.Indicator{}, buckets: map[[2]uint64]bool{}}
	for idx := range inds {
		i := &inds[idx]
		if i.Revoked || !i.Type.Matchable() {
			continue
		}
		switch i.Type {
		case event.IOCDomain:
			if r := IndicatorRegDomain(i.Value); r != "" {
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
			loHi, loLo, hiHi, hiLo := PrefixRange(p)
			if loHi == hiHi && (hiLo>>16)-(loLo>>16) < 4096 {
				for b := loLo >> 16; b <= hiLo>>16; b++ {
					m.buckets[[2]uint64{loHi, b}] = true
				}
			} else {
				m.ranges = append(m.ranges, [4]uint64{loHi, loLo, hiHi, hiLo})
			}
		default:
			k := string(i.Type) + "\x00" + i.Value
			if len(m.exact[k]) == 0 {
				m.values[i.Type] = append(m.values[i.Type], i.Value)
			}
			m.exact[k] = append(m.exact[k], i)
		}
	}
	return m
}

// Empty reports whether there is nothing to match.
func (m *IndicatorMatcher) Empty() bool {
	return len(m.exact) == 0 && len(m.regdom) == 0 && len(m.suffix) == 0 && len(m.nets) == 0
}

// Values returns the exact values to look up, per kind, kinds sorted.
func (m *IndicatorMatcher) Values() ([]event.IOCType, map[event.IOCType][]string) {
	kinds := make([]event.IOCType, 0, len(m.values))
	for k := range m.values {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds, m.values
}

// RegDomains returns the registered domains domain indicators match under.
func (m *IndicatorMatcher) RegDomains() []string { return sortedKeys(m.regdom) }

// Suffixes returns the public suffixes that are indicators themselves.
func (m *IndicatorMatcher) Suffixes() []string { return sortedKeys(m.suffix) }

// Buckets returns the /16 buckets of the narrow networks: an address's
// high 64 bits and its low 64 bits shifted right by 16.
func (m *IndicatorMatcher) Buckets() [][2]uint64 {
	out := make([][2]uint64, 0, len(m.buckets))
	for b := range m.buckets {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b [2]uint64) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	return out
}

// Ranges returns the wider networks as 128-bit bounds (low high, low
// low, high high, high low).
func (m *IndicatorMatcher) Ranges() [][4]uint64 { return m.ranges }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// candidates returns the indicators an observed value may match.
func (m *IndicatorMatcher) candidates(kind event.IOCType, value string) []*event.Indicator {
	out := m.exact[string(kind)+"\x00"+value]
	switch kind {
	case event.IOCDomain:
		reg, suffix := NameKeys(value)
		out = append(append(slices.Clip(out), m.regdom[reg]...), m.suffix[suffix]...)
	case event.IOCIP:
		out = append(slices.Clip(out), m.nets...)
	}
	return out
}

// Sightings gathers summary rows into sightings, per indicator, sensor,
// log and observed value.
type Sightings struct {
	m   *IndicatorMatcher
	out map[sightingKey]*sightingAgg
}

type sightingKey struct{ ind, sensor, log, value string }

type sightingAgg struct {
	s     event.Sighting
	days  map[string]bool
	peers []string
}

// NewSightings returns an empty gathering for m's indicators.
func (m *IndicatorMatcher) NewSightings() *Sightings {
	return &Sightings{m: m, out: map[sightingKey]*sightingAgg{}}
}

// Add matches one summary row (a value's records in one log of one sensor
// to one port, over some days) against the indicators and adds it to the
// sightings of those it matches. days are the days seen, in any form that
// names a day once; peers the first peers in text order.
func (s *Sightings) Add(kind event.IOCType, value, log, sensor string, port uint16, count int64, first, last time.Time, days, peers []string) {
	for _, ind := range s.m.candidates(kind, value) {
		if !Matches(ind, kind, value, port) {
			continue
		}
		k := sightingKey{ind.Key(), sensor, log, value}
		a := s.out[k]
		if a == nil {
			a = &sightingAgg{s: event.Sighting{Key: k.ind, Sensor: sensor, Log: log, Observed: value, First: first, Last: last},
				days: map[string]bool{}}
			s.out[k] = a
		}
		a.s.Count += count
		a.s.First, a.s.Last = event.Earliest(a.s.First, first), event.Latest(a.s.Last, last)
		for _, d := range days {
			a.days[d] = true
		}
		a.peers = append(a.peers, peers...)
	}
}

// Result returns the sightings ordered by indicator key, sensor, log and
// observed value, each with its distinct days and first MaxPeers peers.
func (s *Sightings) Result() []event.Sighting {
	res := make([]event.Sighting, 0, len(s.out))
	for _, a := range s.out {
		a.s.Days = int64(len(a.days))
		slices.Sort(a.peers)
		for _, p := range slices.Compact(a.peers) {
			if len(a.s.Peers) == MaxPeers {
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
	return res
}
