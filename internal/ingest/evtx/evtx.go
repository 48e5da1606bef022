// Package evtx reads Windows XML Event Log files (.evtx): the file header,
// its 64 KiB chunks, and the records in them, whose Binary XML (with
// templates, substitutions and every value type) it expands into
// event.HostEvent values.
//
// Files handed to an investigator are often dirty: copied while Windows was
// writing them, recovered from shadow copies, cut short. The reader checks
// the file header's and every chunk's CRC32, reads every chunk the file
// holds (not only those the header counts), skips a chunk or record it
// cannot read, counts it and says where it is, and keeps every record
// around it. Records left in a chunk's unused space are carved when their
// header is intact, and marked as carved. It never panics: every length
// and offset is checked against the chunk, and a record's expansion is
// bounded in depth and size.
//
// The format is documented in Microsoft's [MS-EVEN6] and, in more detail,
// in Joachim Metz's libevtx "Windows XML Event Log (EVTX)" notes.
package evtx

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

const (
	fileHeaderSize  = 4096
	chunkSize       = 65536
	chunkHeaderSize = 512
	recordHeader    = 24 // signature, size, identifier, written time
	minRecord       = 28 // header and the trailing copy of the size
)

var (
	fileMagic   = []byte("ElfFile\x00")
	chunkMagic  = []byte("ElfChnk\x00")
	recordMagic = []byte("\x2a\x2a\x00\x00")
)

// Stats counts what reading a file found.
type Stats struct {
	Chunks    int // chunks with a valid signature
	Empty     int // chunks never written (all zero)
	BadChunks int // chunks skipped: bad signature or unreadable header
	// BadChecksums counts chunks whose header or record checksum is wrong;
	// their readable records are kept.
	BadChecksums int
	Records      int // records read
	Carved       int // of Records, carved from unused chunk space
	Stale        int // carved copies of records the file still holds, dropped
	BadRecords   int // records skipped
	// Unused counts chunk slots after the last chunk: space the file was
	// grown by ahead of its records.
	Unused int
	Bytes  int64
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Chunks += o.Chunks
	s.Empty += o.Empty
	s.BadChunks += o.BadChunks
	s.BadChecksums += o.BadChecksums
	s.Records += o.Records
	s.Carved += o.Carved
	s.Stale += o.Stale
	s.BadRecords += o.BadRecords
	s.Unused += o.Unused
	s.Bytes += o.Bytes
}

// Problem is one part of a file that could not be read, or could not be
// trusted: where it is and what is wrong.
type Problem struct {
	File   string
	Offset int64 // byte offset in the file
	Reason string
	// Skipped is false for problems that lost nothing (a wrong checksum
	// over records that all read).
	Skipped bool
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s: offset %#x: %s", p.File, p.Offset, p.Reason)
}

// FileHeader is what the file header says of the file.
type FileHeader struct {
	FirstChunk, LastChunk uint64
	NextRecordID          uint64
	Major, Minor          uint16
	Chunks                uint16
	Flags                 uint32 // 1: dirty (not closed cleanly), 2: full
	ChecksumOK            bool
}

// ErrNotEVTX is returned for input that does not start like an EVTX file.
var ErrNotEVTX = errors.New("not an EVTX file (no ElfFile signature)")

// ParseFileHeader reads the file header from the first bytes of a file.
func ParseFileHeader(b []byte) (FileHeader, error) {
	if len(b) < 128 || !bytes.Equal(b[:8], fileMagic) {
		return FileHeader{}, ErrNotEVTX
	}
	le := binary.LittleEndian
	h := FileHeader{
		FirstChunk:   le.Uint64(b[8:]),
		LastChunk:    le.Uint64(b[16:]),
		NextRecordID: le.Uint64(b[24:]),
		Minor:        le.Uint16(b[36:]),
		Major:        le.Uint16(b[38:]),
		Chunks:       le.Uint16(b[42:]),
		Flags:        le.Uint32(b[120:]),
	}
	h.ChecksumOK = crc32.ChecksumIEEE(b[:120]) == le.Uint32(b[124:])
	return h, nil
}

// Layout is where a file's chunks are: the file header, and the offsets
// of the first chunk and of the end of the last one that carries a chunk
// signature. Space after that last chunk (a file grown ahead of its
// records) is unused and not read.
type Layout struct {
	Header FileHeader
	End    int64 // offset after the last chunk with a signature
	Size   int64 // file size
	// Live holds the record identifier ranges of the chunks whose header
	// checksum is right: a carved record in one of them is a stale copy of
	// a record the file still holds.
	Live []IDRange
}

// IDRange is a chunk's first and last record identifier.
type IDRange struct {
	First, Last uint64
	Chunk       int64 // file offset of the chunk
}

// Chunks returns the number of chunk slots up to End.
func (l Layout) Chunks() int {
	if l.End <= fileHeaderSize {
		return 0
	}
	return int((l.End - fileHeaderSize + chunkSize - 1) / chunkSize)
}

// ChunkOffset returns the file offset of chunk slot i.
func ChunkOffset(i int) int64 { return fileHeaderSize + int64(i)*chunkSize }

// Open reads the file header of r (size bytes) and finds its last chunk.
func Open(r io.ReaderAt, size int64) (Layout, error) {
	head := make([]byte, fileHeaderSize)
	n, err := r.ReadAt(head, 0)
	if n < 128 {
		if err != nil && !errors.Is(err, io.EOF) {
			return Layout{}, err
		}
		return Layout{}, ErrNotEVTX
	}
	h, err := ParseFileHeader(head[:n])
	if err != nil {
		return Layout{}, err
	}
	l := Layout{Header: h, Size: size, End: fileHeaderSize}
	head = head[:chunkHeaderSize]
	le := binary.LittleEndian
	for off := int64(fileHeaderSize); off < size; off += chunkSize {
		n, err := r.ReadAt(head, off)
		if n < 8 {
			if err != nil && !errors.Is(err, io.EOF) {
				return l, err
			}
			break
		}
		if !bytes.Equal(head[:8], chunkMagic) {
			continue
		}
		l.End = min(size, off+chunkSize)
		if n == chunkHeaderSize && crc32.Update(crc32.ChecksumIEEE(head[:120]), crc32.IEEETable, head[128:]) == le.Uint32(head[124:]) {
			l.Live = append(l.Live, IDRange{le.Uint64(head[24:]), le.Uint64(head[32:]), off})
		}
	}
	return l, nil
}

// Reader reads the chunks of one file. It is used by one goroutine; its
// buffers are reused from chunk to chunk.
type Reader struct {
	File string // name in problems
	// Problems receives each problem as it is found; nil drops them.
	Problems func(Problem)

	p      parser
	r      renderer
	buf    []byte
	live   []IDRange
	liveAt map[int64]bool  // chunk offsets in live
	seen   map[uint64]bool // records read from the current chunk
}

// ReadAll reads a whole EVTX file from r (size bytes) and calls fn for
// every record in file order. fn may keep the event; its strings do not
// share the reader's buffers. The error is from reading r, from fn, or
// ErrNotEVTX; damaged chunks and records are Problems, not errors.
//
// With workers > 1, chunks are decoded in parallel; fn is still called
// from one goroutine, in file order.
func (rd *Reader) ReadAll(ctx context.Context, r io.ReaderAt, size int64, workers int, fn func(*event.HostEvent) error) (Stats, error) {
	var st Stats
	l, err := Open(r, size)
	if err != nil {
		return st, err
	}
	rd.Start(l, &st)
	if workers <= 1 || l.Chunks() < 2 {
		for i := range l.Chunks() {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			cs, err := rd.ReadChunk(r, ChunkOffset(i), fn)
			st.Add(cs)
			if err != nil {
				return st, err
			}
		}
		return st, nil
	}
	return rd.readParallel(ctx, r, l, workers, st, fn)
}

// Start readies rd for the chunks of the file l describes and reports what
// the layout says of the file as a whole: an untrusted header, and (in st)
// the unused space at the end.
func (rd *Reader) Start(l Layout, st *Stats) {
	rd.live, rd.liveAt = l.Live, nil
	if !l.Header.ChecksumOK {
		rd.problem(Problem{Offset: 0, Reason: "file header checksum mismatch (the header is not trusted; every chunk is read)"})
	}
	st.Bytes += min(l.Size, fileHeaderSize) + max(0, l.Size-l.End)
	if l.Size > l.End && l.End >= fileHeaderSize {
		st.Unused = int((l.Size - l.End + chunkSize - 1) / chunkSize)
	}
}

// readParallel decodes chunks on workers goroutines and hands their
// records to fn in file order.
func (rd *Reader) readParallel(ctx context.Context, r io.ReaderAt, l Layout, workers int, st Stats, fn func(*event.HostEvent) error) (Stats, error) {
	type result struct {
		events   []event.HostEvent
		stats    Stats
		problems []Problem
		err      error
		done     chan struct{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	results := make([]*result, l.Chunks())
	for i := range results {
		results[i] = &result{done: make(chan struct{})}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &Reader{File: rd.File, live: slices.Clip(rd.live)}
			for i := range jobs {
				res := results[i]
				w.Problems = func(p Problem) { res.problems = append(res.problems, p) }
				res.stats, res.err = w.ReadChunk(r, ChunkOffset(i), func(e *event.HostEvent) error {
					res.events = append(res.events, *e)
					return nil
				})
				close(res.done)
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range results {
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer wg.Wait()
	for i, res := range results {
		select {
		case <-res.done:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		results[i] = nil
		for _, p := range res.problems {
			rd.problem(p)
		}
		st.Add(res.stats)
		if res.err != nil {
			return st, res.err
		}
		for j := range res.events {
			if err := fn(&res.events[j]); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// ReadChunk reads the chunk at file offset off and calls fn for each of
// its records. A chunk cut short by the end of the file is read as far as
// it goes.
func (rd *Reader) ReadChunk(r io.ReaderAt, off int64, fn func(*event.HostEvent) error) (Stats, error) {
	var st Stats
	if rd.buf == nil {
		rd.buf = make([]byte, chunkSize)
	}
	n, err := r.ReadAt(rd.buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return st, err
	}
	return rd.Chunk(rd.buf[:n], off, fn)
}

// Chunk reads the records of a chunk already in memory (buf, at file
// offset off; shorter than a chunk when the file is cut short) and calls
// fn for each. fn must not keep buf.
func (rd *Reader) Chunk(buf []byte, off int64, fn func(*event.HostEvent) error) (Stats, error) {
	var st Stats
	n := len(buf)
	st.Bytes = int64(n)
	if n < chunkHeaderSize {
		if !allZero(buf) {
			st.BadChunks++
			rd.problem(Problem{Offset: off, Reason: fmt.Sprintf("chunk cut short at %d bytes", n), Skipped: true})
		}
		return st, nil
	}
	if !bytes.Equal(buf[:8], chunkMagic) {
		if allZero(buf) {
			st.Empty++
			return st, nil
		}
		st.BadChunks++
		rd.problem(Problem{Offset: off, Reason: fmt.Sprintf("bad chunk signature %q; chunk skipped", buf[:8]), Skipped: true})
		return st, nil
	}
	st.Chunks++
	le := binary.LittleEndian
	free := int(le.Uint32(buf[48:]))
	headerOK := crc32.Update(crc32.ChecksumIEEE(buf[:120]), crc32.IEEETable, buf[128:chunkHeaderSize]) == le.Uint32(buf[124:])
	dataOK := free >= chunkHeaderSize && free <= n && crc32.ChecksumIEEE(buf[chunkHeaderSize:free]) == le.Uint32(buf[52:])
	if !headerOK || !dataOK {
		st.BadChecksums++
		what := "header"
		if headerOK {
			what = "records"
		} else if !dataOK {
			what = "header and records"
		}
		rd.problem(Problem{Offset: off, Reason: "chunk " + what + " checksum mismatch; records are read one by one"})
	}
	if free < chunkHeaderSize || free > n {
		free = n // no usable end of records: read every record found
	}
	first, last := le.Uint64(buf[24:]), le.Uint64(buf[32:])
	if headerOK && !rd.known(off) {
		// Read as a stream, the file's later chunks are learnt as they come.
		rd.live = append(rd.live, IDRange{first, last, off})
	}
	rd.p.reset(buf)
	rd.r.p = &rd.p
	pos := chunkHeaderSize
	// lost is set once a damaged record broke the chain of records: those
	// found after it by scanning are recovered, like carved ones.
	lost := false
	if rd.seen == nil {
		rd.seen = make(map[uint64]bool, 512)
	}
	seen := rd.seen
	clear(seen)
	work := 0
	for pos+minRecord <= n {
		if !bytes.Equal(buf[pos:pos+4], recordMagic) {
			if pos < free {
				if allZero(buf[pos:free]) {
					pos = free
					continue
				}
				next := rd.resync(buf, pos+1, first, last)
				lost = true
				st.BadRecords++
				rd.problem(Problem{Offset: off + int64(pos), Reason: "no record signature where a record should start; skipped to the next record", Skipped: true})
				pos = next
				continue
			}
			// Unused space: carve records whose header is intact.
			next := bytes.Index(buf[pos+1:], recordMagic)
			if next < 0 {
				break
			}
			pos += 1 + next
			continue
		}
		carved := lost || pos >= free
		size := int(le.Uint32(buf[pos+4:]))
		if size < minRecord || pos+size > n {
			if carved {
				pos++
				continue
			}
			st.BadRecords++
			reason := fmt.Sprintf("invalid record size %d", size)
			if size < minRecord {
				reason = fmt.Sprintf("invalid record data size %d, below the minimum of %d", size, minRecord)
			}
			rd.problem(Problem{Offset: off + int64(pos), Reason: reason + "; skipped to the next record", Skipped: true})
			pos = rd.resync(buf, pos+1, first, last)
			lost = true
			continue
		}
		// A record cut short while being written has no copy of its size
		// at its end; it is kept when its Binary XML still reads.
		sizeCopyOK := int(le.Uint32(buf[pos+size-4:])) == size
		id := le.Uint64(buf[pos+8:])
		written := filetime(le.Uint64(buf[pos+16:]))
		ev := &event.HostEvent{RecordID: id, TS: written, Carved: carved}
		ev.Src.File = rd.File
		ev.Src.Line = off + int64(pos)
		if work > maxChunkWork {
			st.BadRecords++
			rd.problem(Problem{Offset: off + int64(pos), Reason: "the chunk's records expand beyond the size limit; the rest of the chunk is skipped", Skipped: true})
			break
		}
		c := cursor{pos: pos + recordHeader, end: pos + size - 4}
		err := rd.record(&c, ev)
		work += rd.r.nodes + 1
		if err != nil {
			if carved {
				pos++
				continue
			}
			st.BadRecords++
			rd.problem(Problem{Offset: off + int64(pos), Reason: fmt.Sprintf("record %d: %v", id, err), Skipped: true})
			if !sizeCopyOK {
				pos = rd.resync(buf, pos+1, first, last)
				lost = true
				continue
			}
			pos += size
			continue
		}
		if !sizeCopyOK && !carved {
			rd.problem(Problem{Offset: off + int64(pos), Reason: fmt.Sprintf("record %d: the copy of its size at its end is wrong (a record cut short); its content reads and is kept", id)})
		}
		if carved && rd.stale(id, off, seen) {
			st.Stale++
			pos += size
			continue
		}
		st.Records++
		if carved {
			st.Carved++
		} else {
			seen[id] = true
		}
		if err := fn(ev); err != nil {
			return st, err
		}
		pos += size
	}
	return st, nil
}

// record expands one record's Binary XML into ev.
func (rd *Reader) record(c *cursor, ev *event.HostEvent) (err error) {
	nodes, err := rd.p.fragment(c, false)
	if err != nil {
		return err
	}
	written := ev.TS
	ev.TS = time.Time{}
	if err := rd.r.record(nodes, ev); err != nil {
		return err
	}
	if ev.TS.IsZero() {
		ev.TS = written
	}
	if !rd.r.sys {
		return errors.New("no System element")
	}
	return nil
}

// resync returns the offset of the next record signature at or after pos
// whose record identifier lies in the chunk's range, or the end of buf.
func (rd *Reader) resync(buf []byte, pos int, first, last uint64) int {
	for pos+minRecord <= len(buf) {
		i := bytes.Index(buf[pos:], recordMagic)
		if i < 0 {
			break
		}
		pos += i
		if pos+16 <= len(buf) {
			id := binary.LittleEndian.Uint64(buf[pos+8:])
			if id >= first && id <= last {
				return pos
			}
		}
		pos++
	}
	return len(buf)
}

// known reports whether the chunk at off is among the live ranges.
func (rd *Reader) known(off int64) bool {
	if rd.liveAt == nil {
		rd.liveAt = make(map[int64]bool, len(rd.live))
		for _, r := range rd.live {
			rd.liveAt[r.Chunk] = true
		}
	}
	if rd.liveAt[off] {
		return true
	}
	rd.liveAt[off] = true
	return false
}

// stale reports whether carved record id is a copy of a record the file
// still holds: one already read from this chunk (at off), or one in the
// range of another chunk whose header is sound.
func (rd *Reader) stale(id uint64, off int64, seen map[uint64]bool) bool {
	if seen[id] {
		return true
	}
	for _, r := range rd.live {
		if r.Chunk != off && id >= r.First && id <= r.Last {
			return true
		}
	}
	return false
}

func (rd *Reader) problem(p Problem) {
	if rd.Problems != nil {
		p.File = rd.File
		rd.Problems(p)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
