package pcap

import (
	"bytes"
	"encoding/base64"
)

// gsiFTP follows an FTP control connection authenticated with GSSAPI
// (RFC 2228: GridFTP's GSI): the TLS handshake travels base64-encoded in
// the client's ADAT commands and the server's 335/235 ADAT= replies, and
// is handed to the TLS analyzer as Zeek's FTP analyzer does.
type gsiFTP struct {
	tls  *tlsConn
	line [2][]byte
	done bool
}

const maxFTPLine = 64 << 10

func (g *gsiFTP) deliver(isOrig bool, b []byte) {
	i := b2i(!isOrig)
	for len(b) > 0 && !g.done {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			if len(g.line[i])+len(b) > maxFTPLine {
				g.done = true
				return
			}
			g.line[i] = append(g.line[i], b...)
			return
		}
		line := append(g.line[i], b[:nl]...)
		b = b[nl+1:]
		g.line[i] = g.line[i][:0]
		line = bytes.TrimRight(line, "\r")
		var tok []byte
		switch {
		case isOrig && bytes.HasPrefix(line, []byte("ADAT ")):
			tok = line[5:]
		case !isOrig && (bytes.HasPrefix(line, []byte("335 ADAT=")) || bytes.HasPrefix(line, []byte("235 ADAT="))):
			tok = line[9:]
		default:
			continue
		}
		if dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(tok))); err == nil {
			g.tls.deliver(isOrig, dec)
		}
	}
}

func (g *gsiFTP) gap(bool) { g.done = true }
