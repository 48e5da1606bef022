package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// A classic pcap file (the libpcap format; pcapng is not read): a 24-byte
// header giving the byte order, the time resolution and the link type,
// then records of a 16-byte header and the captured bytes.

const (
	pcapHeaderLen = 24
	pcapRecordLen = 16
	// maxCapLen bounds a record's captured length: larger is a corrupt
	// file, whose records cannot be found again.
	maxCapLen = 256 << 10
)

// Link types dwell reads datagrams from.
const (
	linkNull     = 0   // BSD loopback: a 4-byte address family
	linkEthernet = 1   // Ethernet, with 802.1Q/802.1ad tags
	linkRaw      = 101 // raw IP
	linkLinuxSLL = 113 // Linux "cooked" capture
	linkIPv4     = 228
	linkIPv6     = 229
)

// pcapFile is what a pcap header says.
type pcapFile struct {
	order binary.ByteOrder
	nanos bool
	link  uint32
}

// parsePcapHeader reads a pcap file header.
func parsePcapHeader(h []byte) (pcapFile, error) {
	if len(h) < pcapHeaderLen {
		return pcapFile{}, errors.New("shorter than a pcap header")
	}
	var f pcapFile
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		f.order = binary.LittleEndian
	case 0xa1b23c4d:
		f.order, f.nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		f.order = binary.BigEndian
	case 0x4d3cb2a1:
		f.order, f.nanos = binary.BigEndian, true
	default:
		return pcapFile{}, errors.New("not a pcap file (bad magic number)")
	}
	f.link = f.order.Uint32(h[20:]) & 0x0fffffff
	return f, nil
}

// isPcap reports whether head starts a classic pcap file.
func isPcap(head []byte) bool {
	_, err := parsePcapHeader(head)
	return err == nil
}

// packet is one captured record.
type packet struct {
	ts   time.Time
	data []byte
	link uint32
}

// pcapReader reads records after the file header.
type pcapReader struct {
	r    io.Reader
	f    pcapFile
	hdr  [pcapRecordLen]byte
	buf  []byte
	read int64 // bytes consumed
}

// next returns the next record. io.EOF at a clean end, io.ErrUnexpectedEOF
// when the file ends inside a record.
func (pr *pcapReader) next() (packet, error) {
	n, err := io.ReadFull(pr.r, pr.hdr[:])
	if err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return packet{}, io.EOF
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return packet{}, err
	}
	o := pr.f.order
	sec, frac := o.Uint32(pr.hdr[0:]), o.Uint32(pr.hdr[4:])
	capLen := o.Uint32(pr.hdr[8:])
	if capLen > maxCapLen {
		return packet{}, fmt.Errorf("%w: record at byte %d claims %d captured bytes", errCorrupt, pr.read, capLen)
	}
	if cap(pr.buf) < int(capLen) {
		pr.buf = make([]byte, capLen)
	}
	pr.buf = pr.buf[:capLen]
	if _, err := io.ReadFull(pr.r, pr.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return packet{}, err
	}
	pr.read += pcapRecordLen + int64(capLen)
	ns := int64(frac) * 1000
	if pr.f.nanos {
		ns = int64(frac)
	}
	return packet{ts: time.Unix(int64(sec), ns).UTC(), data: pr.buf, link: pr.f.link}, nil
}

// errCorrupt is a pcap file whose record boundaries are lost.
var errCorrupt = errors.New("corrupt pcap")

// datagram is a UDP payload and the addresses it came from.
type datagram struct {
	ts      time.Time // when it was captured
	src     netip.Addr
	srcPort uint16
	dstPort uint16
	payload []byte
}

// udp extracts a UDP datagram from a captured packet; ok is false for
// anything else (other protocols, fragments after the first, truncation).
func udp(link uint32, b []byte) (d datagram, ok bool) {
	switch link {
	case linkEthernet:
		var ok bool
		if b, ok = etherIP(b); !ok {
			return d, false
		}
	case linkLinuxSLL:
		if len(b) < 16 {
			return d, false
		}
		b = b[16:]
	case linkNull:
		if len(b) < 4 {
			return d, false
		}
		b = b[4:]
	case linkRaw, linkIPv4, linkIPv6:
	default:
		return d, false
	}
	if len(b) < 1 {
		return d, false
	}
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return d, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || len(b) < ihl || b[9] != 17 || binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return d, false
		}
		if total >= ihl && total <= len(b) {
			b = b[:total]
		}
		d.src = netip.AddrFrom4([4]byte(b[12:16]))
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 || b[6] != 17 {
			return d, false // extension headers are not followed
		}
		d.src = netip.AddrFrom16([16]byte(b[8:24]))
		plen := int(binary.BigEndian.Uint16(b[4:]))
		l4 = b[40:]
		if plen <= len(l4) {
			l4 = l4[:plen]
		}
	default:
		return d, false
	}
	if len(l4) < 8 {
		return d, false
	}
	d.srcPort, d.dstPort = binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
	ulen := int(binary.BigEndian.Uint16(l4[4:]))
	d.payload = l4[8:]
	if ulen >= 8 && ulen-8 <= len(d.payload) {
		d.payload = d.payload[:ulen-8]
	}
	return d, true
}

// etherIP returns the IP packet in an Ethernet frame, after any 802.1Q
// and 802.1ad (QinQ) tags; false for other payloads.
func etherIP(b []byte) ([]byte, bool) {
	if len(b) < 14 {
		return nil, false
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	for (et == 0x8100 || et == 0x88a8) && len(b) >= 4 {
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	return b, et == 0x0800 || et == 0x86dd
}

func orderOf(bigEndian bool) binary.ByteOrder {
	if bigEndian {
		return binary.BigEndian
	}
	return binary.LittleEndian
}
