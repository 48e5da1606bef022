package settled

import (
	"bytes"
	"cmp"
	"context"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The queries kept, each merged in the order store.Analytics states for
// it. Addresses are ordered by their text as the stores keep them, a
// missing one (NULL) after every other unless the query writes it as ""
// (DNSNames' server).
//
// A settled answer is kept without the filters on a row's own keys
// (addresses, names, rcode), which change between hunts (a new local
// address, a destination most hosts now use); they are applied to it
// here and by the store to the rows after the cut. Thresholds on totals
// are applied after the merge, as the stores apply them.

// Span implements store.Analytics.
func (r *Reader) Span(ctx context.Context, w store.Window) (first, last time.Time, n int64, ok bool, err error) {
	type span struct {
		first, last time.Time
		n           int64
	}
	var got *span
	kept, err := answer(ctx, r, w, query[span]{
		key: "span", conns: true,
		fetch: func(w store.Window, fn func(*span) error) error {
			f, l, n, ok, err := r.Reader.Span(ctx, w)
			if err != nil || !ok {
				return err
			}
			return fn(&span{f, l, n})
		},
		copy:    func(s *span, _ func(string) string) (span, int) { return *s, sizeOf(s) },
		compare: func(*span, *span) int { return 0 },
		add: func(a, b *span) {
			a.first, a.last, a.n = event.Earliest(a.first, b.first), event.Latest(a.last, b.last), a.n+b.n
		},
	}, func(s *span) error { c := *s; got = &c; return nil })
	if err != nil {
		return first, last, 0, false, err
	}
	if !kept {
		return r.Reader.Span(ctx, w)
	}
	if got == nil {
		return first, last, 0, false, nil
	}
	return got.first, got.last, got.n, true, nil
}

// LocalAddrs implements store.Analytics: a union, in address order.
func (r *Reader) LocalAddrs(ctx context.Context, w store.Window, local []netip.Prefix) ([]netip.Addr, error) {
	var out []netip.Addr
	kept, err := answer(ctx, r, w, query[netip.Addr]{
		key: keyOf("local addresses", local), conns: true,
		fetch: func(w store.Window, fn func(*netip.Addr) error) error {
			as, err := r.Reader.LocalAddrs(ctx, w, local)
			for i := range as {
				if err == nil {
					err = fn(&as[i])
				}
			}
			return err
		},
		copy:    func(a *netip.Addr, _ func(string) string) (netip.Addr, int) { return *a, sizeOf(a) },
		compare: func(a, b *netip.Addr) int { return a.Compare(*b) },
		add:     func(*netip.Addr, *netip.Addr) {},
	}, func(a *netip.Addr) error { out = append(out, *a); return nil })
	if err != nil {
		return nil, err
	}
	if !kept {
		return r.Reader.LocalAddrs(ctx, w, local)
	}
	return out, nil
}

// Pairs implements store.Analytics.
func (r *Reader) Pairs(ctx context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	lists := f
	lists.MinPairConns, lists.MinDuration, lists.MinFailedShare = 0, 0, 0
	// The stats that pass MinDuration and MinFailedShare, then of those
	// the pairs (all ports together) that pass MinPairConns. Stats are
	// ordered by (sensor, src, dst) first: a pair's ports are together.
	run := pairRun[store.PairStat]{min: f.MinPairConns, fn: fn,
		of: func(p *store.PairStat) (string, netip.Addr, netip.Addr) { return p.Sensor, p.Src, p.Dst }}
	kept, err := answer(ctx, r, w, r.pairs(ctx, lists), func(p *store.PairStat) error {
		if f.MinDuration > 0 && p.MaxDuration < f.MinDuration && p.Duration < f.MinDuration ||
			float64(p.Failed) < f.MinFailedShare*float64(p.Conns) {
			return nil
		}
		return run.add(p, p.Conns)
	})
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.Pairs(ctx, w, f, fn)
	}
	return run.flush()
}

// pairRun gathers the rows of one pair (sensor, source, destination),
// which the stores' order keeps together, and hands them to fn once the
// pair is done if their total reaches min: a threshold on a pair's total
// is applied after the merge, as the stores apply it.
type pairRun[T any] struct {
	min   int64
	fn    func(*T) error
	of    func(*T) (sensor string, src, dst netip.Addr)
	rows  []T
	total int64
}

// add adds row x, which counts n towards its pair's total.
func (p *pairRun[T]) add(x *T, n int64) error {
	if len(p.rows) > 0 {
		s0, a0, b0 := p.of(&p.rows[0])
		if s, a, b := p.of(x); s != s0 || a != a0 || b != b0 {
			if err := p.flush(); err != nil {
				return err
			}
		}
	}
	p.rows = append(p.rows, *x)
	p.total = addSat(p.total, n)
	return nil
}

// flush ends the pair being gathered.
func (p *pairRun[T]) flush() error {
	var err error
	if p.total >= p.min {
		err = emit(p.rows, p.fn)
	}
	p.rows, p.total = p.rows[:0], 0
	return err
}

// pairs is the Pairs query over all pairs, kept once for every filter:
// the store applies lists (its filters on a record's addresses) to the
// rows after the cut, and they are applied here to the settled ones.
func (r *Reader) pairs(ctx context.Context, lists store.PairFilter) query[store.PairStat] {
	f := lists
	in, dsts, srcs, skip := f.Set(), setOf(f.Dsts), setOf(f.Srcs), setOf(f.SkipDsts)
	keep := func(p *store.PairStat) bool {
		return f.Keep(in, p.Src, p.Dst) && (f.Dsts == nil || dsts[p.Dst]) && (f.Srcs == nil || srcs[p.Src]) && !skip[p.Dst]
	}
	if f.Src == store.Anywhere && f.Dst == store.Anywhere && f.Dsts == nil && f.Srcs == nil && len(f.SkipDsts) == 0 {
		keep = nil
	}
	return query[store.PairStat]{
		key: "pairs", conns: true,
		fetch: func(w store.Window, fn func(*store.PairStat) error) error {
			return r.Reader.Pairs(ctx, w, store.PairFilter{}, fn)
		},
		recent:  func(w store.Window, fn func(*store.PairStat) error) error { return r.Reader.Pairs(ctx, w, lists, fn) },
		keep:    keep,
		missing: func(p *store.PairStat) bool { return !p.Src.IsValid() || !p.Dst.IsValid() },
		copy: func(p *store.PairStat, str func(string) string) (store.PairStat, int) {
			c := *p
			c.Sensor, c.Proto = str(p.Sensor), str(p.Proto)
			return c, sizeOf(p)
		},
		compare: func(a, b *store.PairStat) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), compareAddr(a.Dst, b.Dst, false),
				cmp.Compare(a.DstPort, b.DstPort), strings.Compare(a.Proto, b.Proto))
		},
		add: func(a, b *store.PairStat) {
			a.Conns += b.Conns
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
			a.Duration += b.Duration
			a.MaxDuration = max(a.MaxDuration, b.MaxDuration)
			a.SrcBytes, a.DstBytes = addSat(a.SrcBytes, b.SrcBytes), addSat(a.DstBytes, b.DstBytes)
			a.Failed += b.Failed
			a.Days += b.Days // the cut is at midnight: no day is on both sides
			a.Silent += b.Silent
			a.Probes += b.Probes
		},
	}
}

// Destinations implements store.Analytics, from every pair: a
// destination's distinct clients are its pairs' sources among them.
func (r *Reader) Destinations(ctx context.Context, w store.Window, clients []netip.Addr, fn func(*store.DstStat) error) error {
	in := setOf(clients)
	type dst struct {
		stat    store.DstStat
		clients map[netip.Addr]bool
	}
	byDst := map[netip.Addr]*dst{}
	kept, err := answer(ctx, r, w, r.pairs(ctx, store.PairFilter{}), func(p *store.PairStat) error {
		if !p.Dst.IsValid() {
			return nil
		}
		d := byDst[p.Dst]
		if d == nil {
			d = &dst{stat: store.DstStat{Dst: p.Dst, First: p.First, Last: p.Last}, clients: map[netip.Addr]bool{}}
			byDst[p.Dst] = d
		}
		d.stat.Conns += p.Conns
		d.stat.First, d.stat.Last = event.Earliest(d.stat.First, p.First), event.Latest(d.stat.Last, p.Last)
		if in[p.Src] {
			d.clients[p.Src] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.Destinations(ctx, w, clients, fn)
	}
	out := make([]store.DstStat, 0, len(byDst))
	for _, d := range byDst {
		d.stat.Clients = int64(len(d.clients))
		out = append(out, d.stat)
	}
	slices.SortFunc(out, func(a, b store.DstStat) int { return compareAddr(a.Dst, b.Dst, false) })
	return emit(out, fn)
}

// Fanout implements store.Analytics, from every pair: each pair is one
// destination (on its port) or one port (to its destination) of its
// group, unless its originator sent nothing. A pair with such silent
// connections among others does not say when the others were: then the
// store answers.
func (r *Reader) Fanout(ctx context.Context, w store.Window, f store.FanoutFilter, fn func(*store.Fanout) error) error {
	type group struct {
		sensor, proto string
		src, dst      netip.Addr
		port          uint16
	}
	groups := map[group]*store.Fanout{}
	mixed := false
	kept, err := answer(ctx, r, w, r.pairs(ctx, store.PairFilter{}), func(p *store.PairStat) error {
		switch {
		case mixed || !p.Src.IsValid() || !p.Dst.IsValid() || p.Silent == p.Conns:
			return nil
		case p.Silent > 0:
			mixed = true
			return nil
		}
		k := group{sensor: p.Sensor, proto: p.Proto, src: p.Src}
		if f.By == store.FanoutByPort {
			k.port = p.DstPort
		} else {
			k.dst = p.Dst
		}
		g := groups[k]
		if g == nil {
			g = &store.Fanout{Sensor: p.Sensor, Src: p.Src, Proto: p.Proto, Port: k.port, Dst: k.dst, First: p.First, Last: p.Last}
			groups[k] = g
		}
		g.Targets++
		g.Conns += p.Conns
		g.Probes += p.Probes
		g.First, g.Last = event.Earliest(g.First, p.First), event.Latest(g.Last, p.Last)
		return nil
	})
	if err != nil {
		return err
	}
	if mixed {
		r.count(func(c *Counts) { c.Passed++ })
	}
	if !kept || mixed {
		return r.Reader.Fanout(ctx, w, f, fn)
	}
	out := make([]store.Fanout, 0, len(groups))
	for _, g := range groups {
		if g.Targets >= f.MinTargets {
			out = append(out, *g)
		}
	}
	slices.SortFunc(out, func(a, b store.Fanout) int {
		return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), strings.Compare(a.Proto, b.Proto),
			cmp.Compare(a.Port, b.Port), compareAddr(a.Dst, b.Dst, false))
	})
	return emit(out, fn)
}

// Series implements store.Analytics: a key's points before the cut, then
// those after it. Keys come in no defined order.
func (r *Reader) Series(ctx context.Context, kind store.SeriesKind, w store.Window, f store.SeriesFilter, fn func(*store.Series) error) error {
	lists := f
	lists.MinCount, lists.MinDuration = 0, 0
	conns := kind == store.SeriesConn || kind == store.SeriesSessions
	dsts, skip, skipNames := setOf(f.Dsts), setOf(f.SkipDsts), map[string]bool{}
	for _, n := range f.SkipNames {
		skipNames[n] = true
	}
	copySeries := func(s *store.Series, str func(string) string) (store.Series, int) {
		c := *s
		c.Sensor, c.Proto, c.Name = str(s.Sensor), str(s.Proto), str(s.Name)
		c.Times, c.Sizes = slices.Clone(s.Times), slices.Clone(s.Sizes)
		return c, sizeOf(s) + 16*len(s.Times)
	}
	// The store streams keys in no order: sorted once read.
	sorted := func(w store.Window, f store.SeriesFilter, fn func(*store.Series) error) error {
		var all []store.Series
		if err := r.Reader.Series(ctx, kind, w, f, func(s *store.Series) error {
			c, _ := copySeries(s, same)
			all = append(all, c)
			return nil
		}); err != nil {
			return err
		}
		slices.SortFunc(all, func(a, b store.Series) int { return compareSeries(&a, &b) })
		return emit(all, fn)
	}
	kept, err := answer(ctx, r, w, query[store.Series]{
		key: keyOf("series", kind), conns: conns,
		fetch: func(w store.Window, fn func(*store.Series) error) error {
			return sorted(w, store.SeriesFilter{}, fn)
		},
		recent: func(w store.Window, fn func(*store.Series) error) error { return sorted(w, lists, fn) },
		keep: func(s *store.Series) bool {
			// The store reads no key without its address or name.
			if conns {
				return (f.Dsts == nil || dsts[s.Dst]) && !skip[s.Dst]
			}
			return !skipNames[s.Name]
		},
		copy:    copySeries,
		compare: compareSeries,
		add: func(a, b *store.Series) {
			a.Times = append(slices.Clip(a.Times), b.Times...) // a copy: a's are kept
			a.Sizes = append(slices.Clip(a.Sizes), b.Sizes...)
		},
	}, func(s *store.Series) error {
		if len(s.Times) < max(f.MinCount, 1) {
			return nil
		}
		if kind == store.SeriesSessions && f.MinDuration > 0 {
			var us int64
			for _, d := range s.Sizes {
				us += d
			}
			if us < f.MinDuration.Microseconds() {
				return nil
			}
		}
		return fn(s)
	})
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.Series(ctx, kind, w, f, fn)
	}
	return nil
}

// compareSeries orders series by their key, in any order that is total.
func compareSeries(a, b *store.Series) int {
	return cmp.Or(strings.Compare(a.Sensor, b.Sensor), a.Src.Compare(b.Src), a.Dst.Compare(b.Dst), cmp.Compare(a.Port, b.Port),
		strings.Compare(a.Proto, b.Proto), strings.Compare(a.Name, b.Name))
}

// DNSNames implements store.Analytics.
func (r *Reader) DNSNames(ctx context.Context, w store.Window, f store.DNSFilter, fn func(*store.DNSName) error) error {
	srcs := setOf(f.Srcs)
	keep := func(d *store.DNSName) bool {
		return (f.RCode == "" || d.RCode == f.RCode) && (f.Srcs == nil || srcs[d.Src])
	}
	if f.RCode == "" && f.Srcs == nil {
		keep = nil
	}
	kept, err := answer(ctx, r, w, query[store.DNSName]{
		key: "dns names",
		fetch: func(w store.Window, fn func(*store.DNSName) error) error {
			return r.Reader.DNSNames(ctx, w, store.DNSFilter{}, fn)
		},
		recent:  func(w store.Window, fn func(*store.DNSName) error) error { return r.Reader.DNSNames(ctx, w, f, fn) },
		keep:    keep,
		missing: func(d *store.DNSName) bool { return !d.Src.IsValid() },
		copy: func(d *store.DNSName, str func(string) string) (store.DNSName, int) {
			c := *d
			c.Sensor, c.Query, c.QType, c.RCode = str(d.Sensor), str(d.Query), str(d.QType), str(d.RCode)
			return c, sizeOf(d)
		},
		compare: func(a, b *store.DNSName) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), strings.Compare(a.Query, b.Query),
				strings.Compare(a.QType, b.QType), strings.Compare(a.RCode, b.RCode), compareAddr(a.Dst, b.Dst, true))
		},
		add: func(a, b *store.DNSName) {
			a.Count += b.Count
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
		},
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.DNSNames(ctx, w, f, fn)
	}
	return nil
}

// Resolved implements store.Analytics: per address, the earliest and
// latest answer and the least name of both sides (a side whose queries
// were all missing has none).
func (r *Reader) Resolved(ctx context.Context, w store.Window, fn func(*store.Resolution) error) error {
	kept, err := answer(ctx, r, w, query[store.Resolution]{
		key: "resolved",
		fetch: func(w store.Window, fn func(*store.Resolution) error) error {
			return r.Reader.Resolved(ctx, w, fn)
		},
		copy: func(x *store.Resolution, str func(string) string) (store.Resolution, int) {
			c := *x
			c.Sensor, c.Name = str(x.Sensor), str(x.Name)
			return c, sizeOf(x)
		},
		compare: func(a, b *store.Resolution) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Addr, b.Addr, false))
		},
		add: func(a, b *store.Resolution) {
			if a.Name == "" || b.Name != "" && b.Name < a.Name {
				a.Name = b.Name
			}
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
		},
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.Resolved(ctx, w, fn)
	}
	return nil
}

// ServerNames implements store.Analytics.
func (r *Reader) ServerNames(ctx context.Context, w store.Window, fn func(*store.ServerName) error) error {
	kept, err := answer(ctx, r, w, query[store.ServerName]{
		key:   "server names",
		fetch: func(w store.Window, fn func(*store.ServerName) error) error { return r.Reader.ServerNames(ctx, w, fn) },
		copy: func(n *store.ServerName, str func(string) string) (store.ServerName, int) {
			c := *n
			c.Sensor, c.Name = str(n.Sensor), str(n.Name)
			return c, sizeOf(n)
		},
		compare: func(a, b *store.ServerName) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), strings.Compare(a.Name, b.Name))
		},
		add: func(a, b *store.ServerName) { a.Count += b.Count },
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.ServerNames(ctx, w, fn)
	}
	return nil
}

// HTTPRequests implements store.Analytics.
func (r *Reader) HTTPRequests(ctx context.Context, w store.Window, fn func(*store.HTTPRequest) error) error {
	kept, err := answer(ctx, r, w, query[store.HTTPRequest]{
		key: "http requests",
		fetch: func(w store.Window, fn func(*store.HTTPRequest) error) error {
			return r.Reader.HTTPRequests(ctx, w, fn)
		},
		copy: func(h *store.HTTPRequest, str func(string) string) (store.HTTPRequest, int) {
			c := *h
			c.Sensor, c.Host, c.Method, c.Path, c.UserAgent = str(h.Sensor), str(h.Host), str(h.Method), str(h.Path), str(h.UserAgent)
			c.Statuses = slices.Clone(h.Statuses)
			return c, sizeOf(h) + 8*len(h.Statuses)
		},
		compare: func(a, b *store.HTTPRequest) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), compareAddr(a.Dst, b.Dst, false),
				cmp.Compare(a.DstPort, b.DstPort), strings.Compare(a.Host, b.Host), strings.Compare(a.Method, b.Method),
				strings.Compare(a.Path, b.Path), strings.Compare(a.UserAgent, b.UserAgent))
		},
		add: func(a, b *store.HTTPRequest) {
			a.Count += b.Count
			a.RequestBytes = addSat(a.RequestBytes, b.RequestBytes)
			a.Executables += b.Executables
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
			a.Statuses = unionSorted(a.Statuses, b.Statuses)
		},
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.HTTPRequests(ctx, w, fn)
	}
	return nil
}

// TLSSessions implements store.Analytics. A session's certificate
// (subject, issuer, validity, names) is looked up in all x509 records,
// whatever the window, and any of them if there are several: an x509
// record written of a certificate that a settled session names, and that
// shows it otherwise than the session does, drops the settled answer (a
// certificate logged again as it was changes nothing).
func (r *Reader) TLSSessions(ctx context.Context, w store.Window, fn func(*store.TLSSession) error) error {
	kept, err := answer(ctx, r, w, query[store.TLSSession]{
		key:   "tls sessions",
		fetch: func(w store.Window, fn func(*store.TLSSession) error) error { return r.Reader.TLSSessions(ctx, w, fn) },
		copy: func(t *store.TLSSession, str func(string) string) (store.TLSSession, int) {
			c := *t
			c.Sensor, c.ServerName, c.JA3, c.JA4 = str(t.Sensor), str(t.ServerName), str(t.JA3), str(t.JA4)
			c.ValidationStatus, c.SNIMatchesCert, c.CertFingerprint = str(t.ValidationStatus), str(t.SNIMatchesCert), str(t.CertFingerprint)
			c.Subject, c.Issuer = str(t.Subject), str(t.Issuer)
			c.CertNames = make([]string, len(t.CertNames))
			for i, n := range t.CertNames {
				c.CertNames[i] = str(n)
			}
			if t.CertNames == nil {
				c.CertNames = nil
			}
			return c, sizeOf(t) + 16*len(t.CertNames)
		},
		compare: func(a, b *store.TLSSession) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), compareAddr(a.Dst, b.Dst, false),
				cmp.Compare(a.DstPort, b.DstPort), strings.Compare(a.ServerName, b.ServerName), strings.Compare(a.JA3, b.JA3),
				strings.Compare(a.JA4, b.JA4), strings.Compare(a.ValidationStatus, b.ValidationStatus),
				strings.Compare(a.SNIMatchesCert, b.SNIMatchesCert), strings.Compare(a.CertFingerprint, b.CertFingerprint),
				strings.Compare(a.Subject, b.Subject), strings.Compare(a.Issuer, b.Issuer))
		},
		add: func(a, b *store.TLSSession) {
			a.Established += b.Established
			a.Count += b.Count
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
		},
		watch: func(rows []store.TLSSession) map[string]*certView {
			watch := map[string]*certView{}
			for i := range rows {
				t := &rows[i]
				if t.CertFingerprint == "" {
					continue
				}
				c := &certView{Subject: t.Subject, Issuer: t.Issuer, NotBefore: t.NotBefore, After: t.NotAfter, Names: t.CertNames}
				if old, ok := watch[t.CertFingerprint]; ok && (old == nil || !reflect.DeepEqual(old, c)) {
					c = nil // shown two ways (a subject from ssl): any record changes it
				}
				watch[t.CertFingerprint] = c
			}
			return watch
		},
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.TLSSessions(ctx, w, fn)
	}
	return nil
}

// emit calls fn for each row.
func emit[T any](rows []T, fn func(*T) error) error {
	for i := range rows {
		if err := fn(&rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// mergeSorted merges two lists ordered by compare into a new one, rows
// of the same key folded into a copy of old's by add.
func mergeSorted[T any](old, recent []T, compare func(a, b *T) int, add func(a, b *T)) []T {
	out := make([]T, 0, len(old)+len(recent))
	i, j := 0, 0
	for i < len(old) && j < len(recent) {
		switch c := compare(&old[i], &recent[j]); {
		case c < 0:
			out = append(out, old[i])
			i++
		case c > 0:
			out = append(out, recent[j])
			j++
		default:
			out = append(out, old[i])
			add(&out[len(out)-1], &recent[j])
			i++
			j++
		}
	}
	out = append(out, old[i:]...)
	return append(out, recent[j:]...)
}

// compareAddr orders addresses by their text; a missing one sorts first
// when the query writes it as "" (blank), else last, as SQL's NULL.
func compareAddr(a, b netip.Addr, blank bool) int {
	if av, bv := a.IsValid(), b.IsValid(); av != bv {
		if av == blank {
			return 1
		}
		return -1
	}
	var ab, bb [64]byte
	return bytes.Compare(a.AppendTo(ab[:0]), b.AppendTo(bb[:0]))
}

// setOf returns addresses as a set.
func setOf(as []netip.Addr) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(as))
	for _, a := range as {
		m[a] = true
	}
	return m
}

// sizeOf is the size of a row's fixed part.
func sizeOf[T any](t *T) int { return int(unsafe.Sizeof(*t)) }

// addSat adds two sums as the stores cap them: at the largest int64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// unionSorted returns the ascending union of two ascending lists.
func unionSorted(a, b []int64) []int64 {
	out := mergeSorted(a, b, func(x, y *int64) int { return cmp.Compare(*x, *y) }, func(*int64, *int64) {})
	if len(out) == 0 {
		return a
	}
	return out
}
