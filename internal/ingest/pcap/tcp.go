package pcap

import "time"

// The TCP analysis follows Zeek's TCP session adapter and endpoint
// semantics (docs/pcap.md): endpoint states, the history letters with
// their once-only, sequence-checked and logarithmic rules, sizes from
// sequence numbers, gaps from acknowledgements of data never seen.

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
)

// tcpEndState is a TCP endpoint's state, as Zeek names them.
type tcpEndState uint8

const (
	tcpInactive tcpEndState = iota
	tcpSynSent
	tcpSynAckSent
	tcpPartial
	tcpEstablished
	tcpClosed
	tcpReset
)

// tcpState is a TCP connection's analysis.
type tcpState struct {
	o, r *tcpEnd
}

// tcpEnd is one side of a TCP connection. Sequence numbers are kept
// unwrapped, in 64 bits.
type tcpEnd struct {
	state, prev tcpEndState
	start       int64 // initial sequence number (of the SYN, or one before the first byte seen)
	last        int64 // one past the highest sequence number sent
	ack         int64 // highest acknowledgement the peer sent for this side's data
	finCnt      int
	finSeq      int64 // relative sequence just past the FIN
	histSYN     int64
	histFIN     int64
	histRST     int64
	rxmit       [2]uint32 // counter, threshold
	win0        [2]uint32
	gap         [2]uint32
	scale       int
	didClose    bool
	eofSent     bool // the analyzer was told the side's data ended
	missed      uint64
	stream      stream
}

// tcpConn is a TCP connection with its state and its two sides, made in
// one allocation: most connections of a capture are short, and each used
// to cost four.
type tcpConn struct {
	conn
	state tcpState
	ends  [2]tcpEnd
}

// newTCPConn returns a TCP connection with its sides' initial state.
func newTCPConn() *conn {
	x := &tcpConn{}
	for i := range x.ends {
		x.ends[i] = tcpEnd{rxmit: [2]uint32{0, 1}, win0: [2]uint32{0, 1}, gap: [2]uint32{0, 1}}
	}
	x.state = tcpState{o: &x.ends[0], r: &x.ends[1]}
	x.tcp = &x.state
	return &x.conn
}

func (e *tcpEnd) setState(s tcpEndState) {
	if s != e.state {
		e.prev, e.state = e.state, s
	}
}

// unwrap places the 32-bit sequence number x nearest to ref.
func unwrap(x uint32, ref int64) int64 {
	return ref + int64(int32(x-uint32(ref))) //nolint:gosec // G115: the signed distance is the point
}

func (e *tcpEnd) initSeqs(seq int64, last int64) {
	e.start, e.ack, e.last = seq, seq, last
}

// size is the payload bytes the side sent, from its sequence numbers: the
// higher of the last sent and the last acknowledged, less the SYN and FIN.
func (e *tcpEnd) size(peer *tcpEnd) uint64 {
	if e.prev == tcpSynSent && e.state == tcpReset && peer.state == tcpInactive && e.ack > e.start+1 {
		return 0 // a half-open connection discovered and aborted
	}
	n := max(e.last, e.ack) - e.start
	if n <= 0 {
		return 0
	}
	n-- // the SYN
	if e.finCnt > 0 && n > 0 {
		n--
	}
	return uint64(n) //nolint:gosec // G115: positive here
}

// tcpSegment is what the connection table passes for one TCP packet.
type tcpSegment struct {
	flags   uint8
	seq     uint32
	ack     uint32
	window  uint16
	wscale  int // window scale option, -1 when absent
	payload []byte
	length  int // payload length per the IP header (≥ len(payload))
}

// process follows one segment, as Zeek's TCPSessionAdapter::Process.
func (c *conn) processTCP(isOrig bool, s *tcpSegment, ts time.Time, a analyzer) {
	t := c.tcp
	ep, peer := t.o, t.r
	if !isOrig {
		ep, peer = t.r, t.o
	}
	f := s.flags
	syn, fin, rst, ack := f&tcpSYN != 0, f&tcpFIN != 0, f&tcpRST != 0, f&tcpACK != 0
	n := s.length
	segLen := n
	if syn {
		segLen++
	}
	if fin {
		segLen++
	}
	if rst {
		segLen -= n
	}
	base := int64(s.seq)
	// Initialise the endpoint's sequence space.
	switch ep.state {
	case tcpInactive:
		if syn {
			ep.initSeqs(base, base+int64(segLen))
		} else {
			ep.initSeqs(base-1, base)
		}
	case tcpSynSent, tcpSynAckSent:
		if syn && uint32(ep.start) != s.seq { //nolint:gosec // G115: comparing 32-bit sequence numbers
			ep.initSeqs(base, base+int64(segLen))
		}
	case tcpEstablished, tcpPartial:
		if syn {
			ep.initSeqs(base, base+int64(segLen))
		}
	case tcpReset:
		if syn && ep.prev == tcpInactive {
			ep.initSeqs(base, base+int64(segLen))
		}
	}
	full := unwrap(s.seq, ep.last)
	rel := full - ep.start
	underflow := rel < 0
	onePast := full + int64(segLen)

	// History.
	switch bits := b2i(syn) + b2i(fin) + b2i(rst); {
	case bits > 1:
		if fin && rst {
			c.checkHistory(isOrig, histFINRST, 'I')
		} else {
			c.checkHistory(isOrig, histMulti, 'Q')
		}
	case bits == 1:
		if syn {
			code := byte('S')
			if ack {
				code = 'H'
			}
			if !c.checkHistory(isOrig, histSYN, code) && rel != ep.histSYN {
				c.addHistory(isOrig, code)
			}
			ep.histSYN = rel
		}
		if fin {
			if !c.checkHistory(isOrig, histFIN, 'F') && rel+int64(n) != ep.histFIN {
				c.addHistory(isOrig, 'F')
			}
			ep.histFIN = rel + int64(n)
		}
		if rst {
			if !c.checkHistory(isOrig, histRST, 'R') && rel != ep.histRST {
				c.addHistory(isOrig, 'R')
			}
			ep.histRST = rel
		}
	default:
		if n > 0 {
			c.checkHistory(isOrig, histData, 'D')
		} else if ack {
			c.checkHistory(isOrig, histACK, 'A')
		}
	}
	// Zero windows, and the window's scale.
	win := int64(s.window) << ep.scale
	if win == 0 && !rst && peer.state != tcpClosed && ep.state != tcpReset && !syn {
		c.scaledHistory(isOrig, 'W', &ep.win0[0], &ep.win0[1])
	}
	if !t.o.didClose || !t.r.didClose {
		c.last = ts
	}
	if syn {
		if s.wscale < 0 {
			ep.scale = 0
			if ack {
				peer.scale = 0
			}
		} else {
			ep.scale = min(s.wscale, 14)
		}
	}
	if fin {
		ep.finCnt++
		ep.finSeq = rel + int64(segLen)
	}
	relAck := int64(0)
	if ack {
		if peer.state == tcpInactive {
			relAck = 1
			a := int64(s.ack) - 1
			peer.initSeqs(a, a)
		} else {
			fullAck := unwrap(s.ack, peer.ack)
			relAck = fullAck - peer.start
			switch {
			case relAck < 0:
				relAck = 0
			case !rst:
				if (s.ack != 0 || fullAck-peer.ack <= 1<<20) && fullAck > peer.ack {
					peer.ack = fullAck
				}
			}
		}
	}
	// The endpoint's last sequence number; retransmissions.
	deltaLast := onePast - ep.last
	switch {
	case (syn || rst) && (deltaLast > 1<<20 || deltaLast < -(1<<20)):
	case fin && ep.last == ep.start+1:
		ep.last = onePast
	case ep.state == tcpReset:
	case deltaLast > 0:
		ep.last = onePast
	case n > 0:
		c.scaledHistory(isOrig, 'T', &ep.rxmit[0], &ep.rxmit[1])
	}
	doClose := c.tcpStateMachine(isOrig, ep, peer, f, n)
	if ack {
		peer.ackReceived(c, !isOrig, relAck, a)
	}
	if n > 0 && !rst && !underflow {
		relData := rel
		if syn {
			relData++
		}
		data := s.payload
		if len(data) > n {
			data = data[:n]
		}
		ep.stream.add(relData, n, data, a, isOrig)
	}
	if e, ok := a.(eofer); ok {
		t.o.checkEOF(e, true)
		t.r.checkEOF(e, false)
	}
	if doClose {
		c.tcpClosed(ep, peer)
	}
}

// checkEOF tells the analyzer once that this side's data ended: its FIN
// was seen and every byte before it delivered.
func (e *tcpEnd) checkEOF(a eofer, isOrig bool) {
	if e.eofSent || e.finCnt == 0 || e.state == tcpReset {
		return
	}
	e.stream.init()
	if e.stream.next >= e.finSeq-1 {
		e.eofSent = true
		a.eof(isOrig)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tcpStateMachine moves the endpoint's state, as Zeek's
// UpdateStateMachine; it reports whether the side closed.
func (c *conn) tcpStateMachine(isOrig bool, ep, peer *tcpEnd, f uint8, n int) (doClose bool) {
	syn, fin, rst, ack := f&tcpSYN != 0, f&tcpFIN != 0, f&tcpRST != 0, f&tcpACK != 0
	switch ep.state {
	case tcpInactive:
		if syn {
			if isOrig {
				if ack {
					ep.setState(tcpSynAckSent)
				} else {
					ep.setState(tcpSynSent)
				}
			} else {
				if !ack && peer.state == tcpSynAckSent {
					// A SYN/SYN-ACK reversal: the roles flip.
					c.flip()
					peer.setState(tcpEstablished)
				}
				if peer.state == tcpSynSent {
					peer.setState(tcpEstablished)
				}
				ep.setState(tcpEstablished)
			}
		}
		if fin {
			ep.setState(tcpClosed)
			doClose = true
		}
		if rst {
			ep.setState(tcpReset)
			doClose = true
		}
		if ep.state == tcpInactive {
			switch {
			case !isOrig && n == 0 && c.tcp.o.state == tcpSynSent:
				// An ACK of the SYN before the SYN-ACK: not yet a partial connection.
			case ack && peer.state == tcpEstablished:
				ep.setState(tcpEstablished) // the SYN was missed
			default:
				ep.setState(tcpPartial)
			}
		}
	case tcpSynSent, tcpSynAckSent:
		if fin {
			ep.setState(tcpClosed)
			doClose = true
		}
		if rst {
			ep.setState(tcpReset)
			doClose = true
		}
	case tcpEstablished, tcpPartial:
		if syn && ep.state == tcpPartial && peer.state == tcpInactive && !ack {
			ep.setState(tcpSynSent)
		}
		if fin && !rst {
			ep.setState(tcpClosed)
			if peer.state == tcpReset && peer.prev == tcpClosed {
				peer.setState(tcpClosed) // FIN then RST: a normal close after all
			}
			doClose = true
		}
		if rst {
			ep.setState(tcpReset)
			doClose = true
		}
	case tcpClosed:
		if rst && peer.state != tcpClosed {
			ep.setState(tcpReset)
			if !ep.didClose {
				doClose = true
			}
		}
	case tcpReset:
	}
	return doClose
}

// tcpAttemptDelay is how long Zeek waits for an answer to a SYN
// (tcp_attempt_delay): a connection whose originator is still in its
// handshake and whose responder never spoke is then ended as an attempt,
// and later packets of the same endpoints make a new connection.
const tcpAttemptDelay = 5 * time.Second

// attemptOver reports whether an unanswered connection attempt ended by now.
func (c *conn) attemptOver(now time.Time) bool {
	t := c.tcp
	return t != nil && (t.o.state == tcpSynSent || t.o.state == tcpSynAckSent) && t.r.state == tcpInactive &&
		now.Sub(c.start) > tcpAttemptDelay
}

// tcpClosed records that a side closed; once the close is complete the
// connection is removed tcpCloseDelay after its last packet.
func (c *conn) tcpClosed(ep, peer *tcpEnd) {
	if ep.didClose {
		return
	}
	ep.didClose = true
	if ep.state == tcpReset || peer.didClose || peer.state == tcpInactive {
		c.closing = c.last.Add(tcpCloseDelay)
	}
}

// ackReceived is the peer's acknowledgement of this side's data up to
// relAck: data below it never seen is a gap (missed bytes), counted only
// while both sides are established, as Zeek does.
func (e *tcpEnd) ackReceived(c *conn, isOrig bool, relAck int64, a analyzer) {
	if e.finCnt > 0 && relAck >= e.finSeq {
		relAck = e.finSeq - 1
	}
	missing := e.stream.trimTo(relAck, a, isOrig)
	if missing > 0 && e.state == tcpEstablished && peerState(c, e) == tcpEstablished {
		e.missed += uint64(missing)
		c.scaledHistory(isOrig, 'G', &e.gap[0], &e.gap[1])
	}
}

func peerState(c *conn, e *tcpEnd) tcpEndState {
	if e == c.tcp.o {
		return c.tcp.r.state
	}
	return c.tcp.o.state
}

// connState is Zeek's conn_state for the connection's final endpoint states.
func (t *tcpState) connState(history string) string {
	os, rs := t.o.state, t.r.state
	oInactive := os == tcpInactive || os == tcpPartial
	rInactive := rs == tcpInactive || rs == tcpPartial
	switch {
	case rs == tcpReset:
		switch {
		case os == tcpSynSent || os == tcpSynAckSent || (os == tcpReset && t.o.size(t.r) == 0 && t.r.size(t.o) == 0):
			return "REJ"
		case oInactive:
			return "RSTRH"
		}
		return "RSTR"
	case os == tcpReset:
		if rInactive {
			if rstos0(history) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == tcpClosed && os == tcpClosed:
		return "SF"
	case os == tcpClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == tcpClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == tcpSynSent && rs == tcpInactive:
		return "S0"
	case os == tcpEstablished && rs == tcpEstablished:
		return "S1"
	}
	return "OTH"
}

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ against the whole history.
func rstos0(h string) bool {
	if len(h) > 0 && h[0] == '^' {
		h = h[1:]
	}
	if len(h) == 0 || h[0] != 'S' {
		return false
	}
	for i := 1; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
