package pcap

import (
	"crypto/md5" //nolint:gosec // G501: JA3 is defined over MD5
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// tlsConn parses the cleartext part of a TLS (or SSL 3) handshake into
// ssl.log and x509.log records, as Zeek does: the version and cipher the
// server chose, the curve, SNI, ALPN, resumption, the handshake's history
// letters (client's upper case), whether it was established, the
// certificate chains with their SHA-256 fingerprints; and the JA3, JA3S,
// JA4 and JA4S fingerprints of the hellos. Encrypted records are only
// counted by type.
type tlsConn struct {
	c   *conn
	t   *table
	rec event.TLS
	// per direction (0 client, 1 server)
	buf       [2][]byte // bytes of an incomplete record
	hs        [2][]byte // bytes of an incomplete handshake message
	ccs       [2]bool   // sent ChangeCipherSpec: its handshake is encrypted from then on
	encrypted [2]bool   // sent an application-data record
	skip      [2]int    // bytes left of a record not kept
	history   []byte
	clientSID []byte
	serverVer uint16
	sawHello  bool
	hasCert   bool
	alert     bool
	done      bool // not TLS, or nothing more to learn
	logged    bool
	dtls      *dtlsState // DTLS over UDP (dtls.go); nil for TLS
}

const maxTLSRecord = 1<<14 + 2048 + 5

func newTLS(c *conn, t *table) *tlsConn {
	return &tlsConn{c: c, t: t, rec: event.TLS{TS: event.Micro(c.start), UID: c.uid, SrcIP: c.orig, SrcPort: c.origPort,
		DstIP: c.resp, DstPort: c.respPt, Src: t.source(c.num)}}
}

// looksTLS reports whether a first payload starts a TLS or SSL 3 record
// of a handshake.
func looksTLS(b []byte) bool {
	return len(b) >= 3 && b[0] == 22 && b[1] == 3 && b[2] <= 4
}

func (s *tlsConn) gap(isOrig bool) {
	i := b2i(!isOrig)
	s.buf[i], s.hs[i], s.skip[i] = nil, nil, 0
	s.done = true
}

// deliver implements analyzer: records are cut from the stream.
func (s *tlsConn) deliver(isOrig bool, b []byte) {
	i := b2i(!isOrig)
	for len(b) > 0 && !s.done {
		if s.skip[i] > 0 {
			n := min(s.skip[i], len(b))
			s.skip[i] -= n
			b = b[n:]
			continue
		}
		if len(s.buf[i]) < 5 {
			n := min(5-len(s.buf[i]), len(b))
			s.buf[i] = append(s.buf[i], b[:n]...)
			b = b[n:]
			if len(s.buf[i]) < 5 {
				return
			}
		}
		h := s.buf[i]
		typ, ver, length := h[0], binary.BigEndian.Uint16(h[1:]), int(binary.BigEndian.Uint16(h[3:]))
		if typ < 20 || typ > 24 || ver>>8 != 3 || length > maxTLSRecord {
			s.done = true // not TLS (any more)
			return
		}
		if typ != 22 && typ != 21 {
			// Only the type matters: do not keep the bytes.
			s.record(isOrig, typ, nil)
			s.buf[i] = s.buf[i][:0]
			s.skip[i] = length
			continue
		}
		need := 5 + length - len(s.buf[i])
		n := min(need, len(b))
		s.buf[i] = append(s.buf[i], b[:n]...)
		b = b[n:]
		if n < need {
			return
		}
		s.record(isOrig, typ, s.buf[i][5:])
		s.buf[i] = s.buf[i][:0]
	}
}

// History letters of handshake message types (Zeek's ssl_history).
var tlsHistory = map[uint8]byte{0: 'H', 1: 'C', 2: 'S', 3: 'V', 4: 'T', 5: 'E', 8: 'O', 11: 'X', 12: 'K', 13: 'R', 14: 'N',
	15: 'Y', 16: 'G', 20: 'F', 21: 'W', 22: 'U', 23: 'A', 24: 'P', 254: 'M'}

func (s *tlsConn) letter(isOrig bool, l byte) {
	if !isOrig {
		l |= 0x20
	}
	if len(s.history) < 64 {
		s.history = append(s.history, l)
	}
}

// record takes one record of a content type.
func (s *tlsConn) record(isOrig bool, typ uint8, body []byte) {
	i := b2i(!isOrig)
	if s.dtls == nil {
		s.c.service = "ssl" // DTLS's is set when its ClientHello is seen
	}
	switch typ {
	case 20:
		s.ccs[i] = true
		s.letter(isOrig, 'I')
	case 21:
		if s.ccs[i] || s.tls13(isOrig) {
			return // encrypted
		}
		s.letter(isOrig, 'L')
		if len(body) >= 2 {
			s.rec.LastAlert = alertName(body[1])
			s.alert = true
		}
	case 23:
		s.encrypted[i] = true
	case 24:
		s.letter(isOrig, 'B')
	case 22:
		if s.ccs[i] || s.tls13(isOrig) {
			return // an encrypted handshake message (Finished, ...)
		}
		s.hs[i] = append(s.hs[i], body...)
		for len(s.hs[i]) >= 4 {
			n := int(s.hs[i][1])<<16 | int(s.hs[i][2])<<8 | int(s.hs[i][3])
			if n > 1<<20 {
				s.done = true
				return
			}
			if len(s.hs[i]) < 4+n {
				break
			}
			s.handshake(isOrig, s.hs[i][0], s.hs[i][4:4+n])
			s.hs[i] = s.hs[i][4+n:]
			if s.tls13(isOrig) {
				s.hs[i] = nil // the rest is encrypted
				break
			}
		}
		if len(s.hs[i]) == 0 {
			s.hs[i] = nil
		}
	}
}

// tls13 reports whether the side's handshake is encrypted because TLS
// 1.3 was chosen (the server's after its hello, the client's after it).
func (s *tlsConn) tls13(isOrig bool) bool {
	v := s.serverVer
	if v != 0x0304 && v>>8 != 0x7f && v>>8 != 0x7e && v != 0xfefc {
		return false
	}
	return !isOrig || s.ccs[0] || s.encrypted[0]
}

func (s *tlsConn) handshake(isOrig bool, typ uint8, b []byte) {
	if l, ok := tlsHistory[typ]; ok {
		s.letter(isOrig, l)
	} else {
		s.letter(isOrig, 'Z')
	}
	switch {
	case typ == 1 && isOrig:
		s.clientHello(b)
	case typ == 2 && !isOrig:
		s.serverHello(b)
	case typ == 11:
		s.certificates(isOrig, b)
	case typ == 12 && !isOrig:
		// ECDHE: curve type 3 (named curve) and its id.
		if len(b) >= 3 && b[0] == 3 {
			s.rec.Curve = curveName(binary.BigEndian.Uint16(b[1:]))
		}
	}
}

// hello is what a ClientHello or ServerHello holds.
type hello struct {
	version   uint16
	sessionID []byte
	ciphers   []uint16
	exts      []uint16
	sni       string
	groups    []uint16
	points    []uint8
	alpn      []string
	versions  []uint16 // supported_versions
	sigAlgs   []uint16
	keyShare  uint16 // the server's key share group
	psk       bool
}

func parseHello(b []byte, client, dtls bool) (*hello, bool) {
	h := &hello{}
	if len(b) < 38 {
		return nil, false
	}
	h.version = binary.BigEndian.Uint16(b)
	b = b[34:]
	sl := int(b[0])
	if len(b) < 1+sl {
		return nil, false
	}
	h.sessionID, b = b[1:1+sl], b[1+sl:]
	if client && dtls {
		// DTLS's client hello has a cookie after the session id.
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, false
		}
		b = b[1+int(b[0]):]
	}
	if client {
		if len(b) < 2 {
			return nil, false
		}
		cl := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+cl {
			return nil, false
		}
		for c := b[2 : 2+cl]; len(c) >= 2; c = c[2:] {
			h.ciphers = append(h.ciphers, binary.BigEndian.Uint16(c))
		}
		b = b[2+cl:]
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return h, true
		}
		b = b[1+int(b[0]):]
	} else {
		if len(b) < 3 {
			return nil, false
		}
		h.ciphers = []uint16{binary.BigEndian.Uint16(b)}
		b = b[3:]
	}
	if len(b) < 2 {
		return h, true
	}
	el := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if el < len(b) {
		b = b[:el]
	}
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+n {
			break
		}
		d := b[4 : 4+n]
		b = b[4+n:]
		h.exts = append(h.exts, typ)
		switch typ {
		case 0: // server_name
			if len(d) >= 5 && d[2] == 0 {
				l := int(binary.BigEndian.Uint16(d[3:]))
				if 5+l <= len(d) {
					h.sni = string(d[5 : 5+l])
				}
			}
		case 10: // supported_groups
			h.groups = appendUint16s(h.groups, d)
		case 11: // ec_point_formats
			if len(d) >= 1 {
				h.points = append(h.points, d[1:min(len(d), 1+int(d[0]))]...)
			}
		case 13: // signature_algorithms
			h.sigAlgs = appendUint16s(h.sigAlgs, d)
		case 16: // ALPN
			if len(d) >= 2 {
				for a := d[2:min(len(d), 2+int(binary.BigEndian.Uint16(d)))]; len(a) >= 1 && len(a) >= 1+int(a[0]); a = a[1+int(a[0]):] {
					h.alpn = append(h.alpn, string(a[1:1+int(a[0])]))
				}
			}
		case 43: // supported_versions: a list from the client, one from the server
			if client && len(d) >= 1 {
				for v := d[1:min(len(d), 1+int(d[0]))]; len(v) >= 2; v = v[2:] {
					h.versions = append(h.versions, binary.BigEndian.Uint16(v))
				}
			} else if !client && len(d) >= 2 {
				h.versions = []uint16{binary.BigEndian.Uint16(d)}
			}
		case 51, 40: // key_share (40 in TLS 1.3 drafts before 23): the server's group
			if !client && len(d) >= 2 {
				h.keyShare = binary.BigEndian.Uint16(d)
			}
		case 41:
			h.psk = true
		}
	}
	return h, true
}

func grease(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func (s *tlsConn) clientHello(b []byte) {
	h, ok := parseHello(b, true, s.dtls != nil)
	if !ok {
		return
	}
	s.sawHello = true
	s.clientSID = h.sessionID
	s.rec.ServerName = h.sni
	s.rec.JA3 = ja3(h)
	s.rec.JA4 = ja4(h, s.ja4Proto())
}

func (s *tlsConn) serverHello(b []byte) {
	h, ok := parseHello(b, false, s.dtls != nil)
	if !ok {
		return
	}
	v := h.version
	if len(h.versions) == 1 {
		v = h.versions[0]
	}

	s.serverVer = v
	s.rec.Version = tlsVersionName(v)
	if len(h.ciphers) == 1 {
		s.rec.Cipher = cipherName(h.ciphers[0])
	}
	if h.keyShare != 0 {
		s.rec.Curve = curveName(h.keyShare)
	}
	if len(h.alpn) > 0 {
		s.rec.NextProtocol = h.alpn[0]
	}
	resumed := len(h.sessionID) > 0 && string(h.sessionID) == string(s.clientSID)
	if s.tls13(false) && v>>8 != 0x7e {
		resumed = h.psk // the session id is only echoed in TLS 1.3 (Zeek judges Google's experimental versions by it)
	}
	s.rec.Resumed = event.Some(resumed)
	s.rec.JA3S = ja3s(h)
	s.rec.JA4S = ja4s(h, v, s.ja4Proto())
}

func (s *tlsConn) certificates(isOrig bool, b []byte) {
	if len(b) < 3 {
		return
	}
	n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	b = b[3:]
	if n < len(b) {
		b = b[:n]
	}
	for pos := 0; len(b) >= 3; pos++ {
		l := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if len(b) < 3+l {
			break
		}
		der := b[3 : 3+l]
		b = b[3+l:]
		sum := sha256.Sum256(der)
		fp := hex.EncodeToString(sum[:])
		if isOrig {
			s.rec.ClientCertChainFPs = append(s.rec.ClientCertChainFPs, fp)
		} else {
			s.rec.CertChainFPs = append(s.rec.CertChainFPs, fp)
			s.hasCert = true
		}
		x := parseX509(der)
		x.TS, x.Fingerprint, x.Src = event.Micro(s.t.now), fp, s.t.source(s.t.num)
		x.HostCert, x.ClientCert = event.Some(pos == 0), event.Some(isOrig)
		if !isOrig && pos == 0 {
			s.rec.Subject, s.rec.Issuer = x.Subject, x.Issuer
			if s.rec.ServerName != "" {
				s.rec.SNIMatchesCert = event.Some(certMatches(&x, s.rec.ServerName))
			}
		}
		if isOrig && pos == 0 {
			s.rec.ClientSubject, s.rec.ClientIssuer = x.Subject, x.Issuer
		}
		s.t.x509 = append(s.t.x509, x)
	}
}

// end logs the handshake at the connection's end.
func (s *tlsConn) end() {
	if s.logged || (!s.sawHello && s.serverVer == 0) {
		return
	}
	s.logged = true
	s.rec.SSLHistory = string(s.history)
	est := s.ccs[0] && s.ccs[1]
	if s.tls13(false) {
		est = s.encrypted[1] || s.ccs[1]
	}
	s.rec.Established = event.Some(est && !s.alert)
	if !s.rec.Resumed.Valid {
		s.rec.Resumed = event.Some(false)
	}
	s.t.tls = append(s.t.tls, s.rec)
}

// ja3 is Salesforce's JA3: the MD5 of the client hello's version,
// ciphers, extensions, groups and point formats, GREASE left out.
func ja3(h *hello) string {
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(int(h.version)))
	sb.WriteByte(',')
	list16(&sb, h.ciphers)
	sb.WriteByte(',')
	list16(&sb, h.exts)
	sb.WriteByte(',')
	list16(&sb, h.groups)
	sb.WriteByte(',')
	for i, p := range h.points {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(strconv.Itoa(int(p)))
	}
	sum := md5.Sum([]byte(sb.String())) //nolint:gosec // G401: JA3 is defined over MD5
	return hex.EncodeToString(sum[:])
}

// ja3s is JA3 of the server hello: version, cipher and extensions.
func ja3s(h *hello) string {
	var sb strings.Builder
	sb.WriteString(strconv.Itoa(int(h.version)))
	sb.WriteByte(',')
	list16(&sb, h.ciphers)
	sb.WriteByte(',')
	list16(&sb, h.exts)
	sum := md5.Sum([]byte(sb.String())) //nolint:gosec // G401: JA3S is defined over MD5
	return hex.EncodeToString(sum[:])
}

func list16(sb *strings.Builder, l []uint16) {
	first := true
	for _, v := range l {
		if grease(v) {
			continue
		}
		if !first {
			sb.WriteByte('-')
		}
		first = false
		sb.WriteString(strconv.Itoa(int(v)))
	}
}

// ja4Version is the version part of JA4 and JA4S.
func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

func ja4ALPN(alpn []string) string {
	if len(alpn) == 0 || alpn[0] == "" {
		return "00"
	}
	a := alpn[0]
	f, l := a[0], a[len(a)-1]
	if isAlnum(f) && isAlnum(l) {
		return string([]byte{f, l})
	}
	hx := hex.EncodeToString([]byte(a))
	return string([]byte{hx[0], hx[len(hx)-1]})
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

func hexList(l []uint16) string {
	parts := make([]string, 0, len(l))
	for _, v := range l {
		parts = append(parts, fmt.Sprintf("%04x", v))
	}
	return strings.Join(parts, ",")
}

func ja4Proto(proto uint8) string {
	switch proto {
	case protoUDP:
		return "q"
	case ja4DTLS:
		return "d"
	}
	return "t"
}

// ja4DTLS stands for DTLS where JA4 takes an IP protocol number: not
// one, JA4's "d".
const ja4DTLS uint8 = 255

// ja4Proto is the protocol JA4 names for the connection.
func (s *tlsConn) ja4Proto() uint8 {
	if s.dtls != nil {
		return ja4DTLS
	}
	return s.c.proto
}

// ja4 is FoxIO's JA4 of a client hello.
func ja4(h *hello, proto uint8) string {
	ver := h.version
	for _, v := range h.versions {
		if !grease(v) && v > ver && v != 0xfeff && v != 0xfefd && v != 0xfefc {
			ver = v
		}
	}
	var ciphers, exts []uint16
	for _, c := range h.ciphers {
		if !grease(c) {
			ciphers = append(ciphers, c)
		}
	}
	nExt := 0
	for _, e := range h.exts {
		if grease(e) {
			continue
		}
		nExt++
		if e != 0 && e != 16 {
			exts = append(exts, e)
		}
	}
	sni := "i"
	if h.sni != "" {
		sni = "d"
	}
	a := fmt.Sprintf("%s%s%s%02d%02d%s", ja4Proto(proto), ja4Version(ver), sni, min(len(ciphers), 99), min(nExt, 99), ja4ALPN(h.alpn))
	slices.Sort(ciphers)
	slices.Sort(exts)
	c := hexList(exts)
	if len(h.sigAlgs) > 0 {
		c += "_" + hexList(h.sigAlgs)
	}
	if len(exts) == 0 {
		c = ""
	}
	return a + "_" + hash12(hexList(ciphers)) + "_" + hash12(c)
}

// ja4s is FoxIO's JA4S of a server hello.
func ja4s(h *hello, ver uint16, proto uint8) string {
	cipher := uint16(0)
	if len(h.ciphers) == 1 {
		cipher = h.ciphers[0]
	}
	return fmt.Sprintf("%s%s%02d%s_%04x_%s", ja4Proto(proto), ja4Version(ver), min(len(h.exts), 99), ja4ALPN(h.alpn), cipher, hash12(hexList(h.exts)))
}

// appendUint16s appends the values of a list of 16-bit values with a
// 16-bit length in front (as TLS extensions hold them), as far as d holds.
func appendUint16s(dst []uint16, d []byte) []uint16 {
	if len(d) < 2 {
		return dst
	}
	for g := d[2:min(len(d), 2+int(binary.BigEndian.Uint16(d)))]; len(g) >= 2; g = g[2:] {
		dst = append(dst, binary.BigEndian.Uint16(g))
	}
	return dst
}
