package detect

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Incremental is the optional side of a detector whose findings over all
// history follow from running totals over its records, whatever order
// they come in: the per-record detectors (host, sigma, suricata). dwell
// serve keeps the totals between hunts and adds each batch as it is
// stored, so a hunt reads none of that history again (docs/serve.md).
//
// Its Detect is the same computation done at once: a Tally, Read of the
// window, the tally's Findings, then Finish.
type Incremental interface {
	Detector
	// Tally returns empty totals for this detector's configuration.
	Tally() Tally
	// Finish completes the tally's findings fs under the detector's
	// current environment (its allow-list) and adds what the detector
	// reads whole at each hunt (sigma's rules over the network tables).
	// t is only read for what never changes after Tally (its rules); it
	// may be being added to meanwhile.
	Finish(ctx context.Context, r store.Reader, w store.Window, t Tally, fs []Finding) ([]Finding, error)
}

// Tally is an incremental detector's running totals. Its findings depend
// only on which records were added, never on their order or on how they
// were split between Read and Add. Not safe for concurrent use.
type Tally interface {
	// Kinds are the kinds of records the tally reads.
	Kinds() []event.Kind
	// Read adds the stored records of window w, except those for which
	// skip (when not nil) reports that they were added already.
	Read(ctx context.Context, r store.Reader, w store.Window, skip func(*event.Source) bool) error
	// Add adds the records of a batch just stored. It copies what it
	// keeps: the batch is reused.
	Add(b *event.Batch)
	// Findings returns the findings of what was added so far; the tally
	// is unchanged and may be added to afterwards.
	Findings() []Finding
}

// RunTally is Detect for an incremental detector: its tally over all
// of window w at once.
func RunTally(ctx context.Context, d Incremental, r store.Reader, w store.Window) ([]Finding, error) {
	t := d.Tally()
	if err := t.Read(ctx, r, w, nil); err != nil {
		return nil, err
	}
	return d.Finish(ctx, r, w, t, t.Findings())
}

// RecordOrder orders records by time, then where they were read (sensor,
// file, line): a total order on stored records, so that a tally keeps
// the same examples and first values whichever order records come in.
func RecordOrder(at time.Time, a *event.Source, bt time.Time, b *event.Source) int {
	return cmp.Or(at.Compare(bt), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
}

// StoredTime is a time as the stores keep it: UTC, to the microsecond. A
// tally fed with batches uses it so that its findings equal those read
// back from the store.
func StoredTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Earliest keeps the n earliest of the values offered, by RecordOrder of
// the time and place each is offered with.
type Earliest[T any] struct {
	N     int
	items []earliestItem[T]
}

type earliestItem[T any] struct {
	ts  time.Time
	src event.Source
	v   T
}

// Offer offers v, seen at ts from src; make builds the value only when it
// is kept. It reports whether v was kept.
func (e *Earliest[T]) Offer(ts time.Time, src *event.Source, make func() T) bool {
	if e.N <= 0 {
		return false
	}
	if len(e.items) == e.N {
		last := &e.items[len(e.items)-1]
		if RecordOrder(ts, src, last.ts, &last.src) >= 0 {
			return false
		}
		e.items = e.items[:len(e.items)-1]
	}
	i, _ := slices.BinarySearchFunc(e.items, earliestItem[T]{ts: ts, src: *src}, func(a, b earliestItem[T]) int {
		return RecordOrder(a.ts, &a.src, b.ts, &b.src)
	})
	e.items = slices.Insert(e.items, i, earliestItem[T]{ts: ts, src: src.Clone(), v: make()})
	return true
}

// OfferDistinct is Offer for values that count once: a value equal (by
// same) to one kept is kept once, at the earlier of its two places.
func (e *Earliest[T]) OfferDistinct(ts time.Time, src *event.Source, v T, same func(a, b T) bool) bool {
	for i := range e.items {
		if !same(e.items[i].v, v) {
			continue
		}
		if RecordOrder(ts, src, e.items[i].ts, &e.items[i].src) >= 0 {
			return false
		}
		e.items = slices.Delete(e.items, i, i+1)
		break
	}
	return e.Offer(ts, src, func() T { return v })
}

// Values returns the kept values, earliest first.
func (e *Earliest[T]) Values() []T {
	out := make([]T, len(e.items))
	for i := range e.items {
		out[i] = e.items[i].v
	}
	return out
}
