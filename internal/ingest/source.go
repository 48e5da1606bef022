// Package ingest reads telemetry files into a store: it finds inputs (files,
// directories, Zeek's rotated layout, gzip), recognises each one's format,
// identifies it by content so that nothing is stored twice, resumes from the
// last checkpoint, decodes it with the matching Source in parallel with other
// files, and hands batches to a Sink with progress.
//
// Formats are plug-ins (ingest/zeek, and later pcap, flow, winlog): each
// provides a Format; internal/app lists them.
package ingest

import (
	"context"
	"fmt"
	"io"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Source decodes one input into records.
//
// A Source is used by one goroutine. It never stops on a malformed record: it
// skips it, counts it and keeps the first few as ParseErrors in its Report.
type Source interface {
	// Next appends records to b until b holds at least max records or the
	// input ends. It returns io.EOF at the end of input (b may still have
	// received records in that call) and any other error only when the
	// input cannot be read further.
	Next(ctx context.Context, b *event.Batch, max int) error
	// Position returns where the next unread line starts: a checkpoint from
	// which a later Source can resume without losing or repeating a record.
	Position() Position
	// Report returns what the source has seen so far.
	Report() Report
}

// Position is a resumable point in a decoded input: always at the start of a
// line.
type Position struct {
	Offset int64  // decoded bytes consumed
	Line   int64  // lines consumed
	Header string // format state needed to read on (Zeek TSV header lines)
	// Check is LineReader.Check at Offset ("" when unknown): it lets a
	// later run verify it resumes the same content.
	Check string
}

// Report is what a Source tells the user about an input.
type Report struct {
	Format string // e.g. "zeek-tsv"
	Kinds  []event.Kind
	Rows   int64 // records decoded
	Bad    int64 // malformed lines skipped
	// Errors holds the first malformed lines, with file and line.
	Errors []ParseError
	// Notes are remarks that are not errors: an assumed header, an
	// unterminated last line left for later, a truncated stream.
	Notes []string
	// SkippedTypes counts the lines of log types dwell does not store
	// (weird, notice, ...), by type.
	SkippedTypes map[string]int64
	// Ignored lists fields present in the input that dwell does not store.
	Ignored []string
	// Skipped is true when the whole input was passed over (an unsupported
	// log type); Notes says why.
	Skipped bool
	// Pending counts bytes after the last complete line that were not
	// consumed (a file still being written, or cut short).
	Pending int64
	// Truncated is true when the input ended with an error, such as a
	// compressed stream cut short; what was read before it is kept.
	Truncated bool
}

// ParseError is one malformed record: where it is and what is wrong.
type ParseError struct {
	File   string
	Line   int64 // 1-based; 0 in binary formats, where Offset says where
	Offset int64 // decoded byte offset of the line's start
	Reason string
}

func (e ParseError) Error() string {
	if e.Line == 0 { // binary formats: where is the byte offset
		return fmt.Sprintf("%s: byte %d: %s", e.File, e.Offset, e.Reason)
	}
	return fmt.Sprintf("%s:%d (byte %d): %s", e.File, e.Line, e.Offset, e.Reason)
}

// MaxParseErrors is how many ParseErrors a Report keeps per input; all are counted.
const MaxParseErrors = 20

// Input describes the input a Format is asked to open.
type Input struct {
	Path   string     // absolute path of the input
	Sensor string     // sensor name recorded on every record
	Head   []byte     // the first decoded bytes (up to event.HeadSize), for detection
	Resume Position   // where to start; zero for a new input
	Before []byte     // decoded bytes just before Resume.Offset (up to 256)
	Hint   event.Kind // log type implied by the file name, 0 when unknown
	// DataSensor is true when no sensor was chosen for the input: records
	// that name their own (_system_name in Zeek's JSON streaming logs)
	// keep that name instead of Sensor.
	DataSensor bool
	// Final is true when the end of the stream is the end of the input for
	// good (a complete gzip stream, or a file not written to for a while):
	// a last line without a newline is then complete, not still being written.
	Final bool
}

// Format is a kind of input dwell can read.
type Format struct {
	Name string // e.g. "zeek-tsv"
	// Detect reports whether the input is in this format, judging by its
	// head and name.
	Detect func(in *Input) bool
	// Open returns a Source reading r, which yields the input's decoded
	// bytes from in.Resume.Offset on.
	Open func(r io.Reader, in *Input) (Source, error)
}
