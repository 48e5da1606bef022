package pcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
	"github.com/dwell-nsm/dwell/internal/ingest/capture/capturetest"
)

// seeds returns small real captures for the fuzz corpora.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, g := range []string{"zeek-btest-pcap-to-logs/traces/dns/*.pcap", "zeek-btest-pcap-to-logs/traces/http/get.pcap",
		"zeek-btest-pcap-to-logs/traces/q-in-q.pcap", "zeek-btest-pcap-to-logs/traces/irc-dcc-send.pcapng",
		"chrissanders-packets/dns_tcp.pcapng", "chrissanders-packets/ipv4frags.pcap"} {
		files, _ := filepath.Glob(filepath.Join(datasets, g))
		for _, p := range files[:min(len(files), 4)] {
			if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
				out = append(out, data)
			}
		}
	}
	return out
}

// FuzzSource feeds arbitrary captures through the ingest Source: it never
// panics, ends, and never reports a position past its input.
func FuzzSource(f *testing.F) {
	for i, s := range seeds(f) {
		f.Add(s)
		if i == 0 {
			f.Add(capturetest.ToPcapNG(f, s, binary.BigEndian))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &ingest.Input{Path: "fuzz.pcap", Head: data[:min(len(data), event.HeadSize)], Final: true}
		src, err := open(bytes.NewReader(data), in)
		if err != nil {
			return
		}
		var b event.Batch
		for range 100000 {
			err := src.Next(context.Background(), &b, 100)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if p := src.Position(); p.Offset > int64(len(data)) {
			t.Fatalf("position %d past the end (%d)", p.Offset, len(data))
		}
		for i := range b.Conns {
			if c := &b.Conns[i]; c.UID == "" || c.Proto == "" {
				t.Fatalf("conn record without uid or proto: %+v", c)
			}
		}
	})
}

// FuzzDNS parses arbitrary DNS messages.
func FuzzDNS(f *testing.F) {
	f.Add([]byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"))
	f.Add([]byte("\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x07example\x03com\x00\x00\x10\x00\x01\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x04\x03abc"))
	f.Add([]byte("\x00\x00\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseDNS(b)
		if err == nil && len(m.answers) != len(m.ttls) {
			t.Fatalf("%d answers, %d TTLs", len(m.answers), len(m.ttls))
		}
	})
}

// FuzzIP decodes arbitrary IP datagrams, fragments included.
func FuzzIP(f *testing.F) {
	f.Add([]byte("\x45\x00\x00\x1c\x00\x01\x20\x00\x40\x11\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x35\x00\x35\x00\x08\x00\x00"))
	f.Add([]byte("\x60\x00\x00\x00\x00\x10\x2c\x40" + string(make([]byte, 32)) + "\x11\x00\x00\x01\x00\x00\x00\x07\x00\x35\x00\x35\x00\x08\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newReassembler()
		tb := newTable("s", "f", 1)
		for range 3 {
			var p packet
			if err := decodeIP(b, &p, r); err == nil {
				if len(p.l4) > 65535+40 {
					t.Fatalf("datagram of %d bytes", len(p.l4))
				}
				tb.packet(&p)
			}
		}
		tb.flush()
	})
}

// newTestConn returns a TCP connection for feeding an analyzer directly.
func newTestConn(tb *table) *conn {
	c := &conn{orig: mustAddr("10.0.0.1"), resp: mustAddr("192.0.2.1"), origPort: 40000, respPt: 80, proto: protoTCP}
	c.uid = uid(1, c)
	tb.conns[makeKey(c.orig, c.resp, c.origPort, c.respPt, protoTCP)] = c
	return c
}

// FuzzHTTP feeds arbitrary request and reply streams, cut at an
// arbitrary point, to the HTTP analyzer.
func FuzzHTTP(f *testing.F) {
	f.Add([]byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), uint8(7))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n\x1f\x8b\x08"), uint8(3))
	f.Add([]byte("GET /zeek.html\n"), []byte("<html>hi</html>"), uint8(0))
	f.Add([]byte("GET /a HTTP/1.1\r\nRange: bytes=0-\r\n\r\nGET /a HTTP/1.1\r\nRange: bytes=3-\r\n\r\n"),
		[]byte("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-2/6\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 206 Partial Content\r\nContent-Range: bytes 3-5/6\r\nContent-Length: 3\r\n\r\ndef"), uint8(40))
	f.Fuzz(func(t *testing.T, req, rep []byte, cut uint8) {
		tb := newTable("s", "f", 1)
		c := newTestConn(tb)
		h := newHTTP(c, tb)
		c.http = h
		k := min(int(cut), len(req))
		h.deliver(true, req[:k])
		h.deliver(false, rep)
		h.deliver(true, req[k:])
		// Each side's FIN, in an order the cut chooses.
		h.eof(cut&1 == 0)
		h.eof(cut&1 != 0)
		tb.end(c)
		tb.endRangeFiles()
		for _, r := range tb.http {
			if r.UID != c.uid {
				t.Fatalf("record of another connection: %+v", r)
			}
		}
	})
}

// FuzzTLS feeds arbitrary client and server streams to the TLS analyzer,
// certificates included.
func FuzzTLS(f *testing.F) {
	dir := filepath.Join(datasets, "zeek-btest-pcap-to-logs/traces/tls")
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap"))
	for _, p := range files[:min(len(files), 4)] {
		data, err := os.ReadFile(p)
		if err != nil || len(data) > 256<<10 {
			continue
		}
		var cli, srv []byte
		capturetest.Each(f, p, data, func(pk capture.Packet) {
			ip, ok := capture.Network(pk.Link, pk.Data)
			var q packet
			if !ok || decodeIP(ip, &q, newReassembler()) != nil || q.proto != protoTCP || len(q.l4) < 20 {
				return
			}
			off := int(q.l4[12]>>4) * 4
			if off > len(q.l4) {
				return
			}
			if binary.BigEndian.Uint16(q.l4[2:]) == 443 {
				cli = append(cli, q.l4[off:]...)
			} else {
				srv = append(srv, q.l4[off:]...)
			}
		})
		f.Add(cli[:min(len(cli), 4096)], srv[:min(len(srv), 8192)])
	}
	f.Fuzz(func(t *testing.T, cli, srv []byte) {
		tb := newTable("s", "f", 1)
		c := newTestConn(tb)
		s := newTLS(c, tb)
		c.tls = s
		s.deliver(true, cli)
		s.deliver(false, srv)
		s.deliver(true, cli)
		tb.end(c)
	})
}

// FuzzX509 parses arbitrary certificates.
func FuzzX509(f *testing.F) {
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		x := parseX509(der)
		_ = certMatches(&x, "example.com")
	})
}
