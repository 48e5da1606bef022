package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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

func (r *Reader) nextNG() (Packet, error) {
	for {
		h, err := r.br.Peek(8)
		if err != nil {
			if len(h) == 0 && errors.Is(err, io.EOF) {
				return Packet{}, io.EOF
			}
			return Packet{}, io.ErrUnexpectedEOF
		}
		if binary.LittleEndian.Uint32(h) == ngSection { // a section's type reads the same either way
			m, err := r.br.Peek(12)
			if err != nil {
				return Packet{}, io.ErrUnexpectedEOF
			}
			switch binary.LittleEndian.Uint32(m[8:]) {
			case 0x1A2B3C4D:
				r.order = binary.LittleEndian
			case 0x4D3C2B1A:
				r.order = binary.BigEndian
			default:
				return Packet{}, fmt.Errorf("%w: section at byte %d has no byte-order magic", ErrCorrupt, r.read)
			}
			r.ifaces = r.ifaces[:0:0]
		}
		if r.order == nil {
			return Packet{}, fmt.Errorf("%w: a block before the first section header", ErrCorrupt)
		}
		typ, total := r.order.Uint32(h), r.order.Uint32(h[4:])
		if total < 12 || total%4 != 0 || total > maxBlock {
			return Packet{}, fmt.Errorf("%w: block at byte %d claims %d bytes", ErrCorrupt, r.read, total)
		}
		at := r.read
		block, err := r.record(int(total))
		if err != nil {
			return Packet{}, err
		}
		body := block[8 : len(block)-4] // after type and length, before the trailing length
		switch typ {
		case ngInterface:
			if len(body) < 8 {
				return Packet{}, fmt.Errorf("%w: short interface block at byte %d", ErrCorrupt, at)
			}
			r.ifaces = append(r.ifaces, Iface{Link: uint32(r.order.Uint16(body)), Units: tsUnits(r.order, body[8:])})
		case ngEnhanced:
			if len(body) < 20 {
				return Packet{}, fmt.Errorf("%w: short packet block at byte %d", ErrCorrupt, at)
			}
			id := int(r.order.Uint32(body))
			ts := uint64(r.order.Uint32(body[4:]))<<32 | uint64(r.order.Uint32(body[8:]))
			capLen, origLen := int(r.order.Uint32(body[12:])), int(r.order.Uint32(body[16:]))
			if id >= len(r.ifaces) || capLen > len(body)-20 {
				return Packet{}, fmt.Errorf("%w: packet block at byte %d of an unknown interface or longer than itself", ErrCorrupt, at)
			}
			iface := r.ifaces[id]
			return Packet{TS: unitsTime(ts, iface.Units), Data: body[20 : 20+capLen], Length: max(origLen, capLen), Link: iface.Link}, nil
		case ngSimple:
			if len(body) < 4 || len(r.ifaces) == 0 {
				return Packet{}, fmt.Errorf("%w: simple packet block at byte %d without an interface", ErrCorrupt, at)
			}
			orig := int(r.order.Uint32(body))
			data := body[4:]
			if orig < len(data) {
				data = data[:orig]
			}
			return Packet{Data: data, Length: max(orig, len(data)), Link: r.ifaces[0].Link}, nil // no time
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
