package pcap

import (
	"strconv"
	"testing"
)

// The reply's Server header is kept with its request; a request's headers
// of the same name are not the server's.
func TestHTTPServerHeader(t *testing.T) {
	tb := newTable("s", "f", 1)
	c := newTestConn(tb)
	h := newHTTP(c, tb)
	c.http = h
	h.deliver(true, []byte("GET /a HTTP/1.1\r\nHost: x\r\nServer: not-the-server\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"))
	h.deliver(false, []byte("HTTP/1.1 200 OK\r\nServer:  Kestrel-C2/0.9 \r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
	tb.end(c)
	if len(tb.http) != 2 {
		t.Fatalf("%d http records", len(tb.http))
	}
	if got := tb.http[0].Server; got != "Kestrel-C2/0.9" {
		t.Errorf("first reply's server %q", got)
	}
	if got := tb.http[1].Server; got != "" {
		t.Errorf("second reply, without the header: server %q", got)
	}
}

// Zeek reads a multipart body as lines and measures each with its CRLF:
// a body whose last line is unterminated measures two bytes more than
// were sent; one that ends in CRLF, what was sent. Other bodies measure
// what was sent.
func TestHTTPMultipartBodyLength(t *testing.T) {
	for _, c := range []struct {
		ctype, body string
		want        uint64
	}{
		{"multipart/form-data; boundary=b", "--b\r\nx\r\n--b--", 15}, // 13 sent
		{"multipart/form-data; boundary=b", "--b\r\nx\r\n--b--\r\n", 15},
		{"Message/rfc822", "a: b\r\n\r\nbody", 14}, // 12 sent
		{"application/octet-stream", "--b\r\nx\r\n--b--", 13},
	} {
		tb := newTable("s", "f", 1)
		cn := newTestConn(tb)
		h := newHTTP(cn, tb)
		cn.http = h
		h.deliver(true, []byte("POST /u HTTP/1.1\r\nHost: x\r\nContent-Type: "+c.ctype+"\r\nContent-Length: "+strconv.Itoa(len(c.body))+"\r\n\r\n"+c.body))
		h.deliver(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		tb.end(cn)
		if len(tb.http) != 1 || tb.http[0].RequestBodyLen.V != c.want {
			t.Errorf("%s body %q: records %+v, want request_body_len %d", c.ctype, c.body, tb.http, c.want)
		}
	}
}

// A multipart reply keeps the bytes sent (Zeek's reply side skips a
// partial last line; not adjusted without its logs to measure against).
func TestHTTPMultipartReplyLength(t *testing.T) {
	tb := newTable("s", "f", 1)
	cn := newTestConn(tb)
	h := newHTTP(cn, tb)
	cn.http = h
	body := "--b\r\nx\r\n--b--"
	h.deliver(true, []byte("GET /r HTTP/1.1\r\nHost: x\r\n\r\n"))
	h.deliver(false, []byte("HTTP/1.1 206 Partial Content\r\nContent-Type: multipart/byteranges; boundary=b\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body))
	tb.end(cn)
	if len(tb.http) != 1 || tb.http[0].ResponseBodyLen.V != uint64(len(body)) {
		t.Errorf("records %+v, want response_body_len %d", tb.http, len(body))
	}
}
