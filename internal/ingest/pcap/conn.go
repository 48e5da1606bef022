package pcap

import (
	"crypto/sha1" //nolint:gosec // G505: Community ID v1 is defined over SHA-1
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Zeek's timeouts (init-bare.zeek), which decide when an idle
// connection ends and a later packet of the same endpoints starts a new one.
const (
	tcpInactivity  = 5 * time.Minute
	udpInactivity  = time.Minute
	icmpInactivity = time.Minute
	tcpCloseDelay  = 5 * time.Second // after both sides closed
	tcpResetDelay  = 5 * time.Second // after a RST
)

// connKey identifies a connection whichever way its packets go: the two
// endpoints in a fixed order.
type connKey struct {
	a, b   netip.Addr
	pa, pb uint16
	proto  uint8
}

func makeKey(src, dst netip.Addr, sp, dp uint16, proto uint8) connKey {
	if c := src.Compare(dst); c < 0 || (c == 0 && sp <= dp) {
		return connKey{src, dst, sp, dp, proto}
	}
	return connKey{dst, src, dp, sp, proto}
}

// conn is one connection being followed.
type conn struct {
	key              connKey
	orig, resp       netip.Addr
	origPort, respPt uint16
	proto            uint8
	start, last      time.Time
	num              int64 // packet number of its first packet
	uid              string
	o, r             endpoint
	history          []byte
	histBuf          [16]byte // history's first letters, without an allocation
	histSeen         uint32
	// closing is when a closed or reset TCP connection is to be
	// removed (zero while open).
	closing time.Time
	tcp     *tcpState
	dns     *dnsConn
	http    *httpConn
	tls     *tlsConn
	watch   *startTLS
	gsi     *gsiFTP
	// appChecked is set once the first payload was looked at for an
	// application protocol.
	appChecked bool
	udpSeen    uint8 // datagrams looked at for DTLS
	service    string
	icmp       bool  // an ICMP "connection": ports are type and code
	seq        int64 // order of creation, for deterministic output
	// the expiry list the connection is on (expire.go)
	prev, next *conn
	list       int
	listed     bool
	mapped     bool // in the table's map of connections
}

// endpoint counts what one side sent.
type endpoint struct {
	pkts, ipBytes uint64
	bytes         uint64 // UDP/ICMP payload bytes
	active        bool
	flow          flowPart // the flow record being counted
}

// history bits, as Zeek's Connection::CheckHistory keeps them: the
// responder's are shifted by 16.
const (
	histSYN     = 0x1
	histFIN     = 0x2
	histRST     = 0x4
	histFINRST  = 0x8
	histData    = 0x10
	histACK     = 0x20
	histMulti   = 0x40
	histCorrupt = 0x80
)

// checkHistory adds code (lower case for the responder) the first time
// mask is seen for that side, and reports whether it did.
func (c *conn) checkHistory(isOrig bool, mask uint32, code byte) bool {
	if !isOrig {
		mask <<= 16
		code |= 0x20
	}
	if c.histSeen&mask != 0 {
		return false
	}
	c.histSeen |= mask
	c.history = append(c.history, code)
	return true
}

func (c *conn) addHistory(isOrig bool, code byte) {
	if !isOrig {
		code |= 0x20
	}
	c.history = append(c.history, code)
}

// scaledHistory adds code when counter reaches its threshold, which then
// grows tenfold: Zeek's logarithmic letters (retransmissions, gaps, zero
// windows).
func (c *conn) scaledHistory(isOrig bool, code byte, counter, threshold *uint32) {
	*counter++
	if *counter == *threshold {
		c.addHistory(isOrig, code)
		if *threshold < 1<<28 {
			*threshold *= 10
		}
	}
}

// flip swaps originator and responder, as Zeek does when the first packet
// came from what looks like the server.
func (c *conn) flip() {
	c.orig, c.resp = c.resp, c.orig
	c.origPort, c.respPt = c.respPt, c.origPort
	c.o, c.r = c.r, c.o
	c.histSeen = c.histSeen>>16 | c.histSeen<<16
	c.history = append(c.history, '^')
	if c.tcp != nil {
		c.tcp.o, c.tcp.r = c.tcp.r, c.tcp.o
	}
}

// likelyServerPorts are ports Zeek's analyzers register (its
// likely_server_ports): a first packet from one of them to a port not in
// the set comes from the responder.
var likelyServerPorts = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, p := range []uint16{
		21, 22, 23, 25, 53, 67, 69, 80, 88, 102, 110, 111, 123, 135, 137, 139, 143, 161, 162, 179,
		389, 443, 445, 464, 465, 500, 502, 514, 515, 520, 546, 547, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 994, 995,
		1080, 1194, 1433, 1434, 1521, 1701, 1723, 1812, 1813, 1883, 1900, 2049, 2123, 2152, 2404, 3128, 3306, 3389, 3478, 3544,
		4500, 4789, 5060, 5061, 5222, 5223, 5269, 5353, 5355, 5432, 5900, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8081,
		8443, 8888, 9200, 11211, 20000, 44818, 47808,
	} {
		m[p] = true
	}
	return m
}()

// uid makes a Zeek-like connection identifier: "C" and 17 base-62
// characters, derived from where the connection starts in its input so
// that reading the same capture again gives the same uids.
func uid(salt uint64, c *conn) string {
	var b [8 + 8 + 16 + 16 + 5]byte
	binary.BigEndian.PutUint64(b[:], salt)
	binary.BigEndian.PutUint64(b[8:], uint64(c.num)) //nolint:gosec // G115: packet numbers are positive
	o, r := c.orig.As16(), c.resp.As16()
	copy(b[16:], o[:])
	copy(b[32:], r[:])
	binary.BigEndian.PutUint16(b[48:], c.origPort)
	binary.BigEndian.PutUint16(b[50:], c.respPt)
	b[52] = c.proto
	return zeekID('C', b[:])
}

// zeekID makes an identifier in Zeek's shape: a letter and 17 base-62
// characters of a (non-cryptographic, 128-bit) hash of b: XXH3 (a uid
// costs a third of what it did with FNV-1a, which hashed a byte at a time).
func zeekID(letter byte, b []byte) string {
	sum := xxh3.Hash128(b)
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out [18]byte
	out[0] = letter
	x, y := sum.Hi, sum.Lo
	for i := 1; i < 18; i++ {
		if i < 10 {
			out[i], x = digits[x%62], x/62
		} else {
			out[i], y = digits[y%62], y/62
		}
	}
	return string(out[:])
}

// communityID computes the Community ID v1 flow hash (seed 0) of the
// connection: "1:" and the base64 SHA-1 of its endpoints in a canonical
// order. ICMP types and codes stand in for ports as the specification says.
func communityID(c *conn) string {
	sa, da, sp, dp := c.orig, c.resp, c.origPort, c.respPt
	oneWay := false
	if c.icmp {
		var ok bool
		if dp, ok = icmpCounterpart(c.proto == protoICMPv6, uint8(sp), uint8(dp)); !ok { //nolint:gosec // G115: ICMP type and code
			oneWay = true
			dp = c.respPt
		}
	}
	if !oneWay && (sa.Compare(da) > 0 || (sa == da && sp > dp)) {
		sa, da, sp, dp = da, sa, dp, sp
	}
	// seed (2 bytes), the two addresses, protocol, padding, the two ports
	var buf [2 + 16 + 16 + 6]byte
	b := appendAddr(appendAddr(buf[:2], sa), da)
	b = append(b, c.proto, 0)
	b = binary.BigEndian.AppendUint16(b, sp)
	b = binary.BigEndian.AppendUint16(b, dp)
	sum := sha1.Sum(b) //nolint:gosec // G401: defined so by the specification
	var out [2 + 28]byte
	out[0], out[1] = '1', ':'
	base64.StdEncoding.Encode(out[2:], sum[:])
	return string(out[:])
}

// appendAddr appends a's 4 or 16 bytes (AsSlice, without its allocation).
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		a4 := a.As4()
		return append(b, a4[:]...)
	}
	a16 := a.As16()
	return append(b, a16[:]...)
}

// icmpCounterpart returns the type answering an ICMP message type, and
// false for messages that have none (one-way messages).
func icmpCounterpart(v6 bool, typ, code uint8) (uint16, bool) {
	pairs := icmp4Pairs
	if v6 {
		pairs = icmp6Pairs
	}
	for _, p := range pairs {
		if p[0] == typ {
			return uint16(p[1]), true
		}
		if p[1] == typ {
			return uint16(p[0]), true
		}
	}
	return uint16(code), false
}

var (
	// echo, router solicitation/advertisement, timestamp, info, address mask
	icmp4Pairs = [][2]uint8{{8, 0}, {10, 9}, {13, 14}, {15, 16}, {17, 18}}
	// echo, multicast listener query/report, router and neighbour
	// discovery, node information, home agent discovery
	icmp6Pairs = [][2]uint8{{128, 129}, {130, 131}, {133, 134}, {135, 136}, {139, 140}, {144, 145}}
)

// record returns the connection's conn.log record.
func (c *conn) record(src event.Source) event.Conn {
	rec := event.Conn{
		TS:          event.Micro(c.start),
		UID:         c.uid,
		SrcIP:       c.orig,
		SrcPort:     c.origPort,
		DstIP:       c.resp,
		DstPort:     c.respPt,
		Service:     c.service,
		History:     string(c.history),
		SrcPkts:     event.Some(c.o.pkts),
		SrcIPBytes:  event.Some(c.o.ipBytes),
		DstPkts:     event.Some(c.r.pkts),
		DstIPBytes:  event.Some(c.r.ipBytes),
		MissedBytes: event.Some(uint64(0)),
		CommunityID: communityID(c),
		Src:         src,
	}
	// Zeek sets duration and sizes only for connections that lasted.
	d := event.Micro(c.last).Sub(event.Micro(c.start))
	lasted := d > 0
	if lasted {
		rec.Duration = event.Some(d)
	}
	switch {
	case c.tcp != nil:
		rec.Proto = "tcp"
		t := c.tcp
		if lasted {
			rec.SrcBytes, rec.DstBytes = event.Some(t.o.size(t.r)), event.Some(t.r.size(t.o))
		}
		rec.ConnState = t.connState(rec.History)
		rec.MissedBytes = event.Some(t.o.missed + t.r.missed)
	case c.proto == protoUDP:
		rec.Proto = "udp"
		if lasted {
			rec.SrcBytes, rec.DstBytes = event.Some(c.o.bytes), event.Some(c.r.bytes)
		}
		switch {
		case c.o.active && c.r.active:
			rec.ConnState = "SF"
		case c.o.active:
			rec.ConnState = "S0"
		case c.r.active:
			rec.ConnState = "SHR"
		default:
			rec.ConnState = "OTH"
		}
	default:
		rec.Proto = "icmp"
		if lasted {
			rec.SrcBytes, rec.DstBytes = event.Some(c.o.bytes), event.Some(c.r.bytes)
		}
		rec.ConnState = "OTH"
	}
	return rec
}
