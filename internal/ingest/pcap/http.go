package pcap

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// httpConn parses HTTP/1.x on one TCP connection into http.log records,
// as Zeek does: requests and replies paired in order (pipelining gives
// trans_depth 2, 3, ...), interim 1xx replies kept as info_code, bodies
// measured after de-chunking, and each body a file (files.log) with its
// hashes and MIME type. A CONNECT that succeeds and a protocol upgrade
// end the parsing: what follows is not HTTP.
type httpConn struct {
	c       *conn
	t       *table
	p       [2]httpParser // requests (0) and replies (1)
	pending []*httpTxn
	depth   int
	done    bool
	closing bool // a reply said Connection: close (Zeek's flag, kept for the connection)
}

type httpTxn struct {
	rec        event.HTTP
	head       bool // a HEAD request: its reply has no body
	connect    bool
	v09        bool // HTTP/0.9: the reply is the body alone
	reqDone    bool
	files      [2]*fileState
	replyFirst bool // a reply that came without a request
	rangeReq   bool // the request asked for a range of the resource
}

// Parser states.
const (
	httpLine = iota
	httpHeaders
	httpBody
	httpChunkSize
	httpChunkData
	httpChunkEnd
	httpTrailers
	httpUntilClose
)

type httpParser struct {
	state   int
	line    []byte
	remain  int64
	txn     *httpTxn
	hdr     msgHeaders
	encoded []byte // a gzip or deflate body, decoded at its end
	dead    bool   // the side sent something that is not HTTP: ignored from then on
}

const (
	maxEncodedBody = 8 << 20  // encoded bodies decoded up to this size
	maxDecodedBody = 64 << 20 // and to at most this much (a decompression bomb stops there)
)

// decodeBody undoes a body's content encoding; what cannot be decoded is
// returned as far as it was.
func decodeBody(enc string, b []byte) []byte {
	var r io.Reader
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return b
		}
		zr.Multistream(true)
		r = zr
	case "deflate":
		// Servers send zlib-wrapped or raw deflate alike.
		if zr, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(b))
		}
	default:
		return b
	}
	out, _ := io.ReadAll(io.LimitReader(r, maxDecodedBody))
	return out
}

// msgHeaders are the headers one message gave that the log keeps.
type msgHeaders struct {
	length        int64 // Content-Length, -1 when absent
	chunked       bool
	disposition   string
	encoding      string
	sawHeaderLine int
	// A multipart or message body, which Zeek reads as lines and
	// measures as each line and a CRLF: a request's that does not end in
	// CRLF counts two bytes more than were sent. last holds its last two
	// bytes.
	lines bool
	last  [2]byte
	// A reply read to the close without Connection: close and without
	// compression, which Zeek also reads as lines (CRLF, CR or LF ending
	// each) and measures as each line and a CRLF: extra counts the bytes
	// that adds, cr that the last byte was a CR.
	lineBody bool
	cr       bool
	extra    uint64
	// A 206 reply's Content-Range to a request for a range: the body is
	// a piece of a file fetched in ranges (rangefile.go), placed at
	// rangeFrom, of rangeTotal bytes (-1 unknown); rangeAt counts what
	// came so far.
	ranged     bool
	rangeFrom  int64
	rangeTotal int64
	rangeAt    int64
}

const (
	maxHTTPLine    = 16 << 10
	maxHTTPHeaders = 256
)

func newHTTP(c *conn, t *table) *httpConn { return &httpConn{c: c, t: t} }

// looksHTTP reports whether a connection's first bytes from one side are
// HTTP: a request line from the originator, a status line from the responder.
func looksHTTP(isOrig bool, b []byte) bool {
	if !isOrig {
		return bytes.HasPrefix(b, []byte("HTTP/1.")) || bytes.HasPrefix(b, []byte("HTTP/0.9"))
	}
	for _, m := range []string{"GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "CONNECT ", "TRACE ", "PATCH ",
		"PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ", "MOVE ", "LOCK ", "UNLOCK ", "SEARCH ", "REPORT ", "SUBSCRIBE ", "NOTIFY "} {
		if bytes.HasPrefix(b, []byte(m)) || (len(b) < len(m) && strings.HasPrefix(m, string(b))) {
			return true
		}
	}
	return false
}

func (h *httpConn) gap(isOrig bool) {
	// After lost bytes the message boundaries are unknown: stop, as
	// Zeek's HTTP analyzer does on a content gap.
	h.stop()
}

func (h *httpConn) stop() { h.done = true }

// deliver implements analyzer.
func (h *httpConn) deliver(isOrig bool, b []byte) {
	i := b2i(!isOrig)
	p := &h.p[i]
	for len(b) > 0 && !h.done && !p.dead {
		switch p.state {
		case httpLine, httpHeaders, httpChunkSize, httpChunkEnd, httpTrailers:
			nl := bytes.IndexByte(b, '\n')
			if nl < 0 {
				if len(p.line)+len(b) > maxHTTPLine {
					h.stop()
					return
				}
				p.line = append(p.line, b...)
				return
			}
			line := b[:nl]
			if len(p.line) > 0 {
				p.line = append(p.line, line...)
				line = p.line
			}
			b = b[nl+1:]
			line = bytes.TrimSuffix(line, []byte("\r"))
			h.lineIn(isOrig, p, line)
			p.line = p.line[:0]
		case httpBody, httpChunkData:
			n := min(int64(len(b)), p.remain)
			h.body(isOrig, p, b[:n])
			b = b[n:]
			p.remain -= n
			if p.remain == 0 {
				if p.state == httpChunkData {
					p.state = httpChunkEnd
				} else {
					h.messageEnd(isOrig, p)
				}
			}
		case httpUntilClose:
			h.body(isOrig, p, b)
			return
		}
	}
}

// lineIn handles one line of a message's head or chunk framing.
func (h *httpConn) lineIn(isOrig bool, p *httpParser, line []byte) {
	switch p.state {
	case httpLine:
		if len(line) == 0 {
			return // blank lines between messages
		}
		if isOrig {
			h.requestLine(p, line)
		} else {
			h.statusLine(p, line)
		}
	case httpHeaders:
		if len(line) == 0 {
			h.headersEnd(isOrig, p)
			return
		}
		p.hdr.sawHeaderLine++
		if p.hdr.sawHeaderLine > maxHTTPHeaders {
			h.stop()
			return
		}
		h.header(isOrig, p, line)
	case httpChunkSize:
		s := string(line)
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 16, 64)
		if err != nil || n < 0 {
			h.stop()
			return
		}
		if n == 0 {
			p.state = httpTrailers
			return
		}
		p.state, p.remain = httpChunkData, n
	case httpChunkEnd:
		p.state = httpChunkSize
	case httpTrailers:
		if len(line) == 0 {
			h.messageEnd(isOrig, p)
		}
	}
}

func (h *httpConn) requestLine(p *httpParser, line []byte) {
	f := strings.SplitN(strings.TrimRight(string(line), " "), " ", 3)
	if len(f) == 3 {
		f[2] = strings.TrimSpace(f[2])
		if !strings.HasPrefix(f[2], "HTTP/") {
			// A space inside the URI: the version is the last word.
			if i := strings.LastIndexByte(f[2], ' '); i >= 0 && strings.HasPrefix(f[2][i+1:], "HTTP/") {
				f[1], f[2] = f[1]+" "+f[2][:i], f[2][i+1:]
			} else {
				f = []string{f[0], f[1] + " " + f[2]}
			}
		}
	}
	if len(f) == 2 && strings.HasPrefix(f[1], "HTTP/") {
		f = []string{f[0], "", f[1]} // no URI
	}
	if len(f) < 2 || !isToken(f[0]) {
		// Not a request: the requests are lost from here on, but the
		// replies are still read, as Zeek does.
		p.dead = true
		return
	}
	h.depth++
	t := &httpTxn{}
	t.rec = h.newRecord()
	t.rec.TransDepth = event.Some(uint64(h.depth)) //nolint:gosec // G115: a count
	t.rec.Method, t.rec.URI = f[0], unescapeURI(f[1])
	t.head, t.connect = f[0] == "HEAD", f[0] == "CONNECT"
	if len(f) == 2 {
		t.v09, t.rec.Version = true, "0.9"
	}
	h.pending = append(h.pending, t)
	p.txn = t
	p.hdr = msgHeaders{length: -1}
	if r := &h.p[1]; t.v09 && r.txn != nil && r.state != httpLine && len(h.pending) == 2 && h.pending[0] == r.txn {
		// A reply still under way when an HTTP/0.9 request comes: Zeek
		// ends it with what it got, and what the server sends next is the
		// raw reply to this request.
		h.messageEnd(false, r)
	}
	if r := &h.p[1]; t.v09 && r.state == httpLine && r.txn == nil && len(h.pending) == 1 {
		// The reply to HTTP/0.9 is its body alone, up to the close.
		t.rec.StatusCode, t.rec.StatusMsg = event.Some(uint64(0)), "<empty>"
		r.txn, r.state, r.hdr = t, httpUntilClose, msgHeaders{length: -1}
	}
	p.state = httpHeaders
}

// isToken reports whether s is an HTTP token (RFC 9110 tchar).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// unescapeURI decodes %XX escapes, as Zeek's http.log shows URIs; a
// malformed escape is kept as it is.
func unescapeURI(u string) string {
	if strings.IndexByte(u, '%') < 0 {
		return u
	}
	b := make([]byte, 0, len(u))
	for i := 0; i < len(u); i++ {
		if u[i] == '%' && i+2 < len(u) {
			if x, err := hex.DecodeString(u[i+1 : i+3]); err == nil {
				b = append(b, x[0])
				i += 2
				continue
			}
		}
		b = append(b, u[i])
	}
	return string(b)
}

func (h *httpConn) newRecord() event.HTTP {
	c := h.c
	return event.HTTP{TS: event.Micro(h.t.now), UID: c.uid, SrcIP: c.orig, SrcPort: c.origPort, DstIP: c.resp, DstPort: c.respPt,
		RequestBodyLen: event.Some(uint64(0)), ResponseBodyLen: event.Some(uint64(0)), Src: h.t.source(h.t.num)}
}

// current returns the transaction a reply answers: the oldest request
// without a reply, or a new transaction for a reply without request.
func (h *httpConn) current() *httpTxn {
	if len(h.pending) > 0 {
		return h.pending[0]
	}
	h.depth++
	t := &httpTxn{rec: h.newRecord(), replyFirst: true, reqDone: true}
	t.rec.TransDepth = event.Some(uint64(h.depth)) //nolint:gosec // G115: a count
	h.pending = append(h.pending, t)
	return t
}

func (h *httpConn) statusLine(p *httpParser, line []byte) {
	t := h.current()
	p.txn = t
	p.hdr = msgHeaders{length: -1}
	s := string(line)
	if !strings.HasPrefix(s, "HTTP/") {
		h.stop()
		return
	}
	ver, rest, _ := strings.Cut(s[5:], " ")
	code, msg, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 || n > 999 {
		h.stop()
		return
	}
	if n >= 100 && n < 200 && n != 101 {
		t.rec.InfoCode, t.rec.InfoMsg = event.Some(uint64(n)), msg
	} else {
		t.rec.StatusCode, t.rec.StatusMsg = event.Some(uint64(n)), msg
	}
	t.rec.Version = ver
	p.state = httpHeaders
}

func (h *httpConn) header(isOrig bool, p *httpParser, line []byte) {
	name, val, ok := strings.Cut(string(line), ":")
	if !ok {
		return
	}
	name, val = strings.ToUpper(strings.TrimSpace(name)), strings.TrimSpace(val)
	r := &p.txn.rec
	switch name {
	case "CONTENT-LENGTH":
		if n, err := strconv.ParseInt(val, 10, 64); err == nil && n >= 0 {
			p.hdr.length = n
		}
	case "TRANSFER-ENCODING":
		p.hdr.chunked = strings.Contains(strings.ToLower(val), "chunked")
	case "CONTENT-DISPOSITION":
		p.hdr.disposition = val
	case "CONTENT-ENCODING":
		p.hdr.encoding = strings.ToLower(val)
	case "CONTENT-TYPE":
		v := strings.ToLower(val)
		p.hdr.lines = strings.HasPrefix(v, "multipart/") || strings.HasPrefix(v, "message/")
	case "CONTENT-RANGE":
		if first, total, ok := parseContentRange(val); ok && !isOrig && p.txn.rangeReq && p.txn.rec.StatusCode.V == 206 {
			p.hdr.ranged, p.hdr.rangeFrom, p.hdr.rangeTotal = true, first, total
		}
	}
	if !isOrig {
		switch name {
		case "SERVER":
			r.Server = val
		case "CONNECTION":
			h.closing = h.closing || strings.EqualFold(firstToken(val), "close")
		}
		return
	}
	switch name {
	case "RANGE":
		p.txn.rangeReq = true
	case "HOST":
		r.Host = val
	case "REFERER":
		r.Referrer = val
	case "USER-AGENT":
		r.UserAgent = val
	case "ORIGIN":
		r.Origin = val
	case "AUTHORIZATION":
		if kind, cred, ok := strings.Cut(val, " "); ok && strings.EqualFold(kind, "basic") {
			if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred)); err == nil {
				u, pw, _ := strings.Cut(string(dec), ":")
				r.Username, r.Password = u, pw
			}
		}
	case "FORWARDED", "X-FORWARDED-FOR", "X-FORWARDED-FROM", "CLIENT-IP", "VIA", "XROXY-CONNECTION", "PROXY-CONNECTION":
		r.Proxied = append(r.Proxied, name+" -> "+val)
	}
}

// headersEnd decides how the message's body is framed.
func (h *httpConn) headersEnd(isOrig bool, p *httpParser) {
	t := p.txn
	if !isOrig {
		code := int(t.rec.StatusCode.V) //nolint:gosec // G115: at most 999
		if t.rec.InfoCode.Valid && !t.rec.StatusCode.Valid {
			p.state = httpLine // an interim reply: the real one follows
			return
		}
		switch {
		case code == 101 || (t.connect && code >= 200 && code < 300):
			h.messageEnd(false, p)
			h.stop() // the connection is no longer HTTP
			return
		case t.head || code == 204 || code == 304 || (code >= 100 && code < 200):
			h.messageEnd(false, p)
			return
		}
	}
	switch {
	case p.hdr.chunked:
		p.state = httpChunkSize
	case p.hdr.length > 0:
		p.state, p.remain = httpBody, p.hdr.length
	case p.hdr.length == 0 || isOrig:
		h.messageEnd(isOrig, p)
	default:
		p.state = httpUntilClose
		e := p.hdr.encoding
		p.hdr.lineBody = !h.closing && !p.hdr.lines && e != "gzip" && e != "x-gzip" && e != "deflate"
	}
}

// firstToken returns a header value's first token (up to a comma,
// semicolon or blank), as Zeek's get_value_token.
func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, ",; \t"); i >= 0 {
		v = v[:i]
	}
	return v
}

// countLines adds to extra what Zeek's line-by-line measure adds to the
// bytes of b: a line ended by a lone CR or LF counts one byte more.
func (m *msgHeaders) countLines(b []byte) {
	for _, c := range b {
		switch {
		case c == '\n' && m.cr:
			m.cr = false
		case c == '\n':
			m.extra++
		default:
			if m.cr {
				m.extra++
			}
			m.cr = c == '\r'
		}
	}
}

// body takes bytes of a message's body.
func (h *httpConn) body(isOrig bool, p *httpParser, b []byte) {
	if len(b) == 0 || p.txn == nil {
		return
	}
	if p.hdr.encoding == "gzip" || p.hdr.encoding == "x-gzip" || p.hdr.encoding == "deflate" {
		// Zeek measures and hashes the decoded body: keep the encoded
		// one (bounded) and decode it at the end of the message.
		if len(p.encoded)+len(b) <= maxEncodedBody {
			p.encoded = append(p.encoded, b...)
			return
		}
		p.hdr.encoding = "" // too large to decode: measured as sent
		b = append(p.encoded, b...)
		p.encoded = nil
	}
	h.bodyData(isOrig, p, b)
}

// bodyData takes decoded bytes of a message's body.
func (h *httpConn) bodyData(isOrig bool, p *httpParser, b []byte) {
	t := p.txn
	if len(b) == 0 {
		return
	}
	i := b2i(!isOrig)
	if isOrig {
		t.rec.RequestBodyLen.V += uint64(len(b))
	} else {
		t.rec.ResponseBodyLen.V += uint64(len(b))
	}
	if p.hdr.lineBody {
		p.hdr.countLines(b)
	}
	if len(b) >= 2 {
		p.hdr.last = [2]byte{b[len(b)-2], b[len(b)-1]}
	} else {
		p.hdr.last = [2]byte{p.hdr.last[1], b[0]}
	}
	if p.hdr.ranged && !isOrig {
		// A piece of a file fetched in ranges, kept across replies.
		rf := h.t.rangeFile(h.c, t.rec.Host+t.rec.URI, p.hdr.rangeTotal)
		if p.hdr.rangeAt == 0 && !slices.Contains(t.rec.RespFUIDs, rf.rec.FUID) {
			t.rec.RespFUIDs = append(t.rec.RespFUIDs, rf.rec.FUID)
		}
		h.t.writeRange(rf, p.hdr.rangeFrom+p.hdr.rangeAt, b)
		p.hdr.rangeAt += int64(len(b))
		return
	}
	f := t.files[i]
	if f == nil {
		f = h.t.newFile(h.c, isOrig, "HTTP", uint64(h.depth), p.hdr.length) //nolint:gosec // G115: a count
		f.filename = dispositionName(p.hdr.disposition)
		t.files[i] = f
	}
	f.write(b, h.t.now)
}

// messageEnd closes a request or a reply; a transaction whose reply
// ended is logged.
func (h *httpConn) messageEnd(isOrig bool, p *httpParser) {
	t := p.txn
	if t != nil && len(p.encoded) > 0 {
		h.bodyData(isOrig, p, decodeBody(p.hdr.encoding, p.encoded))
	}
	p.encoded = p.encoded[:0]
	p.state, p.txn = httpLine, nil
	if t == nil {
		return
	}
	if n := &t.rec.RequestBodyLen.V; isOrig && p.hdr.lines && *n > 0 && p.hdr.last != [2]byte{'\r', '\n'} {
		// Zeek's last line of a multipart or message request body,
		// unterminated, measured with its CRLF. (No Zeek log here shows
		// a multipart reply's, so replies keep the bytes sent.)
		*n += 2
	}
	if m := &p.hdr; m.lineBody && t.rec.ResponseBodyLen.V > 0 {
		switch {
		case m.cr:
			m.extra++ // a last line ended by a CR alone
		case m.last[1] != '\n':
			m.extra += 2 // a last line without its end, delivered at the close
		}
		t.rec.ResponseBodyLen.V += m.extra
	}
	i := b2i(!isOrig)
	if f := t.files[i]; f != nil {
		h.endFile(t, i)
	}
	if isOrig {
		t.reqDone = true
		return
	}
	for j, x := range h.pending {
		if x == t {
			h.pending = append(h.pending[:j], h.pending[j+1:]...)
			break
		}
	}
	h.c.service = "http"
	h.t.http = append(h.t.http, t.rec)
}

// endFile ends the file of a transaction's request (side 0) or reply
// (side 1) and names it in the transaction's record.
func (h *httpConn) endFile(t *httpTxn, side int) {
	rec := h.t.endFile(t.files[side])
	t.files[side] = nil
	if side == 0 {
		t.rec.OrigFUIDs = append(t.rec.OrigFUIDs, rec.FUID)
		t.rec.OrigMIMETypes = appendIf(t.rec.OrigMIMETypes, rec.MIMEType)
		t.rec.OrigFilenames = appendIf(t.rec.OrigFilenames, rec.Filename)
		return
	}
	t.rec.RespFUIDs = append(t.rec.RespFUIDs, rec.FUID)
	t.rec.RespMIMETypes = appendIf(t.rec.RespMIMETypes, rec.MIMEType)
	t.rec.RespFilenames = appendIf(t.rec.RespFilenames, rec.Filename)
}

func appendIf(l []string, s string) []string {
	if s == "" {
		return l
	}
	return append(l, s)
}

// eof implements eofer. A reply read to the close ends with the server's
// FIN. A request still open at the client's FIN (an HTTP/0.9 request,
// whose head has no end) ends there; when its transaction was already
// logged, Zeek starts another record, with the next trans_depth and
// nothing else, logged at the connection's end: so does this.
func (h *httpConn) eof(isOrig bool) {
	p := &h.p[b2i(!isOrig)]
	t := p.txn
	if h.done || t == nil || p.state == httpLine {
		return
	}
	if !isOrig {
		h.messageEnd(false, p)
		return
	}
	logged := true
	for _, x := range h.pending {
		logged = logged && x != t
	}
	h.messageEnd(true, p)
	if logged {
		h.depth++
		x := &httpTxn{rec: h.newRecord(), reqDone: true}
		x.rec.TransDepth = event.Some(uint64(h.depth)) //nolint:gosec // G115: a count
		x.rec.RequestBodyLen = t.rec.RequestBodyLen
		h.pending = append(h.pending, x)
	}
}

// end logs what is left at the connection's end: bodies read to the
// close, requests without a reply.
func (h *httpConn) end() {
	for i := range h.p {
		p := &h.p[i]
		if p.txn != nil && (p.state == httpUntilClose || p.state == httpBody || p.state == httpChunkData || p.state == httpChunkSize) {
			h.messageEnd(i == 0, p)
		}
	}
	for _, t := range h.pending {
		for i, f := range t.files {
			if f != nil {
				h.endFile(t, i)
			}
		}
		h.t.http = append(h.t.http, t.rec)
	}
	h.pending = nil
}

// dispositionName returns the file name a Content-Disposition header gives.
func dispositionName(v string) string {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "filename") {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}
