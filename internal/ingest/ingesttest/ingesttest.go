// Package ingesttest provides an in-memory ingest.Sink for tests of
// sources and of the ingest runner.
package ingesttest

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// Sink keeps what it is given in memory. Its zero value is ready to use.
type Sink struct {
	mu sync.Mutex
	// Sizes holds the records of each kind of each Write call, in order.
	Sizes    []map[event.Kind]int
	regress  []string // checkpoints stored behind earlier ones (Regressions)
	rows     map[event.Kind]int64
	records  map[string]int // "file:line" -> times stored, to find doubles
	progress map[event.InputID]event.Progress
	// Fail, when set, is returned by the next Write.
	Fail error
	// Refuse, when set, is asked about every Write first: a batch it
	// returns an error for is not stored (a store that rejects a value).
	Refuse func(*event.Batch) error
	held   []event.Quarantined
}

var _ ingest.Sink = (*Sink)(nil)

// Write implements ingest.Sink.
func (s *Sink) Write(_ context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	if s.Refuse != nil {
		if err := s.Refuse(b); err != nil {
			return err
		}
	}
	if s.rows == nil {
		s.rows = map[event.Kind]int64{}
		s.records = map[string]int{}
		s.progress = map[event.InputID]event.Progress{}
	}
	sizes := map[event.Kind]int{}
	for _, k := range event.Kinds {
		s.rows[k] += int64(b.Count(k))
		if b.Count(k) > 0 {
			sizes[k] = b.Count(k)
		}
	}
	s.Sizes = append(s.Sizes, sizes)
	note := func(src event.Source) { s.records[src.File+":"+strconv.FormatInt(src.Line, 10)]++ }
	for i := range b.Conns {
		note(b.Conns[i].Src)
	}
	for i := range b.OpenConns {
		note(b.OpenConns[i].Src)
	}
	for i := range b.DNS {
		note(b.DNS[i].Src)
	}
	for i := range b.HTTP {
		note(b.HTTP[i].Src)
	}
	for i := range b.TLS {
		note(b.TLS[i].Src)
	}
	for i := range b.X509 {
		note(b.X509[i].Src)
	}
	for i := range b.Files {
		note(b.Files[i].Src)
	}
	for i := range b.Host {
		note(b.Host[i].Src)
	}
	for i := range b.Flows {
		note(b.Flows[i].Src)
	}
	s.held = append(s.held, b.Quarantine...)
	for _, p := range b.Progress {
		if p.Replaces != "" {
			delete(s.progress, p.Replaces)
		}
		if old, ok := s.progress[p.ID]; ok && p.Offset < old.Offset {
			s.regress = append(s.regress, fmt.Sprintf("%s: offset %d after %d", p.Path, p.Offset, old.Offset))
		}
		s.progress[p.ID] = p
	}
	return nil
}

// Regressions returns the progress stored behind an input's earlier
// progress (its checkpoint moved back: the lines between would be read
// and stored again).
func (s *Sink) Regressions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.regress...)
}

// Inputs implements ingest.Sink.
func (s *Sink) Inputs(_ context.Context, id event.InputID, path string) ([]event.Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Progress
	for _, p := range s.progress {
		if p.ID == id || p.Path == path {
			out = append(out, p)
		}
	}
	return out, nil
}

// Rows returns the records stored of kind k.
func (s *Sink) Rows(k event.Kind) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows[k]
}

// Held returns the quarantined records stored.
func (s *Sink) Held() []event.Quarantined {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Quarantined(nil), s.held...)
}

// Doubles returns the records (file:line) stored more than once.
func (s *Sink) Doubles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k, n := range s.records {
		if n > 1 {
			out = append(out, k)
		}
	}
	return out
}

// Ledger implements ingest.Sink.
func (s *Sink) Ledger(context.Context) ([]event.Progress, error) { return s.Entries(), nil }

// Forget removes the ledger entries of path, as dwell delete removes a
// sensor's.
func (s *Sink) Forget(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, p := range s.progress {
		if p.Path == path {
			delete(s.progress, id)
		}
	}
}

// Entries returns the stored progress entries.
func (s *Sink) Entries() []event.Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]event.Progress, 0, len(s.progress))
	for _, p := range s.progress {
		out = append(out, p)
	}
	return out
}

// Batches returns the number of Write calls.
func (s *Sink) Batches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Sizes)
}

// Mixed returns the number of Write calls with records of more than one
// kind.
func (s *Sink) Mixed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sizes := range s.Sizes {
		if len(sizes) > 1 {
			n++
		}
	}
	return n
}
