// Package capture reads packet capture files: classic pcap (either byte
// order, microsecond or nanosecond times) and pcapng (sections of either
// byte order, several interfaces with their own link types and time
// resolutions), and finds the IP packet inside each captured frame
// (Ethernet with 802.1Q/802.1ad tags and MPLS, Linux cooked captures v1
// and v2, BSD loopback, raw IP).
//
// The readers are shared by the formats that take captures: ingest/pcap
// (traffic into Zeek-like records) and ingest/netflow (flow export
// datagrams). They never panic on bad input and are fuzzed: a record
// whose length cannot be trusted ends the file with ErrCorrupt, a record
// cut short with io.ErrUnexpectedEOF; what was read before is kept.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrCorrupt is a capture whose record boundaries are lost: nothing after
// it can be read.
var ErrCorrupt = errors.New("corrupt capture")

// Link types (LINKTYPE_* of the tcpdump registry) that Network reads.
const (
	LinkNull     = 0   // BSD loopback: a 4-byte address family in host order
	LinkEthernet = 1   // Ethernet, with 802.1Q/802.1ad tags
	LinkRaw      = 101 // raw IP
	LinkLoop     = 108 // OpenBSD loopback: the family in network order
	LinkLinuxSLL = 113 // Linux "cooked" capture v1
	LinkIPv4     = 228
	LinkIPv6     = 229
	LinkLinuxSL2 = 276 // Linux "cooked" capture v2
)

// Packet is one captured frame. Data is valid until the next call to Next.
type Packet struct {
	TS     time.Time // capture time, UTC; zero for pcapng simple packets
	Data   []byte    // the captured bytes
	Length int       // the frame's length on the wire (≥ len(Data) unless the file lies)
	Link   uint32    // the link type of Data
}

// IsCapture reports whether head starts a pcap or pcapng file.
func IsCapture(head []byte) bool { return IsPcap(head) || IsPcapNG(head) }

// IsPcap reports whether head starts a classic pcap file.
func IsPcap(head []byte) bool {
	_, err := parsePcapHeader(head)
	return err == nil
}

// IsPcapNG reports whether head starts a pcapng file.
func IsPcapNG(head []byte) bool {
	if len(head) < 12 || binary.LittleEndian.Uint32(head) != ngSection {
		return false
	}
	m := binary.LittleEndian.Uint32(head[8:])
	return m == 0x1A2B3C4D || m == 0x4D3C2B1A
}

// State is what a Reader needs to go on reading from a record boundary
// of a file whose header it read before: a checkpoint.
type State struct {
	BigEndian bool    `json:"be"`
	Nanos     bool    `json:"ns"`
	Link      uint32  `json:"link"`
	NG        bool    `json:"ng,omitempty"`     // pcapng
	Ifaces    []Iface `json:"ifaces,omitempty"` // pcapng's interfaces so far
}

// Iface is what a pcapng Interface Description Block says.
type Iface struct {
	Link  uint32 `json:"l"`
	Units int64  `json:"u"` // timestamp units per second
}

// Reader reads the packets of a capture file.
type Reader struct {
	br      *bufio.Reader
	started bool // the file header is read (or the reader resumes)
	ng      bool
	order   binary.ByteOrder
	nanos   bool
	link    uint32
	ifaces  []Iface
	buf     []byte // records larger than the read buffer
	read    int64  // bytes consumed
}

// bufSize is the read buffer: packets smaller than it are returned in
// place, without a copy.
const bufSize = 1 << 20

// NewReader returns a reader of the capture file r, which starts with
// its file header.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufSize)}
}

// Resume returns a reader of r, which starts at a record boundary of a
// file whose header gave st.
func Resume(r io.Reader, st State) *Reader {
	cr := &Reader{br: bufio.NewReaderSize(r, bufSize), started: true, ng: st.NG, nanos: st.Nanos, link: st.Link, ifaces: st.Ifaces}
	cr.order = binary.ByteOrder(binary.LittleEndian)
	if st.BigEndian {
		cr.order = binary.BigEndian
	}
	return cr
}

// State returns the reader's checkpoint state; valid once a packet was read.
func (r *Reader) State() State {
	return State{BigEndian: r.order == binary.BigEndian, Nanos: r.nanos, Link: r.link, NG: r.ng, Ifaces: r.ifaces}
}

// Offset returns the bytes consumed, up to the end of the last record
// returned: a record boundary.
func (r *Reader) Offset() int64 { return r.read }

// Link returns the link type of a classic pcap file (0 for pcapng, whose
// interfaces each have theirs), once the header is read.
func (r *Reader) Link() uint32 { return r.link }

// Next returns the next packet: io.EOF at a clean end, io.ErrUnexpectedEOF
// when the file ends inside a record, an error wrapping ErrCorrupt when a
// record cannot be trusted, and the header's error for a file that is not
// a capture.
func (r *Reader) Next() (Packet, error) {
	if !r.started {
		if err := r.header(); err != nil {
			return Packet{}, err
		}
	}
	if r.ng {
		return r.nextNG()
	}
	return r.nextPcap()
}

func (r *Reader) header() error {
	h, err := r.br.Peek(pcapHeaderLen)
	if len(h) >= 12 && IsPcapNG(h) {
		r.started, r.ng = true, true
		return nil
	}
	if err != nil {
		if len(h) == 0 && errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("reading the capture header: %w", io.ErrUnexpectedEOF)
	}
	f, err := parsePcapHeader(h)
	if err != nil {
		return err
	}
	r.order, r.nanos, r.link = f.order, f.nanos, f.link
	r.discard(pcapHeaderLen)
	r.started = true
	return nil
}

func (r *Reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.read += int64(d)
}

// record returns the next n bytes, in place when they fit the buffer.
func (r *Reader) record(n int) ([]byte, error) {
	if n <= bufSize {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		r.discard(n)
		return b, nil
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := io.ReadFull(r.br, b); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	r.read += int64(n)
	return b, nil
}

// unitsTime converts a timestamp in units per second.
func unitsTime(ts uint64, units int64) time.Time {
	if units <= 0 {
		units = 1_000_000
	}
	u := uint64(units)
	sec, frac := ts/u, ts%u
	if sec > math.MaxInt64/2 {
		return time.Time{}
	}
	return time.Unix(int64(sec), int64(frac*1e9/u)).UTC() //nolint:gosec // G115: sec bounded above; frac < units
}
