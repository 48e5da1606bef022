package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Sink receives what ingest reads. store.Writer satisfies it.
type Sink interface {
	// Write stores a batch's records and progress atomically. It is called
	// from one goroutine at a time.
	Write(ctx context.Context, b *event.Batch) error
	// Inputs returns stored progress for an input ID or path.
	Inputs(ctx context.Context, id event.InputID, path string) ([]event.Progress, error)
	// Ledger returns all stored progress: a run of many inputs reads it
	// once instead of calling Inputs for each (ledgerOnceFrom).
	Ledger(ctx context.Context) ([]event.Progress, error)
}

// Options tune an Ingester. The zero value of each field means its default.
type Options struct {
	Sensor string // recorded on every record; default "default"
	// DataSensor lets records that name their sensor (_system_name in
	// Zeek's JSON streaming logs) keep that name instead of Sensor: for
	// when the user named none.
	DataSensor bool
	Workers    int           // files decoded in parallel; default GOMAXPROCS
	BatchRows  int           // records per store transaction (readers hand over pieces of at most 16,384); default 122880
	IdleAfter  time.Duration // a plain file not modified for this long is complete; default 2m
	// Complete declares every input complete whatever its age (evidence
	// copied from elsewhere, whose modification time is the copy's): an
	// unterminated last line is read now, not left for the writer to end.
	Complete bool
	// Clock bounds the times records may claim; records outside are
	// quarantined (Clock). The zero value means its defaults.
	Clock   Clock
	Formats []Format     // formats tried in order; required
	Logger  *slog.Logger // debug logging; default discards
	Now     func() time.Time
	// Seen, when set, lets a run skip the inputs an earlier run with the
	// same Seen found stored to their end, unopened, while they and their
	// ledger entries are as they were (Seen).
	Seen *Seen

	ledgerOnceFrom int           // default ledgerOnceFrom; tests set 1
	linger         time.Duration // default linger; tests set longer
}

// Status is what happened to one input.
type Status string

// Input statuses.
const (
	StatusIngested  Status = "ingested"  // records were read (possibly none new)
	StatusUnchanged Status = "unchanged" // already ingested to its end
	StatusSkipped   Status = "skipped"   // a log type dwell does not store, or nothing to do
	StatusRejected  Status = "rejected"  // not in any format dwell reads
	StatusFailed    Status = "failed"    // could not be read
)

// FileResult is the outcome for one input.
type FileResult struct {
	Path        string
	Explicit    bool
	Status      Status
	Format      string
	Compression Compression
	Kinds       []event.Kind
	Resumed     bool  // continued from a checkpoint
	From        int64 // decoded offset it continued from
	Rows        int64 // records stored in this run
	Bad         int64 // malformed lines skipped in this run
	// Held counts the records quarantined in this run for the times they
	// claim (Clock); HeldNotes gives the first few, with file and line.
	Held      int64
	HeldNotes []ParseError
	// Escaped counts the text values that held bytes that are not UTF-8,
	// stored with those bytes written \xNN as Zeek writes them.
	Escaped int64
	Errors  []ParseError
	Notes   []string
	// SkippedTypes and Ignored are as in Report.
	SkippedTypes map[string]int64
	Ignored      []string
	Err          string // why it was rejected or failed
	// Gone is true when the file was no longer there to open once
	// listed: rotated or removed meanwhile (Status is StatusFailed).
	Gone bool
}

// Summary is the outcome of a run.
type Summary struct {
	Files   []FileResult
	Rows    int64
	Bad     int64
	Held    int64 // records quarantined (FileResult.Held)
	Escaped int64 // text values escaped (FileResult.Escaped)
	Elapsed time.Duration
}

// Count returns how many inputs ended with status s.
func (s *Summary) Count(st Status) int {
	n := 0
	for _, f := range s.Files {
		if f.Status == st {
			n++
		}
	}
	return n
}

// Stats are running totals for a progress display.
type Stats struct {
	FilesTotal int
	FilesDone  int
	Rows       int64 // records stored
	Bad        int64
	Bytes      int64 // on-disk bytes of the inputs finished
}

// Ingester reads inputs into a Sink. Create one with New; Run may be called
// once.
type Ingester struct {
	sink  Sink
	opt   Options
	piece int // records a reader hands the writer at a time (pieceSize)

	filesTotal, filesDone atomic.Int64
	rows, bad, bytes      atomic.Int64

	mu      sync.Mutex
	claimed map[event.InputID]string // IDs being read in this run, by path
	failed  map[string]string        // inputs whose records the store refused, by path: why
	// ledger is read once when the run has ledgerOnceFrom inputs or more,
	// for the inputs the workers read; the deferred ones ask the sink.
	ledger *ledgerView

	// inflight counts batches handed to the writer and not yet stored.
	inflight sync.WaitGroup
}

// New returns an Ingester writing to sink.
func New(sink Sink, opt Options) *Ingester {
	if opt.Sensor == "" {
		opt.Sensor = "default"
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.BatchRows <= 0 {
		opt.BatchRows = 122880
	}
	if opt.IdleAfter <= 0 {
		opt.IdleAfter = 2 * time.Minute
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ledgerOnceFrom <= 0 {
		opt.ledgerOnceFrom = ledgerOnceFrom
	}
	if opt.linger <= 0 {
		opt.linger = linger
	}
	return &Ingester{sink: sink, opt: opt, piece: pieceSize(opt.BatchRows), claimed: map[event.InputID]string{}, failed: map[string]string{}}
}

// Stats returns running totals; safe to call from another goroutine.
func (in *Ingester) Stats() Stats {
	return Stats{
		FilesTotal: int(in.filesTotal.Load()), FilesDone: int(in.filesDone.Load()),
		Rows: in.rows.Load(), Bad: in.bad.Load(), Bytes: in.bytes.Load(),
	}
}

// errDeferred marks an input whose content another worker is reading now.
var errDeferred = errors.New("same content as another input being read")

// Run ingests the candidates. It returns an error only when the store fails
// or ctx ends; problems with single inputs are in the Summary.
func (in *Ingester) Run(ctx context.Context, cands []Candidate) (*Summary, error) {
	start := in.opt.Now()
	in.filesTotal.Store(int64(len(cands)))
	if len(cands) >= in.opt.ledgerOnceFrom {
		in.ledger = &ledgerView{}
	}
	results := make([]FileResult, len(cands))

	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan *event.Batch, 2*in.opt.Workers)
	pool := make(chan *event.Batch, in.opt.Workers+3)
	for range cap(pool) {
		pool <- &event.Batch{}
	}
	g.Go(func() error { return in.write(ctx, batches, pool) })

	var deferred []int
	var dmu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	var reading sync.WaitGroup // inputs handed to workers and not yet read
	for range in.opt.Workers {
		wg.Add(1)
		g.Go(func() error {
			defer wg.Done()
			for i := range work {
				res, err := in.file(ctx, cands[i], batches, pool)
				reading.Done()
				if errors.Is(err, errDeferred) {
					dmu.Lock()
					deferred = append(deferred, i)
					dmu.Unlock()
					continue
				}
				if err != nil {
					return err
				}
				results[i] = res
				in.done(cands[i])
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(batches)
		err := func() error {
			defer close(work)
			// An input whose name gives a Zeek log other than the last
			// one's starts once the inputs before it are read. Two
			// readers decoding two logs at once (conn.log.gz and
			// ssl.log.gz side by side) fill every transaction half with
			// each, so each table gets half a row group per commit and
			// the intel summary repeats each value per transaction.
			// Inputs of one log, Zeek's hourly files, are still read side
			// by side, and readOrder puts them together across the days
			// (docs/benchmarks.md, "Files or rows").
			var last event.Kind
			kinds, order := readOrder(cands)
			for _, i := range order {
				if k := kinds[i]; k != 0 {
					if last != 0 && k != last {
						reading.Wait()
					}
					last = k
				}
				reading.Add(1)
				select {
				case work <- i:
				case <-ctx.Done():
					reading.Done()
					return ctx.Err()
				}
			}
			return nil
		}()
		wg.Wait()
		if err != nil {
			return err
		}
		// Inputs with the same content as one read meanwhile go last, one at
		// a time, once what was read before is stored, so they resume from
		// its checkpoint instead of doubling it. That checkpoint is not in
		// in.ledger, read before it was stored: they ask the sink (the
		// workers, which read in.ledger, are done).
		in.ledger = nil
		for _, i := range deferred {
			if err := in.drain(ctx); err != nil {
				return err
			}
			in.mu.Lock()
			clear(in.claimed)
			in.mu.Unlock()
			res, err := in.file(ctx, cands[i], batches, pool)
			if err != nil && !errors.Is(err, errDeferred) {
				return err
			}
			results[i] = res
			in.done(cands[i])
		}
		return nil
	})
	err := g.Wait()
	if in.opt.Seen != nil && err == nil {
		in.opt.Seen.keepOnly(cands)
	}
	for i := range results {
		if why, ok := in.failed[results[i].Path]; ok {
			results[i].Status, results[i].Err = StatusFailed, why
		}
	}
	sum := &Summary{Files: results, Elapsed: in.opt.Now().Sub(start)}
	for _, r := range results {
		sum.Rows += r.Rows
		sum.Bad += r.Bad
		sum.Held += r.Held
		sum.Escaped += r.Escaped
	}
	return sum, err
}

// drain waits until every batch handed to the writer is stored.
func (in *Ingester) drain(ctx context.Context) error {
	stored := make(chan struct{})
	go func() {
		in.inflight.Wait()
		close(stored)
	}()
	select {
	case <-stored:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *Ingester) done(c Candidate) {
	in.filesDone.Add(1)
	in.bytes.Add(c.Size)
}

// maxPiece bounds the records a reader hands the writer at a time; the
// writer gathers pieces into transactions of up to BatchRows. Readers'
// batches wait in a pool for reuse, so their size is most of the Go heap
// of an ingest: pieces of 122,880 conn records kept 1.66 GB resident over
// one large file, pieces of 15,360 1.16–1.29 GB at the same speed
// (docs/benchmarks.md).
const maxPiece = 16384

// pieceSize splits batchRows into the fewest pieces of at most maxPiece,
// as equal as they can be, so that full pieces make a transaction of
// batchRows, not more: DuckDB's row groups are 122,880 rows, and
// transactions of 131,072 (8 pieces of 16,384) began a small row group
// every time, 25 % slower.
func pieceSize(batchRows int) int {
	n := (batchRows + maxPiece - 1) / maxPiece
	return (batchRows + n - 1) / n
}

// linger is how long a small batch waits for more pieces: many small
// files (Zeek's hourly rotation) would otherwise cost one store
// transaction each, and a reader of a log heavier than conn's (dns, ssl)
// hands a piece every 100–200 ms. At 100 ms, many transactions of such
// logs went short of BatchRows, and DuckDB rewrote the small row groups
// they left beside full ones (docs/benchmarks.md). A run's last batch
// does not wait: the readers are done.
const linger = time.Second

// write is the single goroutine that hands batches to the sink. Batches
// that are queued together go in one transaction, up to BatchRows records
// (up to twice that to avoid a small row group: shortTail):
// many small files (Zeek's hourly logs of quiet types) would otherwise cost
// a commit each. They are gathered in one batch of the writer's own, and
// the readers' batches go back to the pool at once, cleared: only that
// batch grows to BatchRows records of every kind, and no record kept for
// reuse holds a decoder's buffer (the peak memory of an ingest).
func (in *Ingester) write(ctx context.Context, batches <-chan *event.Batch, pool chan<- *event.Batch) error {
	timer := time.NewTimer(in.opt.linger)
	defer timer.Stop()
	b := &event.Batch{}
	for first := range batches {
		open, merged := true, 1
		b.Append(first)
		first.Clear()
		pool <- first
		timer.Reset(in.opt.linger)
	merge:
		for open {
			var short event.Kind
			if b.Len() >= in.opt.BatchRows {
				if short = shortTail(b, in.opt.BatchRows); short == 0 || b.Len() >= 2*in.opt.BatchRows {
					break merge
				}
			}
			select {
			case nb, ok := <-batches:
				if !ok {
					open = false
					break merge
				}
				// A piece without the short kind: its log is read
				// (files come a log at a time), the tail stays.
				more := short == 0 || nb.Count(short) > 0
				b.Append(nb)
				nb.Clear()
				pool <- nb
				merged++
				if !more {
					break merge
				}
			case <-timer.C:
				break merge
			case <-ctx.Done():
				break merge
			}
		}
		in.dropFailed(b)
		n := b.Len()
		err := in.sink.Write(ctx, b)
		if err != nil && ctx.Err() == nil && len(b.Progress) > 1 {
			n, err = in.writeApart(ctx, b)
		}
		in.inflight.Add(-merged)
		if err != nil {
			return fmt.Errorf("storing records: %w", err)
		}
		in.rows.Add(int64(n))
		b.Clear()
		if !open {
			return nil
		}
	}
	return nil
}

// shortTail returns a kind of record whose count in b passes rows by
// less than half of rows (and is not a multiple of it); 0 when none does.
//
// DuckDB writes a transaction's records of one table as row groups of
// 122,880 (rows, by default): full ones and the rest, a small row group
// when a few rows pass. Its checkpoints then merge small row groups with
// their neighbours, reading and compressing again two or three full ones
// each time: on Zeek's hourly files, whose last pieces seldom make a
// transaction of exactly 122,880, that took a fifth of ingest's time
// (docs/benchmarks.md). A transaction that passes a multiple of rows by
// more than half leaves row groups no two of which fit in one, so none
// is merged.
func shortTail(b *event.Batch, rows int) event.Kind {
	for _, k := range event.Kinds {
		if n := b.Count(k) % rows; b.Count(k) > rows && n > 0 && n <= rows/2 {
			return k
		}
	}
	return 0
}

// writeApart stores a batch of several inputs that the sink refused, input
// by input: the records of an input the sink refuses on their own are
// left out, with its progress (it is read again from where it was, and
// fails again, next time), and the input is marked failed; the other
// inputs are stored. It returns the records stored, and an error when
// the sink refused every input (the store, not the data, is failing).
func (in *Ingester) writeApart(ctx context.Context, b *event.Batch) (int, error) {
	parts := splitByInput(b)
	stored, failures := 0, 0
	var firstErr error
	for _, part := range parts {
		err := in.sink.Write(ctx, part)
		if err == nil {
			stored += part.Len()
			continue
		}
		if ctx.Err() != nil {
			return stored, ctx.Err()
		}
		failures++
		firstErr = cmp.Or(firstErr, err)
		in.mu.Lock()
		for _, p := range part.Progress {
			in.failed[p.Path] = fmt.Sprintf("the store refused a batch of its records (%v): those and the ones after were not stored; "+
				"the next run reads it again from there", err)
		}
		in.mu.Unlock()
	}
	if failures == len(parts) {
		return stored, firstErr
	}
	return stored, nil
}

// splitByInput returns b's records and progress per input (the path its
// progress names and its records' Source.File): the batches files handed
// to the writer before it merged them.
func splitByInput(b *event.Batch) []*event.Batch {
	byPath := map[string]*event.Batch{}
	var out []*event.Batch
	for _, p := range b.Progress {
		part := byPath[p.Path]
		if part == nil {
			part = &event.Batch{}
			byPath[p.Path] = part
			out = append(out, part)
		}
		part.Progress = append(part.Progress, p)
	}
	of := func(s event.Source) *event.Batch { return byPath[s.File] }
	split(b.Conns, of, func(p *event.Batch, r event.Conn) { p.Conns = append(p.Conns, r) }, func(r *event.Conn) event.Source { return r.Src })
	split(b.OpenConns, of, func(p *event.Batch, r event.Conn) { p.OpenConns = append(p.OpenConns, r) }, func(r *event.Conn) event.Source { return r.Src })
	split(b.DNS, of, func(p *event.Batch, r event.DNS) { p.DNS = append(p.DNS, r) }, func(r *event.DNS) event.Source { return r.Src })
	split(b.HTTP, of, func(p *event.Batch, r event.HTTP) { p.HTTP = append(p.HTTP, r) }, func(r *event.HTTP) event.Source { return r.Src })
	split(b.TLS, of, func(p *event.Batch, r event.TLS) { p.TLS = append(p.TLS, r) }, func(r *event.TLS) event.Source { return r.Src })
	split(b.X509, of, func(p *event.Batch, r event.X509) { p.X509 = append(p.X509, r) }, func(r *event.X509) event.Source { return r.Src })
	split(b.Files, of, func(p *event.Batch, r event.File) { p.Files = append(p.Files, r) }, func(r *event.File) event.Source { return r.Src })
	split(b.Flows, of, func(p *event.Batch, r event.Flow) { p.Flows = append(p.Flows, r) }, func(r *event.Flow) event.Source { return r.Src })
	split(b.Quarantine, of, func(p *event.Batch, r event.Quarantined) { p.Quarantine = append(p.Quarantine, r) },
		func(r *event.Quarantined) event.Source { return r.Src })
	return out
}

func split[R any](rows []R, of func(event.Source) *event.Batch, add func(*event.Batch, R), src func(*R) event.Source) {
	for i := range rows {
		if p := of(src(&rows[i])); p != nil {
			add(p, rows[i])
		}
	}
}

// dropFailed removes from b the records and progress of the inputs whose
// records the store refused earlier in this run: storing their later
// records would move their checkpoint past the ones left out.
func (in *Ingester) dropFailed(b *event.Batch) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.failed) == 0 {
		return
	}
	keep := func(s event.Source) bool { _, bad := in.failed[s.File]; return !bad }
	b.Conns = keepIf(b.Conns, keep, func(r *event.Conn) event.Source { return r.Src })
	b.OpenConns = keepIf(b.OpenConns, keep, func(r *event.Conn) event.Source { return r.Src })
	b.DNS = keepIf(b.DNS, keep, func(r *event.DNS) event.Source { return r.Src })
	b.HTTP = keepIf(b.HTTP, keep, func(r *event.HTTP) event.Source { return r.Src })
	b.TLS = keepIf(b.TLS, keep, func(r *event.TLS) event.Source { return r.Src })
	b.X509 = keepIf(b.X509, keep, func(r *event.X509) event.Source { return r.Src })
	b.Files = keepIf(b.Files, keep, func(r *event.File) event.Source { return r.Src })
	b.Flows = keepIf(b.Flows, keep, func(r *event.Flow) event.Source { return r.Src })
	b.Quarantine = keepIf(b.Quarantine, keep, func(r *event.Quarantined) event.Source { return r.Src })
	b.Progress = slices.DeleteFunc(b.Progress, func(p event.Progress) bool { _, bad := in.failed[p.Path]; return bad })
}

func keepIf[R any](rows []R, keep func(event.Source) bool, src func(*R) event.Source) []R {
	return slices.DeleteFunc(rows, func(r R) bool { return !keep(src(&r)) })
}

// file reads one input. A non-nil error stops the whole run.
func (in *Ingester) file(ctx context.Context, c Candidate, batches chan<- *event.Batch, pool chan *event.Batch) (FileResult, error) {
	res := FileResult{Path: c.Path, Explicit: c.Explicit}
	if c.Err != "" {
		res.Status, res.Err = StatusFailed, c.Err
		return res, nil
	}
	if done, err := in.seenBefore(ctx, c, &res); done || err != nil {
		return res, err
	}
	o, err := openInput(c.Path)
	if err != nil {
		res.Status, res.Err, res.Gone = StatusFailed, err.Error(), errors.Is(err, fs.ErrNotExist)
		return res, nil
	}
	defer func() { o.close() }() // o may be reopened below
	res.Compression = o.comp

	if len(o.head) == 0 {
		res.Status = StatusSkipped
		res.Notes = append(res.Notes, "empty file")
		return res, nil
	}
	if why, ok := notLog(logWord(c.Path)); ok {
		res.Status = StatusSkipped
		res.Notes = append(res.Notes, why)
		return res, nil
	}
	input := &Input{Path: c.Path, Sensor: in.opt.Sensor, DataSensor: in.opt.DataSensor, Head: o.head, Hint: KindHint(c.Path)}
	var format *Format
	for i := range in.opt.Formats {
		if in.opt.Formats[i].Detect(input) {
			format = &in.opt.Formats[i]
			break
		}
	}
	if format == nil {
		res.Status, res.Err = StatusRejected, notRecognised(c.Path, o.head)
		return res, nil
	}
	res.Format = format.Name

	word := logWord(c.Path)
	id := inputID(word, o.head, "")
	in.mu.Lock()
	if other, busy := in.claimed[id]; busy && other != c.Path {
		in.mu.Unlock()
		return res, errDeferred
	}
	in.claimed[id] = c.Path
	in.mu.Unlock()

	// Find where this input was left, verifying that a checkpoint found by
	// the head really is this content. Two inputs that merely start alike
	// are told apart by keying the second by its path as well.
	var (
		prev     *event.Progress
		replaces event.InputID
		r        io.Reader
		before   []byte
	)
	for attempt := 0; ; attempt++ {
		prev, replaces, err = in.previous(ctx, id, word, c.Path, o.head)
		if err != nil {
			return res, fmt.Errorf("reading the ingest ledger for %s: %w", c.Path, err)
		}
		if prev == nil {
			r = o.decoded
			break
		}
		mismatch := ""
		switch {
		case prev.Complete && prev.Size == o.size:
			res.Status = StatusUnchanged
			in.remember(c, o, prev, &res)
			return res, nil
		// A complete input of another size may be the same content
		// compressed otherwise, or decompressed (identity is the decoded
		// content, not its encoding): the checkpoint check below tells.
		case o.comp == CompressionNone && o.size < prev.Offset && prev.Path == c.Path:
			res.Status = StatusSkipped
			res.Notes = append(res.Notes, fmt.Sprintf("file is shorter (%d bytes) than the %d bytes already ingested from it: it was truncated or replaced, so it was not read again", o.size, prev.Offset))
			return res, nil
		case o.comp == CompressionNone && o.size < prev.Offset:
			mismatch = fmt.Sprintf("it is shorter (%d bytes) than what was read from that one (%d)", o.size, prev.Offset)
		default:
			if r, before, err = o.from(prev.Offset); err != nil {
				res.Status, res.Err = StatusFailed, err.Error()
				return res, nil
			}
			if prev.Check == "" || checkSum(before) == prev.Check {
				break
			}
			mismatch = "its content at the checkpoint differs"
		}
		if mismatch == "" {
			break
		}
		if attempt > 0 {
			res.Status, res.Err = StatusFailed, "its checkpoint does not match its content ("+mismatch+"); remove its ledger entry to read it again"
			return res, nil
		}
		res.Notes = append(res.Notes, fmt.Sprintf("starts like %s, ingested before, but %s: read as a separate input", prev.Path, mismatch))
		id = inputID(word, o.head, c.Path)
		if r != nil {
			// The stream was consumed up to the other input's checkpoint.
			o.close()
			if o, err = openInput(c.Path); err != nil {
				res.Status, res.Err = StatusFailed, err.Error()
				return res, nil
			}
			r, before = nil, nil
		}
	}
	if prev != nil {
		if o.comp == CompressionNone && o.size == prev.Offset {
			res.Status = StatusUnchanged
			in.remember(c, o, prev, &res)
			return res, nil
		}
		input.Resume = Position{Offset: prev.Offset, Line: prev.Line, Header: prev.Header, Check: prev.Check}
		input.Before = before
		res.Resumed, res.From = true, prev.Offset
	}
	input.Final = in.opt.Complete || o.comp != CompressionNone || in.opt.Now().Sub(c.ModTime) >= in.opt.IdleAfter

	src, err := format.Open(r, input)
	if err != nil {
		res.Status, res.Err = StatusFailed, err.Error()
		return res, nil
	}
	prog := event.Progress{ID: id, HeadLen: len(o.head), Replaces: replaces, Path: c.Path, Sensor: in.opt.Sensor, Format: format.Name, Size: o.size}
	if prev != nil {
		prog.Rows, prog.Bad = prev.Rows, prev.Bad
	}
	var lastBad int64
	scr := newScreen(in.opt.Clock, in.opt.Now())
	for {
		var b *event.Batch
		select {
		case b = <-pool:
		case <-ctx.Done():
			return res, ctx.Err()
		}
		err := src.Next(ctx, b, in.piece)
		end := errors.Is(err, io.EOF)
		if err != nil && !end {
			pool <- b
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Status, res.Err = StatusFailed, err.Error()
			break
		}
		scr.apply(b)
		pos, rep := src.Position(), src.Report()
		p := prog
		p.Header, p.Offset, p.Line, p.Check = pos.Header, pos.Offset, pos.Line, pos.Check
		p.Rows += rep.Rows - scr.held
		p.Bad += rep.Bad
		p.Complete = end && o.comp != CompressionNone && rep.Pending == 0 && !rep.Truncated
		p.Updated = in.opt.Now().UTC()
		in.bad.Add(rep.Bad - lastBad)
		lastBad = rep.Bad
		if b.Len() == 0 && len(b.Quarantine) == 0 && !end {
			pool <- b
			continue
		}
		if end && b.Len() == 0 && len(b.Quarantine) == 0 && prev != nil && pos.Offset == prev.Offset && rep.Rows == 0 {
			// Nothing after the checkpoint: the same content as read
			// before (a copy decompressed or compressed otherwise).
			pool <- b
			res.Status = StatusUnchanged
			break
		}
		b.Progress = append(b.Progress, p)
		in.inflight.Add(1)
		select {
		case batches <- b:
		case <-ctx.Done():
			in.inflight.Done()
			return res, ctx.Err()
		}
		if end {
			break
		}
	}
	rep := src.Report()
	res.Kinds, res.Rows, res.Bad, res.Errors = rep.Kinds, rep.Rows-scr.held, rep.Bad, rep.Errors
	res.Held, res.HeldNotes, res.Escaped = scr.held, scr.notes, scr.escaped
	if !scr.early.IsZero() {
		res.Notes = append(res.Notes, fmt.Sprintf("its records are dated from %s, before ingest.earliest (%s): a sensor clock that was never set? "+
			"Kept, because they agree with each other; their dates are not real dates", scr.early.Format(time.RFC3339), scr.clock.Earliest.Format(time.DateOnly)))
	}
	res.Notes = append(res.Notes, rep.Notes...)
	res.SkippedTypes, res.Ignored = rep.SkippedTypes, rep.Ignored
	if res.Status == "" {
		res.Status = StatusIngested
		if rep.Skipped {
			res.Status = StatusSkipped
		}
	}
	return res, nil
}

// previous finds the stored progress of this input: by its ID, or, for a
// file that was shorter than event.HeadSize when last read, by its path and
// the hash of the head it had then.
func (in *Ingester) previous(ctx context.Context, id event.InputID, word, path string, head []byte) (*event.Progress, event.InputID, error) {
	entries, err := in.inputs(ctx, id, path)
	if err != nil {
		return nil, "", err
	}
	for i := range entries {
		if entries[i].ID == id && entries[i].HeadLen == len(head) {
			return &entries[i], "", nil
		}
	}
	for i := range entries {
		e := &entries[i]
		if e.Path == path && e.HeadLen < len(head) && e.HeadLen < event.HeadSize {
			if inputID(word, head[:e.HeadLen], "") == e.ID {
				return e, e.ID, nil
			}
		}
	}
	return nil, "", nil
}

// readOrder returns each candidate's KindHint and the order to read them
// in: grouped by that kind, the groups in the order their first files come,
// path order within each. Three days of Zeek's day directories are then
// read as all their conn logs, then all their dns logs, and so on, not day
// by day, so a day's few http, files and x509 records no longer share
// transactions with the next kind's. That was 5 % of the wall time and 9 %
// of the CPU on those days (docs/benchmarks.md, "Files or rows").
func readOrder(cands []Candidate) ([]event.Kind, []int) {
	kinds := make([]event.Kind, len(cands))
	group := map[event.Kind]int{}
	for i := range cands {
		kinds[i] = KindHint(cands[i].Path)
		if _, ok := group[kinds[i]]; !ok {
			group[kinds[i]] = len(group)
		}
	}
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(group[kinds[a]], group[kinds[b]]) })
	return kinds, order
}

// seenBefore ends c's reading when opt.Seen says an earlier run found it
// stored to its end and the ledger read once still says so.
func (in *Ingester) seenBefore(ctx context.Context, c Candidate, res *FileResult) (bool, error) {
	if in.opt.Seen == nil || in.ledger == nil {
		return false, nil
	}
	f, ok := in.opt.Seen.lookup(c)
	if !ok {
		return false, nil
	}
	if err := in.ledger.load(ctx, in.sink); err != nil {
		return false, fmt.Errorf("reading the ingest ledger for %s: %w", c.Path, err)
	}
	if !in.ledger.stillStored(&f.entry) {
		in.opt.Seen.forget(c.Path)
		return false, nil
	}
	res.Status, res.Format, res.Compression = StatusUnchanged, f.format, f.comp
	return true, nil
}

// remember tells opt.Seen that c, opened as o, was found stored to its end
// by entry, when c is as it was listed.
func (in *Ingester) remember(c Candidate, o *opened, entry *event.Progress, res *FileResult) {
	if in.opt.Seen != nil && o.size == c.Size {
		in.opt.Seen.remember(c, entry, res.Format, res.Compression)
	}
}

// inputs returns the stored progress for an input ID or path: from the
// ledger read once when there is one, else from the sink.
func (in *Ingester) inputs(ctx context.Context, id event.InputID, path string) ([]event.Progress, error) {
	if in.ledger == nil {
		return in.sink.Inputs(ctx, id, path)
	}
	if err := in.ledger.load(ctx, in.sink); err != nil {
		return nil, err
	}
	return in.ledger.inputs(id, path), nil
}

// notLog reports files found in Zeek log directories that are not logs.
func notLog(word string) (string, bool) {
	switch word {
	case "conn-summary":
		return "Zeek's conn-summary is a text report, not a log", true
	case "stderr", "stdout":
		return "zeekctl's " + word + " capture is not a log", true
	}
	return "", false
}

func notRecognised(path string, head []byte) string {
	l := head
	for i, c := range l {
		if c == '\n' {
			l = l[:i]
			break
		}
	}
	if len(l) > 60 {
		l = l[:60]
	}
	return fmt.Sprintf("not a format dwell reads (no Zeek #separator header, not JSON lines with \"ts\", not Zeek TSV data with a log type in its name, not a packet capture, not an EVTX file, not JSON lines of Windows events or of Suricata's EVE); it starts %q", l)
}
