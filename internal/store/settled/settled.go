// Package settled answers a hunt's aggregate queries over all history
// without reading all of it again: history before a cut (a UTC midnight
// a day or two behind the newest record) is settled, since new records
// arrive after it, so its answers are kept in memory between hunts and
// merged with a fresh read of the records after the cut (issue 18,
// decision 0017).
//
// Only aggregates that add up exactly across a split in time are kept:
// sums, counts, minima and maxima, distinct UTC days (the cut is at
// midnight), unions of sets. When the newest record is three days past
// the cut, the cut moves and each kept answer adds the days it moved
// over. A record written before the cut (a late log, a back-fill, a long
// connection logged when it ended), a deleted sensor or a new
// configuration drops what is kept. Every other question passes through
// to the store.
package settled

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// DefaultMaxBytes is about how much memory Kept holds by default, all
// settled answers together.
const DefaultMaxBytes = 512 << 20

// roll is how far past the cut the newest record may go before the cut
// moves (the records after it are read at every hunt).
const roll = 72 * time.Hour

// Kept is what is kept between hunts: the cut and the settled answers.
// One Kept serves one store; its Before and After are called around every
// write to it. Safe for concurrent use.
type Kept struct {
	// MaxBytes caps about how much memory the settled answers keep
	// (DefaultMaxBytes when 0; nothing is kept when it is negative): an
	// answer that would pass it is not kept, and its query reads all
	// history as before.
	MaxBytes int
	// Now is the clock (time.Now when nil): the cut is never later than
	// a day before it, whatever time a record claims.
	Now func() time.Time

	mu      sync.Mutex
	gen     uint64 // bumped when what is kept may no longer be settled
	cut     time.Time
	parts   map[string]*part
	bytes   int
	dropped bool // Before dropped what was kept: After bumps gen again
	// unchecked is the first record of the batch being written when
	// Before found no cut to check it against (writes are one at a
	// time): a cut chosen meanwhile must not be after it.
	unchecked time.Time
	// holds counts the Holds not yet released; first and last span the
	// records written meanwhile (zero when none were).
	holds       int
	first, last time.Time
	counts      Counts
}

// Counts says how the queries were answered since the Kept was made.
type Counts struct {
	// Merged answers used kept settled rows; Settled answers read the
	// settled history first (and kept it); Extended ones read the days
	// the cut moved over since and added them to what was kept; Passed
	// went to the store whole (a window, a filter or a size that is not
	// kept).
	Merged, Settled, Extended, Passed int64
	// Dropped counts the times what was kept was dropped.
	Dropped int64
	// Bytes is about how much memory the settled answers keep now.
	Bytes int64
}

// part is one query's settled answer.
type part struct {
	done chan struct{}
	ok   bool      // rows are settled and kept
	rows any       // []T of the query's row type
	n    int       // about the bytes rows keep
	cut  time.Time // the rows are of the history before it
	// missing says that a row misses a key (query.missing).
	missing bool
	used    bool
	// watch, when not nil, holds the certificates (by x509 fingerprint,
	// or file id) the rows name, as they show them: an x509 record
	// written of one that shows it otherwise drops the part, as does any
	// x509 record written while it is read.
	watch    map[string]*certView
	watching bool
}

// SetMaxBytes sets MaxBytes: n bytes, none when n is not positive. What
// is kept beyond a lower cap is dropped.
func (k *Kept) SetMaxBytes(n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	limit := -1
	if n > 0 {
		limit = int(min(n, math.MaxInt))
	}
	if limit != k.MaxBytes && (limit < 0 || k.bytes > limit) {
		k.dropLocked()
	}
	k.MaxBytes = limit
}

// limit returns the cap on the bytes kept (negative: none kept).
func (k *Kept) limit() int {
	if k.MaxBytes == 0 {
		return DefaultMaxBytes
	}
	return k.MaxBytes
}

// Counts returns how the queries were answered so far.
func (k *Kept) Counts() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.counts
	c.Bytes = int64(k.bytes)
	return c
}

// Reset drops what is kept: history changed other than by additions (a
// sensor deleted) or the question did (configuration).
func (k *Kept) Reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropLocked()
}

func (k *Kept) dropLocked() {
	k.gen++
	if k.parts != nil || !k.cut.IsZero() {
		k.counts.Dropped++
	}
	k.parts, k.bytes, k.cut = nil, 0, time.Time{}
}

// Before is called before b is written; After must follow. A batch with
// a record before the cut drops what is kept; one whose newest record is
// three days past the cut moves it.
func (k *Kept) Before(b *event.Batch) {
	first, last, ok := span(b)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropped, k.unchecked = false, time.Time{}
	k.certsWritten(b)
	if !ok {
		return
	}
	if k.holds > 0 {
		if k.first.IsZero() || first.Before(k.first) {
			k.first = first
		}
		if last.After(k.last) {
			k.last = last
		}
	}
	if k.cut.IsZero() {
		k.unchecked = first
		return
	}
	switch {
	case first.Before(k.cut):
		k.dropLocked()
		k.dropped = true
	case k.holds == 0:
		k.move(first, last)
	}
}

// move moves the cut for records from first to last being written, when
// the newest is three days past it. Each settled answer is extended over
// the days it moved over when next asked for, which may be before the
// records are stored: never past the first.
func (k *Kept) move(first, last time.Time) {
	if last.Before(k.cut.Add(roll)) {
		return
	}
	c := k.cutOf(last)
	if first.Before(c) {
		c = first.UTC().Truncate(24 * time.Hour)
	}
	if c.After(k.cut) {
		k.cut = c
	}
}

// Hold keeps the cut where it is until release is called. An ingest run
// holds it: it reads its files a log at a time (every day's conn logs,
// then every day's DNS logs), so it writes records older than those it
// wrote before, and a cut moved past them would drop what is kept. Once
// the last hold is released, the cut moves as one batch of all the
// records written meanwhile would move it: never past the first. A cut
// chosen while held is not after the first either. Records before the
// cut drop what is kept, held or not.
func (k *Kept) Hold() (release func()) {
	k.mu.Lock()
	k.holds++
	k.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.holds--; k.holds > 0 {
				return
			}
			if !k.first.IsZero() && !k.cut.IsZero() {
				k.move(k.first, k.last)
			}
			k.first, k.last = time.Time{}, time.Time{}
		})
	}
}

// After is called once b was written (or failed to be). A query of the
// settled history that ran while a batch before the cut was being written
// may or may not have seen it: it is not kept.
func (k *Kept) After(b *event.Batch) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.certsWritten(b)
	k.unchecked = time.Time{}
	if k.dropped {
		// Read between Before and now: dropped again.
		k.gen++
		k.parts, k.bytes, k.cut = nil, 0, time.Time{}
		k.dropped = false
	}
}

// certView is what TLS sessions show of a certificate from its x509 record.
// A nil *certView stands for several views: any record of it changes them.
type certView struct {
	Subject, Issuer  string
	NotBefore, After time.Time
	Names            []string
}

// shows reports whether x509 record x shows the certificate as c does.
func (c *certView) shows(x *event.X509) bool {
	if c == nil || x.Subject != c.Subject || x.Issuer != c.Issuer || len(x.SANDNS) != len(c.Names) {
		return false
	}
	for i, n := range x.SANDNS {
		if n != c.Names[i] {
			return false
		}
	}
	same := func(o event.Opt[time.Time], t time.Time) bool {
		if !o.Valid {
			return t.IsZero()
		}
		return o.V.UTC().Truncate(time.Microsecond).Equal(t)
	}
	return same(x.NotValidBefore, c.NotBefore) && same(x.NotValidAfter, c.After)
}

// certsWritten drops the parts that watch a certificate of b, and those
// that watch certificates and are being read: a read that overlaps the
// write may or may not see it (Before and After both call it).
func (k *Kept) certsWritten(b *event.Batch) {
	if len(b.X509) == 0 {
		return
	}
	for key, p := range k.parts {
		if !p.watching {
			continue
		}
		drop := !closed(p.done) // being read
		for i := 0; i < len(b.X509) && !drop; i++ {
			x := &b.X509[i]
			cert := x.Fingerprint
			if cert == "" {
				cert = x.ID
			}
			c, ok := p.watch[cert]
			drop = ok && !c.shows(x)
		}
		if drop {
			if p.ok {
				k.bytes -= p.n
			}
			delete(k.parts, key)
			k.counts.Dropped++
		}
	}
}

// Sweep drops the answers no query used since the last Sweep (a
// detector no longer configured, a LocalAddrs of other networks). The
// server calls it after each hunt of every detector: a hunt of a few
// leaves what the others use.
func (k *Kept) Sweep() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, p := range k.parts {
		if !closed(p.done) {
			continue // still being read
		}
		if !p.used {
			k.bytes -= p.n
			delete(k.parts, key)
			continue
		}
		p.used = false
	}
}

// span returns the first and last time of the records of b that kept
// answers read: conn, dns, http, ssl and files.
func span(b *event.Batch) (first, last time.Time, ok bool) {
	see := func(t time.Time) {
		if !ok || t.Before(first) {
			first = t
		}
		if !ok || t.After(last) {
			last = t
		}
		ok = true
	}
	for i := range b.Conns {
		see(b.Conns[i].TS)
	}
	for i := range b.DNS {
		see(b.DNS[i].TS)
	}
	for i := range b.HTTP {
		see(b.HTTP[i].TS)
	}
	for i := range b.TLS {
		see(b.TLS[i].TS)
	}
	for i := range b.Files {
		see(b.Files[i].TS)
	}
	return first, last, ok
}

// Reader is a store.Reader for one hunt that answers the aggregate
// queries it can from k. Its other methods are the store's.
type Reader struct {
	store.Reader
	k *Kept

	mu     sync.Mutex
	recent map[string]*recent // the rows after the cut, per query key
}

// New returns a Reader of r that keeps settled answers in k.
func New(r store.Reader, k *Kept) *Reader { return &Reader{Reader: r, k: k} }

// cutOf returns the cut for the newest record at last: the UTC midnight
// a day before it, or before the clock when that is earlier.
func (k *Kept) cutOf(last time.Time) time.Time {
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	if n := now(); n.Before(last) {
		last = n
	}
	return last.UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)
}

// cutFor returns the cut, choosing it when none is from the newest conn
// record (cutOf). ok is false when nothing is stored.
func (r *Reader) cutFor(ctx context.Context) (time.Time, uint64, bool, error) {
	k := r.k
	k.mu.Lock()
	cut, gen := k.cut, k.gen
	k.mu.Unlock()
	if !cut.IsZero() {
		return cut, gen, true, nil
	}
	_, last, _, ok, err := r.Reader.Span(ctx, store.Window{})
	if err != nil || !ok {
		return time.Time{}, 0, false, err
	}
	cut = k.cutOf(last)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen != gen || !k.unchecked.IsZero() && k.unchecked.Before(cut) {
		return time.Time{}, 0, false, nil // a write before the cut is under way
	}
	if !k.first.IsZero() && k.first.Before(cut) {
		cut = k.first.UTC().Truncate(24 * time.Hour) // a run holds the cut (Hold)
	}
	if k.cut.IsZero() {
		k.cut = cut
	}
	return k.cut, k.gen, true, nil
}

// query is one aggregate query as settled keeps it.
type query[T any] struct {
	// key names the query and its filter: the settled answer's name.
	key string
	// conns says that it reads connections: kept over Zeek's conn log
	// only (flow sessions are stitched anew after flows are written, and
	// a session's records may span the cut).
	conns bool
	// fetch runs the query over window w: without the filters keep
	// applies, for the settled rows; recent, when not nil, runs it with
	// them, for the rows after the cut.
	fetch  func(w store.Window, fn func(*T) error) error
	recent func(w store.Window, fn func(*T) error) error
	// keep, when not nil, applies the filters fetch leaves out to a
	// settled row, as the store applies them. It cannot where a row
	// misses a key the store has as NULL (which SQL holds neither in a
	// list nor out of it): when missing says some settled row does, the
	// query goes to the store.
	keep    func(*T) bool
	missing func(*T) bool
	// copy copies a row the query streams (the store reuses it), its
	// strings through str, and returns about how many bytes the copy
	// keeps besides those strings.
	copy func(t *T, str func(string) string) (T, int)
	// compare orders rows as the store does; add folds b, of the same
	// key and after the cut, into a.
	compare func(a, b *T) int
	add     func(a, b *T)
	// watch, when not nil, returns the certificates the settled rows
	// show (part.watch).
	watch func([]T) map[string]*certView
}

// answer streams the rows of q over all history through fn: the settled
// rows merged with those after the cut, one at a time (a row is only
// valid during the call). ok is false when there are none to use — w is
// not all history, or the settled rows are not kept (too big, dropped
// while read) — and nothing was streamed: the caller asks the store.
func answer[T any](ctx context.Context, r *Reader, w store.Window, q query[T], fn func(*T) error) (ok bool, err error) {
	if !w.Since.IsZero() || !w.Until.IsZero() || q.conns && w.Conns != store.ConnLog {
		r.count(func(c *Counts) { c.Passed++ })
		return false, nil
	}
	p, how, err := settledRows(ctx, r, q)
	if err != nil || p == nil || q.keep != nil && p.missing {
		r.count(func(c *Counts) { c.Passed++ })
		return false, err
	}
	old, cut, keep := p.rows.([]T), p.cut, q.keep
	if keep == nil {
		keep = func(*T) bool { return true }
	}
	// The rows after the cut, read once a hunt for every filter and
	// filtered here as the settled ones are; or, where one misses a key
	// the filters name, read with them by the store.
	recent, missing, err := recentRows(ctx, r, q, cut)
	if err != nil {
		return false, err
	}
	keepRecent := keep
	if q.keep != nil && missing {
		filtered := q.recent
		if filtered == nil {
			filtered = q.fetch
		}
		recent, keepRecent = nil, func(*T) bool { return true }
		if err := filtered(store.Window{Since: cut}, func(t *T) error {
			c, _ := q.copy(t, same)
			recent = append(recent, c)
			return nil
		}); err != nil {
			return false, err
		}
	}
	r.count(how)
	// A merge join: both are in the store's order.
	var row T
	i, j := 0, 0
	for i < len(old) || j < len(recent) {
		if i < len(old) && !keep(&old[i]) {
			i++
			continue
		}
		if j < len(recent) && !keepRecent(&recent[j]) {
			j++
			continue
		}
		switch {
		case j == len(recent) || i < len(old) && q.compare(&old[i], &recent[j]) < 0:
			row = old[i]
			i++
		case i == len(old) || q.compare(&old[i], &recent[j]) > 0:
			row = recent[j]
			j++
		default:
			row = old[i]
			q.add(&row, &recent[j])
			i++
			j++
		}
		if err := fn(&row); err != nil {
			return true, err
		}
	}
	return true, nil
}

// recent is one query's rows after a cut, without the filters keep
// applies, read once a hunt for every detector that asks.
type recent struct {
	done    chan struct{}
	cut     time.Time
	rows    any // []T
	missing bool
	err     error
}

// recentRows returns q's rows after cut, without the filters keep
// applies (read by the first caller of the hunt, the others waiting),
// and whether one of them misses a key (query.missing).
func recentRows[T any](ctx context.Context, r *Reader, q query[T], cut time.Time) (rows []T, missing bool, err error) {
	r.mu.Lock()
	if r.recent == nil {
		r.recent = map[string]*recent{}
	}
	p := r.recent[q.key]
	mine := p == nil || !p.cut.Equal(cut)
	if mine {
		p = &recent{done: make(chan struct{}), cut: cut}
		r.recent[q.key] = p
	}
	r.mu.Unlock()
	if !mine {
		if err := wait(ctx, p.done); err != nil {
			return nil, false, err
		}
		if p.err != nil {
			return nil, false, p.err
		}
		return p.rows.([]T), p.missing, nil
	}
	var out []T
	err = q.fetch(store.Window{Since: cut}, func(t *T) error {
		c, _ := q.copy(t, same)
		out = append(out, c)
		return nil
	})
	p.rows, p.err = out, err
	p.missing = q.missing != nil && slices.ContainsFunc(out, func(t T) bool { return q.missing(&t) })
	if err != nil {
		r.mu.Lock()
		if r.recent[q.key] == p {
			delete(r.recent, q.key) // the next caller reads again
		}
		r.mu.Unlock()
	}
	close(p.done)
	return out, p.missing, err
}

// settledRows returns the kept part of q (its rows, of the history
// before its cut) and how it was had, to count; nil when there is none
// to use.
func settledRows[T any](ctx context.Context, r *Reader, q query[T]) (kept *part, how func(*Counts), err error) {
	k := r.k
	k.mu.Lock()
	limit := k.limit()
	k.mu.Unlock()
	if limit < 0 {
		return nil, nil, nil
	}
	cut, gen, ok, err := r.cutFor(ctx)
	if err != nil || !ok {
		return nil, nil, err
	}
	k.mu.Lock()
	if k.gen != gen || !k.cut.Equal(cut) {
		k.mu.Unlock()
		return nil, nil, nil // dropped, or the cut moved, meanwhile
	}
	p := k.parts[q.key]
	var prev *part // the answer up to an earlier cut, extended
	if p != nil && p.ok && p.cut.Before(cut) && closed(p.done) {
		prev, p = p, nil
	}
	mine := p == nil
	if mine {
		p = &part{done: make(chan struct{}), watching: q.watch != nil, cut: cut}
		if k.parts == nil {
			k.parts = map[string]*part{}
		}
		k.parts[q.key] = p
		if prev != nil {
			k.bytes -= prev.n
		}
	}
	k.mu.Unlock()
	if !mine {
		if err := wait(ctx, p.done); err != nil {
			return nil, nil, err
		}
		k.mu.Lock()
		p.used = true
		ok = p.ok && k.parts[q.key] == p
		k.mu.Unlock()
		if !ok {
			return nil, nil, nil
		}
		return p, func(c *Counts) { c.Merged++ }, nil
	}
	// All history before the cut, or what the cut moved over.
	w, size, how := store.Window{Until: cut}, 0, func(c *Counts) { c.Settled++ }
	if prev != nil {
		w.Since, size, how = prev.cut, prev.n, func(c *Counts) { c.Extended++ }
	}
	var out []T
	tooMany := false
	strs := &interned{m: map[string]string{}}
	err = q.fetch(w, func(t *T) error {
		c, n := q.copy(t, strs.of)
		if size += n; size+strs.bytes > limit {
			tooMany = true
			return errTooMany
		}
		out = append(out, c)
		return nil
	})
	size += strs.bytes
	if tooMany {
		err, out = nil, nil
	}
	switch {
	case prev != nil && err == nil && !tooMany:
		out = mergeSorted(prev.rows.([]T), out, q.compare, q.add)
	case cap(out) > len(out)+len(out)/8:
		out = slices.Clone(out) // without what append grew it by
	}
	var watched map[string]*certView
	missing := false
	if err == nil && !tooMany {
		if q.watch != nil {
			watched = q.watch(out)
		}
		missing = q.missing != nil && slices.ContainsFunc(out, func(t T) bool { return q.missing(&t) })
	}
	k.mu.Lock()
	p.used = true
	p.ok = err == nil && !tooMany && k.gen == gen && k.bytes+size <= limit && k.parts[q.key] == p
	switch {
	case p.ok:
		p.rows, p.n, p.watch, p.missing = out, size, watched, missing
		k.bytes += size
	case err == nil && k.parts[q.key] == p:
		// Too big to keep: the part stays, empty, so that the next
		// queries go to the store at once, until what is kept is
		// dropped or swept.
	case k.parts[q.key] == p:
		delete(k.parts, q.key)
	}
	close(p.done)
	k.mu.Unlock()
	if err != nil || !p.ok {
		return nil, nil, err
	}
	return p, how, nil
}

// interned keeps one copy of each string of a settled answer: a
// certificate's subject, a sensor's or a server's name is kept once,
// however many rows name it.
type interned struct {
	m     map[string]string
	bytes int
}

func (x *interned) of(v string) string {
	if s, ok := x.m[v]; ok {
		return s
	}
	x.m[v] = v
	x.bytes += len(v)
	return v
}

// same is the identity: the rows after the cut are read at each hunt and
// not kept.
func same(v string) string { return v }

// wait waits until done is closed, or ctx is done.
func wait(ctx context.Context, done chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closed reports whether c is closed.
func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var errTooMany = errors.New("settled: too big to keep")

func (r *Reader) count(fn func(*Counts)) {
	r.k.mu.Lock()
	fn(&r.k.counts)
	r.k.mu.Unlock()
}

// keyOf names a query and what it is asked of.
func keyOf(method string, of any) string { return fmt.Sprint(method, " ", of) }
