package pcap

import (
	"net/netip"
	"time"
)

// reassembler puts IP fragments back together, as Zeek does before any
// transport analysis. It is bounded: at most maxFragDatagrams datagrams
// in flight, each at most 64 KiB, each given up after fragTimeout (Zeek's
// frag_timeout is off by default; a capture is finite, but an attacker's
// endless first fragments are not).
type reassembler struct {
	pending map[fragKey]*fragDatagram
	done    []byte // the last datagram completed (valid until the next)
	dropped int64  // fragments given up: timed out, overlapping oddly, over the limits
}

const (
	maxFragDatagrams = 4096
	maxDatagram      = 65535
	fragTimeout      = 60 * time.Second
)

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

type fragDatagram struct {
	first    time.Time
	num      int64 // packet number of the first fragment seen
	header   int   // IP header length of the offset-0 fragment (its ipLen less its payload)
	data     []byte
	have     []fragRange
	total    int // payload length, known once the last fragment arrives (-1 before)
	gotFirst bool
}

type fragRange struct{ from, to int }

func newReassembler() *reassembler {
	return &reassembler{pending: map[fragKey]*fragDatagram{}}
}

// add takes one fragment of p (its payload at offset off, more fragments
// to follow when more is set, hdr the IP header bytes before it). It
// returns nil when the fragment completed its datagram: p then describes
// the whole datagram. Otherwise errFragment (held) or errNotFirst
// (dropped).
func (r *reassembler) add(p *packet, id uint32, off int, more bool, hdr int) error {
	k := fragKey{p.src, p.dst, id, p.proto}
	d := r.pending[k]
	if d != nil && p.ts.Sub(d.first) > fragTimeout {
		r.dropped += int64(len(d.have))
		delete(r.pending, k)
		d = nil
	}
	if d == nil {
		if len(r.pending) >= maxFragDatagrams {
			r.expire(p.ts)
			if len(r.pending) >= maxFragDatagrams {
				r.dropped++
				return errNotFirst
			}
		}
		d = &fragDatagram{first: p.ts, num: p.num, total: -1}
		r.pending[k] = d
	}
	payload := p.l4
	if p.l4Len < 0 {
		r.dropped++
		return errNotFirst
	}
	if len(payload) > p.l4Len {
		payload = payload[:p.l4Len]
	}
	end := off + len(payload)
	if end > maxDatagram || len(payload) < p.l4Len { // too long, or cut by the snap length
		r.dropped++
		delete(r.pending, k)
		return errNotFirst
	}
	if cap(d.data) < end {
		nd := make([]byte, end, max(end, 2*cap(d.data)))
		copy(nd, d.data)
		d.data = nd
	} else if len(d.data) < end {
		d.data = d.data[:end]
	}
	copy(d.data[off:end], payload)
	d.have = addRange(d.have, fragRange{off, end})
	if !more {
		d.total = end
	}
	if off == 0 {
		d.gotFirst, d.header = true, hdr
	}
	if d.total < 0 || !d.gotFirst || len(d.have) != 1 || d.have[0].from != 0 || d.have[0].to < d.total {
		return errFragment
	}
	delete(r.pending, k)
	r.done = append(r.done[:0], d.data[:d.total]...)
	p.l4, p.l4Len = r.done, d.total
	p.ipLen = d.header + d.total
	p.num = d.num
	p.frag = true
	return nil
}

// addRange merges rg into the sorted, disjoint ranges rs.
func addRange(rs []fragRange, rg fragRange) []fragRange {
	out := rs[:0:0]
	for _, x := range rs {
		if x.to < rg.from || x.from > rg.to {
			out = append(out, x)
			continue
		}
		rg.from, rg.to = min(rg.from, x.from), max(rg.to, x.to)
	}
	out = append(out, rg)
	for i := len(out) - 1; i > 0 && out[i].from < out[i-1].from; i-- {
		out[i], out[i-1] = out[i-1], out[i]
	}
	return out
}

// expire gives up datagrams older than fragTimeout at now.
func (r *reassembler) expire(now time.Time) {
	for k, d := range r.pending {
		if now.Sub(d.first) > fragTimeout {
			r.dropped += int64(len(d.have))
			delete(r.pending, k)
		}
	}
}
