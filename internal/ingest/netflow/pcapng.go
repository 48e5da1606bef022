package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// pcapng (the IETF draft, Wireshark's default format): a sequence of
// blocks, each of a type, a total length and a body. A Section Header
// Block sets the byte order; Interface Description Blocks give each
// interface's link type and time resolution; Enhanced (and Simple) Packet
// Blocks hold the packets. Other blocks are skipped.

const (
	ngSection   = 0x0A0D0D0A
	ngInterface = 1
	ngSimple    = 3
	ngEnhanced  = 6
	// maxBlock bounds a block: larger is a corrupt file.
	maxBlock = 16 << 20
)

// isPcapNG reports whether head starts a pcapng file.
func isPcapNG(head []byte) bool {
	if len(head) < 12 || binary.LittleEndian.Uint32(head) != ngSection {
		return false
	}
	m := binary.LittleEndian.Uint32(head[8:])
	return m == 0x1A2B3C4D || m == 0x4D3C2B1A
}

// ngIface is what an Interface Description Block says.
type ngIface struct {
	Link  uint32 `json:"l"`
	Units int64  `json:"u"` // timestamp units per second
}

// ngReader reads the packets of a pcapng file.
type ngReader struct {
	r      io.Reader
	order  binary.ByteOrder
	ifaces []ngIface
	hdr    [8]byte
	buf    []byte
	read   int64 // bytes consumed
}

// next returns the next packet, with its interface's link type.
func (nr *ngReader) next() (packet, error) {
	for {
		n, err := io.ReadFull(nr.r, nr.hdr[:])
		if err != nil {
			if n == 0 && errors.Is(err, io.EOF) {
				return packet{}, io.EOF
			}
			return packet{}, io.ErrUnexpectedEOF
		}
		typ := binary.LittleEndian.Uint32(nr.hdr[:]) // a section's type reads the same either way
		var magic [4]byte
		if typ == ngSection {
			if _, err := io.ReadFull(nr.r, magic[:]); err != nil {
				return packet{}, io.ErrUnexpectedEOF
			}
			switch binary.LittleEndian.Uint32(magic[:]) {
			case 0x1A2B3C4D:
				nr.order = binary.LittleEndian
			case 0x4D3C2B1A:
				nr.order = binary.BigEndian
			default:
				return packet{}, fmt.Errorf("%w: section at byte %d has no byte-order magic", errCorrupt, nr.read)
			}
			nr.ifaces = nr.ifaces[:0]
		}
		if nr.order == nil {
			return packet{}, fmt.Errorf("%w: a block before the first section header", errCorrupt)
		}
		typ = nr.order.Uint32(nr.hdr[:])
		total := nr.order.Uint32(nr.hdr[4:])
		if total < 12 || total%4 != 0 || total > maxBlock {
			return packet{}, fmt.Errorf("%w: block at byte %d claims %d bytes", errCorrupt, nr.read, total)
		}
		rest := int(total) - 8
		if typ == ngSection {
			rest -= 4
		}
		if cap(nr.buf) < rest {
			nr.buf = make([]byte, rest)
		}
		body := nr.buf[:rest]
		if _, err := io.ReadFull(nr.r, body); err != nil {
			return packet{}, io.ErrUnexpectedEOF
		}
		nr.read += int64(total)
		body = body[:len(body)-4] // the trailing copy of the length
		switch typ {
		case ngInterface:
			if len(body) < 8 {
				return packet{}, fmt.Errorf("%w: short interface block", errCorrupt)
			}
			nr.ifaces = append(nr.ifaces, ngIface{Link: uint32(nr.order.Uint16(body)), Units: tsUnits(nr.order, body[8:])})
		case ngEnhanced:
			if len(body) < 20 {
				return packet{}, fmt.Errorf("%w: short packet block", errCorrupt)
			}
			id := int(nr.order.Uint32(body))
			ts := uint64(nr.order.Uint32(body[4:]))<<32 | uint64(nr.order.Uint32(body[8:]))
			capLen := int(nr.order.Uint32(body[12:]))
			if id >= len(nr.ifaces) || capLen > len(body)-20 {
				return packet{}, fmt.Errorf("%w: packet block of an unknown interface or longer than itself", errCorrupt)
			}
			iface := nr.ifaces[id]
			return packet{ts: unitsTime(ts, iface.Units), data: body[20 : 20+capLen], link: iface.Link}, nil
		case ngSimple:
			if len(body) < 4 || len(nr.ifaces) == 0 {
				return packet{}, fmt.Errorf("%w: simple packet block without an interface", errCorrupt)
			}
			orig := int(nr.order.Uint32(body))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			return packet{data: data, link: nr.ifaces[0].Link}, nil // no time: the flows' own times, or none
		}
	}
}

// tsUnits reads an interface's if_tsresol option (default microseconds).
func tsUnits(order binary.ByteOrder, opts []byte) int64 {
	for len(opts) >= 4 {
		code, l := order.Uint16(opts), int(order.Uint16(opts[2:]))
		if code == 0 || 4+l > len(opts) {
			break
		}
		if code == 9 && l == 1 {
			v := opts[4]
			if v&0x80 != 0 {
				if e := v & 0x7f; e < 63 {
					return 1 << e
				}
			} else if v <= 18 {
				return int64(math.Pow10(int(v)))
			}
		}
		opts = opts[4+(l+3)&^3:]
	}
	return 1_000_000
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
