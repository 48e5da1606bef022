package pcap

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// IP protocol numbers dwell follows.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// packet is one IP datagram (reassembled when it came in fragments), as
// the connection table sees it.
type packet struct {
	ts       time.Time
	num      int64 // 1-based packet number in the capture (the first fragment's)
	src, dst netip.Addr
	proto    uint8
	ipLen    int    // the IP datagram's length on the wire, headers included
	l4       []byte // transport header and payload, as captured
	l4Len    int    // the transport length the IP header gives (≥ len(l4) when the capture was cut)
	ipHdr    []byte // the IPv4 header (nil for IPv6), for its checksum
	frag     bool   // reassembled from fragments
}

// ipError says why a frame was not analysed.
type ipError string

func (e ipError) Error() string { return string(e) }

const (
	errShortIP   ipError = "IP header cut short"
	errBadIP     ipError = "malformed IP header"
	errFragment  ipError = "fragment held for reassembly"
	errNotFirst  ipError = "fragment dropped"
	errIPVersion ipError = "not IPv4 or IPv6"
)

// decodeIP fills p from an IP datagram b; a fragment goes to the
// reassembler, which returns the whole datagram once it has every piece.
func decodeIP(b []byte, p *packet, frags *reassembler) error {
	if len(b) < 1 {
		return errShortIP
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p, frags)
	case 6:
		return decodeIPv6(b, p, frags)
	}
	return errIPVersion
}

func decodeIPv4(b []byte, p *packet, frags *reassembler) error {
	if len(b) < 20 {
		return errShortIP
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || len(b) < ihl {
		return errBadIP
	}
	if len(b) > total {
		b = b[:total] // Ethernet padding
	}
	p.src = netip.AddrFrom4([4]byte(b[12:16]))
	p.dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.proto = b[9]
	p.ipLen = total
	p.ipHdr = b[:ihl]
	p.l4, p.l4Len = b[ihl:], total-ihl
	ff := binary.BigEndian.Uint16(b[6:])
	more, off := ff&0x2000 != 0, int(ff&0x1fff)*8
	if more || off > 0 {
		id := uint32(binary.BigEndian.Uint16(b[4:]))
		return frags.add(p, id, off, more, ihl)
	}
	return nil
}

// IPv6 extension headers followed to the transport header.
const (
	extHopByHop = 0
	extRouting  = 43
	extFragment = 44
	extDestOpts = 60
	extNone     = 59
)

func decodeIPv6(b []byte, p *packet, frags *reassembler) error {
	if len(b) < 40 {
		return errShortIP
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if len(b) > 40+plen && plen > 0 {
		b = b[:40+plen]
	}
	p.src = netip.AddrFrom16([16]byte(b[8:24]))
	p.dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.ipLen = 40 + plen
	next, rest, hdr := b[6], b[40:], 40
	for {
		switch next {
		case extHopByHop, extRouting, extDestOpts:
			if len(rest) < 8 {
				return errShortIP
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return errShortIP
			}
			next, rest, hdr = rest[0], rest[n:], hdr+n
			continue
		case extFragment:
			if len(rest) < 8 {
				return errShortIP
			}
			fo := binary.BigEndian.Uint16(rest[2:])
			more, off := fo&1 != 0, int(fo&^7)
			id := binary.BigEndian.Uint32(rest[4:])
			p.proto = rest[0]
			p.l4, p.l4Len = rest[8:], p.ipLen-hdr-8
			if p.l4Len < 0 {
				return errBadIP // a payload length shorter than its own headers
			}
			if more || off > 0 {
				return frags.add(p, id, off, more, hdr+8)
			}
			return nil
		}
		p.proto = next
		p.l4, p.l4Len = rest, p.ipLen-hdr
		if p.l4Len < 0 {
			p.l4Len = len(rest)
		}
		return nil
	}
}

// checksumOK verifies the transport checksum (and, for IPv4, the header
// checksum) of a whole datagram; a capture cut by the snap length cannot
// be verified and passes.
func (p *packet) checksumOK() bool {
	if p.ipHdr != nil && sum16(0, p.ipHdr) != 0xffff {
		return false
	}
	if len(p.l4) < p.l4Len || p.frag {
		return true
	}
	var pseudo uint32
	if p.src.Is4() {
		a, b := p.src.As4(), p.dst.As4()
		pseudo = sum16(pseudo, a[:])
		pseudo = sum16(pseudo, b[:])
	} else {
		a, b := p.src.As16(), p.dst.As16()
		pseudo = sum16(pseudo, a[:])
		pseudo = sum16(pseudo, b[:])
	}
	pseudo += uint32(p.proto) + uint32(p.l4Len) //nolint:gosec // G115: a datagram's length
	l4 := p.l4[:p.l4Len]
	switch p.proto {
	case protoUDP:
		if len(l4) >= 8 && l4[6] == 0 && l4[7] == 0 && p.src.Is4() {
			return true // no checksum
		}
	case protoTCP:
	case protoICMPv6:
	case protoICMP:
		return sum16(0, l4) == 0xffff
	default:
		return true
	}
	return sum16(pseudo, l4) == 0xffff
}

// sum16 adds b to a one's-complement sum and folds it.
func sum16(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return s
}
