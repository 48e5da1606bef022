package ingest

import (
	"context"
	"sync"

	"github.com/dwell-nsm/dwell/internal/event"
)

// ledgerOnceFrom is the number of inputs from which a run reads the whole
// ingest ledger once rather than asking the sink for each input's
// entries. Each question is a store query (in DuckDB about 0.45 ms with
// a ledger of 2,000 entries), and dwell serve asks again at every poll for
// every file of a followed directory: a poll of 1,756 rotated files, all
// stored already, took 1.15–1.29 s asking per file and 183–190 ms with
// the ledger read once (BenchmarkFollowUnchanged, docs/benchmarks.md). A
// run of a few files against a large ledger still reads only their
// entries.
const ledgerOnceFrom = 32

// ledgerView is the ingest ledger as it stood when a run first looked,
// found by input ID and by path.
//
// A run's own writes are not in it. That is sound while no two inputs of
// the run share an entry: an input's ID is claimed by one path at a time,
// and an input sharing its content with one read meanwhile is deferred to
// the end of the run, where it asks the sink (Ingester.previous).
type ledgerView struct {
	once    sync.Once
	err     error
	entries []event.Progress
	byID    map[event.InputID][]int
	byPath  map[string][]int
}

// load reads the ledger from sink, once; later calls return the first
// call's error.
func (v *ledgerView) load(ctx context.Context, sink Sink) error {
	v.once.Do(func() {
		v.entries, v.err = sink.Ledger(ctx)
		v.byID = make(map[event.InputID][]int, len(v.entries))
		v.byPath = make(map[string][]int, len(v.entries))
		for i := range v.entries {
			p := &v.entries[i]
			v.byID[p.ID] = append(v.byID[p.ID], i)
			v.byPath[p.Path] = append(v.byPath[p.Path], i)
		}
	})
	return v.err
}

// inputs returns what Sink.Inputs would have: the entries whose ID is id
// or whose path is path, each once.
func (v *ledgerView) inputs(id event.InputID, path string) []event.Progress {
	byID, byPath := v.byID[id], v.byPath[path]
	out := make([]event.Progress, 0, len(byID)+len(byPath))
	for _, i := range byID {
		out = append(out, v.entries[i])
	}
	for _, i := range byPath {
		if v.entries[i].ID != id {
			out = append(out, v.entries[i])
		}
	}
	return out
}
