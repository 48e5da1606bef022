package storetest

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Mem is an in-memory store.Store whose analytic queries are this
// package's reference implementations: detector tests run on it without a
// database, and the conformance suite checks that every backend returns
// the same. It does not run SQL. Safe for concurrent use.
type Mem struct {
	mu       sync.RWMutex
	b        event.Batch
	progress map[event.InputID]event.Progress
	intel    intelState
}

var _ store.Store = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{progress: map[event.InputID]event.Progress{}} }

// Backend implements store.Store.
func (m *Mem) Backend() string { return "memory" }

// Close implements store.Store.
func (m *Mem) Close() error { return nil }

// Write implements store.Writer. Records are copied.
func (m *Mem) Write(_ context.Context, b *event.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b.Append(b)
	for _, p := range b.Progress {
		if p.Replaces != "" {
			delete(m.progress, p.Replaces)
		}
		m.progress[p.ID] = p
	}
	m.b.Progress = nil
	return nil
}

// DeleteSensor implements store.Writer.
func (m *Mem) DeleteSensor(_ context.Context, sensor string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(m.b.Len())
	keep := func(s event.Source) bool { return s.Sensor != sensor }
	b := &m.b
	b.Conns = slices.DeleteFunc(b.Conns, func(r event.Conn) bool { return !keep(r.Src) })
	b.OpenConns = slices.DeleteFunc(b.OpenConns, func(r event.Conn) bool { return !keep(r.Src) })
	b.DNS = slices.DeleteFunc(b.DNS, func(r event.DNS) bool { return !keep(r.Src) })
	b.HTTP = slices.DeleteFunc(b.HTTP, func(r event.HTTP) bool { return !keep(r.Src) })
	b.TLS = slices.DeleteFunc(b.TLS, func(r event.TLS) bool { return !keep(r.Src) })
	b.X509 = slices.DeleteFunc(b.X509, func(r event.X509) bool { return !keep(r.Src) })
	b.Files = slices.DeleteFunc(b.Files, func(r event.File) bool { return !keep(r.Src) })
	b.Flows = slices.DeleteFunc(b.Flows, func(r event.Flow) bool { return !keep(r.Src) })
	b.Host = slices.DeleteFunc(b.Host, func(r event.HostEvent) bool { return !keep(r.Src) })
	b.Quarantine = slices.DeleteFunc(b.Quarantine, func(r event.Quarantined) bool { return !keep(r.Src) })
	for id, p := range m.progress {
		if p.Sensor == sensor {
			delete(m.progress, id)
		}
	}
	return n - int64(m.b.Len()), nil
}

// Inputs implements store.Writer.
func (m *Mem) Inputs(_ context.Context, id event.InputID, path string) ([]event.Progress, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []event.Progress
	for _, p := range m.progress {
		if p.ID == id || p.Path == path {
			out = append(out, p)
		}
	}
	return out, nil
}

// Query implements store.Reader; the memory store has no SQL.
func (m *Mem) Query(context.Context, string) (store.Rows, error) {
	return nil, errors.New("the in-memory test store does not run SQL")
}

// Count implements store.Reader.
func (m *Mem) Count(_ context.Context, k event.Kind) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(m.b.Count(k)), nil
}

// Ledger implements store.Reader.
func (m *Mem) Ledger(context.Context) ([]event.Progress, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]event.Progress, 0, len(m.progress))
	for _, p := range m.progress {
		out = append(out, p)
	}
	return out, nil
}

// conns returns the records the connection analytics read in w (the
// caller holds m.mu).
func (m *Mem) conns(w store.Window) *event.Batch { return connsOf(&m.b, w) }

// connsOf returns the records the connection analytics read in w: b, or
// a batch holding the sessions stitched from b's flows that start before
// the end of w.
func connsOf(b *event.Batch, w store.Window) *event.Batch {
	if w.Conns != store.FlowSessions {
		return b
	}
	var flows []event.Flow
	for _, f := range b.Flows {
		if w.Until.IsZero() || f.TS.Before(w.Until) {
			flows = append(flows, f)
		}
	}
	return &event.Batch{Conns: store.Sessions(flows)}
}

func each[T any](items []T, fn func(*T) error) error {
	for i := range items {
		if err := fn(&items[i]); err != nil {
			return err
		}
	}
	return nil
}

// Span implements store.Analytics.
func (m *Mem) Span(_ context.Context, w store.Window) (time.Time, time.Time, int64, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, l, n := refSpan(m.conns(w), w)
	return f, l, n, n > 0, nil
}

// Pairs implements store.Analytics.
func (m *Mem) Pairs(_ context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	m.mu.RLock()
	r := refPairs(m.conns(w), w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// DailyFlows implements store.Analytics.
func (m *Mem) DailyFlows(_ context.Context, w store.Window, f store.FlowFilter, fn func(*store.DailyFlow) error) error {
	m.mu.RLock()
	r := refDaily(m.conns(w), w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// Series implements store.Analytics.
func (m *Mem) Series(_ context.Context, kind store.SeriesKind, w store.Window, f store.SeriesFilter, fn func(*store.Series) error) error {
	m.mu.RLock()
	b := &m.b
	if kind == store.SeriesConn || kind == store.SeriesSessions {
		b = m.conns(w)
	}
	r := refSeries(b, kind, w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// OpenConns implements store.Analytics.
func (m *Mem) OpenConns(_ context.Context, w store.Window, fn func(*store.OpenConn) error) error {
	m.mu.RLock()
	r := refOpen(&m.b, w)
	m.mu.RUnlock()
	return each(r, fn)
}

// DNSNames implements store.Analytics.
func (m *Mem) DNSNames(_ context.Context, w store.Window, f store.DNSFilter, fn func(*store.DNSName) error) error {
	m.mu.RLock()
	r := refDNS(&m.b, w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// TLSSessions implements store.Analytics.
func (m *Mem) TLSSessions(_ context.Context, w store.Window, fn func(*store.TLSSession) error) error {
	m.mu.RLock()
	r := refTLS(&m.b, w)
	m.mu.RUnlock()
	return each(r, fn)
}

// HTTPRequests implements store.Analytics.
func (m *Mem) HTTPRequests(_ context.Context, w store.Window, fn func(*store.HTTPRequest) error) error {
	m.mu.RLock()
	r := refHTTP(&m.b, w)
	m.mu.RUnlock()
	return each(r, fn)
}

// ServerNames implements store.Analytics.
func (m *Mem) ServerNames(_ context.Context, w store.Window, fn func(*store.ServerName) error) error {
	m.mu.RLock()
	r := refServerNames(&m.b, w)
	m.mu.RUnlock()
	return each(r, fn)
}

// HostDays implements store.Analytics.
func (m *Mem) HostDays(_ context.Context, w store.Window, f store.FlowFilter, fn func(*store.HostDay) error) error {
	m.mu.RLock()
	r := refHostDays(m.conns(w), w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// Destinations implements store.Analytics.
func (m *Mem) Destinations(_ context.Context, w store.Window, clients []netip.Addr, fn func(*store.DstStat) error) error {
	m.mu.RLock()
	r := refDestinations(m.conns(w), w, clients)
	m.mu.RUnlock()
	return each(r, fn)
}

// LocalAddrs implements store.Analytics.
func (m *Mem) LocalAddrs(_ context.Context, w store.Window, local []netip.Prefix) ([]netip.Addr, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return refLocalAddrs(m.conns(w), w, local), nil
}

// Resolved implements store.Analytics.
func (m *Mem) Resolved(_ context.Context, w store.Window, fn func(*store.Resolution) error) error {
	m.mu.RLock()
	r := refResolved(&m.b, w)
	m.mu.RUnlock()
	return each(r, fn)
}

// Fanout implements store.Analytics.
func (m *Mem) Fanout(_ context.Context, w store.Window, f store.FanoutFilter, fn func(*store.Fanout) error) error {
	m.mu.RLock()
	r := refFanout(m.conns(w), w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// Uploads implements store.Analytics.
func (m *Mem) Uploads(_ context.Context, w store.Window, f store.UploadFilter, fn func(*store.Upload) error) error {
	m.mu.RLock()
	r := refUploads(&m.b, m.conns(w), w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// PassiveDNS implements store.Analytics.
func (m *Mem) PassiveDNS(_ context.Context, w store.Window, f store.NameFilter, fn func(*store.NameAddr) error) error {
	m.mu.RLock()
	r := refPassiveDNS(&m.b, w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// ServerPrints implements store.Analytics.
func (m *Mem) ServerPrints(_ context.Context, w store.Window, f store.PrintFilter, fn func(*store.ServerPrint) error) error {
	m.mu.RLock()
	r := refServerPrints(&m.b, w, f)
	m.mu.RUnlock()
	return each(r, fn)
}

// HostEvents implements store.Analytics.
func (m *Mem) HostEvents(_ context.Context, w store.Window, f store.HostFilter, fn func(*event.HostEvent) error) error {
	m.mu.RLock()
	var out []event.HostEvent
	for _, e := range m.b.Host {
		if !w.Contains(e.TS) || (e.Carved && !f.Carved) || (len(f.EventIDs) > 0 && !slices.Contains(f.EventIDs, e.EventID)) {
			continue
		}
		out = append(out, e)
	}
	m.mu.RUnlock()
	slices.SortStableFunc(out, func(a, b event.HostEvent) int {
		return cmp.Or(cmp.Compare(a.Computer, b.Computer), a.TS.Compare(b.TS), cmp.Compare(a.RecordID, b.RecordID),
			cmp.Compare(a.Src.File, b.Src.File), cmp.Compare(a.Src.Line, b.Src.Line))
	})
	return each(out, fn)
}

// Alerts implements store.Analytics.
func (m *Mem) Alerts(_ context.Context, w store.Window, fn func(*event.Alert) error) error {
	m.mu.RLock()
	out := refAlerts(&m.b, w)
	m.mu.RUnlock()
	return each(out, fn)
}
