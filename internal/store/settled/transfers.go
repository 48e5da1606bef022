package settled

import (
	"cmp"
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// The queries of what hosts send: every pair's days (DailyFlows, and
// HostDays summed from them) and the transfers themselves (Uploads).

// DailyFlows implements store.Analytics, from every pair's days kept
// whole: a pair's days are together (rows are ordered by sensor, source
// and destination first), and the pairs whose bytes over all days reach
// MinPairSrcBytes are kept after the merge, as the stores keep them.
func (r *Reader) DailyFlows(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.DailyFlow) error) error {
	run := pairRun[store.DailyFlow]{min: f.MinPairSrcBytes, fn: fn,
		of: func(d *store.DailyFlow) (string, netip.Addr, netip.Addr) { return d.Sensor, d.Src, d.Dst }}
	kept, err := answer(ctx, r, w, r.dailyFlows(ctx, f.Sides), func(d *store.DailyFlow) error {
		if f.MinPairSrcBytes > 0 && (!d.Src.IsValid() || !d.Dst.IsValid()) {
			return nil // the stores join the pairs that pass on both addresses
		}
		return run.add(d, d.SrcBytes)
	})
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.DailyFlows(ctx, w, f, fn)
	}
	return run.flush()
}

// HostDays implements store.Analytics: each source's days summed over
// its pairs' days.
func (r *Reader) HostDays(ctx context.Context, w store.Window, f store.FlowFilter, fn func(*store.HostDay) error) error {
	var at store.HostDay // the source being summed
	days := map[time.Time]int64{}
	flush := func() error {
		for _, day := range slices.SortedFunc(maps.Keys(days), time.Time.Compare) {
			h := store.HostDay{Sensor: at.Sensor, Src: at.Src, Day: day, SrcBytes: days[day]}
			if err := fn(&h); err != nil {
				return err
			}
		}
		clear(days)
		return nil
	}
	kept, err := answer(ctx, r, w, r.dailyFlows(ctx, f.Sides), func(d *store.DailyFlow) error {
		if !d.Src.IsValid() {
			return nil
		}
		if len(days) > 0 && (at.Sensor != d.Sensor || at.Src != d.Src) {
			if err := flush(); err != nil {
				return err
			}
		}
		at.Sensor, at.Src = d.Sensor, d.Src
		days[d.Day] = addSat(days[d.Day], d.SrcBytes)
		return nil
	})
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.HostDays(ctx, w, f, fn)
	}
	return flush()
}

// dailyFlows is the DailyFlows query over every pair's days, kept once
// for every filter: the store applies sides to the rows after the cut,
// and they are applied here to the settled ones.
func (r *Reader) dailyFlows(ctx context.Context, sides store.Sides) query[store.DailyFlow] {
	in := sides.Set()
	keep := func(d *store.DailyFlow) bool { return sides.Keep(in, d.Src, d.Dst) }
	if sides.Src == store.Anywhere && sides.Dst == store.Anywhere {
		keep = nil
	}
	return query[store.DailyFlow]{
		key: "daily flows", conns: true,
		fetch: func(w store.Window, fn func(*store.DailyFlow) error) error {
			return r.Reader.DailyFlows(ctx, w, store.FlowFilter{}, fn)
		},
		recent: func(w store.Window, fn func(*store.DailyFlow) error) error {
			return r.Reader.DailyFlows(ctx, w, store.FlowFilter{Sides: sides}, fn)
		},
		keep:    keep,
		missing: func(d *store.DailyFlow) bool { return !d.Src.IsValid() || !d.Dst.IsValid() },
		copy: func(d *store.DailyFlow, str func(string) string) (store.DailyFlow, int) {
			c := *d
			c.Sensor = str(d.Sensor)
			return c, sizeOf(d)
		},
		compare: func(a, b *store.DailyFlow) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), compareAddr(a.Dst, b.Dst, false),
				a.Day.Compare(b.Day))
		},
		add: func(a, b *store.DailyFlow) {
			// The cut is at midnight: a day is on one side of it, and
			// this adds nothing up in practice; it is what the merge of
			// one day's records would be.
			a.Conns += b.Conns
			a.SrcBytes, a.DstBytes = addSat(a.SrcBytes, b.SrcBytes), addSat(a.DstBytes, b.DstBytes)
			a.MaxSrcBytes = max(a.MaxSrcBytes, b.MaxSrcBytes)
			a.First, a.Last = event.Earliest(a.First, b.First), event.Latest(a.Last, b.Last)
		},
	}
}

// Uploads implements store.Analytics: the transfers of at least MinBytes
// before the cut, then those after it, in the stores' order. Each is one
// record, whose time puts it on one side of the cut.
func (r *Reader) Uploads(ctx context.Context, w store.Window, f store.UploadFilter, fn func(*store.Upload) error) error {
	in := f.Set()
	keep := func(u *store.Upload) bool { return f.Keep(in, u.Src, u.Dst) }
	if f.Src == store.Anywhere && f.Dst == store.Anywhere {
		keep = nil
	}
	kept, err := answer(ctx, r, w, query[store.Upload]{
		key: keyOf("uploads of at least", f.MinBytes), conns: true,
		fetch: func(w store.Window, fn func(*store.Upload) error) error {
			return r.Reader.Uploads(ctx, w, store.UploadFilter{MinBytes: f.MinBytes}, fn)
		},
		recent: func(w store.Window, fn func(*store.Upload) error) error {
			return r.Reader.Uploads(ctx, w, f, fn)
		},
		keep:    keep,
		missing: func(u *store.Upload) bool { return !u.Src.IsValid() || !u.Dst.IsValid() },
		copy: func(u *store.Upload, str func(string) string) (store.Upload, int) {
			c := *u
			for _, s := range []*string{&c.Sensor, &c.Log, &c.UID, &c.Method, &c.Host, &c.Agent, &c.MIME, &c.Filename, &c.URI,
				&c.MD5, &c.SHA1, &c.SHA256, &c.File} {
				*s = str(*s)
			}
			return c, sizeOf(u)
		},
		compare: func(a, b *store.Upload) int {
			return cmp.Or(strings.Compare(a.Sensor, b.Sensor), compareAddr(a.Src, b.Src, false), compareAddr(a.Dst, b.Dst, false),
				a.TS.Compare(b.TS), strings.Compare(a.Log, b.Log), strings.Compare(a.UID, b.UID), cmp.Compare(a.Bytes, b.Bytes))
		},
		// Two records never compare equal across the cut: their times
		// are on either side of it.
		add: func(*store.Upload, *store.Upload) {},
	}, fn)
	if err != nil {
		return err
	}
	if !kept {
		return r.Reader.Uploads(ctx, w, f, fn)
	}
	return nil
}
