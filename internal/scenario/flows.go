package scenario

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// The DDoS, as the edge router's flow exporter saw it: IPFIX (RFC 7011)
// messages over UDP, captured in a classic pcap file, one message per
// packet. The capture covers the attack and an hour on either side of it,
// so that the flood stands out against the ordinary flows of the edge.
//
// Every message carries template 256 before its data set; its fields, in
// order (IANA information element, length in bytes):
//
//	sourceIPv4Address (8, 4)        destinationIPv4Address (12, 4)
//	sourceTransportPort (7, 2)      destinationTransportPort (11, 2)
//	protocolIdentifier (4, 1)       tcpControlBits (6, 2)
//	packetDeltaCount (2, 8)         octetDeltaCount (1, 8)
//	flowStartMilliseconds (152, 8)  flowEndMilliseconds (153, 8)
//
// The exporter (edge router 10.20.0.1, observation domain 1) sends from
// port 49152 to the collector 10.20.0.99:4739; records are active-timeout
// flows of at most one minute, unsampled.

// Flow template field layout.
var flowFields = []struct{ id, size uint16 }{
	{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 2}, {2, 8}, {1, 8}, {152, 8}, {153, 8},
}

const (
	flowRecordLen  = 47
	flowTemplateID = 256
	flowsPerMsg    = 28 // keeps each message under 1,400 bytes
)

var (
	exporterAddr  = netip.MustParseAddr("10.20.0.1")
	collectorAddr = netip.MustParseAddr("10.20.0.99")
)

// flowRec is one IPFIX flow record.
type flowRec struct {
	src, dst        netip.Addr
	sport, dport    uint16
	proto           uint8
	flags           uint16
	packets, octets uint64
	start, end      time.Time
}

// ddos plans the volumetric attack: three hours against the public web
// server, about 60 % into the period.
func (p *plan) ddos() {
	web := p.m.servers["web"]
	from := p.when(0.6, 13, 0)
	p.truth.DDoS = DDoS{
		Target: web.addr.String(), From: from, To: from.Add(3 * time.Hour),
		Vectors: []string{"TCP SYN flood to 443/tcp from spoofed sources",
			"DNS amplification: responses from open resolvers (udp/53)",
			"NTP amplification: monlist responses (udp/123)"},
		FlowFile: filepath.ToSlash(filepath.Join("flows", "ddos.pcap")),
	}
}

// writeFlows writes the flow capture of the DDoS and fills d's volume
// figures. It returns the file written and the number of flow records.
func writeFlows(dir string, m *model, d *DDoS) (string, int64, error) {
	rng := rand.New(rand.NewPCG(m.cfg.Seed, 0x64646f73))
	if err := os.MkdirAll(filepath.Join(dir, "flows"), 0o755); err != nil {
		return "", 0, err
	}
	f, err := os.Create(filepath.Join(dir, filepath.FromSlash(d.FlowFile)))
	if err != nil {
		return "", 0, err
	}
	w := &flowWriter{w: bufio.NewWriterSize(f, 1<<20)}
	w.header()

	target := netip.MustParseAddr(d.Target)
	resolvers := make([]netip.Addr, 3000)
	for i := range resolvers {
		resolvers[i] = netip.AddrFrom4([4]byte{byte(1 + rng.IntN(220)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
	}
	ntpAmps := make([]netip.Addr, 1200)
	for i := range ntpAmps {
		ntpAmps[i] = netip.AddrFrom4([4]byte{byte(1 + rng.IntN(220)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
	}
	sources := map[netip.Addr]bool{}
	var records int64
	begin, end := d.From.Add(-time.Hour), d.To.Add(time.Hour)
	for minute := begin; minute.Before(end); minute = minute.Add(time.Minute) {
		var recs []flowRec
		recs = appendEdgeFlows(recs, rng, m, minute)
		if !minute.Before(d.From) && minute.Before(d.To) {
			// Intensity ramps up over ten minutes and comes in waves.
			into := minute.Sub(d.From).Minutes()
			level := math.Min(1, (into+1)/10) * (0.75 + 0.25*math.Sin(into/7))
			attack := func(n int, mk func() flowRec) {
				for range int(float64(n) * level) {
					r := mk()
					r.start = minute.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
					r.end = minute.Add(time.Minute - time.Duration(rng.IntN(3000))*time.Millisecond)
					recs = append(recs, r)
					sources[r.src] = true
					d.Flows++
					d.Packets += int64(r.packets)
					d.Bytes += int64(r.octets)
				}
			}
			attack(420, func() flowRec { // spoofed SYNs, one source per record
				pk := uint64(40_000 + rng.IntN(120_000))
				src := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(222)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(1 + rng.IntN(254))})
				return flowRec{src: src, dst: target, sport: uint16(1024 + rng.IntN(64000)), dport: 443, proto: 6, flags: 0x02, packets: pk, octets: pk * 60}
			})
			attack(160, func() flowRec {
				pk := uint64(15_000 + rng.IntN(45_000))
				return flowRec{src: resolvers[rng.IntN(len(resolvers))], dst: target, sport: 53, dport: uint16(1024 + rng.IntN(64000)), proto: 17,
					packets: pk, octets: pk * 1_450}
			})
			attack(110, func() flowRec {
				pk := uint64(10_000 + rng.IntN(30_000))
				return flowRec{src: ntpAmps[rng.IntN(len(ntpAmps))], dst: target, sport: 123, dport: uint16(1024 + rng.IntN(64000)), proto: 17,
					packets: pk, octets: pk * 468}
			})
		}
		// Within the minute the records leave in start order.
		for i := 0; i < len(recs); i += flowsPerMsg {
			w.message(minute.Add(time.Minute), recs[i:min(i+flowsPerMsg, len(recs))])
		}
		records += int64(len(recs))
	}
	d.Sources = len(sources)
	if err := w.w.Flush(); err != nil {
		_ = f.Close()
		return "", 0, fmt.Errorf("writing %s: %w", d.FlowFile, err)
	}
	return d.FlowFile, records, f.Close()
}

// appendEdgeFlows adds one minute of the edge's ordinary flows: web
// visitors, mail, staff browsing, webmail users.
func appendEdgeFlows(recs []flowRec, rng *rand.Rand, m *model, minute time.Time) []flowRec {
	act := m.activity(minute)
	web, mail := m.servers["web"].addr, m.servers["mail"].addr
	n := int(40*act) + 8
	for range n {
		start := minute.Add(time.Duration(rng.IntN(55_000)) * time.Millisecond)
		var r flowRec
		switch x := rng.IntN(10); {
		case x < 3:
			r = flowRec{src: publicAddr(5, rng.IntN(5000)), dst: web, sport: uint16(1024 + rng.IntN(64000)), dport: 443, proto: 6, flags: 0x1b}
		case x < 4:
			r = flowRec{src: m.senders[rng.IntN(len(m.senders))], dst: mail, sport: uint16(1024 + rng.IntN(64000)), dport: 25, proto: 6, flags: 0x1b}
		case x < 5:
			r = flowRec{src: m.owaUsers[rng.IntN(len(m.owaUsers))], dst: mail, sport: uint16(1024 + rng.IntN(64000)), dport: 443, proto: 6, flags: 0x1b}
		default:
			s := m.pickSite(rng)
			// Staff leave through the firewall's address translation.
			r = flowRec{src: netip.AddrFrom4([4]byte{192, 0, 2, 10}), dst: s.addr, sport: uint16(1024 + rng.IntN(64000)), dport: 443, proto: 6, flags: 0x1b}
		}
		r.packets = uint64(4 + rng.IntN(60))
		r.octets = r.packets * uint64(80+rng.IntN(1300))
		r.start = start
		r.end = start.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		recs = append(recs, r)
	}
	return recs
}

// flowWriter writes IPFIX messages as UDP packets in a pcap file.
type flowWriter struct {
	w   *bufio.Writer
	seq uint32
	buf []byte
}

func (fw *flowWriter) header() {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 1) // Ethernet
	_, _ = fw.w.Write(h[:])
}

// message writes one IPFIX message carrying the template and recs.
func (fw *flowWriter) message(export time.Time, recs []flowRec) {
	b := fw.buf[:0]
	// Ethernet, IPv4 and UDP headers, lengths filled in below.
	b = append(b, 0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x99, 0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x01, 0x08, 0x00)
	ipAt := len(b)
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0)
	b = append(b, exporterAddr.AsSlice()...)
	b = append(b, collectorAddr.AsSlice()...)
	udpAt := len(b)
	b = binary.BigEndian.AppendUint16(b, 49152)
	b = binary.BigEndian.AppendUint16(b, 4739)
	b = append(b, 0, 0, 0, 0)
	msgAt := len(b)
	// IPFIX message header.
	b = binary.BigEndian.AppendUint16(b, 10)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(export.Unix()))
	b = binary.BigEndian.AppendUint32(b, fw.seq)
	b = binary.BigEndian.AppendUint32(b, 1)
	// Template set.
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, uint16(4+4+4*len(flowFields)))
	b = binary.BigEndian.AppendUint16(b, flowTemplateID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(flowFields)))
	for _, f := range flowFields {
		b = binary.BigEndian.AppendUint16(b, f.id)
		b = binary.BigEndian.AppendUint16(b, f.size)
	}
	// Data set.
	b = binary.BigEndian.AppendUint16(b, flowTemplateID)
	b = binary.BigEndian.AppendUint16(b, uint16(4+flowRecordLen*len(recs)))
	for _, r := range recs {
		b = append(b, r.src.AsSlice()...)
		b = append(b, r.dst.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, r.sport)
		b = binary.BigEndian.AppendUint16(b, r.dport)
		b = append(b, r.proto)
		b = binary.BigEndian.AppendUint16(b, r.flags)
		b = binary.BigEndian.AppendUint64(b, r.packets)
		b = binary.BigEndian.AppendUint64(b, r.octets)
		b = binary.BigEndian.AppendUint64(b, uint64(r.start.UnixMilli()))
		b = binary.BigEndian.AppendUint64(b, uint64(r.end.UnixMilli()))
	}
	fw.seq += uint32(len(recs))
	binary.BigEndian.PutUint16(b[msgAt+2:], uint16(len(b)-msgAt))
	binary.BigEndian.PutUint16(b[udpAt+4:], uint16(len(b)-udpAt))
	binary.BigEndian.PutUint16(b[ipAt+2:], uint16(len(b)-ipAt))
	binary.BigEndian.PutUint16(b[ipAt+4:], uint16(fw.seq))
	binary.BigEndian.PutUint16(b[ipAt+10:], ipChecksum(b[ipAt:ipAt+20]))

	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], uint32(export.Unix()))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(b)))
	_, _ = fw.w.Write(rec[:])
	_, _ = fw.w.Write(b)
	fw.buf = b
}

// ipChecksum is the IPv4 header checksum (RFC 791).
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
