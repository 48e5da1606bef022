package eve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

func readAll(t testing.TB, data []byte, resume ingest.Position, max int) (*event.Batch, ingest.Report, ingest.Position) {
	t.Helper()
	in := &ingest.Input{Path: "eve.json", Sensor: "ids1", Head: data[:min(len(data), event.HeadSize)], Resume: resume, Final: true}
	if !detect(in) && resume.Offset == 0 {
		t.Fatal("not detected as EVE")
	}
	src, err := open(bytes.NewReader(data[resume.Offset:]), in)
	if err != nil {
		t.Fatal(err)
	}
	var all event.Batch
	for {
		var b event.Batch
		err := src.Next(context.Background(), &b, max)
		all.Append(&b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &all, src.Report(), src.Position()
}

func TestFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/eve.json")
	if err != nil {
		t.Fatal(err)
	}
	b, rep, pos := readAll(t, data, ingest.Position{}, 1000)
	if len(b.Alerts) != 3 || len(b.Conns) != 2 || len(b.DNS) != 1 || len(b.HTTP) != 1 || len(b.TLS) != 1 || len(b.Files) != 1 {
		t.Fatalf("records: %d alerts, %d conns, %d dns, %d http, %d ssl, %d files", len(b.Alerts), len(b.Conns), len(b.DNS), len(b.HTTP), len(b.TLS), len(b.Files))
	}
	if rep.Rows != int64(b.Len()) || rep.Bad != 2 || rep.SkippedTypes["stats"] != 1 || rep.SkippedTypes["anomaly"] != 1 || pos.Offset != int64(len(data)) {
		t.Errorf("report %+v, position %+v", rep, pos)
	}
	if e := rep.Errors; len(e) != 2 || e[0].Line != 13 || e[1].Line != 14 {
		t.Errorf("errors %+v", e)
	}
	cs := b.Alerts[2]
	if cs.Signature != "ET MALWARE Cobalt Strike Beacon Observed" || cs.SignatureID.V != 2027138 || cs.Severity.V != 1 ||
		len(cs.Attack) != 1 || cs.Attack[0] != "T1071" || cs.SrcIP.String() != "10.2.8.101" || cs.DstPort != 443 || cs.Proto != "tcp" ||
		cs.FlowID != "1038930578099999" || cs.Src.Sensor != "ids1" || cs.Src.Line != 7 {
		t.Errorf("alert %+v", cs)
	}
	if !cs.TS.Equal(time.Date(2021, 2, 8, 16, 2, 15, 2000000, time.UTC)) {
		t.Errorf("alert time %v", cs.TS)
	}
	d := b.DNS[0]
	if d.Query != "roanokemortgages.com" || d.QTypeName != "A" || d.RCodeName != "NOERROR" || len(d.Answers) != 1 || d.Answers[0] != "8.208.10.147" ||
		d.TTLs[0] != 299*time.Second || d.SrcIP.String() != "10.2.8.101" || d.DstPort != 53 || !d.RTT.Valid || d.RTT.V != 27768*time.Microsecond {
		t.Errorf("dns %+v", d)
	}
	h := b.HTTP[0]
	if h.Host != "roanokemortgages.com" || h.URI != "/0801.bin" || h.Method != "GET" || h.StatusCode.V != 200 || h.ResponseBodyLen.V != 876 ||
		h.Version != "1.1" || h.UID != "1038930578016526" {
		t.Errorf("http %+v", h)
	}
	f := b.Files[0]
	if f.MIMEType != "application/x-dosexec" || f.SeenBytes.V != 876 || f.UID != h.UID || f.FUID != "F1038930578016526-1" || f.Source != "HTTP" {
		t.Errorf("file %+v", f)
	}
	s := b.TLS[0]
	if s.ServerName != "update.example" || s.Version != "TLSv12" || s.JA3 != "72a589da586844d7f0818ce684948eea" || s.UID != cs.FlowID {
		t.Errorf("ssl %+v", s)
	}
	c := b.Conns[0]
	if c.ConnState != "SF" || c.SrcPkts.V != 40 || c.SrcIPBytes.V != 5400 || c.SrcBytes.V != 5400-40*40 || c.Duration.V != 61100*time.Millisecond ||
		c.Service != "tls" || c.UID != cs.FlowID {
		t.Errorf("conn %+v", c)
	}
	if b.Conns[1].ConnState != "REJ" {
		t.Errorf("refused connection: %s", b.Conns[1].ConnState)
	}
}

// Read in small batches, the answer may come in a later batch than its
// query: both are kept. Resumed from a checkpoint, the rest is read once.
func TestBatchesAndResume(t *testing.T) {
	data, err := os.ReadFile("testdata/eve.json")
	if err != nil {
		t.Fatal(err)
	}
	whole, _, _ := readAll(t, data, ingest.Position{}, 1000)
	small, rep, _ := readAll(t, data, ingest.Position{}, 1)
	if len(small.Alerts) != len(whole.Alerts) || len(small.DNS) != 2 || rep.Rows != int64(small.Len()) {
		t.Errorf("one line a batch: %d alerts, %d dns, report %+v", len(small.Alerts), len(small.DNS), rep)
	}
	in := &ingest.Input{Path: "eve.json", Head: data[:event.HeadSize], Final: true}
	src, _ := open(bytes.NewReader(data), in)
	var first event.Batch
	if err := src.Next(context.Background(), &first, 5); err != nil {
		t.Fatal(err)
	}
	rest, _, _ := readAll(t, data, src.Position(), 1000)
	if first.Len()+rest.Len() != whole.Len() {
		t.Errorf("resumed: %d + %d records, whole %d", first.Len(), rest.Len(), whole.Len())
	}
}

func TestNotEVE(t *testing.T) {
	for _, head := range []string{"", `{"ts":1.5,"uid":"C1"}`, "#separator \\x09\n", `{"Event":{"System":{}}}`} {
		if detect(&ingest.Input{Head: []byte(head)}) {
			t.Errorf("%q detected as EVE", head)
		}
	}
}

// FuzzDecode feeds arbitrary lines to the decoder.
func FuzzDecode(f *testing.F) {
	data, err := os.ReadFile("testdata/eve.json")
	if err == nil {
		for _, l := range bytes.Split(data, []byte("\n")) {
			f.Add(l)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var b event.Batch
		var p dnsPairs
		kind, _, err := decode(line, event.Source{}, &b, &p)
		if err != nil && b.Len() > 0 {
			t.Fatalf("records from a bad line: %+v", b)
		}
		_ = kind
	})
}

// The reply's Server header, as a custom field or among all headers.
func TestHTTPServerHeader(t *testing.T) {
	const head = `{"timestamp":"2021-02-08T17:00:12.648463+0100","flow_id":1,"event_type":"http","src_ip":"10.2.8.101","src_port":49757,` +
		`"dest_ip":"8.208.10.147","dest_port":80,"proto":"TCP","http":{"hostname":"a.example","url":"/","status":200,`
	data := head + `"server":"Kestrel-C2/0.9"}}` + "\n" +
		head + `"response_headers":[{"name":"Content-Type","value":"text/html"},{"name":"server","value":"nginx/1.14.1"}]}}` + "\n" +
		head + `"length":3}}` + "\n"
	b, _, _ := readAll(t, []byte(data), ingest.Position{}, 10)
	if len(b.HTTP) != 3 {
		t.Fatalf("%d http records", len(b.HTTP))
	}
	for i, want := range []string{"Kestrel-C2/0.9", "nginx/1.14.1", ""} {
		if got := b.HTTP[i].Server; got != want {
			t.Errorf("record %d: server %q, want %q", i, got, want)
		}
	}
}
