// Package eve reads Suricata's EVE JSON logs (eve.json, plain or rotated
// and compressed): alert events become rows of the alert table (which the
// suricata detector turns into findings), and flow, dns, http, tls and
// fileinfo events fill the same tables as Zeek's conn, dns, http, ssl and
// files logs, so that every detector hunts in them.
//
// Records of one flow share Suricata's flow_id as their uid. A line that
// is not a JSON object, or an event without a time, is skipped, counted
// and reported with its line; event types dwell does not store (stats,
// anomaly, smb, ...) are counted by type.
package eve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// FormatName names the format in reports.
const FormatName = "suricata-eve"

// Formats returns the EVE format for ingest.
func Formats() []ingest.Format {
	return []ingest.Format{{Name: FormatName, Detect: detect, Open: open}}
}

// detect takes inputs whose first line is a JSON object with an
// event_type and a timestamp, as every EVE line has.
func detect(in *ingest.Input) bool {
	l := in.Head
	if i := bytes.IndexByte(l, '\n'); i >= 0 {
		l = l[:i]
	}
	l = bytes.TrimSpace(l)
	return len(l) > 0 && l[0] == '{' && bytes.Contains(l, []byte(`"event_type"`)) && bytes.Contains(l, []byte(`"timestamp"`))
}

type source struct {
	in    *ingest.Input
	lr    *ingest.LineReader
	pos   ingest.Position
	rep   ingest.Report
	done  bool
	dns   dnsPairs
	kinds map[event.Kind]bool
}

func open(r io.Reader, in *ingest.Input) (ingest.Source, error) {
	s := &source{in: in, lr: ingest.NewLineReader(r, in.Resume.Offset, in.Before), pos: in.Resume, kinds: map[event.Kind]bool{}}
	s.rep.Format = FormatName
	s.rep.SkippedTypes = map[string]int64{}
	return s, nil
}

// Next implements ingest.Source. Queries waiting for their answer are
// written at the end of each call, so that no state outlives a
// checkpoint.
func (s *source) Next(ctx context.Context, b *event.Batch, max int) error {
	if s.done {
		return io.EOF
	}
	defer s.dns.flush(s, b)
	err := ingest.ReadLines(ctx, s.lr, s.in, &s.pos, &s.rep, max, func(line string, start int64) { s.take(b, line, start) }, s.bad)
	s.done = errors.Is(err, io.EOF)
	return err
}

// take decodes one line into b.
func (s *source) take(b *event.Batch, line string, start int64) {
	if strings.TrimSpace(line) == "" {
		return
	}
	src := event.Source{Sensor: s.in.Sensor, File: s.in.Path, Line: s.pos.Line}
	before := b.Len()
	kind, typ, err := decode([]byte(line), src, b, &s.dns)
	s.rep.Rows += int64(b.Len() - before)
	switch {
	case err != nil:
		s.bad(start, err.Error())
	case kind == 0:
		s.rep.SkippedTypes[typ]++ // an event type dwell does not store
	default:
		s.addKind(kind)
	}
}

func (s *source) addKind(k event.Kind) {
	if !s.kinds[k] {
		s.kinds[k] = true
		s.rep.Kinds = append(s.rep.Kinds, k)
	}
}

func (s *source) bad(start int64, why string) {
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: s.in.Path, Line: s.pos.Line, Offset: start, Reason: why})
	}
}

// Position implements ingest.Source.
func (s *source) Position() ingest.Position { return s.pos }

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }
