// Package netflow reads flow records that routers and probes export:
// NetFlow v5, NetFlow v9, IPFIX and sFlow v5 datagrams, as captured in a
// classic pcap file (tcpdump -w of the collector's port; the scenario's
// edge export is one) or a pcapng file (Wireshark's and dumpcap's).
//
// Every UDP datagram of the capture that is a flow message is decoded,
// whatever its port; v9 and IPFIX templates are kept per exporter and
// observation domain, and carried in the checkpoint so that a resumed
// ingest decodes the data sets after it. A malformed message is counted
// and reported with its packet number and byte offset, and the messages
// around it are kept. Nothing here panics on bad input: the decoder is
// fuzzed.
package netflow

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

// FormatName names the format in reports.
const FormatName = "netflow-pcap"

// Formats returns the flow formats for ingest.
func Formats() []ingest.Format {
	return []ingest.Format{{Name: FormatName, Detect: detect, Open: open}}
}

func detect(in *ingest.Input) bool {
	if in.Resume.Header != "" {
		return strings.HasPrefix(in.Resume.Header, `{"pcap"`)
	}
	return capture.IsCapture(in.Head) && flowCapture(in.Head)
}

// source reads one capture.
type source struct {
	in    *ingest.Input
	cr    *countingReader
	pr    *capture.Reader
	dec   *decoder
	pos   ingest.Position
	rep   ingest.Report
	other int64 // packets that are not flow messages
	done  bool
	flows []event.Flow
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func open(r io.Reader, in *ingest.Input) (ingest.Source, error) {
	s := &source{in: in, cr: &countingReader{r: r}, dec: newDecoder(), pos: in.Resume}
	s.rep.Format = FormatName
	if in.Resume.Offset == 0 {
		s.pr = capture.NewReader(s.cr)
		return s, nil
	}
	if err := s.restore(in.Resume.Header); err != nil {
		return nil, fmt.Errorf("%s: resuming at byte %d: %w", in.Path, in.Resume.Offset, err)
	}
	return s, nil
}

func (s *source) bad(line, offset int64, reason string) {
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: s.in.Path, Line: line, Offset: offset, Reason: reason})
	}
}

func (s *source) note(n string) { s.rep.Notes = append(s.rep.Notes, n) }

// Next implements ingest.Source. A "line" is a captured packet.
func (s *source) Next(ctx context.Context, b *event.Batch, max int) error {
	if s.done {
		return io.EOF
	}
	start := b.Len()
	for i := 0; b.Len()-start < max; i++ {
		if i&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		off := s.pos.Offset
		pkt, err := s.pr.Next()
		if err != nil {
			return s.finish(err)
		}
		s.pos.Line++
		s.pos.Offset = s.in.Resume.Offset + s.pr.Offset()
		dg, ok := udp(pkt.Link, pkt.Data)
		dg.ts = pkt.TS
		if !ok || !isFlowDatagram(dg.payload) {
			s.other++
			continue
		}
		flows, err := s.dec.decode(dg, s.flows[:0])
		for j := range flows {
			flows[j].Src = event.Source{Sensor: s.in.Sensor, File: s.in.Path, Line: s.pos.Line}
		}
		b.Flows = append(b.Flows, flows...)
		s.rep.Rows += int64(len(flows))
		s.flows = flows
		if err != nil {
			s.bad(s.pos.Line, off, fmt.Sprintf("flow message from %s: %v", dg.src, err))
		}
	}
	return nil
}

// finish ends the input: a record cut short, a corrupt file, a read error.
func (s *source) finish(err error) error {
	s.done = true
	switch {
	case errors.Is(err, io.EOF):
	case errors.Is(err, io.ErrUnexpectedEOF):
		pending := s.cr.n - (s.pos.Offset - s.in.Resume.Offset)
		if s.in.Final {
			s.rep.Truncated = true
			s.note(fmt.Sprintf("capture cut short: the last record (%d bytes) is incomplete; the %d packets before it are kept", pending, s.pos.Line))
		} else {
			s.rep.Pending = pending
			s.note(fmt.Sprintf("last record incomplete (%d bytes) and the file was written to recently: left for the next run (--complete reads what is there now)", pending))
		}
	case errors.Is(err, capture.ErrCorrupt):
		s.rep.Truncated = true
		s.bad(s.pos.Line+1, s.pos.Offset, err.Error()+": the rest of the file cannot be read")
	case s.pos.Line == 0 && s.pr.Offset() == 0 && s.in.Resume.Offset == 0:
		s.bad(0, 0, err.Error()) // not a capture after all
	default:
		s.rep.Truncated = true
		s.note(fmt.Sprintf("read error after byte %d, kept what was read before it: %v", s.pos.Offset, err))
	}
	if s.rep.Rows > 0 {
		s.rep.Kinds = []event.Kind{event.KindFlow}
	}
	if s.dec.unknown > 0 {
		s.note(fmt.Sprintf("%d data sets arrived before their template and were not decoded (the exporter's templates were not in this capture yet)", s.dec.unknown))
	}
	if s.other > 0 {
		if s.rep.Rows == 0 && s.rep.Bad == 0 {
			s.rep.Skipped = true
			s.note(fmt.Sprintf("%d packets, none of them NetFlow or IPFIX: a traffic capture, which dwell does not decode (run Zeek on it and ingest its logs)", s.other))
		} else {
			s.note(fmt.Sprintf("%d packets that are not flow messages skipped", s.other))
		}
	}
	return io.EOF
}

// Position implements ingest.Source: the offset after the last whole
// packet, and the templates known there.
func (s *source) Position() ingest.Position {
	p := s.pos
	p.Header = s.state()
	return p
}

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }

// savedState is the decoder's state in a checkpoint.
type savedState struct {
	Pcap      capture.State   `json:"pcap"`
	Templates []savedTemplate `json:"t,omitempty"`
	Sampling  []savedSampling `json:"s,omitempty"`
}

type savedTemplate struct {
	Exporter netip.Addr `json:"e"`
	Domain   uint32     `json:"d"`
	ID       uint16     `json:"i"`
	Version  uint8      `json:"v"`
	Options  bool       `json:"o,omitempty"`
	Fields   [][3]int64 `json:"f"`
}

type savedSampling struct {
	Exporter netip.Addr `json:"e"`
	Domain   uint32     `json:"d"`
	Version  uint8      `json:"v"`
	Rate     uint32     `json:"r"`
}

func (s *source) state() string {
	if s.pos.Offset == 0 {
		return ""
	}
	st := savedState{Pcap: s.pr.State()}
	st.Templates, st.Sampling = s.dec.saved()
	data, _ := json.Marshal(st) // plain values: cannot fail
	return string(data)
}

func (s *source) restore(h string) error {
	var st savedState
	if err := json.Unmarshal([]byte(h), &st); err != nil {
		return fmt.Errorf("bad checkpoint state: %w", err)
	}
	s.pr = capture.Resume(s.cr, st.Pcap)
	s.dec.load(st.Templates, st.Sampling)
	return nil
}

// saved returns the decoder's templates and sampling rates, sorted.
func (d *decoder) saved() ([]savedTemplate, []savedSampling) {
	var ts []savedTemplate
	for k, t := range d.templates {
		sv := savedTemplate{Exporter: k.exporter, Domain: k.domain, ID: k.id, Version: k.version, Options: t.options}
		for _, f := range t.fields {
			sv.Fields = append(sv.Fields, [3]int64{int64(f.id), int64(f.length), int64(f.ent)})
		}
		ts = append(ts, sv)
	}
	slices.SortFunc(ts, func(a, b savedTemplate) int {
		return cmp.Or(a.Exporter.Compare(b.Exporter), cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Version, b.Version))
	})
	var ss []savedSampling
	for k, r := range d.sampling {
		ss = append(ss, savedSampling{Exporter: k.exporter, Domain: k.domain, Version: k.version, Rate: r})
	}
	slices.SortFunc(ss, func(a, b savedSampling) int {
		return cmp.Or(a.Exporter.Compare(b.Exporter), cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Version, b.Version))
	})
	return ts, ss
}

// load adds saved templates and sampling rates to the decoder.
func (d *decoder) load(ts []savedTemplate, ss []savedSampling) {
	for _, t := range ts {
		if len(d.templates) >= maxTemplates {
			break
		}
		tp := &template{options: t.Options}
		for _, f := range t.Fields {
			fd := field{id: uint16(f[0]), length: uint16(f[1]), ent: uint32(f[2])} //nolint:gosec // G115: written from these types
			tp.fields = append(tp.fields, fd)
			if fd.length == variable {
				tp.minLen++
			} else {
				tp.minLen += int(fd.length)
			}
		}
		d.templates[tplKey{t.Exporter, t.Domain, t.ID, t.Version}] = tp
	}
	for _, r := range ss {
		d.sampling[domainKey{r.Exporter, r.Domain, r.Version}] = r.Rate
	}
}
