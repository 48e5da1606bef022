package pcap

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// table follows a capture's connections and collects the records of
// those that ended. It is bounded: at most maxConns connections are
// followed at once; beyond that the longest idle are ended early
// (counted in evicted).
type table struct {
	conns   map[connKey]*conn
	frags   *reassembler
	salt    uint64
	sensor  string
	file    string
	now     time.Time // the current packet's time
	num     int64     // the current packet's number
	created int64
	lists   [numLists]connList
	// fragSwept is when fragments in reassembly were last expired.
	fragSwept time.Time
	// records of ended connections, in the order they ended
	conn    []event.Conn
	dns     []event.DNS
	http    []event.HTTP
	tls     []event.TLS
	x509    []event.X509
	files   []event.File
	flows   []event.Flow
	fileSeq int64
	// files fetched in ranges, open across connections (rangefile.go)
	ranged      map[rangeKey]*rangeFile
	rangedOrder []*rangeFile
	// counts for the report
	evicted, dnsBad, nonIP, short, frag int64
	reasmDropped                        int64 // out-of-order segments dropped at the reassembly limits
	maxConns                            int
	// serverPorts are the ports that decide the originator of a
	// connection whose first packet is not a SYN (likelyServerPorts).
	serverPorts map[uint16]bool
	// checksums drops packets whose IP, TCP or UDP checksum is wrong, as
	// Zeek does without -C. Off: a capture taken on a host with checksum
	// offloading has wrong checksums on all it sent.
	checksums bool
	badSum    int64
}

const defaultMaxConns = 1 << 19

func newTable(sensor, file string, salt uint64) *table {
	return &table{conns: map[connKey]*conn{}, frags: newReassembler(), salt: salt, sensor: sensor, file: file,
		maxConns: defaultMaxConns, serverPorts: likelyServerPorts}
}

func (t *table) source(num int64) event.Source {
	return event.Source{Sensor: t.sensor, File: t.file, Line: num}
}

// packet follows one IP datagram.
func (t *table) packet(p *packet) {
	t.now, t.num = p.ts, p.num
	t.expire(p.ts)
	if p.ts.Sub(t.fragSwept) >= 10*time.Second {
		t.fragSwept = p.ts
		t.frags.expire(p.ts)
	}
	if t.checksums && !p.checksumOK() {
		t.badSum++
		return
	}
	switch p.proto {
	case protoTCP:
		t.tcp(p)
	case protoUDP:
		t.udp(p)
	case protoICMP, protoICMPv6:
		t.icmp(p)
	}
}

// lookup returns the connection of the packet's endpoints, ending one
// that timed out, and creating one (with Zeek's choice of originator)
// when there is none.
func (t *table) lookup(p *packet, sp, dp uint16, flipOK func() bool, timeout time.Duration) (*conn, bool) {
	k := makeKey(p.src, p.dst, sp, dp, p.proto)
	return t.lookupKey(p, k, t.conns[k], sp, dp, flipOK, timeout)
}

// lookupKey is lookup for a caller that already looked up the key k: c
// is t.conns[k].
func (t *table) lookupKey(p *packet, k connKey, c *conn, sp, dp uint16, flipOK func() bool, timeout time.Duration) (*conn, bool) {
	if c != nil && (p.ts.Sub(c.last) > timeout || (!c.closing.IsZero() && p.ts.After(c.closing)) || c.attemptOver(p.ts)) {
		t.end(c)
		c = nil
	}
	if c != nil {
		return c, c.isOrig(p.src, sp)
	}
	if len(t.conns) >= t.maxConns {
		t.evict()
	}
	if p.proto == protoTCP {
		c = newTCPConn()
	} else {
		c = &conn{}
	}
	c.key, c.orig, c.resp, c.origPort, c.respPt, c.proto = k, p.src, p.dst, sp, dp, p.proto
	c.start, c.last, c.num, c.seq = p.ts, p.ts, p.num, t.created
	c.history = c.histBuf[:0]
	t.created++
	if flipOK() && !groupAddr(p.dst) {
		c.flip()
	}
	c.uid = uid(t.salt, c)
	t.conns[k] = c
	c.mapped = true
	return c, c.isOrig(p.src, sp)
}

// groupAddr reports whether a is a multicast or the limited broadcast
// address, which never originates a connection.
func groupAddr(a netip.Addr) bool {
	return a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// isOrig reports whether a packet from src:sp comes from c's originator.
func (c *conn) isOrig(src netip.Addr, sp uint16) bool { return c.orig == src && c.origPort == sp }

func (t *table) count(c *conn, isOrig bool, p *packet) {
	e := &c.r
	if isOrig {
		e = &c.o
	}
	e.pkts++
	e.ipBytes += uint64(p.ipLen) //nolint:gosec // G115: a datagram's length
	t.flowPacket(c, isOrig, e, p)
}

func (t *table) udp(p *packet) {
	if len(p.l4) < 8 {
		t.short++
		return
	}
	sp, dp := binary.BigEndian.Uint16(p.l4), binary.BigEndian.Uint16(p.l4[2:])
	c, isOrig := t.lookup(p, sp, dp, func() bool { return t.serverPorts[sp] && !t.serverPorts[dp] }, udpInactivity)
	c.last = p.ts
	t.touch(c)
	t.count(c, isOrig, p)
	ulen := int(binary.BigEndian.Uint16(p.l4[4:]))
	if ulen < 8 || ulen > p.l4Len {
		ulen = p.l4Len
	}
	n := max(ulen-8, 0)
	e := &c.r
	if isOrig {
		e = &c.o
		c.checkHistory(true, histData, 'D')
	} else {
		c.checkHistory(false, histData, 'D')
	}
	e.active = true
	e.bytes += uint64(n)
	payload := p.l4[8:]
	if len(payload) > n {
		payload = payload[:n]
	}
	if dnsPort(c.respPt) || dnsPort(c.origPort) {
		if c.dns == nil {
			c.dns = &dnsConn{c: c, t: t}
		}
		c.dns.message(isOrig, payload, p.ts, p.num)
		return
	}
	t.udpDTLS(c, isOrig, payload)
}

func (t *table) icmp(p *packet) {
	if len(p.l4) < 4 {
		t.short++
		return
	}
	typ, code := p.l4[0], p.l4[1]
	v6 := p.proto == protoICMPv6
	// Zeek keys an ICMP "connection" by type and counterpart type; a
	// reply belongs to its request's connection.
	sp, dp := uint16(typ), uint16(code)
	if ct, ok := icmpCounterpart(v6, typ, code); ok {
		dp = ct
	}
	c, _ := t.lookup(p, sp, dp, func() bool { return false }, icmpInactivity)
	c.icmp = true
	if c.o.pkts+c.r.pkts == 0 {
		c.respPt = uint16(code) // logged: type and code of the first message
	}
	isOrig := c.orig == p.src
	c.last = p.ts
	t.touch(c)
	t.count(c, isOrig, p)
	n := max(p.l4Len-8, 0)
	e := &c.r
	if isOrig {
		e = &c.o
	}
	e.active = true
	e.bytes += uint64(n)
}

func (t *table) tcp(p *packet) {
	h := p.l4
	if len(h) < 20 {
		t.short++
		return
	}
	off := int(h[12]>>4) * 4
	if off < 20 || off > len(h) {
		t.short++
		return
	}
	seg := tcpSegment{
		flags:  h[13],
		seq:    binary.BigEndian.Uint32(h[4:]),
		ack:    binary.BigEndian.Uint32(h[8:]),
		window: binary.BigEndian.Uint16(h[14:]),
		wscale: -1,
	}
	seg.payload = h[off:]
	seg.length = max(p.l4Len-off, 0)
	if seg.flags&tcpSYN != 0 {
		seg.wscale = windowScale(h[20:off])
	}
	sp, dp := binary.BigEndian.Uint16(h), binary.BigEndian.Uint16(h[2:])
	k := makeKey(p.src, p.dst, sp, dp, protoTCP)
	c := t.conns[k]
	if c != nil && c.tcpReuse(&seg) {
		t.end(c)
		c = nil
	}
	c, isOrig := t.lookupKey(p, k, c, sp, dp, func() bool { return tcpFlip(t.serverPorts, seg.flags, sp, dp) }, tcpInactivity)
	t.count(c, isOrig, p)
	c.processTCP(isOrig, &seg, p.ts, t.analyzerFor(c, isOrig, &seg))
	t.touch(c)
}

// analyzerFor returns the application analyzer of a TCP connection:
// DNS by its port, HTTP on any port by its first bytes. A connection
// whose first payload is neither gets none (and its payload is not kept).
func (t *table) analyzerFor(c *conn, isOrig bool, s *tcpSegment) analyzer {
	switch {
	case c.dns != nil:
		return c.dns
	case c.http != nil:
		if c.http.done {
			return nil
		}
		return c.http
	case c.gsi != nil:
		if c.gsi.done {
			return nil
		}
		return c.gsi
	case c.tls != nil:
		if c.tls.done {
			return nil
		}
		return c.tls
	case c.watch != nil:
		if c.watch.given {
			return nil
		}
		return c.watch
	case c.appChecked:
		return nil
	case dnsPort(c.respPt) && !c.icmp:
		c.dns = &dnsConn{c: c, t: t}
		return c.dns
	}
	n := min(len(s.payload), s.length)
	if n == 0 || s.flags&tcpRST != 0 {
		return nil
	}
	c.appChecked = true
	if isOrig && looksTLS(s.payload[:n]) {
		c.tls = newTLS(c, t)
		return c.tls
	}
	if looksHTTP(isOrig, s.payload[:n]) || (httpPorts[c.respPt] && isOrig) {
		c.http = newHTTP(c, t)
		return c.http
	}
	// A plaintext protocol may turn to TLS later (STARTTLS, AUTH TLS,
	// MySQL's SSL request): watch for a ClientHello for a while.
	c.watch = &startTLS{c: c, t: t}
	return c.watch
}

// startTLS watches a connection's first bytes for a TLS ClientHello
// after a plaintext exchange, and hands the connection to the TLS
// analyzer from there.
type startTLS struct {
	c     *conn
	t     *table
	seen  int
	given bool
}

const startTLSWatch = 64 << 10

func (w *startTLS) deliver(isOrig bool, b []byte) {
	if w.given {
		return
	}
	if isOrig && len(b) >= 6 && looksTLS(b) && b[5] == 1 {
		w.c.tls = newTLS(w.c, w.t)
		w.c.tls.deliver(isOrig, b)
		return
	}
	if isOrig && bytes.HasPrefix(b, []byte("AUTH GSSAPI")) {
		w.c.tls = newTLS(w.c, w.t)
		w.c.gsi = &gsiFTP{tls: w.c.tls}
		return
	}
	w.seen += len(b)
	if w.seen > startTLSWatch {
		w.given = true
	}
}

func (w *startTLS) gap(bool) { w.given = true }

// httpPorts are the ports Zeek's HTTP analyzer is attached to whatever
// the first bytes; elsewhere a request or reply line is looked for.
var httpPorts = map[uint16]bool{80: true, 81: true, 631: true, 1080: true, 3128: true, 8000: true, 8080: true, 8888: true}

// tcpFlip is Zeek's choice for a connection whose first packet is not a
// plain SYN: the side on a likely server port is the responder.
func tcpFlip(servers map[uint16]bool, flags uint8, sp, dp uint16) bool {
	if flags&tcpSYN != 0 && flags&tcpACK == 0 {
		return false
	}
	if !servers[sp] {
		return false
	}
	if servers[dp] {
		return flags&tcpSYN == 0 && sp < dp
	}
	return true
}

// tcpReuse reports whether a SYN starts a new connection on the same
// endpoints as c (Zeek's IsReuse).
func (c *conn) tcpReuse(s *tcpSegment) bool {
	if s.flags&tcpSYN == 0 {
		return false
	}
	t := c.tcp
	origEnd := t.o
	if s.flags&tcpACK != 0 {
		if t.o.state != tcpInactive {
			return false
		}
		origEnd = t.r
	}
	closed := t.o.state == tcpClosed || t.o.state == tcpReset || t.r.state == tcpClosed || t.r.state == tcpReset
	if !closed {
		if uint32(origEnd.start) == s.seq { //nolint:gosec // G115: 32-bit sequence numbers
			return false // a retransmitted SYN
		}
		if s.flags&tcpACK == 0 && origEnd.state == tcpSynAckSent && t.r.state == tcpInactive && uint32(t.r.start) == s.seq { //nolint:gosec // G115: 32-bit sequence numbers
			return false
		}
		if origEnd.state == tcpInactive {
			return false
		}
	}
	return true
}

// windowScale reads the window scale option of a SYN; -1 without one.
func windowScale(opts []byte) int {
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return -1
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return -1
		}
		if opts[0] == 3 && opts[1] >= 3 {
			return int(opts[2])
		}
		opts = opts[opts[1]:]
	}
	return -1
}

// end finishes a connection: its records are kept for output.
func (t *table) end(c *conn) {
	if c.mapped { // the connection in t.conns under its key: a new one replaces it only after it ended
		delete(t.conns, c.key)
		c.mapped = false
	}
	if c.listed {
		t.lists[c.list].remove(c)
		c.listed = false
	}
	if c.dns != nil {
		c.dns.end()
	}
	if c.http != nil {
		c.http.end()
	}
	if c.tls != nil {
		c.tls.end()
	}
	t.endFlow(c, true, &c.o)
	t.endFlow(c, false, &c.r)
	if c.tcp != nil {
		t.reasmDropped += c.tcp.o.stream.overflow + c.tcp.r.stream.overflow
	}
	t.conn = append(t.conn, c.record(t.source(c.num)))
}

func (c *conn) timeout() time.Duration {
	switch {
	case c.tcp != nil:
		return tcpInactivity
	case c.proto == protoUDP:
		return udpInactivity
	}
	return icmpInactivity
}

// endAll ends connections in the order they began, so that output does
// not depend on map order.
func (t *table) endAll(cs []*conn) {
	slices.SortFunc(cs, func(a, b *conn) int {
		return int(a.seq - b.seq)
	})
	for _, c := range cs {
		t.end(c)
	}
}

// flush ends every connection: the end of the capture.
func (t *table) flush() {
	all := make([]*conn, 0, len(t.conns))
	for _, c := range t.conns {
		all = append(all, c)
	}
	t.endAll(all)
	t.endRangeFiles()
}
