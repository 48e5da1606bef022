package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
)

// MaxLine bounds the length of one line. Logs truncate long values
// themselves, so a longer line is garbage; it is skipped and counted.
const MaxLine = 8 << 20

// ErrLineTooLong reports a line longer than MaxLine; the reader has skipped
// it and goes on with the next line.
var ErrLineTooLong = errors.New("line longer than 8 MiB")

// LineReader splits a decoded stream into lines with few allocations: it
// converts each buffer of complete lines to one string and hands out
// substrings of it, so records can keep their values without copying. It is
// shared by the line-oriented formats.
type LineReader struct {
	r      io.Reader
	buf    []byte
	n      int    // bytes in buf
	chunk  string // complete lines not yet handed out
	offset int64  // stream offset of chunk[0]
	err    error  // sticky read error; io.EOF at the end
	// skipping is set while discarding the rest of an over-long line.
	skipping bool
	// recent holds the last bytes handed out (lines and their newlines),
	// for Check.
	recent  string
	recent2 string
	// known is the first stream offset whose bytes passed through recent:
	// bytes of a skipped over-long line are not known.
	known int64
}

// NewLineReader returns a LineReader over r, whose first byte is at stream
// offset offset; before holds the bytes just before it (Input.Before), for
// Check.
func NewLineReader(r io.Reader, offset int64, before []byte) *LineReader {
	return &LineReader{r: r, buf: make([]byte, 64<<10), offset: offset, recent: string(before), known: offset - int64(len(before))}
}

// Next returns the next complete line without its '\n' (and without a
// trailing '\r'), and the stream offset where it starts. At the end of the
// stream it returns the error that ended it: io.EOF, or the read error; a
// last line without '\n' is then in Tail. ErrLineTooLong reports a skipped
// line and is not final.
func (lr *LineReader) Next() (line string, start int64, err error) {
	for {
		if i := strings.IndexByte(lr.chunk, '\n'); i >= 0 {
			line = lr.chunk[:i]
			start = lr.offset
			lr.chunk = lr.chunk[i+1:]
			lr.offset += int64(i + 1)
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, start, nil
		}
		if lr.err != nil {
			return "", lr.offset, lr.err
		}
		if err := lr.fill(); err != nil {
			return "", lr.offset, err
		}
	}
}

// Offset returns the stream offset after the last line handed out.
func (lr *LineReader) Offset() int64 { return lr.offset }

// Check returns the event.Progress Check of the stream at Offset: the hash
// of the bytes just before it.
// It returns "" when those bytes were discarded (an over-long line).
func (lr *LineReader) Check() string {
	if lr.offset-min(checkLen, lr.offset) < lr.known {
		return ""
	}
	// recent2+recent ends with the bytes of the current chunk; the part
	// not yet handed out is chunk.
	cur := lr.recent[:len(lr.recent)-len(lr.chunk)]
	if len(cur) >= checkLen {
		return checkSum([]byte(cur[len(cur)-checkLen:]))
	}
	prev := lr.recent2
	if len(prev) > checkLen-len(cur) {
		prev = prev[len(prev)-(checkLen-len(cur)):]
	}
	return checkSum([]byte(prev + cur))
}

// fill moves complete lines into chunk, reading more input when the buffer
// holds none. It returns ErrLineTooLong after skipping an over-long line.
func (lr *LineReader) fill() error {
	for {
		if !lr.skipping {
			if last := bytes.LastIndexByte(lr.buf[:lr.n], '\n'); last >= 0 {
				lr.chunk = string(lr.buf[:last+1])
				lr.recent2, lr.recent = lr.recent, lr.chunk
				copy(lr.buf, lr.buf[last+1:lr.n])
				lr.n -= last + 1
				return nil
			}
		} else if i := bytes.IndexByte(lr.buf[:lr.n], '\n'); i >= 0 {
			// The over-long line ends here: account for it and report it.
			lr.offset += int64(i + 1)
			copy(lr.buf, lr.buf[i+1:lr.n])
			lr.n -= i + 1
			lr.skipping = false
			lr.recent2, lr.recent, lr.known = "", "", lr.offset
			return ErrLineTooLong
		}
		if lr.err != nil {
			if lr.skipping {
				lr.offset += int64(lr.n)
				lr.n = 0
				lr.skipping = false
				lr.recent2, lr.recent, lr.known = "", "", lr.offset
				return ErrLineTooLong
			}
			return nil
		}
		if lr.n == len(lr.buf) {
			if len(lr.buf) >= MaxLine || lr.skipping {
				// Drop the over-long prefix and skip to the next newline.
				lr.offset += int64(lr.n)
				lr.n = 0
				lr.skipping = true
			} else {
				nb := make([]byte, 2*len(lr.buf))
				copy(nb, lr.buf[:lr.n])
				lr.buf = nb
			}
		}
		m, err := lr.r.Read(lr.buf[lr.n:])
		lr.n += m
		if err != nil {
			lr.err = err
		}
	}
}

// Tail returns the bytes after the last newline once the stream has ended:
// an unterminated last line.
func (lr *LineReader) Tail() string { return string(lr.buf[:lr.n]) }

// ConsumeTail hands out the unterminated last line as consumed (the input
// is final) and moves Offset past it.
func (lr *LineReader) ConsumeTail() string {
	t := lr.Tail()
	lr.n = 0
	lr.offset += int64(len(t))
	lr.recent2, lr.recent = lr.recent[:len(lr.recent)-len(lr.chunk)], t
	lr.chunk = ""
	return t
}

// ReadLines is the reading loop of a line-oriented Source: it reads up to
// max lines from lr, counting each in pos.Line and handing it to take
// with its start offset (a line too long goes to bad instead), and keeps
// pos at the line boundary after each. At the end of the stream an
// unterminated last line is taken when the input is final, and left
// pending in rep otherwise; ReadLines then returns io.EOF. Any other
// error is the read error or the context's.
func ReadLines(ctx context.Context, lr *LineReader, in *Input, pos *Position, rep *Report, max int,
	take func(line string, start int64), bad func(start int64, why string)) error {
	sync := func() { pos.Offset, pos.Check = lr.Offset(), lr.Check() }
	for n := 0; n < max; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, start, err := lr.Next()
		if errors.Is(err, ErrLineTooLong) {
			pos.Line++
			bad(start, "line longer than the maximum; skipped")
			continue
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			if t := lr.Tail(); t != "" {
				if !in.Final {
					rep.Pending = int64(len(t))
					return io.EOF
				}
				line, start = lr.ConsumeTail(), lr.Offset()-int64(len(t))
				pos.Line++
				take(line, start)
			}
			sync()
			return io.EOF
		}
		pos.Line++
		take(line, start)
		sync()
	}
	return nil
}
