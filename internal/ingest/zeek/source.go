// Package zeek reads Zeek's logs: the ASCII writer's TSV format (with its
// header blocks, escapes, sets and vectors) and its JSON format (one object
// per line), for the log types dwell stores (conn, open_conn, dns, http, ssl,
// x509, files). Other log types are recognised and skipped with a note.
//
// Malformed lines are skipped, counted and reported with file and line; the
// good lines around them are kept. Nothing here panics on bad input: the
// readers are fuzzed.
package zeek

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// Format names.
const (
	FormatTSV  = "zeek-tsv"
	FormatJSON = "zeek-json"
)

// Formats returns the Zeek formats for ingest, TSV first.
func Formats() []ingest.Format {
	sp := newSpecs()
	return []ingest.Format{
		{Name: FormatTSV, Detect: detectTSV, Open: func(r io.Reader, in *ingest.Input) (ingest.Source, error) {
			return newSource(r, in, FormatTSV, sp), nil
		}},
		{Name: FormatJSON, Detect: detectJSON, Open: func(r io.Reader, in *ingest.Input) (ingest.Source, error) {
			return newSource(r, in, FormatJSON, sp), nil
		}},
	}
}

func firstLine(head []byte) []byte {
	head = bytes.TrimLeft(head, " \t\r\n")
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		return head[:i]
	}
	return head
}

// detectTSV accepts Zeek TSV: a #separator header, a single-row header of
// field names (LogAscii "tsv" mode), or header-less tab-separated lines whose
// log type the file name tells.
func detectTSV(in *ingest.Input) bool {
	l := firstLine(in.Head)
	if bytes.HasPrefix(l, []byte("#separator")) || bytes.HasPrefix(l, []byte("ts\t")) {
		return true
	}
	if in.Resume.Header != "" && strings.HasPrefix(in.Resume.Header, "#separator") {
		return true
	}
	if in.Hint == 0 || bytes.Count(l, []byte{'\t'}) < 3 {
		return false
	}
	// Header-less: the first field must look like a Zeek timestamp.
	ts, _, _ := bytes.Cut(l, []byte{'\t'})
	_, err := parseEpoch(string(ts))
	return err == nil
}

// detectJSON accepts a first line that is a JSON object with a "ts",
// "_path" or "@stream" key.
func detectJSON(in *ingest.Input) bool {
	l := firstLine(in.Head)
	return len(l) > 0 && l[0] == '{' && (bytes.Contains(l, []byte(`"ts"`)) || bytes.Contains(l, []byte(`"_path"`)) || bytes.Contains(l, []byte(`"@stream"`)))
}

// source reads one Zeek log.
type source struct {
	in     *ingest.Input
	format string
	specs  *specs
	lr     *ingest.LineReader
	pos    ingest.Position
	rep    ingest.Report
	done   bool

	// TSV state
	hdr     *tsvHeader
	dec     lineDecoder // decoder of the current block; nil when the block is skipped
	decKind string      // log type of the current block, for notes

	// JSON state
	js      jsonScanner
	jkinds  map[event.Kind]jsonDecoder
	skipped map[string]int64 // lines of unsupported types, by type

	kinds   map[event.Kind]bool
	ignored map[string]bool
	notes   map[string]bool
}

type jsonDecoder interface {
	decode(kvs []kv, b *event.Batch, src event.Source) error
	ignoredKeys() map[string]bool
}

func (k *jsonKind[R]) ignoredKeys() map[string]bool { return k.ignored }

func newSource(r io.Reader, in *ingest.Input, format string, sp *specs) *source {
	s := &source{
		in: in, format: format, specs: sp,
		lr:      ingest.NewLineReader(r, in.Resume.Offset, in.Before),
		pos:     in.Resume,
		hdr:     newTSVHeader(),
		jkinds:  map[event.Kind]jsonDecoder{},
		skipped: map[string]int64{},
		kinds:   map[event.Kind]bool{},
		ignored: map[string]bool{},
		notes:   map[string]bool{},
	}
	s.rep.Format = format
	if format == FormatTSV && in.Resume.Header != "" {
		for _, l := range strings.Split(in.Resume.Header, "\n") {
			if err := s.header(l); err != nil {
				s.note("stored header state unreadable: " + err.Error())
			}
		}
	}
	return s
}

func (s *source) note(n string) {
	if !s.notes[n] {
		s.notes[n] = true
		s.rep.Notes = append(s.rep.Notes, n)
	}
}

func (s *source) bad(line, offset int64, reason string) {
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: s.in.Path, Line: line, Offset: offset, Reason: reason})
	}
}

// Next implements ingest.Source.
func (s *source) Next(ctx context.Context, b *event.Batch, max int) error {
	if s.done {
		return io.EOF
	}
	start := b.Len()
	for i := 0; b.Len()-start < max; i++ {
		if i&4095 == 4095 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, off, err := s.lr.Next()
		if err != nil {
			if errors.Is(err, ingest.ErrLineTooLong) {
				s.pos.Line++
				s.bad(s.pos.Line, off, "line longer than 8 MiB skipped")
				s.advance()
				continue
			}
			return s.finish(b, err)
		}
		s.pos.Line++
		s.line(line, off, b)
		s.advance()
	}
	return nil
}

// advance moves the checkpoint to the reader's position.
func (s *source) advance() { s.pos.Offset = s.lr.Offset() }

// finish handles the end of the stream: an unterminated last line, a
// truncated stream, and the closing notes.
func (s *source) finish(b *event.Batch, err error) error {
	s.done = true
	tail := s.lr.Tail()
	final := errors.Is(err, io.EOF) && s.in.Final
	if tail != "" {
		if final {
			off := s.lr.Offset()
			s.lr.ConsumeTail()
			s.pos.Line++
			s.line(strings.TrimSuffix(tail, "\r"), off, b)
			s.advance()
		} else {
			s.rep.Pending = int64(len(tail))
			if errors.Is(err, io.EOF) {
				s.note(fmt.Sprintf("last line unterminated (%d bytes) and the file was written to recently: left for the next run (--complete reads it now)", len(tail)))
			}
		}
	}
	if !errors.Is(err, io.EOF) {
		s.rep.Truncated = true
		if errors.Is(err, io.ErrUnexpectedEOF) {
			s.note(fmt.Sprintf("compressed stream is truncated: kept the %d complete lines before the cut, %d bytes after the last complete line are unreadable", s.pos.Line, len(tail)))
		} else {
			s.note(fmt.Sprintf("read error after byte %d, kept what was read before it: %v", s.pos.Offset, err))
		}
	}
	s.closingNotes()
	return io.EOF
}

func (s *source) closingNotes() {
	ignored := s.jsonIgnored()
	for k := range s.ignored {
		ignored[k] = true
	}
	s.rep.Ignored = slices.Sorted(maps.Keys(ignored))
	if len(s.skipped) > 0 {
		s.rep.SkippedTypes = s.skipped
		if s.rep.Rows == 0 && s.rep.Bad == 0 {
			s.rep.Skipped = true
		}
	}
}

func (s *source) jsonIgnored() map[string]bool {
	out := map[string]bool{}
	for _, d := range s.jkinds {
		for k := range d.ignoredKeys() {
			out[k] = true
		}
	}
	return out
}

// line decodes one line.
func (s *source) line(l string, off int64, b *event.Batch) {
	if strings.TrimSpace(l) == "" {
		return
	}
	src := event.Source{Sensor: s.in.Sensor, File: s.in.Path, Line: s.pos.Line}
	if s.format == FormatJSON {
		s.jsonLine(l, off, b, src)
		return
	}
	if l[0] == '#' {
		if err := s.header(l); err != nil {
			s.bad(s.pos.Line, off, "bad header line: "+err.Error())
		}
		return
	}
	if s.dec == nil && len(s.hdr.fields) == 0 {
		consumed, err := s.implicitHeader(l)
		if err != nil {
			s.bad(s.pos.Line, off, err.Error())
			return
		}
		if consumed {
			return
		}
	}
	if s.dec == nil {
		s.skipped[s.decKind]++
		return
	}
	if err := s.dec.decode(l, b, src); err != nil {
		s.bad(s.pos.Line, off, err.Error())
		return
	}
	s.rep.Rows++
}

// header applies a '#' line and rebuilds the block decoder when the fields
// or the path change.
func (s *source) header(l string) error {
	newBlock, err := s.hdr.line(l)
	if err != nil {
		return err
	}
	if newBlock {
		s.dec, s.decKind = nil, ""
	}
	key, _, _ := strings.Cut(l[1:], string(s.hdr.sep))
	if key == "fields" || key == "path" {
		s.buildBlock()
	}
	s.pos.Header = s.hdr.state()
	return nil
}

// buildBlock prepares the decoder for the current header block.
func (s *source) buildBlock() {
	s.dec, s.decKind = nil, s.hdr.path
	if len(s.hdr.fields) == 0 {
		return
	}
	k := s.in.Hint
	if s.hdr.path != "" {
		pk, ok := streamKind(s.hdr.path)
		if !ok {
			return // an unsupported log type: its lines are skipped
		}
		k = pk
	}
	if k == 0 {
		k = inferKind(s.hdr.fields)
	}
	if k == 0 {
		s.decKind = UnknownType
		s.note("no #path header, a file name that does not name a log type and fields of no log dwell stores: lines skipped")
		return
	}
	s.decKind = k.String()
	var ignored []string
	s.dec, ignored = s.specs.tsv(k, s.hdr)
	for _, f := range ignored {
		s.ignored[f] = true
	}
	s.kinds[k] = true
	s.rep.Kinds = kindsOf(s.kinds)
}

// implicitHeader handles a data line met before any #fields line: a
// single-row header of field names (LogAscii "tsv" mode), or data in Zeek's
// default layout for the log type. It reports whether it consumed the line.
func (s *source) implicitHeader(l string) (consumed bool, err error) {
	if strings.HasPrefix(l, "ts\t") {
		s.hdr.fields = strings.Split(l, "\t")
		s.hdr.raw = append(s.hdr.raw, "#fields\t"+l)
		s.buildBlock()
		s.pos.Header = s.hdr.state()
		return true, nil
	}
	k := s.in.Hint
	if s.hdr.path != "" {
		pk, ok := streamKind(s.hdr.path)
		if !ok {
			s.skipped[s.hdr.path]++
			return true, nil
		}
		k = pk
	}
	if k == 0 {
		return true, fmt.Errorf("no Zeek header and no log type in the file name")
	}
	s.hdr.fields = s.specs.defaultFields(k)
	s.hdr.implicit = true
	s.buildBlock()
	s.note(fmt.Sprintf("no #fields header: assumed Zeek's default %s.log columns", k))
	return false, nil
}

func (s *source) jsonLine(l string, off int64, b *event.Batch, src event.Source) {
	if err := s.js.parse(l); err != nil {
		s.bad(s.pos.Line, off, err.Error())
		return
	}
	k := s.in.Hint
	// JSON streaming logs (Corelight's, the json-streaming-logs package)
	// interleave log types in one file: each record names its own, in
	// _path (or @stream), and its sensor in _system_name.
	path, sensor := "", ""
	for i := range s.js.kvs {
		e := &s.js.kvs[i]
		if e.val.kind != jString {
			continue
		}
		switch e.key {
		case "_path", "@stream":
			if path == "" {
				path = e.val.s
			}
		case "_system_name":
			sensor = e.val.s
		}
	}
	if path != "" {
		pk, ok := streamKind(path)
		if !ok {
			s.skipped[path]++
			return
		}
		k = pk
	}
	if k == 0 {
		keys := make([]string, len(s.js.kvs))
		for i := range s.js.kvs {
			keys[i] = s.js.kvs[i].key
		}
		if k = inferKind(keys); k == 0 {
			s.skipped[UnknownType]++
			return
		}
	}
	if sensor != "" && s.in.DataSensor {
		src.Sensor = clip(sensor)
	}
	d := s.jkinds[k]
	if d == nil {
		d = s.specs.json(k)
		s.jkinds[k] = d
		s.kinds[k] = true
		s.rep.Kinds = kindsOf(s.kinds)
	}
	if err := d.decode(s.js.kvs, b, src); err != nil {
		s.bad(s.pos.Line, off, err.Error())
		return
	}
	s.rep.Rows++
}

// UnknownType is the type lines are counted under (Report.SkippedTypes)
// when nothing says their log type: no #path or _path, a file name that
// names none, and fields unlike those of any log dwell stores.
const UnknownType = "unrecognised"

// streamKind maps a _path to the kind dwell stores it as: the log's own
// name, or a sensor vendor's variant of it (Corelight's conn_long reports
// long connections while they last, as open_conn does; conn_red is conn
// with fewer fields).
func streamKind(path string) (event.Kind, bool) {
	switch path {
	case "conn_long":
		return event.KindOpenConn, true
	case "conn_red":
		return event.KindConn, true
	}
	k, ok := event.ParseKind(path)
	if !ok || k == event.KindFlow {
		return 0, false
	}
	return k, true
}

// Position implements ingest.Source.
func (s *source) Position() ingest.Position {
	p := s.pos
	if p.Offset == s.lr.Offset() {
		p.Check = s.lr.Check()
	}
	return p
}

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }

func kindsOf(m map[event.Kind]bool) []event.Kind {
	var out []event.Kind
	for _, k := range event.Kinds {
		if m[k] {
			out = append(out, k)
		}
	}
	return out
}

// tsv returns a TSV decoder for kind k and the fields it ignores.
func (sp *specs) tsv(k event.Kind, h *tsvHeader) (lineDecoder, []string) {
	switch k {
	case event.KindConn:
		return newTSVKind(sp.conn, h)
	case event.KindOpenConn:
		return newTSVKind(sp.openConn, h)
	case event.KindDNS:
		return newTSVKind(sp.dns, h)
	case event.KindHTTP:
		return newTSVKind(sp.http, h)
	case event.KindTLS:
		return newTSVKind(sp.tls, h)
	case event.KindX509:
		return newTSVKind(sp.x509, h)
	case event.KindFile:
		return newTSVKind(sp.files, h)
	}
	panic(fmt.Sprintf("BUG: no Zeek spec for %v", k))
}

func (sp *specs) json(k event.Kind) jsonDecoder {
	switch k {
	case event.KindConn:
		return newJSONKind(sp.conn)
	case event.KindOpenConn:
		return newJSONKind(sp.openConn)
	case event.KindDNS:
		return newJSONKind(sp.dns)
	case event.KindHTTP:
		return newJSONKind(sp.http)
	case event.KindTLS:
		return newJSONKind(sp.tls)
	case event.KindX509:
		return newJSONKind(sp.x509)
	case event.KindFile:
		return newJSONKind(sp.files)
	}
	panic(fmt.Sprintf("BUG: no Zeek spec for %v", k))
}

func (sp *specs) defaultFields(k event.Kind) []string {
	switch k {
	case event.KindConn:
		return sp.conn.defaultFields()
	case event.KindOpenConn:
		return sp.openConn.defaultFields()
	case event.KindDNS:
		return sp.dns.defaultFields()
	case event.KindHTTP:
		return sp.http.defaultFields()
	case event.KindTLS:
		return sp.tls.defaultFields()
	case event.KindX509:
		return sp.x509.defaultFields()
	case event.KindFile:
		return sp.files.defaultFields()
	}
	return nil
}
