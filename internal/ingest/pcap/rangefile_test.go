package pcap

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		v            string
		first, total int64
		ok           bool
	}{
		{"bytes 0-10000/104857600", 0, 104857600, true},
		{"Bytes 100-199/*", 100, -1, true},
		{"bytes 5-4/10", 0, 0, false},
		{"bytes 0-9/9", 0, 0, false},
		{"items 0-9/10", 0, 0, false},
		{"bytes */10", 0, 0, false},
		{"bytes -1-5/10", 0, 0, false},
	} {
		first, total, ok := parseContentRange(c.v)
		if ok != c.ok || (ok && (first != c.first || total != c.total)) {
			t.Errorf("%q: %d %d %t", c.v, first, total, ok)
		}
	}
}

// rangedExchange sends one request for a range of url on its own
// connection and the 206 reply with body at the range's offset.
func rangedExchange(tb *table, port uint16, url string, from int, body string, total int) {
	c := newTestConn(tb)
	c.origPort, c.uid = port, fmt.Sprintf("C%d", port)
	h := newHTTP(c, tb)
	h.deliver(true, []byte("GET "+url+" HTTP/1.1\r\nHost: files.example\r\nRange: bytes="+fmt.Sprint(from)+"-\r\n\r\n"))
	h.deliver(false, []byte(fmt.Sprintf("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n%s",
		from, from+len(body)-1, total, len(body), body)))
	h.end()
}

// Pieces of one URL over several connections are one file: a record per
// connection with the whole file's bytes; the file that came whole ends
// at once, not timed out; one with a gap ends at the capture's end,
// timed out, its gap counted missing.
func TestRangeFiles(t *testing.T) {
	tb := newTable("s", "f", 1)
	tb.now = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	rangedExchange(tb, 40001, "/whole.bin", 0, "MZ0123", 10)
	rangedExchange(tb, 40002, "/whole.bin", 6, "4567", 10)
	if len(tb.files) != 2 {
		t.Fatalf("the whole file: %d records, want one per connection", len(tb.files))
	}
	for _, f := range tb.files {
		if f.SeenBytes.V != 10 || f.MissingBytes.V != 0 || f.TotalBytes.V != 10 || f.TimedOut.V || f.MIMEType != "application/x-dosexec" ||
			f.FUID != tb.files[0].FUID || f.MD5 != "" {
			t.Errorf("whole file record %+v", f)
		}
	}
	if tb.files[0].UID == tb.files[1].UID {
		t.Error("both records name one connection")
	}
	rangedExchange(tb, 40003, "/gap.bin", 0, "abc", 100)
	rangedExchange(tb, 40004, "/gap.bin", 50, "xyz", 100)
	tb.endRangeFiles()
	if len(tb.files) != 4 {
		t.Fatalf("%d records", len(tb.files))
	}
	if f := tb.files[3]; f.SeenBytes.V != 6 || f.MissingBytes.V != 47 || !f.TimedOut.V || f.TotalBytes.V != 100 {
		t.Errorf("file with a gap %+v", f)
	}
}

// A file idle past the timeout ends when the next ranged file starts,
// and no more than maxRangeFiles stay open.
func TestRangeFilesBounded(t *testing.T) {
	tb := newTable("s", "f", 1)
	tb.now = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	rangedExchange(tb, 40001, "/old.bin", 0, "abc", 100)
	tb.now = tb.now.Add(rangeTimeout + time.Second)
	rangedExchange(tb, 40002, "/new.bin", 0, "abc", 100)
	if len(tb.files) != 1 || tb.files[0].UID != "C40001" || len(tb.ranged) != 1 {
		t.Fatalf("the idle file was not ended: %d records, %d open", len(tb.files), len(tb.ranged))
	}
	for i := range maxRangeFiles + 10 {
		c := &conn{orig: netip.MustParseAddr("10.0.0.1"), resp: netip.MustParseAddr("192.0.2.1"), uid: "C"}
		tb.writeRange(tb.rangeFile(c, fmt.Sprintf("/f%d", i), 10), 0, []byte("x"))
	}
	if len(tb.ranged) > maxRangeFiles || len(tb.rangedOrder) != len(tb.ranged) {
		t.Errorf("%d files open, %d in order", len(tb.ranged), len(tb.rangedOrder))
	}
}

// Scattered pieces past the bound are counted as overflow, not placed.
func TestRangePiecesBounded(t *testing.T) {
	tb := newTable("s", "f", 1)
	c := &conn{orig: netip.MustParseAddr("10.0.0.1"), resp: netip.MustParseAddr("192.0.2.1"), uid: "C"}
	f := tb.rangeFile(c, "/scattered", 1<<30)
	for i := range maxRangePieces + 5 {
		tb.writeRange(f, int64(i)*10, []byte("ab"))
	}
	tb.endRangeFiles()
	if len(tb.files) != 1 || tb.files[0].SeenBytes.V != 2*maxRangePieces || tb.files[0].OverflowBytes.V != 10 {
		t.Errorf("records %+v", tb.files)
	}
}
