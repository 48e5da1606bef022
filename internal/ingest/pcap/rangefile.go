package pcap

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// A file fetched in ranges (a request with a Range header answered 206
// Partial Content with its Content-Range) is one file across every reply
// and connection that brings a piece of it, as in Zeek, which names such
// a file by its server and URL: download managers and malware fetch large
// files in concurrent ranges. Each piece is placed at its offset; the
// file ends when every byte of it came, or, as Zeek's file timeout does,
// after two minutes without a piece, or at the capture's end. Its
// files.log record is written once per connection that brought a piece
// (the first maxRangeConns), with the whole file's seen, missing (the
// gaps below its highest byte) and total bytes. The pieces are not hashed: a file with gaps has no
// hash, and Zeek's log of such a file shows none.

const (
	rangeTimeout   = 2 * time.Minute
	maxRangeFiles  = 256  // open at once; the oldest is ended beyond
	maxRangePieces = 1024 // disjoint pieces kept per file; beyond, a piece is counted in overflow_bytes
	maxRangeConns  = 256  // connections given a record per file
)

type rangeKey struct {
	server netip.Addr
	url    string
}

// rangeFile is a file being fetched in ranges.
type rangeFile struct {
	key    rangeKey
	rec    event.File
	first  time.Time
	last   time.Time
	total  int64
	pieces []fragRange // received byte ranges, sorted, merged (frag.go's)
	head   []byte      // the first bytes, from a piece at offset 0
	conns  []*conn
	// bytes of pieces past maxRangePieces
	overflow uint64
}

// parseContentRange reads "bytes FIRST-LAST/TOTAL" (TOTAL may be "*":
// -1); ok is false for anything else.
func parseContentRange(v string) (first, total int64, ok bool) {
	unit, spec, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found || !strings.EqualFold(unit, "bytes") {
		return 0, 0, false
	}
	rng, size, found := strings.Cut(strings.ReplaceAll(spec, " ", ""), "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first {
		return 0, 0, false
	}
	total = -1
	if size != "*" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n <= last {
			return 0, 0, false
		}
		total = n
	}
	return first, total, true
}

// rangeFile returns the open file a piece of url from c's server belongs
// to, starting one when there is none; files idle past rangeTimeout, and
// the oldest beyond maxRangeFiles, are ended first.
func (t *table) rangeFile(c *conn, url string, total int64) *rangeFile {
	k := rangeKey{c.resp, url}
	if f := t.ranged[k]; f != nil {
		if len(f.conns) < maxRangeConns && !slices.Contains(f.conns, c) {
			f.conns = append(f.conns, c)
		}
		if f.total < 0 {
			f.total = total
		}
		return f
	}
	for _, f := range slices.Clone(t.rangedOrder) {
		if t.now.Sub(f.last) > rangeTimeout || len(t.rangedOrder) >= maxRangeFiles {
			t.endRangeFile(f)
		}
	}
	if t.ranged == nil {
		t.ranged = map[rangeKey]*rangeFile{}
	}
	f := &rangeFile{key: k, first: t.now, last: t.now, total: total, conns: []*conn{c}}
	f.rec = event.File{TS: event.Micro(t.now), FUID: t.nextFUID(c), Source: "HTTP", Depth: event.Some(uint64(0)),
		IsOrig: event.Some(false), TxHosts: []netip.Addr{c.resp}, RxHosts: []netip.Addr{c.orig}, Src: t.source(t.num)}
	if total >= 0 {
		f.rec.TotalBytes = event.Some(uint64(total))
	}
	t.ranged[k] = f
	t.rangedOrder = append(t.rangedOrder, f)
	return f
}

// write places a piece at its offset; the file ends when it is whole.
func (t *table) writeRange(f *rangeFile, off int64, b []byte) {
	if len(b) == 0 {
		return
	}
	f.last = t.now
	if off < mimeHead && int64(len(f.head)) == off {
		f.head = append(f.head, b[:min(int64(len(b)), mimeHead-off)]...)
	}
	if len(f.pieces) >= maxRangePieces {
		// A crafted stream of scattered pieces would make every insert
		// slower: past the bound they are counted, not placed.
		f.overflow += uint64(len(b))
		return
	}
	f.pieces = addRange(f.pieces, fragRange{int(off), int(off) + len(b)})
	if f.total > 0 && len(f.pieces) == 1 && f.pieces[0] == (fragRange{0, int(f.total)}) {
		t.endRangeFile(f)
	}
}

// endRangeFile writes the file's record for each connection that brought
// a piece of it.
func (t *table) endRangeFile(f *rangeFile) {
	if t.ranged[f.key] != f {
		return
	}
	delete(t.ranged, f.key)
	t.rangedOrder = slices.DeleteFunc(t.rangedOrder, func(x *rangeFile) bool { return x == f })
	var seen, top int64
	for _, r := range f.pieces {
		seen += int64(r.to - r.from)
		top = max(top, int64(r.to))
	}
	r := f.rec
	r.SeenBytes = event.Some(uint64(seen))
	r.MissingBytes = event.Some(uint64(top - seen))
	r.OverflowBytes = event.Some(f.overflow)
	r.TimedOut = event.Some(f.total < 0 || seen < f.total)
	r.Duration = event.Some(event.Micro(f.last).Sub(event.Micro(f.first)))
	r.MIMEType = sniffMIME(f.head)
	for _, c := range f.conns {
		x := r
		x.UID, x.SrcIP, x.SrcPort, x.DstIP, x.DstPort, x.ConnUIDs = c.uid, c.orig, c.origPort, c.resp, c.respPt, []string{c.uid}
		t.files = append(t.files, x)
	}
}

// endRangeFiles ends every open file: the capture's end.
func (t *table) endRangeFiles() {
	for _, f := range slices.Clone(t.rangedOrder) {
		t.endRangeFile(f)
	}
}
