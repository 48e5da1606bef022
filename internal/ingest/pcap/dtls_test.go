package pcap

import (
	"strings"
	"testing"
)

// dtlsRecord builds one DTLS 1.2 record of a type and epoch.
func dtlsRecord(typ uint8, epoch uint16, body []byte) []byte {
	r := []byte{typ, 0xfe, 0xfd, byte(epoch >> 8), byte(epoch), 0, 0, 0, 0, 0, 1, byte(len(body) >> 8), byte(len(body))}
	return append(r, body...)
}

// dtlsFragment builds one handshake fragment of a message.
func dtlsFragment(typ uint8, seq uint16, msg []byte, off, n int) []byte {
	l := len(msg)
	h := []byte{typ, byte(l >> 16), byte(l >> 8), byte(l), byte(seq >> 8), byte(seq),
		byte(off >> 16), byte(off >> 8), byte(off), byte(n >> 16), byte(n >> 8), byte(n)}
	return append(h, msg[off:off+n]...)
}

// dtlsHello is a ClientHello (with its empty cookie) or a ServerHello
// choosing TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256.
func dtlsHello(client bool) []byte {
	b := append([]byte{0xfe, 0xfd}, make([]byte, 32)...)
	b = append(b, 0) // session id
	if client {
		b = append(b, 0)                         // cookie
		b = append(b, 0, 4, 0xc0, 0x2b, 0, 0x2f) // ciphers
		return append(b, 1, 0)                   // compression
	}
	return append(b, 0xc0, 0x2b, 0)
}

// A WebRTC-like exchange: STUN first and between the records, the
// ClientHello from the responder cut in two fragments over two datagrams
// and sent again, the server's flight in one datagram, then both sides'
// ChangeCipherSpec and encrypted Finished.
func TestDTLSHandshake(t *testing.T) {
	tb := newTable("s", "f", 1)
	c := newTestConn(tb)
	c.proto = protoUDP
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	ch, sh := dtlsHello(true), dtlsHello(false)
	tb.udpDTLS(c, true, stun)
	tb.udpDTLS(c, false, stun)
	first := dtlsRecord(22, 0, dtlsFragment(1, 0, ch, 0, 20))
	second := dtlsRecord(22, 0, dtlsFragment(1, 0, ch, 20, len(ch)-20))
	tb.udpDTLS(c, false, first)
	tb.udpDTLS(c, true, stun)
	tb.udpDTLS(c, false, second)
	tb.udpDTLS(c, false, append(first, second...)) // sent again
	flight := append(dtlsRecord(22, 0, dtlsFragment(2, 0, sh, 0, len(sh))), dtlsRecord(22, 0, dtlsFragment(14, 1, nil, 0, 0))...)
	tb.udpDTLS(c, true, flight)
	tb.udpDTLS(c, false, append(dtlsRecord(20, 0, []byte{1}), dtlsRecord(22, 1, make([]byte, 40))...))
	tb.udpDTLS(c, true, append(dtlsRecord(20, 0, []byte{1}), dtlsRecord(22, 1, make([]byte, 40))...))
	tb.udpDTLS(c, false, dtlsRecord(23, 1, make([]byte, 100)))
	c.tls.end()
	if len(tb.tls) != 1 {
		t.Fatalf("%d ssl records", len(tb.tls))
	}
	r := tb.tls[0]
	if r.Version != "DTLSv12" || r.Cipher != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" || r.SSLHistory != "^CsnIi" ||
		!r.Established.V || r.Resumed.V || !strings.HasPrefix(r.JA4, "dd2i") {
		t.Errorf("record %+v", r)
	}
	if c.service != "dtls" {
		t.Errorf("service %q", c.service)
	}
}

// A UDP connection whose first datagrams are not DTLS is given up on.
func TestDTLSGivenUp(t *testing.T) {
	tb := newTable("s", "f", 1)
	c := newTestConn(tb)
	for range dtlsWatch {
		tb.udpDTLS(c, true, []byte("not dtls"))
	}
	tb.udpDTLS(c, true, dtlsRecord(22, 0, dtlsFragment(1, 0, dtlsHello(true), 0, len(dtlsHello(true)))))
	if c.tls != nil {
		t.Error("DTLS taken after the watch")
	}
}

// FuzzDTLS feeds arbitrary datagrams from both sides to the DTLS
// analyzer, after a ClientHello that makes the connection DTLS.
func FuzzDTLS(f *testing.F) {
	ch := dtlsRecord(22, 0, dtlsFragment(1, 0, dtlsHello(true), 0, len(dtlsHello(true))))
	f.Add(dtlsRecord(22, 0, dtlsFragment(2, 0, dtlsHello(false), 0, 10)), dtlsRecord(22, 0, dtlsFragment(1, 1, dtlsHello(true), 5, 30)))
	f.Add(dtlsRecord(20, 0, []byte{1}), dtlsRecord(21, 0, []byte{2, 40}))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		tb := newTable("s", "f", 1)
		c := newTestConn(tb)
		c.proto = protoUDP
		tb.udpDTLS(c, true, ch)
		tb.udpDTLS(c, false, a)
		tb.udpDTLS(c, true, b)
		tb.udpDTLS(c, false, b)
		tb.end(c)
	})
}

// Fragments of messages larger than a direction's budget are not held.
func TestDTLSHeldBounded(t *testing.T) {
	tb := newTable("s", "f", 1)
	c := newTestConn(tb)
	c.proto = protoUDP
	ch := dtlsHello(true)
	tb.udpDTLS(c, true, dtlsRecord(22, 0, dtlsFragment(1, 0, ch, 0, len(ch))))
	big := make([]byte, maxDTLSHeld-100)
	tb.udpDTLS(c, false, dtlsRecord(22, 0, dtlsFragment(11, 5, big, 0, 10)))
	tb.udpDTLS(c, false, dtlsRecord(22, 0, dtlsFragment(11, 6, big, 0, 10)))
	d := c.tls.dtls
	if len(d.pending[1]) != 1 || d.held[1] != len(big) {
		t.Errorf("held %d bytes in %d messages", d.held[1], len(d.pending[1]))
	}
}
