package pcap

import (
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Besides conn.log, a capture gives flow records as a router or probe
// would export them: one per direction of a connection, cut every
// flowActive of activity (an exporter's active timeout), with the OR of
// the TCP flags seen. They feed the analyses of flows (floods: the DDoS
// detector reads flows alone) and are marked event.ExportPcap, so that
// they are not stitched into sessions beside the connections they repeat.

// flowActive is the active timeout: a long connection's flow is cut
// every minute, so that a flood's rate shows minute by minute.
const flowActive = time.Minute

// flowPart is the flow record one side of a connection is counting.
type flowPart struct {
	start, last time.Time
	num         int64 // packet number of its first packet
	pkts, bytes uint64
	flags       uint8
}

// flowPacket counts a packet of one side in its flow record, ending the
// record first when it has been active for flowActive.
func (t *table) flowPacket(c *conn, isOrig bool, e *endpoint, p *packet) {
	f := &e.flow
	if f.pkts > 0 && p.ts.Sub(f.start) >= flowActive {
		t.endFlow(c, isOrig, e)
	}
	if f.pkts == 0 {
		f.start, f.num = p.ts, p.num
	}
	f.last = p.ts
	f.pkts++
	f.bytes += uint64(p.ipLen) //nolint:gosec // G115: a datagram's length
	if p.proto == protoTCP && len(p.l4) >= 14 {
		f.flags |= p.l4[13] & 0x3f
	}
}

// endFlow writes one side's flow record, if it counted any packet.
func (t *table) endFlow(c *conn, isOrig bool, e *endpoint) {
	f := &e.flow
	if f.pkts == 0 {
		return
	}
	src, dst, sp, dp := c.orig, c.resp, c.origPort, c.respPt
	if !isOrig {
		src, dst, sp, dp = dst, src, dp, sp
	}
	r := event.Flow{
		TS: event.Micro(f.start), End: event.Micro(f.last), SrcIP: src, SrcPort: sp, DstIP: dst, DstPort: dp,
		Proto: protoName(c.proto), TCPFlags: f.flags, Packets: f.pkts, Bytes: f.bytes, Sampling: 1,
		Export: event.ExportPcap, Src: t.source(f.num),
	}
	if c.icmp {
		// As NetFlow exports ICMP: no source port, type and code in the
		// destination port.
		r.SrcPort, r.DstPort = 0, c.origPort<<8|c.respPt&0xff
	}
	t.flows = append(t.flows, r)
	*f = flowPart{}
}
