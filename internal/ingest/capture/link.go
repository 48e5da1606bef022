package capture

import "encoding/binary"

// Network returns the IP packet (IPv4 or IPv6) carried by a frame of the
// given link type; false for frames that carry something else (ARP, STP,
// ...), link types Network does not read, and frames too short for their
// link header.
func Network(link uint32, b []byte) ([]byte, bool) {
	var et uint16
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[12:]), b[14:]
	case LinkLinuxSLL:
		if len(b) < 16 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case LinkLinuxSL2:
		if len(b) < 20 {
			return nil, false
		}
		et, b = binary.BigEndian.Uint16(b[0:]), b[20:]
	case LinkNull, LinkLoop:
		if len(b) < 4 {
			return nil, false
		}
		fam := binary.LittleEndian.Uint32(b)
		if link == LinkLoop || fam > 0xffff {
			fam = binary.BigEndian.Uint32(b)
		}
		b = b[4:]
		switch fam {
		case 2:
			return b, len(b) > 0 && b[0]>>4 == 4
		case 10, 24, 28, 30:
			return b, len(b) > 0 && b[0]>>4 == 6
		}
		return nil, false
	case LinkRaw, LinkIPv4, LinkIPv6:
		return b, len(b) > 0 && (b[0]>>4 == 4 || b[0]>>4 == 6)
	default:
		return nil, false
	}
	return etherPayload(et, b)
}

// etherPayload follows 802.1Q/802.1ad tags, MPLS labels and PPPoE
// sessions to the IP packet of an EtherType's payload.
func etherPayload(et uint16, b []byte) ([]byte, bool) {
	for {
		switch et {
		case 0x0800:
			return b, len(b) > 0 && b[0]>>4 == 4
		case 0x86dd:
			return b, len(b) > 0 && b[0]>>4 == 6
		case 0x8100, 0x88a8, 0x9100:
			if len(b) < 4 {
				return nil, false
			}
			et, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		case 0x8847, 0x8848: // MPLS: labels until the bottom of the stack
			for {
				if len(b) < 4 {
					return nil, false
				}
				bottom := b[2]&1 == 1
				b = b[4:]
				if bottom {
					break
				}
			}
			if len(b) == 0 {
				return nil, false
			}
			return b, b[0]>>4 == 4 || b[0]>>4 == 6
		case 0x8864: // PPPoE session: 6-byte header, then a PPP protocol
			if len(b) < 8 {
				return nil, false
			}
			switch binary.BigEndian.Uint16(b[6:]) {
			case 0x0021:
				et = 0x0800
			case 0x0057:
				et = 0x86dd
			default:
				return nil, false
			}
			b = b[8:]
		default:
			return nil, false
		}
	}
}
