package pcap

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// dnsPorts are the ports Zeek's DNS analyzer takes (DNS, NetBIOS name
// service, multicast DNS, LLMNR).
func dnsPort(p uint16) bool { return p == 53 || p == 137 || p == 5353 || p == 5355 }

// dnsConn pairs a connection's DNS queries with their responses, as
// Zeek's dns.log does: by transaction id, first query first; a response
// without its query and a query without a response are logged alone.
type dnsConn struct {
	c       *conn
	t       *table
	pending []dnsPending
	tcp     [2][]byte // TCP: bytes of an incomplete message per direction
	bad     bool      // a message that could not be parsed: the connection is not DNS
	seen    bool      // a message was read
}

type dnsPending struct {
	ts  time.Time
	num int64
	rec event.DNS
}

const maxDNSPending = 64

func (d *dnsConn) record(ts time.Time, num int64) event.DNS {
	c := d.c
	return event.DNS{
		TS: event.Micro(ts), UID: c.uid, SrcIP: c.orig, SrcPort: c.origPort, DstIP: c.resp, DstPort: c.respPt,
		Proto: protoName(c.proto), Src: d.t.source(num),
	}
}

// message takes one DNS message.
func (d *dnsConn) message(isOrig bool, b []byte, ts time.Time, num int64) {
	m, err := parseDNS(b)
	if err != nil {
		d.t.dnsBad++
		return
	}
	if !d.seen && m.response && isOrig && d.c.tcp == nil && !groupAddr(d.c.resp) {
		// The first message is an answer from the originator: the
		// capture missed the query, and the roles are the other way
		// round (Zeek flips them too).
		d.c.flip()
	}
	d.seen = true
	d.c.service = "dns"
	if !m.response {
		r := d.record(ts, num)
		switch {
		case m.opcode == 5:
			// An update: Zeek logs the name updated and the changes, no
			// question (the zone is not one).
			r.Query, r.Answers, r.TTLs = m.updated, m.changes, m.cttls
		case m.hasQuestion:
			r.Query = m.qname
			r.QType, r.QTypeName = event.Some(uint64(m.qtype)), qtypeName(m.qtype)
			r.QClass, r.QClassNm = event.Some(uint64(m.qclass)), qclassName(m.qclass)
		}
		r.TransID = event.Some(uint64(m.id))
		r.AA, r.TC, r.RA = event.Some(false), event.Some(m.tc), event.Some(false)
		r.RD, r.Z = event.Some(m.rd), event.Some(uint64(m.z))
		if len(d.pending) >= maxDNSPending {
			d.t.dns = append(d.t.dns, d.pending[0].rec)
			d.pending = d.pending[1:]
		}
		d.pending = append(d.pending, dnsPending{ts: ts, num: num, rec: r})
		return
	}
	var r event.DNS
	matched := false
	// Multicast DNS answers with id 0 are not replies to a query.
	if m.id != 0 || (d.c.respPt != 5353 && d.c.origPort != 5353) {
		for i := range d.pending {
			if d.pending[i].rec.TransID.V == uint64(m.id) {
				r = d.pending[i].rec
				d.pending = append(d.pending[:i], d.pending[i+1:]...)
				matched = true
				break
			}
		}
	}
	if !matched {
		r = d.record(ts, num)
		r.TransID = event.Some(uint64(m.id))
		// As Zeek: a reply without its query names what its first answer
		// is about, and nothing when it has no answer (its question is
		// not read: only a query's is).
		r.Query = strings.ToLower(m.firstOwner)
		r.AA, r.RA, r.RD, r.Z = event.Some(false), event.Some(false), event.Some(false), event.Some(uint64(0))
	}
	// As Zeek: the response's rcode and TC; its AA, RA and the round trip
	// only with an answer.
	r.TC = event.Some(m.tc)
	r.RCode, r.RCodeName = event.Some(uint64(m.rcode)), rcodeName(m.rcode)
	if m.answered {
		r.AA, r.RA = event.Some(m.aa), event.Some(m.ra)
		if matched {
			r.RTT = event.Some(event.Micro(ts).Sub(r.TS))
		}
	}
	if m.opcode != 5 || len(r.Answers) == 0 {
		r.Answers, r.TTLs = m.answers, m.ttls
	}
	r.Rejected = event.Some(m.rcode != 0 && m.rcode != 3 && m.ancount == 0 && m.opcode != 5)
	d.t.dns = append(d.t.dns, r)
}

// end logs the queries that had no response.
func (d *dnsConn) end() {
	for _, p := range d.pending {
		p.rec.Rejected = event.Some(false)
		d.t.dns = append(d.t.dns, p.rec)
	}
	d.pending = nil
}

// deliver implements analyzer for DNS over TCP: messages with a two-byte
// length prefix.
func (d *dnsConn) deliver(isOrig bool, b []byte) {
	if d.bad {
		return
	}
	i := b2i(!isOrig)
	buf := append(d.tcp[i], b...)
	for len(buf) >= 2 {
		n := int(binary.BigEndian.Uint16(buf))
		if len(buf) < 2+n {
			break
		}
		d.message(isOrig, buf[2:2+n], d.t.now, d.t.num)
		buf = buf[2+n:]
	}
	if len(buf) > 1<<16+2 {
		d.bad, buf = true, nil
	}
	d.tcp[i] = append(d.tcp[i][:0], buf...)
}

func (d *dnsConn) gap(isOrig bool) { d.tcp[b2i(!isOrig)] = nil }

// dnsMessage is what dns.log takes from one message.
type dnsMessage struct {
	id             uint16
	response       bool
	aa, tc, rd, ra bool
	z              uint8
	rcode          uint8
	hasQuestion    bool
	qname          string
	qtype, qclass  uint16
	ancount        int
	answered       bool   // an answer record Zeek handles was read
	firstOwner     string // the first answer\'s name
	answers        []string
	ttls           []time.Duration
	// opcode 5 (UPDATE, RFC 2136): the name updated and each
	// prerequisite and update as Zeek writes them.
	opcode  uint8
	updated string
	changes []string
	cttls   []time.Duration
}

type dnsError string

func (e dnsError) Error() string { return string(e) }

// parseDNS reads a DNS message's header, first question and answers.
func parseDNS(b []byte) (*dnsMessage, error) {
	if len(b) < 12 {
		return nil, dnsError("DNS message shorter than its header")
	}
	m := &dnsMessage{id: binary.BigEndian.Uint16(b)}
	fl := binary.BigEndian.Uint16(b[2:])
	m.response = fl&0x8000 != 0
	m.aa, m.tc, m.rd, m.ra = fl&0x0400 != 0, fl&0x0200 != 0, fl&0x0100 != 0, fl&0x0080 != 0
	m.z = uint8(fl >> 4 & 7)
	m.rcode = uint8(fl & 0xf)
	m.opcode = uint8(fl >> 11 & 0xf)
	qd, an := int(binary.BigEndian.Uint16(b[4:])), int(binary.BigEndian.Uint16(b[6:]))
	m.ancount = an
	off := 12
	for i := 0; i < qd; i++ {
		name, n, err := dnsName(b, off)
		if err != nil {
			return nil, err
		}
		off = n
		if off+4 > len(b) {
			return nil, dnsError("DNS question cut short")
		}
		if i == 0 {
			m.hasQuestion = true
			m.qname = strings.ToLower(name)
			m.qtype, m.qclass = binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:])
		}
		off += 4
	}
	for i := 0; i < an; i++ {
		owner, n, err := dnsName(b, off)
		if err != nil {
			return m, nil // keep what was read: Zeek logs the answers before a bad one
		}
		off = n
		if off+10 > len(b) {
			return m, nil
		}
		typ := binary.BigEndian.Uint16(b[off:])
		ttl := binary.BigEndian.Uint32(b[off+4:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return m, nil
		}
		if i == 0 {
			m.firstOwner = owner
		}
		if m.opcode == 5 && !m.response {
			class := binary.BigEndian.Uint16(b[off-8:])
			if m.updated == "" {
				m.updated = owner
			}
			v, _ := dnsAnswer(b, off, rdlen, typ, owner)
			m.changes = append(m.changes, prerequisite(class, typ, owner, v))
			m.cttls = append(m.cttls, time.Duration(ttl)*time.Second)
			off += rdlen
			continue
		}
		if typ != 249 && typ != 250 && typ != 41 {
			m.answered = true
		}
		if s, ok := dnsAnswer(b, off, rdlen, typ, owner); ok {
			m.answers = append(m.answers, s)
			m.ttls = append(m.ttls, time.Duration(ttl)*time.Second)
		}
		off += rdlen
	}
	if m.opcode == 5 && !m.response {
		readUpdates(b, off, int(binary.BigEndian.Uint16(b[8:])), m)
	}
	return m, nil
}

// readUpdates reads an UPDATE message's updates (its authority section;
// its prerequisites were read as answers) into m.changes, after the
// prerequisites, in Zeek's words: "pre: NoRRSet CNAME name", "del: RRSet
// A", "add: A name 192.0.2.1". Transaction signatures are left out.
func readUpdates(b []byte, off, ns int, m *dnsMessage) {
	for i := 0; i < ns; i++ {
		owner, n, err := dnsName(b, off)
		if err != nil || n+10 > len(b) {
			return
		}
		off = n
		typ, class := binary.BigEndian.Uint16(b[off:]), binary.BigEndian.Uint16(b[off+2:])
		ttl := binary.BigEndian.Uint32(b[off+4:])
		rdlen := int(binary.BigEndian.Uint16(b[off+8:]))
		off += 10
		if off+rdlen > len(b) {
			return
		}
		if typ != 250 && typ != 41 {
			if m.updated == "" {
				m.updated = owner
			}
			var s string
			switch {
			case class == 255 && typ == 255: // delete every RRset of a name
				s = "del: all RRSets " + owner
			case class == 255: // delete an RRset
				s = "del: RRSet " + qtypeName(typ)
			case class == 254: // delete an RR from an RRset
				v, _ := dnsAnswer(b, off, rdlen, typ, owner)
				s = strings.TrimSpace("del: RR " + qtypeName(typ) + " " + owner + " " + v)
			default: // add to an RRset
				v, _ := dnsAnswer(b, off, rdlen, typ, owner)
				s = strings.TrimSpace("add: " + qtypeName(typ) + " " + owner + " " + v)
			}
			m.changes = append(m.changes, s)
			m.cttls = append(m.cttls, time.Duration(ttl)*time.Second)
		}
		off += rdlen
	}
}

// prerequisite is an UPDATE prerequisite (RFC 2136 2.4) in Zeek's words.
func prerequisite(class, typ uint16, owner, value string) string {
	switch {
	case class == 255 && typ == 255:
		return "pre: NameInUse " + owner
	case class == 254 && typ == 255:
		return "pre: NameNotInUse " + owner
	case class == 255:
		return "pre: RRSet " + qtypeName(typ) + " " + owner
	case class == 254:
		return "pre: NoRRSet " + qtypeName(typ) + " " + owner
	}
	return strings.TrimSpace("pre: RRSet " + qtypeName(typ) + " " + owner + " " + value)
}

// dnsName reads a (possibly compressed) name at off; it returns the name
// and the offset after it in the message.
func dnsName(b []byte, off int) (string, int, error) {
	var sb strings.Builder
	end, jumps := -1, 0
	for {
		if off >= len(b) {
			return "", 0, dnsError("DNS name runs past the message")
		}
		l := int(b[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			return strings.ToLower(sb.String()), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(b) {
				return "", 0, dnsError("DNS name pointer cut short")
			}
			if end < 0 {
				end = off + 2
			}
			jumps++
			if jumps > 64 {
				return "", 0, dnsError("DNS name pointers loop")
			}
			off = int(binary.BigEndian.Uint16(b[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, dnsError("DNS label of an unknown kind")
		default:
			if off+1+l > len(b) {
				return "", 0, dnsError("DNS label runs past the message")
			}
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.Write(b[off+1 : off+1+l])
			if sb.Len() > 1024 {
				return "", 0, dnsError("DNS name too long")
			}
			off += 1 + l
		}
	}
}

// dnsAnswer renders one answer record's data as Zeek's dns.log does;
// false for types Zeek leaves out of the answers.
func dnsAnswer(b []byte, off, n int, typ uint16, owner string) (string, bool) {
	rd := b[off : off+n]
	name := func(at int) string {
		s, _, err := dnsName(b, at)
		if err != nil {
			return ""
		}
		return s
	}
	switch typ {
	case 1:
		if n == 4 {
			return netip.AddrFrom4([4]byte(rd)).String(), true
		}
	case 28:
		if n == 16 {
			return netip.AddrFrom16([16]byte(rd)).String(), true
		}
	case 2, 5, 12, 39: // NS, CNAME, PTR, DNAME
		return name(off), true
	case 6: // SOA: the primary name server
		return name(off), true
	case 15: // MX
		if n > 2 {
			return name(off + 2), true
		}
	case 33: // SRV
		if n > 6 {
			return name(off + 6), true
		}
	case 16, 99: // TXT, SPF: each string with its length
		kind := "TXT"
		if typ == 99 {
			kind = "SPF"
		}
		var parts []string
		for i := 0; i < len(rd); {
			l := int(rd[i])
			if i+1+l > len(rd) {
				break
			}
			parts = append(parts, kind+" "+strconv.Itoa(l)+" "+string(rd[i+1:i+1+l]))
			i += 1 + l
		}
		return strings.Join(parts, " "), true
	case 46: // RRSIG: the type covered and the signer
		if n >= 18 {
			return fmt.Sprintf("RRSIG %d %s", binary.BigEndian.Uint16(rd), name(off+18)), true
		}
	case 48: // DNSKEY: the algorithm
		if n >= 4 {
			return fmt.Sprintf("DNSKEY %d", rd[3]), true
		}
	case 43: // DS: algorithm and digest type
		if n >= 4 {
			return fmt.Sprintf("DS %d %d", rd[2], rd[3]), true
		}
	case 47: // NSEC: the owner and the next name
		return "NSEC " + owner + " " + name(off), true
	case 50:
		return "NSEC3", true
	case 51:
		return "NSEC3PARAM", true
	case 44: // SSHFP: the fingerprint
		if n > 2 {
			return "SSHFP: " + hex.EncodeToString(rd[2:]), true
		}
	case 257: // CAA
		if n >= 2 && 2+int(rd[1]) <= n {
			return fmt.Sprintf("CAA %d %s %s", rd[0], rd[2:2+int(rd[1])], rd[2+int(rd[1]):]), true
		}
	case 29: // LOC (RFC 1876): Zeek gives size and precisions as encoded
		if n >= 4 {
			return fmt.Sprintf("LOC:  %d %d %d", rd[1], rd[2], rd[3]), true
		}
	case 65534:
		return "BIND9 signing signal", true
	case 11, 13, 41, 249, 250: // WKS, HINFO, OPT, TKEY, TSIG: not in the answers
		return "", false
	default:
		return fmt.Sprintf("<unknown type=%d>", typ), true
	}
	return "", false
}

var qtypeNames = map[uint16]string{
	1: "A", 2: "NS", 3: "MD", 4: "MF", 5: "CNAME", 6: "SOA", 7: "MB", 8: "MG", 9: "MR", 10: "NULL", 11: "WKS", 12: "PTR",
	13: "HINFO", 14: "MINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB", 19: "X25", 20: "ISDN", 21: "RT", 22: "NSAP",
	23: "NSAP-PTR", 24: "SIG", 25: "KEY", 26: "PX", 27: "GPOS", 28: "AAAA", 29: "LOC", 30: "NXT", 31: "EID", 32: "NIMLOC",
	33: "SRV", 34: "ATMA", 35: "NAPTR", 36: "KX", 37: "CERT", 38: "A6", 39: "DNAME", 40: "SINK", 41: "OPT", 42: "APL",
	43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
	52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY", 61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD",
	64: "SVCB", 65: "HTTPS", 99: "SPF", 100: "UINFO", 101: "UID", 102: "GID", 103: "UNSPEC", 249: "TKEY", 250: "TSIG",
	251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "*", 256: "URI", 257: "CAA", 32768: "TA", 32769: "DLV",
}

func qtypeName(t uint16) string {
	if s, ok := qtypeNames[t]; ok {
		return s
	}
	return "query-" + strconv.Itoa(int(t))
}

func qclassName(c uint16) string {
	switch c & 0x7fff { // the top bit is mDNS's unicast-response flag
	case 1:
		return "C_INTERNET"
	case 2:
		return "C_CSNET"
	case 3:
		return "C_CHAOS"
	case 4:
		return "C_HESIOD"
	case 254:
		return "C_NONE"
	case 255:
		return "C_ANY"
	}
	return "qclass-" + strconv.Itoa(int(c))
}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
	"NXRRSET", "NOTAUTH", "NOTZONE"}

func rcodeName(r uint8) string {
	if int(r) < len(rcodeNames) {
		return rcodeNames[r]
	}
	return "rcode-" + strconv.Itoa(int(r))
}

func protoName(p uint8) string {
	switch p {
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMP, protoICMPv6:
		return "icmp"
	}
	return "unknown_transport"
}
