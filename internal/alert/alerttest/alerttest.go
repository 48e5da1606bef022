// Package alerttest starts the receivers alerts go to, on loopback, for
// tests: an SMTP server offering STARTTLS (github.com/emersion/go-smtp)
// with a certificate of its own, a syslog receiver over UDP and TCP, and
// a webhook; each keeps what it receives.
package alerttest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Inbox keeps what a receiver got.
type Inbox struct {
	mu   sync.Mutex
	msgs []string
	tls  []bool
}

// Messages returns the messages received so far.
func (b *Inbox) Messages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.msgs...)
}

// Encrypted reports, per message, whether it came over TLS.
func (b *Inbox) Encrypted() []bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]bool(nil), b.tls...)
}

func (b *Inbox) add(m string, isTLS bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, m)
	b.tls = append(b.tls, isTLS)
}

// SMTP starts an SMTP server on loopback; it offers STARTTLS unless
// plain, with a certificate for 127.0.0.1 written to caFile. Each message
// is kept as "MAIL FROM:..\nRCPT TO:a,b\n" and its data.
func SMTP(t testing.TB, plain bool) (addr, caFile string, in *Inbox) {
	t.Helper()
	in = &Inbox{}
	s := smtp.NewServer(backend{in})
	s.Domain = "localhost"
	if !plain {
		cert, ca := SelfSigned(t)
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		caFile = ca
	}
	s.AllowInsecureAuth = plain
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().String(), caFile, in
}

type backend struct{ in *Inbox }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) { return &session{in: b.in, c: c}, nil }

type session struct {
	in   *Inbox
	c    *smtp.Conn
	from string
	to   []string
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = append(s.to, to); return nil }
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.c.TLSConnectionState()
	s.in.add("MAIL FROM:"+s.from+"\nRCPT TO:"+strings.Join(s.to, ",")+"\n"+string(b), isTLS)
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// SelfSigned makes a certificate for 127.0.0.1 and localhost and writes
// it, as the CA to trust, to a file.
func SelfSigned(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, ca
}

// SyslogUDP receives syslog datagrams on loopback.
func SyslogUDP(t testing.TB) (addr string, in *Inbox) {
	t.Helper()
	in = &Inbox{}
	pc, err := new(net.ListenConfig).ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			in.add(string(buf[:n]), false)
		}
	}()
	return pc.LocalAddr().String(), in
}

// SyslogTCP receives octet-counted syslog messages (RFC 6587) on
// loopback.
func SyslogTCP(t testing.TB) (addr string, in *Inbox) {
	t.Helper()
	in = &Inbox{}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					n, err := r.ReadString(' ')
					if err != nil {
						return
					}
					size, err := strconv.Atoi(strings.TrimSpace(n))
					if err != nil || size <= 0 || size > 1<<20 {
						in.add("bad frame "+n, false)
						return
					}
					msg := make([]byte, size)
					if _, err := io.ReadFull(r, msg); err != nil {
						return
					}
					in.add(string(msg), false)
				}
			}()
		}
	}()
	return ln.Addr().String(), in
}

// Webhook receives POSTed alerts; the first fail requests are answered
// 503.
func Webhook(t testing.TB, fail int) (url string, in *Inbox) {
	t.Helper()
	in = &Inbox{}
	var mu sync.Mutex
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		failing := fail > 0
		fail--
		mu.Unlock()
		if failing {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in.add(string(b), r.TLS != nil)
	}))
	t.Cleanup(s.Close)
	return s.URL, in
}
