package pcap

// stream puts one direction of a TCP connection's payload back in order
// and hands it to the connection's analyzer. Without an analyzer it keeps
// only which byte ranges were seen, so that acknowledgements of data never
// seen count as gaps. It is bounded: at most maxBlocks out-of-order
// segments and maxBuffered bytes held per direction; beyond them a
// segment is dropped and, once acknowledged, counted as missing.
type stream struct {
	next     int64 // relative sequence number of the next byte in order (1: after the SYN)
	blocks   []block
	buffered int
	started  bool
	overflow int64 // segments dropped at the limits
}

type block struct {
	seq  int64
	n    int
	data []byte // nil when no analyzer wants the bytes
}

const (
	maxBlocks   = 256
	maxBuffered = 1 << 20
)

// eofer is an analyzer told when one direction's data ended with a FIN
// and all of it was delivered (Zeek's EndpointEOF): a message read to the
// close ends there, before the other side's.
type eofer interface {
	eof(isOrig bool)
}

// analyzer is an application-layer parser fed by a connection.
type analyzer interface {
	// deliver hands over the next bytes of one direction, in order.
	deliver(isOrig bool, b []byte)
	// gap says bytes were lost in one direction before the next delivery.
	gap(isOrig bool)
}

func (s *stream) init() {
	if !s.started {
		s.started, s.next = true, 1
	}
}

// add takes n bytes at relative sequence rel (data holds those captured).
func (s *stream) add(rel int64, n int, data []byte, a analyzer, isOrig bool) {
	s.init()
	end := rel + int64(n)
	if end <= s.next {
		return // old data
	}
	if rel <= s.next {
		if a != nil {
			skip := s.next - rel
			if skip < int64(len(data)) {
				a.deliver(isOrig, data[skip:])
			}
			if len(data) < n { // cut by the snap length
				a.gap(isOrig)
			}
		}
		s.next = end
		s.drain(a, isOrig)
		return
	}
	if len(s.blocks) >= maxBlocks || (a != nil && s.buffered+len(data) > maxBuffered) {
		s.overflow++
		return
	}
	b := block{seq: rel, n: n}
	if a != nil {
		b.data = append([]byte(nil), data...)
		s.buffered += len(b.data)
	}
	i := len(s.blocks)
	for i > 0 && s.blocks[i-1].seq > rel {
		i--
	}
	s.blocks = append(s.blocks, block{})
	copy(s.blocks[i+1:], s.blocks[i:])
	s.blocks[i] = b
}

// drain delivers held blocks that are now in order.
func (s *stream) drain(a analyzer, isOrig bool) {
	for len(s.blocks) > 0 && s.blocks[0].seq <= s.next {
		b := s.blocks[0]
		s.blocks = s.blocks[1:]
		s.buffered -= len(b.data)
		end := b.seq + int64(b.n)
		if end <= s.next {
			continue
		}
		if a != nil {
			if skip := s.next - b.seq; skip < int64(len(b.data)) {
				a.deliver(isOrig, b.data[skip:])
			}
		}
		s.next = end
	}
	if len(s.blocks) == 0 {
		s.blocks = s.blocks[:0:0]
	}
}

// trimTo moves past everything below relAck, acknowledged by the peer:
// bytes there never seen are missing; held blocks there are delivered
// after a gap. It returns the missing bytes.
func (s *stream) trimTo(relAck int64, a analyzer, isOrig bool) int64 {
	s.init()
	if relAck <= s.next {
		return 0
	}
	var missing int64
	for s.next < relAck {
		if len(s.blocks) > 0 && s.blocks[0].seq <= s.next {
			s.drain(a, isOrig)
			continue
		}
		upto := relAck
		if len(s.blocks) > 0 && s.blocks[0].seq < relAck {
			upto = s.blocks[0].seq
		}
		missing += upto - s.next
		s.next = upto
		if a != nil {
			a.gap(isOrig)
		}
	}
	return missing
}
