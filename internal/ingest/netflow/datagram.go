package netflow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

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
	if b, ok = capture.Network(link, b); !ok {
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

// flowCapture reports whether the packets in a capture's head are flow
// export datagrams rather than traffic: at least one is, and they are at
// least half of the UDP datagrams there. (A capture of a collector's port
// holds nothing else; a SPAN capture's DNS or QUIC rarely passes
// isFlowDatagram, and never for most of its datagrams.)
func flowCapture(head []byte) bool {
	r := capture.NewReader(bytes.NewReader(head))
	var udps, flows int
	for {
		p, err := r.Next()
		if err != nil {
			break
		}
		if d, ok := udp(p.Link, p.Data); ok {
			udps++
			if isFlowDatagram(d.payload) {
				flows++
			}
		}
	}
	return flows > 0 && 2*flows >= udps
}
