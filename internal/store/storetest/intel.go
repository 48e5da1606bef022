package storetest

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The reference implementation of intel storage and matching.

// intelState is what Mem keeps of intel.
type intelState struct {
	indicators map[string]event.Indicator
	sightings  []event.Sighting
	state      map[string]string
}

// PutIndicators implements store.IntelWriter.
func (m *Mem) PutIndicators(_ context.Context, inds []event.Indicator) (added, updated int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.intel.indicators == nil {
		m.intel.indicators = map[string]event.Indicator{}
	}
	for _, i := range inds {
		k := i.Key()
		if _, ok := m.intel.indicators[k]; ok {
			updated++
		} else {
			added++
		}
		i.Tags, i.Attack = slices.Clone(i.Tags), slices.Clone(i.Attack)
		m.intel.indicators[k] = i
	}
	return added, updated, nil
}

// DeleteIndicators implements store.IntelWriter.
func (m *Mem) DeleteIndicators(_ context.Context, source string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, i := range m.intel.indicators {
		if i.Source == source {
			delete(m.intel.indicators, k)
			n++
		}
	}
	return n, nil
}

// PutSightings implements store.IntelWriter.
func (m *Mem) PutSightings(_ context.Context, s []event.Sighting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.intel.sightings = slices.Clone(s)
	sortSightings(m.intel.sightings)
	return nil
}

// SetState implements store.IntelWriter.
func (m *Mem) SetState(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.intel.state == nil {
		m.intel.state = map[string]string{}
	}
	m.intel.state[key] = value
	return nil
}

// Indicators implements store.IntelReader.
func (m *Mem) Indicators(_ context.Context, fn func(*event.Indicator) error) error {
	m.mu.RLock()
	inds := make([]event.Indicator, 0, len(m.intel.indicators))
	for _, i := range m.intel.indicators {
		inds = append(inds, i)
	}
	m.mu.RUnlock()
	sort.Slice(inds, func(a, b int) bool { return inds[a].Key() < inds[b].Key() })
	return each(inds, fn)
}

// Sightings implements store.IntelReader.
func (m *Mem) Sightings(_ context.Context, fn func(*event.Sighting) error) error {
	m.mu.RLock()
	s := slices.Clone(m.intel.sightings)
	m.mu.RUnlock()
	return each(s, fn)
}

// State implements store.IntelReader.
func (m *Mem) State(_ context.Context, key string) (string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.intel.state[key], nil
}

// MatchIndicators implements store.Analytics.
func (m *Mem) MatchIndicators(_ context.Context, w store.Window, fn func(*event.Sighting) error) error {
	m.mu.RLock()
	var inds []event.Indicator
	for _, i := range m.intel.indicators {
		inds = append(inds, i)
	}
	r := refMatch(&m.b, w, inds)
	m.mu.RUnlock()
	return each(r, fn)
}

// refMatch is the reference retro-hunt: every observation of the batch in
// w against every live, matchable indicator.
func refMatch(b *event.Batch, w store.Window, inds []event.Indicator) []event.Sighting {
	var live []event.Indicator
	for _, i := range inds {
		if !i.Revoked && i.Type.Matchable() {
			live = append(live, i)
		}
	}
	// The summary, as a backend keeps it.
	type dayKey struct {
		kind               event.IOCType
		value, log, sensor string
		port               uint16
		day                time.Time
	}
	type dayAgg struct {
		count       int64
		first, last time.Time
		peers       []string
	}
	days := map[dayKey]*dayAgg{}
	store.Observe(b, func(o *store.Observed) {
		if !store.InWindowDays(w, o.TS) {
			return
		}
		k := dayKey{o.Kind, o.String(), o.Log, o.Sensor, o.Port, o.TS.UTC().Truncate(24 * time.Hour)}
		a := days[k]
		if a == nil {
			a = &dayAgg{first: o.TS, last: o.TS}
			days[k] = a
		}
		a.count++
		a.first, a.last = event.Earliest(a.first, o.TS), event.Latest(a.last, o.TS)
		if o.Peer.IsValid() {
			a.peers = append(a.peers, o.Peer.String())
		}
	})
	type sKey struct{ ind, sensor, log, value string }
	type sAgg struct {
		s     event.Sighting
		days  map[time.Time]bool
		peers []string
	}
	out := map[sKey]*sAgg{}
	for k, a := range days {
		for idx := range live {
			ind := &live[idx]
			if !store.Matches(ind, k.kind, k.value, k.port) {
				continue
			}
			sk := sKey{ind.Key(), k.sensor, k.log, k.value}
			s := out[sk]
			if s == nil {
				s = &sAgg{s: event.Sighting{Key: sk.ind, Sensor: k.sensor, Log: k.log, Observed: k.value, First: a.first, Last: a.last},
					days: map[time.Time]bool{}}
				out[sk] = s
			}
			s.s.Count += a.count
			s.s.First, s.s.Last = event.Earliest(s.s.First, a.first), event.Latest(s.s.Last, a.last)
			s.days[k.day] = true
			s.peers = append(s.peers, a.peers...)
		}
	}
	res := make([]event.Sighting, 0, len(out))
	for _, s := range out {
		s.s.Days = int64(len(s.days))
		for _, p := range firstPeers(s.peers, store.MaxPeers) {
			s.s.Peers = append(s.s.Peers, netip.MustParseAddr(p))
		}
		res = append(res, s.s)
	}
	sortSightings(res)
	return res
}

// firstPeers returns the first n distinct peers in text order.
func firstPeers(peers []string, n int) []string {
	p := slices.Clone(peers)
	slices.Sort(p)
	p = slices.Compact(p)
	return p[:min(n, len(p))]
}

func sortSightings(s []event.Sighting) {
	slices.SortFunc(s, func(a, b event.Sighting) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
			strings.Compare(a.Observed, b.Observed))
	})
}
