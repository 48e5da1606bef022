package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/settled"
)

// Settled (part of Run) checks that store s, new and empty, read through
// settled.Reader answers
// every query it keeps exactly as the store does: when it reads the
// settled history, when it merges what it kept with records written
// after the cut (of the same keys and days after), and after a record
// written before the cut dropped what was kept.
func Settled(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := AnalyticsData()
	// A session whose certificate's x509 record comes later.
	tls := b.TLS[0]
	tls.UID, tls.CertChainFPs, tls.Src.Line = "Tlate", []string{"fp-late"}, tls.Src.Line+30_000
	b.TLS = append(b.TLS, tls)
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	k := &settled.Kept{Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }}
	write := func(b *event.Batch) {
		t.Helper()
		k.Before(b)
		err := s.Write(ctx, b)
		k.After(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	var before settled.Counts // at the end of the last check
	check := func(stage string) settled.Counts {
		t.Helper()
		// One Reader for every query, as for the detectors of a hunt:
		// the rows after the cut are read once, for every filter.
		r := settled.New(s, k)
		for _, q := range settledQueries() {
			got, err := q.run(ctx, r)
			if err != nil {
				t.Fatalf("%s: %s through settled: %v", stage, q.name, err)
			}
			direct, err := q.run(ctx, s)
			if err != nil {
				t.Fatalf("%s: %s: %v", stage, q.name, err)
			}
			if !reflect.DeepEqual(got, direct) {
				t.Errorf("%s: %s through settled =\n%v\nwant\n%v", stage, q.name, got, direct)
			}
		}
		k.Sweep()
		c := k.Counts()
		d := settled.Counts{Merged: c.Merged - before.Merged, Settled: c.Settled - before.Settled, Extended: c.Extended - before.Extended,
			Passed: c.Passed - before.Passed, Dropped: c.Dropped - before.Dropped}
		before = c
		return d
	}
	n := int64(len(settledQueries()))
	// Pairs filters that differ only in thresholds on totals share one
	// settled answer.
	first := check("first read")
	if first.Passed != 1 || first.Dropped != 0 || first.Settled == 0 || first.Settled+first.Merged != n-1 {
		t.Errorf("first read: answered %+v; want all but the window's from settled history", first)
	}
	kept := settled.Counts{Merged: n - 1, Passed: 1}
	if c := check("kept"); c != kept {
		t.Errorf("kept: answered %+v; want %+v", c, kept)
	}

	// The first day's records again, a day later: after the cut, of the
	// same keys as kept ones.
	cut := time.Date(2024, 4, 20, 0, 0, 0, 0, time.UTC)
	later := shifted(b, cut, 24*time.Hour, 10_000)
	if later.Len() == 0 {
		t.Fatal("no record before the cut")
	}
	write(later)
	if c := check("merged with records after the cut"); c != kept {
		t.Errorf("after the cut: answered %+v; want %+v", c, kept)
	}

	// The late session's certificate: the settled sessions are read
	// again, nothing else.
	write(&event.Batch{X509: []event.X509{{TS: cut.Add(30 * time.Hour), Fingerprint: "fp-late", Subject: "CN=late", Issuer: "CN=CA",
		NotValidBefore: event.Some(cut.AddDate(0, -1, 0)), NotValidAfter: event.Some(cut.AddDate(1, 0, 0)), SANDNS: []string{"late.example"},
		Src: event.Source{Sensor: "site-a", File: "/logs/x509.log", Line: 40_000}}}})
	if c := check("after a late certificate"); c != (settled.Counts{Merged: n - 2, Settled: 1, Passed: 1, Dropped: 1}) {
		t.Errorf("after a late certificate: answered %+v; want the TLS sessions read again", c)
	}
	// A certificate no settled session names, or one logged again as
	// it was, changes nothing. (One logged otherwise than before would
	// leave the store to pick either: the late one above is the case
	// that stays defined.)
	relogged := b.X509[1]
	relogged.TS, relogged.Src.Line = cut.Add(31*time.Hour), 40_002
	write(&event.Batch{X509: []event.X509{relogged, {TS: cut.Add(30 * time.Hour), Fingerprint: "fp-other", Subject: "CN=other", Issuer: "CN=CA",
		Src: event.Source{Sensor: "site-a", File: "/logs/x509.log", Line: 40_001}}}})
	if c := check("after the same and another certificate"); c != kept {
		t.Errorf("after the same and another certificate: answered %+v; want %+v", c, kept)
	}

	// Records three days past the cut move it: what is kept is extended
	// over the days it moved over, not read again.
	write(shifted(b, cut, 96*time.Hour, 70_000))
	if c := check("after the cut moved"); c.Extended == 0 || c.Settled != 0 || c.Dropped != 0 || c.Passed != 1 {
		t.Errorf("after the cut moved: answered %+v; want what was kept extended", c)
	}
	if c := check("kept at the new cut"); c != kept {
		t.Errorf("kept at the new cut: answered %+v; want %+v", c, kept)
	}

	// One record before the cut drops what is kept: a connection, or a
	// file (an upload).
	early := &event.Batch{Conns: b.Conns[:1]}
	early.Conns[0].Src.Line += 20_000
	write(early)
	again := first
	again.Dropped = 1
	if c := check("after a record before the cut"); c != again {
		t.Errorf("after a record before the cut: answered %+v; want %+v", c, again)
	}
	late := b.Files[len(b.Files)-1]
	// Its own uid: rows tied on every key the stores order by come in
	// either order.
	late.FUID, late.UID, late.Src.Line = "Flate", "Clate", late.Src.Line+20_000
	write(&event.Batch{Files: []event.File{late}})
	if c := check("after a file before the cut"); c != again {
		t.Errorf("after a file before the cut: answered %+v; want %+v", c, again)
	}
}

// shifted returns the conn, dns, http, ssl and files records of b before cut,
// moved by d and given other lines.
func shifted(b *event.Batch, cut time.Time, d time.Duration, lines int64) *event.Batch {
	out := &event.Batch{}
	for _, c := range b.Conns {
		if c.TS.Before(cut) {
			c.TS, c.UID, c.Src.Line = c.TS.Add(d), c.UID+"x", c.Src.Line+lines
			out.Conns = append(out.Conns, c)
		}
	}
	for _, r := range b.DNS {
		if r.TS.Before(cut) {
			r.TS, r.Src.Line = r.TS.Add(d), r.Src.Line+lines
			out.DNS = append(out.DNS, r)
		}
	}
	for _, r := range b.HTTP {
		if r.TS.Before(cut) {
			r.TS, r.Src.Line = r.TS.Add(d), r.Src.Line+lines
			out.HTTP = append(out.HTTP, r)
		}
	}
	for _, r := range b.TLS {
		if r.TS.Before(cut) {
			r.TS, r.Src.Line = r.TS.Add(d), r.Src.Line+lines
			out.TLS = append(out.TLS, r)
		}
	}
	for _, r := range b.Files {
		if r.TS.Before(cut) {
			r.TS, r.Src.Line = r.TS.Add(d), r.Src.Line+lines
			out.Files = append(out.Files, r)
		}
	}
	return out
}

type settledQuery struct {
	name string
	run  func(context.Context, store.Reader) (any, error)
}

// rows runs a streaming query and returns its rows.
func rows[T any](query func(fn func(*T) error) error, clone func(*T) T) (any, error) {
	var out []T
	err := query(func(x *T) error { out = append(out, clone(x)); return nil })
	return out, err
}

func copyOf[T any](x *T) T { return *x }

// settledQueries are the queries settled keeps, with the filters the
// suite checks, over all history.
func settledQueries() []settledQuery {
	all := store.Window{}
	qs := []settledQuery{
		{"Span", func(ctx context.Context, r store.Reader) (any, error) {
			f, l, n, ok, err := r.Span(ctx, all)
			return fmt.Sprint(f, l, n, ok), err
		}},
		{"LocalAddrs", func(ctx context.Context, r store.Reader) (any, error) { return r.LocalAddrs(ctx, all, testLocal()) }},
		{"Destinations", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.DstStat) error) error { return r.Destinations(ctx, all, testInside(), fn) }, copyOf)
		}},
		{"Destinations of no client", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.DstStat) error) error { return r.Destinations(ctx, all, nil, fn) }, copyOf)
		}},
		{"Resolved", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.Resolution) error) error { return r.Resolved(ctx, all, fn) }, copyOf)
		}},
		{"ServerNames", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.ServerName) error) error { return r.ServerNames(ctx, all, fn) }, copyOf)
		}},
		{"TLSSessions", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.TLSSession) error) error { return r.TLSSessions(ctx, all, fn) }, func(t *store.TLSSession) store.TLSSession {
				c := *t
				c.CertNames = append([]string{}, t.CertNames...)
				return c
			})
		}},
		{"HTTPRequests", func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.HTTPRequest) error) error { return r.HTTPRequests(ctx, all, fn) }, func(h *store.HTTPRequest) store.HTTPRequest {
				c := *h
				c.Statuses = append([]int64{}, h.Statuses...)
				return c
			})
		}},
		// Not kept: passes through.
		{"Span of a window", func(ctx context.Context, r store.Reader) (any, error) {
			f, l, n, ok, err := r.Span(ctx, store.Window{Since: time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)})
			return fmt.Sprint(f, l, n, ok), err
		}},
	}
	filters := append(pairFilters(), store.PairFilter{MinFailedShare: 0.5}, store.PairFilter{MinFailedShare: 0.3, MinPairConns: 20})
	for i, f := range filters {
		qs = append(qs, settledQuery{fmt.Sprintf("Pairs(filter %d)", i), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.PairStat) error) error { return r.Pairs(ctx, all, f, fn) }, copyOf)
		}})
	}
	for _, kind := range []store.SeriesKind{store.SeriesConn, store.SeriesSessions, store.SeriesTLSName, store.SeriesHTTPHost} {
		for i, f := range append(seriesFilters(), store.SeriesFilter{MinDuration: 2 * time.Minute}, store.SeriesFilter{MinDuration: time.Hour, MinCount: 3}) {
			qs = append(qs, settledQuery{fmt.Sprintf("Series(%d, filter %d)", kind, i), func(ctx context.Context, r store.Reader) (any, error) {
				got, err := rows(func(fn func(*store.Series) error) error { return r.Series(ctx, kind, all, f, fn) }, func(s *store.Series) store.Series {
					c := *s
					c.Times, c.Sizes = append([]int64{}, s.Times...), append([]int64{}, s.Sizes...)
					return c
				})
				l, _ := got.([]store.Series)
				slices.SortFunc(l, func(a, b store.Series) int { return strings.Compare(seriesKey(&a), seriesKey(&b)) })
				return l, err
			}})
		}
	}
	for _, f := range fanoutFilters() {
		qs = append(qs, settledQuery{fmt.Sprintf("Fanout(%+v)", f), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.Fanout) error) error { return r.Fanout(ctx, all, f, fn) }, copyOf)
		}})
	}
	for i, f := range flowFilters() {
		qs = append(qs, settledQuery{fmt.Sprintf("DailyFlows(filter %d)", i), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.DailyFlow) error) error { return r.DailyFlows(ctx, all, f, fn) }, copyOf)
		}}, settledQuery{fmt.Sprintf("HostDays(filter %d)", i), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.HostDay) error) error { return r.HostDays(ctx, all, f, fn) }, copyOf)
		}})
	}
	for i, f := range uploadFilters() {
		qs = append(qs, settledQuery{fmt.Sprintf("Uploads(filter %d)", i), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.Upload) error) error { return r.Uploads(ctx, all, f, fn) }, copyOf)
		}})
	}
	for i, f := range []store.DNSFilter{{}, {RCode: "NXDOMAIN"}, {Srcs: testInside()[:1]}, {Srcs: []netip.Addr{}}} {
		qs = append(qs, settledQuery{fmt.Sprintf("DNSNames(filter %d)", i), func(ctx context.Context, r store.Reader) (any, error) {
			return rows(func(fn func(*store.DNSName) error) error { return r.DNSNames(ctx, all, f, fn) }, copyOf)
		}})
	}
	return qs
}
