package app

import (
	"context"
	"slices"
	"sync"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Under dwell serve an incremental detector (detect.Incremental: host,
// sigma, suricata) reads history once. Its tally is kept between hunts
// and every batch the served store writes is added to it, so a hunt only
// asks the tally for its findings. The first hunt after a start, a
// reloaded configuration, an import of Sigma rules or a deleted sensor
// reads all history into a new tally while writes go on: records written
// meanwhile are held apart and skipped by that read if it sees them, so
// each counts once (TestTallyWhileWriting).

// tallies keeps the served store's incremental tallies.
type tallies struct {
	// flight is held for reading from just before a batch is written to
	// just after it is added: a tally starts (for writing) between writes,
	// never during one.
	flight sync.RWMutex
	mu     sync.Mutex
	kept   map[string]*keptTally
}

// keptTally is one detector's tally.
type keptTally struct {
	ready chan struct{} // closed when history is read (err says how)
	err   error

	mu    sync.Mutex
	t     detect.Tally
	kinds []event.Kind
	// While history is read: the records written meanwhile (heldSrc
	// before their write, held after it succeeded).
	reading bool
	heldSrc map[event.Source]bool
	held    *event.Batch
}

// current returns the kept tallies.
func (ts *tallies) current() []*keptTally {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	out := make([]*keptTally, 0, len(ts.kept))
	for _, k := range ts.kept {
		out = append(out, k)
	}
	return out
}

// before is called before b is written; after must follow.
func (ts *tallies) before(b *event.Batch) {
	ts.flight.RLock()
	for _, k := range ts.current() {
		k.mu.Lock()
		if k.reading {
			for _, kind := range k.kinds {
				b.Sources(kind, func(s *event.Source) { k.heldSrc[*s] = true })
			}
		}
		k.mu.Unlock()
	}
}

// after adds b, when it was stored, to every kept tally.
func (ts *tallies) after(b *event.Batch, stored bool) {
	defer ts.flight.RUnlock()
	if !stored {
		return
	}
	for _, k := range ts.current() {
		k.mu.Lock()
		if k.reading {
			hold(k.held, b, k.kinds)
		} else {
			k.t.Add(b)
		}
		k.mu.Unlock()
	}
}

// hold copies the records of kinds from b into held (b is reused).
func hold(held, b *event.Batch, kinds []event.Kind) {
	for _, kind := range kinds {
		switch kind {
		case event.KindWinlog:
			for _, e := range b.Host {
				e.Fields = slices.Clone(e.Fields)
				held.Host = append(held.Host, e)
			}
		case event.KindAlert:
			for _, a := range b.Alerts {
				a.Attack = slices.Clone(a.Attack)
				held.Alerts = append(held.Alerts, a)
			}
		default:
			panic("BUG: a tally of " + kind.String() + " records: hold does not copy them")
		}
	}
}

// reset forgets every tally: history changed other than by additions (a
// sensor deleted), or what the detectors find in it did (configuration).
func (ts *tallies) reset() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.kept = nil
}

// findings returns d's findings over all history from its kept tally,
// reading history into a new one when none is kept (read says so).
func (ts *tallies) findings(ctx context.Context, d detect.Incremental, r store.Reader, w store.Window) (fs []detect.Finding, read bool, err error) {
	ts.mu.Lock()
	k := ts.kept[d.Name()]
	ts.mu.Unlock()
	start := false
	if k == nil {
		ts.flight.Lock() // no write is under way: each is before this tally or held by it
		ts.mu.Lock()
		if k = ts.kept[d.Name()]; k == nil {
			t := d.Tally()
			k = &keptTally{ready: make(chan struct{}), t: t, kinds: t.Kinds(), reading: true, heldSrc: map[event.Source]bool{}, held: &event.Batch{}}
			if ts.kept == nil {
				ts.kept = map[string]*keptTally{}
			}
			ts.kept[d.Name()] = k
			start = true
		}
		ts.mu.Unlock()
		ts.flight.Unlock()
	}
	if start {
		k.err = k.t.Read(ctx, r, w, func(s *event.Source) bool {
			k.mu.Lock()
			defer k.mu.Unlock()
			return k.heldSrc[*s]
		})
		k.mu.Lock()
		k.t.Add(k.held)
		k.reading, k.held, k.heldSrc = false, nil, nil
		k.mu.Unlock()
		if k.err != nil {
			ts.mu.Lock()
			if ts.kept[d.Name()] == k {
				delete(ts.kept, d.Name())
			}
			ts.mu.Unlock()
		}
		close(k.ready)
	}
	select {
	case <-k.ready:
	case <-ctx.Done():
		return nil, start, ctx.Err()
	}
	if k.err != nil {
		return nil, start, k.err
	}
	k.mu.Lock()
	fs = k.t.Findings()
	k.mu.Unlock()
	fs, err = d.Finish(ctx, r, w, k.t, fs)
	return fs, start, err
}
