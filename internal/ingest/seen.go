package ingest

import (
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Seen remembers, from one run to the next, the inputs a run found stored
// to their end, so that the next run of the same paths skips them without
// opening them. dwell serve polls its followed directories with one Seen
// per sensor: a poll of a directory of weeks of rotated files, all stored,
// opened and decompressed the head of each file to find its ledger entry
// (80–100 µs a file here), and now lists and stats them (about 9 µs:
// BenchmarkFollowUnchanged, docs/benchmarks.md).
//
// A file is skipped only when its size and modification time are those it
// had when it was found unchanged, and the ledger the run reads still
// holds the entry that said so, as it was then: a file rewritten, grown
// or replaced is read as before, and so is one whose entry was removed
// (dwell delete --sensor) or moved on by another process. Skipping needs
// the run to read the whole ledger once (runs of ledgerOnceFrom inputs or
// more); smaller runs open every file, as they did.
//
// A Seen is safe for concurrent use. The zero value is ready.
type Seen struct {
	mu sync.Mutex
	m  map[string]seenFile
}

// seenFile is what a run knew of a file it found unchanged.
type seenFile struct {
	size    int64
	modTime time.Time
	entry   event.Progress // the ledger entry that said it was stored to its end
	format  string
	comp    Compression
}

// lookup returns what was remembered of c, if its size and modification
// time have not changed since.
func (s *Seen) lookup(c Candidate) (seenFile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[c.Path]
	if !ok || f.size != c.Size || !f.modTime.Equal(c.ModTime) {
		return seenFile{}, false
	}
	return f, true
}

// remember records that c was found stored to its end by entry.
func (s *Seen) remember(c Candidate, entry *event.Progress, format string, comp Compression) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]seenFile{}
	}
	e := *entry
	e.Header = "" // Zeek's '#' lines, not compared (sameEntry): a year of hourly files would keep tens of MB of them
	s.m[c.Path] = seenFile{size: c.Size, modTime: c.ModTime, entry: e, format: format, comp: comp}
}

// forget drops what was remembered of a path.
func (s *Seen) forget(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, path)
}

// keepOnly forgets every path not among cands: files rotated away or
// removed since.
func (s *Seen) keepOnly(cands []Candidate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) == 0 {
		return
	}
	keep := make(map[string]bool, len(cands))
	for _, c := range cands {
		keep[c.Path] = true
	}
	for p := range s.m {
		if !keep[p] {
			delete(s.m, p)
		}
	}
}

// stillStored reports whether the ledger read once holds e as it was.
func (v *ledgerView) stillStored(e *event.Progress) bool {
	for _, i := range v.byID[e.ID] {
		if sameEntry(&v.entries[i], e) {
			return true
		}
	}
	return false
}

// sameEntry reports whether two ledger entries say the same of an input.
func sameEntry(a, b *event.Progress) bool {
	return a.ID == b.ID && a.HeadLen == b.HeadLen && a.Path == b.Path && a.Sensor == b.Sensor && a.Offset == b.Offset &&
		a.Line == b.Line && a.Check == b.Check && a.Size == b.Size && a.Rows == b.Rows && a.Complete == b.Complete
}
