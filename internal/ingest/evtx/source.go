package evtx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// FormatName names the format in reports and the ingest ledger.
const FormatName = "evtx"

// Formats returns the EVTX format for ingest.
func Formats() []ingest.Format {
	return []ingest.Format{{Name: FormatName, Detect: detect, Open: open}}
}

func detect(in *ingest.Input) bool {
	_, err := ParseFileHeader(in.Head)
	return err == nil
}

// source reads one EVTX file as a stream of chunks: a checkpoint is the
// offset of the next chunk, so a resumed ingest starts there.
type source struct {
	in      *ingest.Input
	r       io.Reader
	rd      Reader
	buf     []byte
	pos     ingest.Position
	rep     ingest.Report
	st      Stats
	pending []Problem // chunks without a signature: bad, unless no chunk follows
	started bool
	done    bool
}

func open(r io.Reader, in *ingest.Input) (ingest.Source, error) {
	s := &source{in: in, r: r, pos: in.Resume, buf: make([]byte, chunkSize)}
	s.rep.Format = FormatName
	s.rep.Kinds = []event.Kind{event.KindWinlog}
	s.rd.File = in.Path
	s.rd.Problems = s.problem
	return s, nil
}

func (s *source) problem(p Problem) {
	if !p.Skipped {
		if len(s.rep.Notes) < ingest.MaxParseErrors {
			s.rep.Notes = append(s.rep.Notes, fmt.Sprintf("offset %#x: %s", p.Offset, p.Reason))
		}
		return
	}
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: p.File, Offset: p.Offset, Reason: p.Reason})
	}
}

// start reads the file header (on a new read) and sets up the reader.
func (s *source) start() error {
	s.started = true
	if s.pos.Offset > 0 {
		return nil
	}
	head := make([]byte, fileHeaderSize)
	n, err := io.ReadFull(s.r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		if errors.Is(err, io.EOF) {
			return ErrNotEVTX
		}
		return err
	}
	h, err := ParseFileHeader(head[:n])
	if err != nil {
		return err
	}
	l := Layout{Header: h, Size: int64(n), End: int64(n)}
	s.rd.Start(l, &s.st)
	if h.Flags&1 != 0 {
		s.rep.Notes = append(s.rep.Notes, "the file header says the log was not closed cleanly (dirty): every chunk is read, whatever the header counts")
	}
	s.pos.Offset = int64(n)
	return nil
}

// Next implements ingest.Source.
func (s *source) Next(ctx context.Context, b *event.Batch, max int) error {
	if s.done {
		return io.EOF
	}
	if !s.started {
		if err := s.start(); err != nil {
			return err
		}
	}
	for len(b.Host) < max {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(s.r, s.buf)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			s.finish()
			return io.EOF
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return err
		}
		if err := s.chunk(b, s.buf[:n]); err != nil {
			return err
		}
		s.pos.Offset += int64(n)
		s.pos.Check = check(s.buf[:n])
		if n < chunkSize {
			s.rep.Notes = append(s.rep.Notes, fmt.Sprintf("the file ends %d bytes into its last chunk: a copy cut short; what the chunk holds was read", n))
			s.finish()
			return io.EOF
		}
	}
	return nil
}

// chunk reads one chunk's records into b.
func (s *source) chunk(b *event.Batch, buf []byte) error {
	off := s.pos.Offset
	if len(buf) >= 8 && string(buf[:8]) != string(chunkMagic) && !allZero(buf) {
		// Bad, or space after the last chunk: the next chunk tells.
		s.pending = append(s.pending, Problem{File: s.in.Path, Offset: off, Reason: fmt.Sprintf("bad chunk signature %q; chunk skipped", buf[:8]), Skipped: true})
		return nil
	}
	if allZero(buf) {
		s.st.Empty++
		return nil
	}
	for _, p := range s.pending {
		s.st.BadChunks++
		s.problem(p)
	}
	s.pending = s.pending[:0]
	st, err := s.rd.Chunk(buf, off, func(e *event.HostEvent) error {
		e.Src.Sensor = s.in.Sensor
		b.Host = append(b.Host, *e)
		return nil
	})
	s.st.Add(st)
	s.rep.Rows += int64(st.Records)
	s.pos.Line += int64(st.Records)
	return err
}

// finish reports what the whole file held.
func (s *source) finish() {
	s.done = true
	if len(s.pending) > 0 {
		s.st.Unused += len(s.pending)
		s.rep.Notes = append(s.rep.Notes, fmt.Sprintf("%d chunk slots after the last chunk hold no chunk signature: unused space, not read", len(s.pending)))
	}
	if s.st.Carved > 0 {
		s.rep.Notes = append(s.rep.Notes, fmt.Sprintf("%d records recovered from unused chunk space or past damaged records (stored with carved = true)", s.st.Carved))
	}
	if s.st.Stale > 0 {
		s.rep.Notes = append(s.rep.Notes, fmt.Sprintf("%d stale copies of records the file still holds, found in unused chunk space, were left out", s.st.Stale))
	}
}

// check is the checkpoint check of the bytes before an offset: the SHA-256
// of the last 256 (ingest's rule for every format).
func check(before []byte) string {
	if len(before) > 256 {
		before = before[len(before)-256:]
	}
	sum := sha256.Sum256(before)
	return hex.EncodeToString(sum[:])
}

// Position implements ingest.Source.
func (s *source) Position() ingest.Position { return s.pos }

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }
