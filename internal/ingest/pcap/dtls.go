package pcap

import "encoding/binary"

// DTLS is TLS over datagrams (RFC 6347): each datagram holds whole
// records with a 13-byte header (type, version, epoch, sequence number,
// length), and a handshake message has a 12-byte header (type, length,
// message sequence, fragment offset and length) because it may be cut
// into fragments over records and datagrams, and sent again when lost.
// The messages are put back together here, in their order, and handed to
// the TLS analyzer, which gives them Zeek's ssl.log semantics. A UDP
// connection is taken for DTLS when one of its first datagrams is a
// ClientHello, as Zeek's signature does: WebRTC sends STUN on the same
// ports first, and keeps sending it between the DTLS records.

const (
	dtlsWatch        = 32      // datagrams of a UDP connection looked at for a ClientHello
	maxDTLSMessage   = 1 << 16 // a longer handshake message is not followed
	maxDTLSFragments = 16      // messages held per direction while fragments are missing
	maxDTLSHeld      = 1 << 16 // bytes of those messages held per direction
)

// dtlsState is what a DTLS connection keeps per direction: the next
// message sequence number to hand over, and the messages still missing
// fragments.
type dtlsState struct {
	next    [2]uint16
	pending [2]map[uint16]*dtlsMsg
	held    [2]int // bytes of the pending messages
	// clientOrig: the originator sent the ClientHello. In WebRTC either
	// side may be the DTLS client; Zeek's ssl.log keeps the connection's
	// roles in its addresses and the handshake's in its letters and
	// certificate chains (the client's upper case, its chain the
	// client_cert_chain).
	clientOrig bool
}

// dtlsMsg is a handshake message being put back together.
type dtlsMsg struct {
	typ  uint8
	body []byte
	got  []bool // which bytes arrived
	have int
}

// looksDTLS reports whether a datagram starts with a DTLS ClientHello: a
// handshake record of epoch 0, DTLS 1.0 or 1.2, whose message is a
// ClientHello.
func looksDTLS(b []byte) bool {
	return len(b) >= 25 && b[0] == 22 && b[1] == 0xfe && (b[2] == 0xff || b[2] == 0xfd) && b[3] == 0 && b[4] == 0 && b[13] == 1
}

// udpDTLS follows a UDP connection's datagrams for DTLS.
func (t *table) udpDTLS(c *conn, isOrig bool, payload []byte) {
	switch {
	case c.tls != nil && c.tls.dtls != nil:
	case c.tls != nil || c.udpSeen >= dtlsWatch:
		return
	case looksDTLS(payload):
		c.tls = newTLS(c, t)
		c.tls.dtls = &dtlsState{clientOrig: isOrig}
		c.service = "dtls"
		if !isOrig {
			c.tls.history = append(c.tls.history, '^') // Zeek's mark of roles turned
		}
	default:
		c.udpSeen++
		return
	}
	c.tls.datagram(isOrig == c.tls.dtls.clientOrig, payload)
}

// datagram takes one datagram's records from the client or the server.
// One that is not DTLS (STUN between the records) is passed over.
func (s *tlsConn) datagram(isClient bool, b []byte) {
	for len(b) >= 13 && !s.done {
		typ, epoch, n := b[0], binary.BigEndian.Uint16(b[3:]), int(binary.BigEndian.Uint16(b[11:]))
		if typ < 20 || typ > 24 || b[1] != 0xfe || 13+n > len(b) {
			return
		}
		body := b[13 : 13+n]
		b = b[13+n:]
		switch {
		case typ == 22 && epoch == 0:
			s.dtlsHandshake(isClient, body)
		case typ == 22:
			// Under the new keys (Finished): encrypted.
		default:
			s.record(isClient, typ, body)
		}
	}
}

// dtlsHandshake takes the handshake fragments of one record and hands
// every message that is whole, in order, to the TLS analyzer; a message
// sent again is taken once.
func (s *tlsConn) dtlsHandshake(isClient bool, b []byte) {
	i := b2i(!isClient)
	d := s.dtls
	for len(b) >= 12 && !s.done {
		typ := b[0]
		length := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		seq := binary.BigEndian.Uint16(b[4:])
		off := int(b[6])<<16 | int(b[7])<<8 | int(b[8])
		n := int(b[9])<<16 | int(b[10])<<8 | int(b[11])
		if 12+n > len(b) || off+n > length || length > maxDTLSMessage {
			return
		}
		frag := b[12 : 12+n]
		b = b[12+n:]
		if seq < d.next[i] {
			continue // sent again
		}
		if d.pending[i] == nil {
			d.pending[i] = map[uint16]*dtlsMsg{}
		}
		m := d.pending[i][seq]
		if m == nil {
			if len(d.pending[i]) >= maxDTLSFragments || d.held[i]+length > maxDTLSHeld {
				continue
			}
			m = &dtlsMsg{typ: typ, body: make([]byte, length), got: make([]bool, length)}
			d.pending[i][seq] = m
			d.held[i] += length
		}
		if m.typ != typ || len(m.body) != length {
			continue
		}
		copy(m.body[off:], frag)
		for k := off; k < off+n; k++ {
			if !m.got[k] {
				m.got[k] = true
				m.have++
			}
		}
		for {
			m := d.pending[i][d.next[i]]
			if m == nil || m.have < len(m.body) {
				break
			}
			delete(d.pending[i], d.next[i])
			d.held[i] -= len(m.body)
			d.next[i]++
			s.handshake(isClient, m.typ, m.body)
		}
	}
}
