// Package pcap reads packet captures (pcap and pcapng, plain or
// compressed) into the records Zeek would write for them: conn.log with
// Zeek's TCP state machine, history letters, sizes from sequence numbers,
// gaps, timeouts and Community IDs, and dns.log from DNS over UDP and
// TCP. Each record names its capture file and the number of its first
// packet (Source.Line) as provenance.
//
// It follows Zeek's semantics closely enough that dwell's detectors,
// retro-hunt and report work on a capture as on Zeek's own logs;
// docs/pcap.md lists what it reproduces, measured against the logs Zeek
// itself wrote for its regression traces, and what differs.
//
// Memory is bounded on any capture: the connection table, IP fragment
// reassembly and TCP reassembly have limits, counted in the report when
// hit. Nothing here panics on bad input: every decoder is fuzzed.
//
// A checkpoint cannot be taken inside a capture (connections span it), so
// a capture whose ingest was interrupted is read again from its start and
// the records already stored are skipped: the analysis is deterministic.
package pcap

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

// FormatName names the format in reports.
const FormatName = "pcap"

// Formats returns the packet capture format for ingest. List it after
// ingest/netflow's, which takes the captures that hold flow exports.
func Formats() []ingest.Format {
	return []ingest.Format{{Name: FormatName, Detect: detect, Open: open}}
}

func detect(in *ingest.Input) bool {
	if in.Resume.Header != "" {
		return strings.HasPrefix(in.Resume.Header, `{"traffic"`)
	}
	return capture.IsCapture(in.Head)
}

// checkpoint is the format's state in a Position's Header.
type checkpoint struct {
	Traffic int              `json:"traffic"` // format version: 1
	Capture capture.State    `json:"capture"`
	Skip    map[string]int64 `json:"skip,omitempty"` // records of each kind already stored from this pass
	End     bool             `json:"end,omitempty"`  // the pass read the capture to its end
}

type source struct {
	in      *ingest.Input
	r       *capture.Reader
	t       *table
	pos     ingest.Position
	rep     ingest.Report
	skip    map[string]int64
	emitted map[string]int64
	packets int64
	done    bool
	pkt     packet
}

func open(r io.Reader, in *ingest.Input) (ingest.Source, error) {
	s := &source{in: in, pos: in.Resume, emitted: map[string]int64{}}
	s.rep.Format = FormatName
	h := sha256.Sum256(append([]byte(in.Path+"\x00"), in.Head...))
	salt := binary.BigEndian.Uint64(h[:]) ^ uint64(in.Resume.Offset) //nolint:gosec // G115: mixing bits
	s.t = newTable(in.Sensor, in.Path, salt)
	if in.Resume.Header == "" {
		s.r = capture.NewReader(r)
		return s, nil
	}
	var cp checkpoint
	if err := json.Unmarshal([]byte(in.Resume.Header), &cp); err != nil || cp.Traffic != 1 {
		return nil, fmt.Errorf("%s: resuming at byte %d: bad checkpoint state %q", in.Path, in.Resume.Offset, in.Resume.Header)
	}
	s.skip = cp.Skip
	if in.Resume.Offset == 0 {
		s.r = capture.NewReader(r)
	} else {
		s.r = capture.Resume(r, cp.Capture)
	}
	return s, nil
}

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
		pk, err := s.r.Next()
		if err != nil {
			return s.finish(b, err)
		}
		s.packets++
		s.frame(&pk)
		s.drain(b)
	}
	return nil
}

// frame analyses one captured frame.
func (s *source) frame(pk *capture.Packet) {
	ip, ok := capture.Network(pk.Link, pk.Data)
	if !ok {
		s.t.nonIP++
		return
	}
	p := &s.pkt
	*p = packet{ts: pk.TS, num: s.in.Resume.Line + s.packets}
	switch err := decodeIP(ip, p, s.t.frags); {
	case err == nil:
		s.t.packet(p)
	case errors.Is(err, errFragment):
		s.t.frag++
	case errors.Is(err, errNotFirst):
	default:
		s.t.short++
	}
}

// drain moves the ended connections' records into b, skipping those a
// previous pass stored.
func (s *source) drain(b *event.Batch) {
	t := s.t
	b.Conns, t.conn = move(s, event.KindConn, b.Conns, t.conn)
	b.DNS, t.dns = move(s, event.KindDNS, b.DNS, t.dns)
	b.HTTP, t.http = move(s, event.KindHTTP, b.HTTP, t.http)
	b.TLS, t.tls = move(s, event.KindTLS, b.TLS, t.tls)
	b.X509, t.x509 = move(s, event.KindX509, b.X509, t.x509)
	b.Flows, t.flows = move(s, event.KindFlow, b.Flows, t.flows)
	b.Files, t.files = move(s, event.KindFile, b.Files, t.files)
}

// move appends the records of from a previous pass did not store to to,
// and returns to and from emptied. The records of a kind are counted in
// one go: the first skip[kind] a pass makes were stored by the one
// before.
func move[R any](s *source, k event.Kind, to, from []R) ([]R, []R) {
	if len(from) == 0 {
		return to, from
	}
	kind := k.String()
	done := s.emitted[kind]
	s.emitted[kind] = done + int64(len(from))
	kept := from
	if stored := s.skip[kind] - done; stored > 0 {
		kept = from[min(stored, int64(len(from))):]
	}
	s.rep.Rows += int64(len(kept))
	return append(to, kept...), from[:0]
}

// finish ends the pass: the connections still open are ended, as at the
// end of Zeek's reading of a trace.
func (s *source) finish(b *event.Batch, err error) error {
	s.done = true
	switch {
	case errors.Is(err, io.EOF):
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.rep.Truncated = true
		s.note(fmt.Sprintf("capture cut short: the last record is incomplete; the %d packets before it were read", s.packets))
	case errors.Is(err, capture.ErrCorrupt):
		s.rep.Truncated = true
		s.bad(s.in.Resume.Line+s.packets+1, s.in.Resume.Offset+s.r.Offset(), err.Error()+": the rest of the file cannot be read")
	case s.packets == 0 && s.r.Offset() == 0:
		s.bad(0, 0, err.Error())
	default:
		s.rep.Truncated = true
		s.note(fmt.Sprintf("read error after byte %d, kept what was read before it: %v", s.in.Resume.Offset+s.r.Offset(), err))
	}
	s.t.flush()
	s.drain(b)
	t := s.t
	if t.nonIP > 0 {
		s.note(fmt.Sprintf("%d frames that are not IP (ARP, spanning tree, ...) or of a link type dwell does not read", t.nonIP))
	}
	if t.short > 0 {
		s.note(fmt.Sprintf("%d packets with a malformed or cut-short IP or transport header skipped", t.short))
	}
	if t.frags.dropped > 0 {
		s.note(fmt.Sprintf("%d IP fragments never reassembled (missing pieces, over 64 KiB, or over the limit of %d datagrams in reassembly)", t.frags.dropped, maxFragDatagrams))
	}
	if t.evicted > 0 {
		s.note(fmt.Sprintf("%d connections ended early: more than %d were open at once", t.evicted, t.maxConns))
	}
	if t.reasmDropped > 0 {
		s.note(fmt.Sprintf("%d out-of-order TCP segments dropped at the reassembly limits (%d segments or %d bytes held per direction)", t.reasmDropped, maxBlocks, maxBuffered))
	}
	if t.dnsBad > 0 {
		s.note(fmt.Sprintf("%d DNS messages could not be parsed", t.dnsBad))
	}
	for _, k := range []event.Kind{event.KindConn, event.KindDNS, event.KindHTTP, event.KindTLS, event.KindX509, event.KindFile, event.KindFlow} {
		if s.emitted[k.String()] > 0 {
			s.rep.Kinds = append(s.rep.Kinds, k)
		}
	}
	return io.EOF
}

func (s *source) bad(line, offset int64, reason string) {
	s.rep.Bad++
	if len(s.rep.Errors) < ingest.MaxParseErrors {
		s.rep.Errors = append(s.rep.Errors, ingest.ParseError{File: s.in.Path, Line: line, Offset: offset, Reason: reason})
	}
}

func (s *source) note(n string) { s.rep.Notes = append(s.rep.Notes, n) }

// Position implements ingest.Source. Within a pass the position stays
// where the pass began, with the records stored so far to skip; at the
// end of the pass it is the end of what was read.
func (s *source) Position() ingest.Position {
	cp := checkpoint{Traffic: 1, Capture: s.r.State(), End: s.done}
	p := s.in.Resume
	if s.done {
		p.Offset = s.in.Resume.Offset + s.r.Offset()
		p.Line = s.in.Resume.Line + s.packets
		p.Check = ""
	} else {
		cp.Skip = map[string]int64{}
		for k, n := range s.emitted {
			cp.Skip[k] = max(n, s.skip[k])
		}
	}
	data, _ := json.Marshal(cp) // plain values: cannot fail
	p.Header = string(data)
	return p
}

// Report implements ingest.Source.
func (s *source) Report() ingest.Report { return s.rep }
