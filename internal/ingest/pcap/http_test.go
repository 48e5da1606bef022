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

// A multipart reply with a Content-Length keeps the bytes sent: no Zeek
// log here shows how Zeek measures one, so it is not adjusted.
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

// A reply read to the close without Connection: close is read by Zeek as
// lines, each measured with a CRLF: a last line without its end counts
// two bytes more, a line ended by a CR or LF alone one more. With
// Connection: close it is read whole, as sent.
func TestHTTPLineBodyLength(t *testing.T) {
	for _, c := range []struct {
		head, body string
		want       uint64
	}{
		{"HTTP/1.1 200 OK\r\n", "Hello World!\r\nData", 20},     // 18 sent
		{"HTTP/1.1 200 OK\r\n", "a\nb\n", 6},                    // 4 sent
		{"HTTP/1.1 200 OK\r\n", "a\r\rb\r\n", 8},                // 6 sent
		{"HTTP/1.1 200 OK\r\n", "ends with CR\r", 14},           // 13 sent
		{"HTTP/1.0 200 OK\r\n", "x\r\n", 3},                     // as sent
		{"HTTP/1.1 200 OK\r\nConnection: close\r\n", "a\nb", 3}, // read whole
		{"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\n", "a\nb", 6},
	} {
		tb := newTable("s", "f", 1)
		cn := newTestConn(tb)
		h := newHTTP(cn, tb)
		cn.http = h
		h.deliver(true, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		h.deliver(false, []byte(c.head+"\r\n"))
		// The body in two pieces, one byte then the rest, so that a CRLF
		// across deliveries is seen too.
		h.deliver(false, []byte(c.body[:1]))
		h.deliver(false, []byte(c.body[1:]))
		tb.end(cn)
		if len(tb.http) != 1 || tb.http[0].ResponseBodyLen.V != c.want {
			t.Errorf("%q then %q: records %+v, want response_body_len %d", c.head, c.body, tb.http, c.want)
		}
	}
}

// After an HTTP/0.9 exchange whose server closes first, the client's
// close ends its request message when its transaction is already logged:
// Zeek then logs a second, empty record (trans_depth 2). When the client
// closes first there is none.
func TestHTTP09ClosedByServer(t *testing.T) {
	for _, serverFirst := range []bool{true, false} {
		tb := newTable("s", "f", 1)
		cn := newTestConn(tb)
		h := newHTTP(cn, tb)
		cn.http = h
		h.deliver(true, []byte("GET /zeek.html\r\n"))
		h.deliver(false, []byte("<html>hello</html>\n"))
		h.eof(!serverFirst)
		h.eof(serverFirst)
		tb.end(cn)
		want := 1
		if serverFirst {
			want = 2
		}
		if len(tb.http) != want {
			t.Fatalf("server first %t: %d records, want %d: %+v", serverFirst, len(tb.http), want, tb.http)
		}
		r := tb.http[0]
		if r.Method != "GET" || r.Version != "0.9" || r.ResponseBodyLen.V != 19 || r.StatusCode.V != 0 || r.TransDepth.V != 1 {
			t.Errorf("the exchange: %+v", r)
		}
		if serverFirst {
			if e := tb.http[1]; e.TransDepth.V != 2 || e.Method != "" || e.URI != "" || e.StatusCode.Valid || e.ResponseBodyLen.V != 0 {
				t.Errorf("the empty record: %+v", e)
			}
		}
	}
}

// An HTTP/0.9 request while a reply that came first is still under way:
// that reply ends with what it got, and the server's next bytes are the
// raw reply to the 0.9 request (Zeek's http-09-content-length-confusion).
func TestHTTP09DuringReply(t *testing.T) {
	tb := newTable("s", "f", 1)
	cn := newTestConn(tb)
	h := newHTTP(cn, tb)
	cn.http = h
	h.deliver(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"))
	h.deliver(true, []byte("GET /\r\n\r\n"))
	h.deliver(false, []byte("this is too much.\r\n"))
	h.eof(true)
	h.eof(false)
	tb.end(cn)
	if len(tb.http) != 2 {
		t.Fatalf("%d records: %+v", len(tb.http), tb.http)
	}
	first, second := tb.http[0], tb.http[1]
	if first.TransDepth.V != 1 || first.Method != "" || first.StatusCode.V != 200 || first.ResponseBodyLen.V != 0 {
		t.Errorf("the reply that came first: %+v", first)
	}
	if second.TransDepth.V != 2 || second.Method != "GET" || second.Version != "0.9" || second.ResponseBodyLen.V != 19 {
		t.Errorf("the 0.9 exchange: %+v", second)
	}
}
