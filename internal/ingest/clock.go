package ingest

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Clock bounds the times records may claim. A record that claims another
// is quarantined (event.Quarantined): stored apart with the reason,
// counted and reported with its file and line, and never read by the
// detectors. Baselines and windows are made of record times, so one
// record dated 1970 or 9999 would otherwise move them all: first-seen
// dates, the data's span, every rate.
type Clock struct {
	// Earliest is the earliest time a record may claim; default
	// 1995-01-01, before any network sensor dwell reads. An input whose
	// records all lie before it (a capture whose clock was never set,
	// dated from 1970) is kept, with a note: its records agree.
	Earliest time.Time
	// Skew is how far past now a record may lie (clocks drift, and
	// sensors in other time zones are still UTC); default 24h.
	Skew time.Duration
	// Gap is how far a record may lie from every other record of its
	// input: one that much before or after all of them is quarantined
	// unless enough records keep it company (outlierShare). Default 30
	// days: a silence of weeks inside one log file is rare, a record
	// planted years away bends every first-seen date.
	Gap time.Duration
	// MaxDuration is the longest a connection, flow or file transfer may
	// last; default 30 days. (A forged duration would otherwise carry a
	// forged start back in time behind a plausible end.)
	MaxDuration time.Duration
}

// Clock's defaults but Earliest, which is 1995-01-01.
const (
	defaultSkew        = 24 * time.Hour
	defaultGap         = 30 * 24 * time.Hour
	defaultMaxDuration = 30 * 24 * time.Hour
)

func (c Clock) withDefaults() Clock {
	if c.Earliest.IsZero() {
		c.Earliest = time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Skew <= 0 {
		c.Skew = defaultSkew
	}
	if c.Gap <= 0 {
		c.Gap = defaultGap
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = defaultMaxDuration
	}
	return c
}

// outlierShare: a group of records apart from the rest of their batch by
// more than Gap, and near none of the input's earlier records, is
// quarantined when it holds at most this share of the batch (two records
// always may be). Within one input, records that far apart are forged or
// from a clock gone wrong; the one legitimate case, a capture that
// resumes after a pause of days, loses at most the first records after
// the pause that share a batch with the many before it (held, reported
// and kept, not lost): the next batch holds only records after the pause,
// a group the size of the batch.
const outlierShare = 0.1

// screen applies a Clock to the records of one input, batch after batch.
type screen struct {
	clock   Clock
	now     time.Time
	lo, hi  time.Time // the span of the ends of the input's records kept so far
	early   time.Time // the earliest start kept before Earliest (outliers)
	held    int64
	escaped int64        // text values escaped (text.go)
	notes   []ParseError // the first MaxParseErrors held, with the reason
	keys    []int64      // scratch: ends of the batch's records, unix µs
}

func newScreen(c Clock, now time.Time) *screen { return &screen{clock: c.withDefaults(), now: now} }

// fact is what the screen judges of one record: when it claims to have
// happened, from start to end (end is start for records without a
// duration), and the first of its counts that no real traffic reaches.
type fact struct {
	start, end time.Time
	big        string
	// alone is set for records judged only by their own bounds, never by
	// their distance from the others: a Windows event log holds years of
	// sparse records, written by the host's own event log service.
	alone bool
}

// apply escapes the text of b's records that is not UTF-8 (text.go) and
// moves those that claim implausible times or counts into b.Quarantine.
func (s *screen) apply(b *event.Batch) {
	s.escaped += escapeBatch(b)
	// First the bounds of each record alone, then, among the records that
	// pass them, the groups far from the rest.
	s.keys = s.keys[:0]
	doubt := false // a record fails alone, or starts before Earliest
	collect := func(f fact) {
		if s.alone(f) != "" {
			doubt = true
			return
		}
		doubt = doubt || f.start.Before(s.clock.Earliest)
		if !f.alone {
			s.keys = append(s.keys, f.end.UnixMicro())
		}
	}
	each(b.Conns, connFact, collect)
	each(b.OpenConns, connFact, collect)
	each(b.DNS, dnsFact, collect)
	each(b.HTTP, httpFact, collect)
	each(b.TLS, tlsFact, collect)
	each(b.X509, x509Fact, collect)
	each(b.Files, fileFact, collect)
	each(b.Flows, flowFact, collect)
	each(b.Host, hostFact, collect)
	each(b.Alerts, alertFact, collect)
	far, early := s.outliers()
	if !doubt && len(far) == 0 {
		// The usual batch: every record kept, in place.
		if len(s.keys) > 0 {
			lo, hi := time.UnixMicro(slices.Min(s.keys)).UTC(), time.UnixMicro(slices.Max(s.keys)).UTC()
			if s.lo.IsZero() || lo.Before(s.lo) {
				s.lo = lo
			}
			s.hi = event.Latest(s.hi, hi)
		}
		return
	}

	judge := func(f fact) string {
		if why := s.alone(f); why != "" {
			return why
		}
		if f.start.Before(s.clock.Earliest) {
			if !early {
				return fmt.Sprintf("time %s is before ingest.earliest (%s)", f.start.Format(time.RFC3339), s.clock.Earliest.Format(time.DateOnly))
			}
			if s.early.IsZero() || f.start.Before(s.early) {
				s.early = f.start
			}
		}
		k := f.end.UnixMicro()
		if f.alone {
			return ""
		}
		for _, g := range far {
			if k >= g.from && k <= g.to {
				return s.apart(f)
			}
		}
		return ""
	}
	b.Conns = hold(s, b, event.KindConn, b.Conns, connFact, judge, func(r *event.Conn) *event.Source { return &r.Src })
	b.OpenConns = hold(s, b, event.KindOpenConn, b.OpenConns, connFact, judge, func(r *event.Conn) *event.Source { return &r.Src })
	b.DNS = hold(s, b, event.KindDNS, b.DNS, dnsFact, judge, func(r *event.DNS) *event.Source { return &r.Src })
	b.HTTP = hold(s, b, event.KindHTTP, b.HTTP, httpFact, judge, func(r *event.HTTP) *event.Source { return &r.Src })
	b.TLS = hold(s, b, event.KindTLS, b.TLS, tlsFact, judge, func(r *event.TLS) *event.Source { return &r.Src })
	b.X509 = hold(s, b, event.KindX509, b.X509, x509Fact, judge, func(r *event.X509) *event.Source { return &r.Src })
	b.Files = hold(s, b, event.KindFile, b.Files, fileFact, judge, func(r *event.File) *event.Source { return &r.Src })
	b.Flows = hold(s, b, event.KindFlow, b.Flows, flowFact, judge, func(r *event.Flow) *event.Source { return &r.Src })
	b.Host = hold(s, b, event.KindWinlog, b.Host, hostFact, judge, func(r *event.HostEvent) *event.Source { return &r.Src })
	b.Alerts = hold(s, b, event.KindAlert, b.Alerts, alertFact, judge, func(r *event.Alert) *event.Source { return &r.Src })
}

// maxCount is the largest byte or packet count a record may carry: 2^53,
// eight petabytes, more than any connection moves, and small enough that
// sums and products of many (sampling intervals, totals per pair) stay
// within the stores' 64-bit integers.
const maxCount = 1 << 53

// count is one named count of a record.
type count struct {
	name string
	v    event.Opt[uint64]
}

// counts returns the first count beyond maxCount, as a reason, or "".
func counts(cs ...count) string {
	for _, c := range cs {
		if c.v.Valid && c.v.V > maxCount {
			return fmt.Sprintf("%s %d is more than any traffic carries (2^53)", c.name, c.v.V)
		}
	}
	return ""
}

func connFact(r *event.Conn) fact {
	return fact{start: r.TS, end: r.TS.Add(r.Duration.V), big: counts(count{"orig_bytes", r.SrcBytes}, count{"resp_bytes", r.DstBytes},
		count{"missed_bytes", r.MissedBytes}, count{"orig_pkts", r.SrcPkts}, count{"orig_ip_bytes", r.SrcIPBytes}, count{"resp_pkts", r.DstPkts},
		count{"resp_ip_bytes", r.DstIPBytes})}
}

func dnsFact(r *event.DNS) fact { return fact{start: r.TS, end: r.TS} }

func httpFact(r *event.HTTP) fact {
	return fact{start: r.TS, end: r.TS, big: counts(count{"request_body_len", r.RequestBodyLen}, count{"response_body_len", r.ResponseBodyLen})}
}

func tlsFact(r *event.TLS) fact { return fact{start: r.TS, end: r.TS} }

func x509Fact(r *event.X509) fact { return fact{start: r.TS, end: r.TS} }

func fileFact(r *event.File) fact {
	return fact{start: r.TS, end: r.TS.Add(r.Duration.V), big: counts(count{"seen_bytes", r.SeenBytes}, count{"total_bytes", r.TotalBytes},
		count{"missing_bytes", r.MissingBytes}, count{"overflow_bytes", r.OverflowBytes})}
}

// flowFact counts what the record stands for: its counts times the
// sampling interval.
func flowFact(r *event.Flow) fact {
	f := fact{start: r.TS, end: r.End}
	if r.End.IsZero() {
		f.end = r.TS
	}
	smp := uint64(max(r.Sampling, 1))
	if r.Bytes > maxCount/smp || r.Packets > maxCount/smp {
		f.big = fmt.Sprintf("%d packets and %d bytes, sampled 1 in %d, are more than any traffic carries (2^53)", r.Packets, r.Bytes, smp)
	}
	return f
}

func hostFact(r *event.HostEvent) fact { return fact{start: r.TS, end: r.TS, alone: true} }

func alertFact(r *event.Alert) fact { return fact{start: r.TS, end: r.TS} }

func each[R any](rows []R, fa func(*R) fact, fn func(fact)) {
	for i := range rows {
		fn(fa(&rows[i]))
	}
}

// hold keeps the rows judge passes, in order, and quarantines the others;
// the kept records widen the input's span.
func hold[R any](s *screen, b *event.Batch, k event.Kind, rows []R, fa func(*R) fact, judge func(fact) string, src func(*R) *event.Source) []R {
	w := 0
	for i := range rows {
		r := &rows[i]
		x := fa(r)
		why := judge(x)
		if why == "" {
			if s.lo.IsZero() || x.end.Before(s.lo) {
				s.lo = x.end
			}
			if x.end.After(s.hi) {
				s.hi = x.end
			}
			if w != i {
				rows[w] = *r
			}
			w++
			continue
		}
		q := event.Quarantined{Kind: k, Claimed: x.start.Format(time.RFC3339Nano), Reason: why, Record: recordJSON(r), Src: *src(r)}
		if event.Representable(x.start) {
			q.TS = x.start
		}
		b.Quarantine = append(b.Quarantine, q)
		s.held++
		if len(s.notes) < MaxParseErrors {
			s.notes = append(s.notes, ParseError{File: q.Src.File, Line: q.Src.Line, Reason: "held out: " + why})
		}
	}
	clear(rows[w:]) // no stale copies of the held records
	return rows[:w]
}

// alone returns why a record is implausible whatever the other records
// say, or "".
func (s *screen) alone(sp fact) string {
	c := s.clock
	switch {
	case sp.big != "":
		return sp.big
	case sp.end.Before(sp.start):
		return fmt.Sprintf("ends (%s) before it starts (%s)", sp.end.Format(time.RFC3339), sp.start.Format(time.RFC3339))
	case sp.end.Sub(sp.start) > c.MaxDuration || sp.end.Sub(sp.start) < 0: // the second: an overflow
		return fmt.Sprintf("lasts %s, longer than ingest.max_duration (%s)", days(sp.end.Sub(sp.start)), days(c.MaxDuration))
	case sp.end.After(s.now.Add(c.Skew)):
		return fmt.Sprintf("time %s is in the future (more than ingest.clock_skew, %s, after now)", sp.end.Format(time.RFC3339), c.Skew)
	}
	return ""
}

// apart says why a record far from the others of its input is held.
func (s *screen) apart(sp fact) string {
	if s.lo.IsZero() {
		return fmt.Sprintf("time %s is more than ingest.max_gap (%s) apart from the other records of its input", sp.end.Format(time.RFC3339), days(s.clock.Gap))
	}
	return fmt.Sprintf("time %s is more than ingest.max_gap (%s) apart from the other records of its input (%s to %s)",
		sp.end.Format(time.RFC3339), days(s.clock.Gap), s.lo.Format(time.RFC3339), s.hi.Format(time.RFC3339))
}

// group is a range of record ends, unix µs.
type group struct{ from, to int64 }

// outliers returns the groups of s.keys that lie apart: split where two
// consecutive ends are more than Gap apart, a group is apart when it is
// small (outlierShare) and not within Gap of the input's records kept so
// far; when nothing was kept yet, the largest group never is. early is
// true when the body of the input (its records kept so far, else the
// largest group) lies before Earliest: a sensor whose clock was never set
// (captures dated from 1970), whose records are kept, the input noted,
// because they agree with each other.
func (s *screen) outliers() (far []group, early bool) {
	k := s.keys
	if len(k) == 0 {
		return nil, false
	}
	lo, hi := slices.Min(k), slices.Max(k)
	gap, floor := s.clock.Gap.Microseconds(), s.clock.Earliest.UnixMicro()
	near := func(from, to int64) bool {
		return !s.lo.IsZero() && to >= s.lo.UnixMicro()-gap && from <= s.hi.UnixMicro()+gap
	}
	if !s.lo.IsZero() {
		early = s.hi.UnixMicro() < floor
	}
	if hi-lo <= gap && (s.lo.IsZero() || near(lo, hi)) {
		return nil, early || (s.lo.IsZero() && hi < floor) // the usual batch: one tight group
	}
	slices.Sort(k)
	small := max(2, int(outlierShare*float64(len(k))))
	type run struct {
		from, to int64
		n        int
	}
	var runs []run
	start := 0
	for i := 1; i <= len(k); i++ {
		if i == len(k) || k[i]-k[i-1] > gap {
			runs = append(runs, run{k[start], k[i-1], i - start})
			start = i
		}
	}
	largest := 0
	for i, r := range runs {
		if r.n > runs[largest].n {
			largest = i
		}
	}
	if s.lo.IsZero() {
		early = runs[largest].to < floor
	}
	for i, r := range runs {
		if r.n > small || near(r.from, r.to) || (s.lo.IsZero() && i == largest) {
			continue
		}
		far = append(far, group{r.from, r.to})
	}
	return far, early
}

// recordJSON returns a record as JSON, for the analyst who looks at the
// quarantine: its times may be beyond what JSON can say (year 10000 on),
// and then its Go form stands in.
func recordJSON(r any) string {
	if b, err := json.Marshal(r); err == nil {
		return string(b)
	}
	return fmt.Sprintf("%+v", r)
}

// days writes a duration in days when it is that long.
func days(d time.Duration) string {
	if d >= 48*time.Hour || d <= -48*time.Hour {
		return fmt.Sprintf("%.0f days", d.Hours()/24)
	}
	return d.String()
}
