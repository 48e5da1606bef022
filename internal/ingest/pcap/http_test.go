package pcap

import "testing"

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
