package zeek

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// decode reads data as the named file to its end.
func decode(t *testing.T, name, data string, final bool) (*event.Batch, ingest.Report, ingest.Position) {
	t.Helper()
	return decodeFrom(t, name, data, final, ingest.Position{})
}

func decodeFrom(t *testing.T, name, data string, final bool, resume ingest.Position) (*event.Batch, ingest.Report, ingest.Position) {
	t.Helper()
	in := &ingest.Input{Path: name, Sensor: "test", Hint: ingest.KindHint(name), Final: final, Head: []byte(data), Resume: resume}
	src := openInput(t, in, data[resume.Offset:])
	b := drain(t, src)
	return b, src.Report(), src.Position()
}

// decodeInput reads data as in to its end.
func decodeInput(t *testing.T, in *ingest.Input, data string) (*event.Batch, ingest.Report) {
	t.Helper()
	src := openInput(t, in, data)
	return drain(t, src), src.Report()
}

// openInput opens data with the first format that detects in.
func openInput(t *testing.T, in *ingest.Input, data string) ingest.Source {
	t.Helper()
	var format *ingest.Format
	for _, f := range Formats() {
		if f.Detect(in) {
			format = &f
			break
		}
	}
	if format == nil {
		t.Fatalf("%s: no format detected", in.Path)
	}
	src, err := format.Open(strings.NewReader(data), in)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func drain(t *testing.T, src ingest.Source) *event.Batch {
	t.Helper()
	b := &event.Batch{}
	for {
		err := src.Next(context.Background(), b, 3)
		if errors.Is(err, io.EOF) {
			return b
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

const connHeader = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2019-02-28-12-07-01\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"

func TestTSVConn(t *testing.T) {
	data := connHeader +
		"1517336042.090842\tCi85EB2YjUI9a2eql6\t10.55.182.100\t14291\t10.233.233.5\t80\ttcp\t-\t3.000158\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t(empty)\n" +
		"1517336042.279652\tC\\x2dx\\x09y\t2001:db8::1\t55638\t::ffff:165.227.88.15\t53\tudp\tdns,http\t-\t-\t-\tSF\tF\t-\t0\tDd\t1\t89\t1\t109\tCa,Cb\\x2cc\n" +
		"#close\t2019-02-28-13-00-00\n"
	b, rep, pos := decode(t, "conn.log", data, true)
	if rep.Rows != 2 || rep.Bad != 0 || len(b.Conns) != 2 {
		t.Fatalf("rows %d bad %d conns %d: %v", rep.Rows, rep.Bad, len(b.Conns), rep.Errors)
	}
	c := b.Conns[0]
	want := event.Conn{
		TS: time.Unix(1517336042, 90842000).UTC(), UID: "Ci85EB2YjUI9a2eql6",
		SrcIP: netip.MustParseAddr("10.55.182.100"), SrcPort: 14291, DstIP: netip.MustParseAddr("10.233.233.5"), DstPort: 80,
		Proto: "tcp", Duration: event.Some(3000158 * time.Microsecond), SrcBytes: event.Some[uint64](0), DstBytes: event.Some[uint64](0),
		ConnState: "S0", LocalSrc: event.Some(true), LocalDst: event.Some(true), MissedBytes: event.Some[uint64](0), History: "S",
		SrcPkts: event.Some[uint64](2), SrcIPBytes: event.Some[uint64](104), DstPkts: event.Some[uint64](0), DstIPBytes: event.Some[uint64](0),
		TunnelParents: []string{}, Src: event.Source{Sensor: "test", File: "conn.log", Line: 9},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("row 1:\n got %+v\nwant %+v", c, want)
	}
	c = b.Conns[1]
	if c.UID != "C-x\ty" {
		t.Errorf("escaped uid = %q", c.UID)
	}
	if c.SrcIP != netip.MustParseAddr("2001:db8::1") || c.DstIP != netip.MustParseAddr("165.227.88.15") {
		t.Errorf("addresses %v %v (IPv4-mapped must be unmapped)", c.SrcIP, c.DstIP)
	}
	if c.Service != "dns,http" || c.Duration.Valid || c.SrcBytes.Valid || c.LocalDst.Valid || c.LocalSrc != event.Some(false) {
		t.Errorf("unset/values wrong: %+v", c)
	}
	if !reflect.DeepEqual(c.TunnelParents, []string{"Ca", "Cb,c"}) {
		t.Errorf("set = %q", c.TunnelParents)
	}
	if pos.Offset != int64(len(data)) || pos.Line != 11 {
		t.Errorf("position %+v, want offset %d line 11", pos, len(data))
	}
}

func TestTSVOtherSeparatorsAndBlocks(t *testing.T) {
	data := "#separator \\x7c\n#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n#path|dns\n" +
		"#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|proto|query|answers|TTLs|rejected\n" +
		"#types|time|string|addr|port|addr|port|enum|string|vector[string]|vector[interval]|bool\n" +
		"1.5|C1|10.0.0.1|5353|10.0.0.53|53|udp|a\\x7cb.example|x;y\\x3bz|60.0;1.5|F\n" +
		"2|C2|10.0.0.1|5353|10.0.0.53|53|udp|NONE|EMPTY|EMPTY|NONE\n" +
		// A second block in the same file: another log type, other order.
		"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n" +
		"#fields\tuid\tts\thost\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tuser_agent\n" +
		"H1\t3.25\t-\t10.0.0.2\t1234\t192.0.2.1\t80\tModzilla/0.0001 (Atari 7800)\n"
	b, rep, _ := decode(t, "mixed.log", data, true)
	if rep.Rows != 3 || rep.Bad != 0 {
		t.Fatalf("rows %d bad %d: %v", rep.Rows, rep.Bad, rep.Errors)
	}
	if len(b.DNS) != 2 || len(b.HTTP) != 1 {
		t.Fatalf("dns %d http %d", len(b.DNS), len(b.HTTP))
	}
	d := b.DNS[0]
	if d.Query != "a|b.example" || !reflect.DeepEqual(d.Answers, []string{"x", "y;z"}) ||
		!reflect.DeepEqual(d.TTLs, []time.Duration{60 * time.Second, 1500 * time.Millisecond}) || d.Rejected != event.Some(false) {
		t.Errorf("dns 1 = %+v", d)
	}
	d = b.DNS[1]
	if d.Query != "" || d.Answers == nil || len(d.Answers) != 0 || d.TTLs == nil || d.Rejected.Valid {
		t.Errorf("dns 2 (empty/unset) = %+v", d)
	}
	h := b.HTTP[0]
	if h.UID != "H1" || h.Host != "" || h.UserAgent != "Modzilla/0.0001 (Atari 7800)" || h.TS != time.Unix(3, 250000000).UTC() {
		t.Errorf("http = %+v", h)
	}
	if !reflect.DeepEqual(rep.Kinds, []event.Kind{event.KindDNS, event.KindHTTP}) {
		t.Errorf("kinds %v", rep.Kinds)
	}
}

func TestTSVBadLinesKeepGoodOnes(t *testing.T) {
	good := "1517336042.090842\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n"
	data := connHeader + good +
		"1517336042.1\tC2\t10.0.0.1\t99999\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n" + // port out of range
		"not-a-time\tC3\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n" +
		"-\tC4\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n" + // unset ts
		"1517336042.1\tC5\t10.0.0.999\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n" + // bad address
		"1517336042.1\tC6\t10.0.0.1\t1\n" + // short
		"1517336042.1\tC7\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tX\tT\t0\tS\t2\t104\t0\t0\t-\n" + // bad bool
		"\x00\xff\xfe garbage\n" +
		good
	b, rep, _ := decode(t, "conn.log", data, true)
	if rep.Rows != 2 || rep.Bad != 7 || len(b.Conns) != 2 {
		t.Fatalf("rows %d bad %d conns %d", rep.Rows, rep.Bad, len(b.Conns))
	}
	if b.Conns[1].Src.Line != 17 {
		t.Errorf("second good row at line %d, want 17", b.Conns[1].Src.Line)
	}
	wantReasons := []string{"port 99999 out of range", "not a time", "ts is unset", "not an IP address", "expected 21 fields, found 4", "not a bool", "field 1 (ts): not a time"}
	for i, w := range wantReasons {
		e := rep.Errors[i]
		if e.Line != int64(10+i) || e.File != "conn.log" || !strings.Contains(e.Reason, w) {
			t.Errorf("error %d = %v, want line %d containing %q", i, e, 10+i, w)
		}
	}
}

func TestHeaderless(t *testing.T) {
	row := "1517336042.090842\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n"
	b, rep, _ := decode(t, "conn_top.log", row+row, true)
	if rep.Rows != 2 || len(b.Conns) != 2 || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "default conn.log columns") {
		t.Fatalf("rows %d notes %v errors %v", rep.Rows, rep.Notes, rep.Errors)
	}
	// LogAscii's "tsv" mode: one header row of names.
	data := "ts\tuid\tid.orig_h\tquery\n1.0\tC1\t10.0.0.1\texample.org\n"
	b, rep, pos := decode(t, "dns.log", data, true)
	if rep.Rows != 1 || b.DNS[0].Query != "example.org" || pos.Header == "" {
		t.Fatalf("tsv mode: rows %d %+v header %q", rep.Rows, b.DNS, pos.Header)
	}
}

func TestUnsupportedTypeSkipped(t *testing.T) {
	data := "#separator \\x09\n#path\tweird\n#fields\tts\tname\n#types\ttime\tstring\n1.0\tbad_TCP_checksum\n2.0\tx\n"
	b, rep, _ := decode(t, "weird.log", data, true)
	if b.Len() != 0 || rep.Rows != 0 || rep.Bad != 0 || !rep.Skipped || rep.SkippedTypes["weird"] != 2 {
		t.Fatalf("rep %+v", rep)
	}
}

func TestUnterminatedLastLine(t *testing.T) {
	row := "1517336042.090842\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-"
	data := connHeader + row + "\n" + row
	// Still being written: the partial line waits for the next run.
	_, rep, pos := decode(t, "conn.log", data, false)
	if rep.Rows != 1 || rep.Pending != int64(len(row)) || pos.Offset != int64(len(data)-len(row)) {
		t.Fatalf("not final: rows %d pending %d offset %d", rep.Rows, rep.Pending, pos.Offset)
	}
	// Resume once the line is complete.
	b, rep, pos2 := decodeFrom(t, "conn.log", data+"\n", false, pos)
	if rep.Rows != 1 || b.Conns[0].Src.Line != 10 || pos2.Offset != int64(len(data)+1) {
		t.Fatalf("resumed: rows %d line %d offset %d", rep.Rows, b.Conns[0].Src.Line, pos2.Offset)
	}
	// Final: the last line counts as complete.
	_, rep, pos = decode(t, "conn.log", data, true)
	if rep.Rows != 2 || rep.Pending != 0 || pos.Offset != int64(len(data)) {
		t.Fatalf("final: rows %d pending %d", rep.Rows, rep.Pending)
	}
	// A final, cut line is a counted bad line.
	_, rep, _ = decode(t, "conn.log", data[:len(data)-30], true)
	if rep.Rows != 1 || rep.Bad != 1 {
		t.Fatalf("cut: rows %d bad %d", rep.Rows, rep.Bad)
	}
}

func TestResumeRestoresHeader(t *testing.T) {
	row := func(uid string) string {
		return "1.0\t" + uid + "\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-\n"
	}
	data := connHeader + row("A") + row("B") + row("C")
	in := &ingest.Input{Path: "conn.log", Hint: event.KindConn, Final: true}
	src := newSource(strings.NewReader(data), in, FormatTSV, newSpecs())
	b := &event.Batch{}
	if err := src.Next(context.Background(), b, 1); err != nil {
		t.Fatal(err)
	}
	pos := src.Position()
	if len(b.Conns) != 1 || pos.Header == "" || pos.Check == "" {
		t.Fatalf("after one row: %d rows, position %+v", len(b.Conns), pos)
	}
	b2, rep, _ := decodeFrom(t, "conn.log", data, true, pos)
	if rep.Rows != 2 || b2.Conns[0].UID != "B" || b2.Conns[0].Src.Line != 10 || b2.Conns[1].UID != "C" {
		t.Fatalf("resumed rows %d: %+v", rep.Rows, b2.Conns)
	}
}

func TestCRLFAndLongLine(t *testing.T) {
	row := "1.0\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t0\t0\tS0\tT\tT\t0\tS\t2\t104\t0\t0\t-"
	data := strings.ReplaceAll(connHeader, "\n", "\r\n") + row + "\r\n" + strings.Repeat("x", ingest.MaxLine+10) + "\n" + row + "\r\n"
	b, rep, _ := decode(t, "conn.log", data, true)
	if rep.Rows != 2 || rep.Bad != 1 || b.Conns[1].Src.Line != 11 || b.Conns[0].TunnelParents != nil {
		t.Fatalf("rows %d bad %d errors %v", rep.Rows, rep.Bad, rep.Errors)
	}
}

func TestJSON(t *testing.T) {
	data := `{"_path":"conn","_write_ts":"2018-03-24T17:15:20.866586Z","ts":"2018-03-24T17:15:20.865716Z","uid":"C1","id.orig_h":"10.47.1.100","id.orig_p":41772,"id.resp_h":"10.0.0.100","id.resp_p":53,"proto":"udp","duration":0.0008699893951416016,"orig_bytes":null,"local_orig":true,"tunnel_parents":[],"extra_field":1}
{"ts":1517336042.279652,"uid":"C2","id":{"orig_h":"192.168.88.2","orig_p":55638,"resp_h":"165.227.88.15","resp_p":53},"proto":"udp","service":"dns","conn_state":"SF"}
{"_path":"dns","ts":1.5,"uid":"D1","query":"a\"b\\c\u00e9\ud83d\ude00.example","answers":["x","y"],"TTLs":[60.0,1.5],"rejected":false,"qtype":16}
{"_path":"weird","ts":1.0,"name":"x"}
{"ts":1, "uid": "bad port", "id.orig_p": 93145}
{"ts":1, "uid": "broken
not json at all
{"ts":2,"uid":"C3","id.orig_h":"10.0.0.1"} 
`
	b, rep, _ := decode(t, "conn.json", data, true)
	if rep.Rows != 4 || rep.Bad != 3 || len(b.Conns) != 3 || len(b.DNS) != 1 {
		t.Fatalf("rows %d bad %d conns %d dns %d errors %v", rep.Rows, rep.Bad, len(b.Conns), len(b.DNS), rep.Errors)
	}
	c := b.Conns[0]
	if c.TS != time.Date(2018, 3, 24, 17, 15, 20, 865716000, time.UTC) || c.Duration != event.Some(870*time.Microsecond) ||
		c.SrcBytes.Valid || c.LocalSrc != event.Some(true) || c.TunnelParents == nil || c.SrcPort != 41772 {
		t.Errorf("conn 1 = %+v", c)
	}
	c = b.Conns[1]
	if c.SrcIP != netip.MustParseAddr("192.168.88.2") || c.DstPort != 53 || c.TS != time.Unix(1517336042, 279652000).UTC() {
		t.Errorf("nested id: %+v", c)
	}
	d := b.DNS[0]
	if d.Query != "a\"b\\cé😀.example" || !reflect.DeepEqual(d.Answers, []string{"x", "y"}) || d.QType != event.Some[uint64](16) ||
		!reflect.DeepEqual(d.TTLs, []time.Duration{time.Minute, 1500 * time.Millisecond}) {
		t.Errorf("dns = %+v", d)
	}
	if rep.SkippedTypes["weird"] != 1 || !reflect.DeepEqual(rep.Ignored, []string{"extra_field"}) {
		t.Errorf("skipped %v ignored %v", rep.SkippedTypes, rep.Ignored)
	}
	for i, w := range []string{"port 93145 out of range", "unterminated string", "expected '{'"} {
		if !strings.Contains(rep.Errors[i].Reason, w) || rep.Errors[i].Line != int64(5+i) {
			t.Errorf("error %d = %v, want line %d: %s", i, rep.Errors[i], 5+i, w)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"0", 0, false}, {"1.5", 1500 * time.Millisecond, false}, {"0.0000004", 0, false}, {"0.0000005", time.Microsecond, false},
		{"3.000158", 3000158 * time.Microsecond, false}, {"1e-3", time.Millisecond, false}, {"-2.5", -2500 * time.Millisecond, false},
		{"", 0, true}, {"abc", 0, true}, {"1.2.3", 0, true}, {"NaN", 0, true}, {"99999999999999999999", 0, true},
	} {
		got, err := parseInterval(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseInterval(%q) = %v, %v; want %v (err %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
	if n, err := parseCount("18446744073709551615"); err != nil || n != 1<<64-1 {
		t.Errorf("max count: %d %v", n, err)
	}
	if _, err := parseCount("18446744073709551616"); err == nil {
		t.Error("count overflow accepted")
	}
	if n, err := parseCount("12.0"); err != nil || n != 12 {
		t.Errorf("12.0 -> %d %v", n, err)
	}
	if _, err := parseCount("12.5"); err == nil {
		t.Error("12.5 accepted as count")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\x09b`: "a\tb", `\x2d`: "-", `\x5cx41`: `\x41`, `bad\xZZ`: `bad\xZZ`, `end\x4`: `end\x4`, `\\`: `\\`,
	} {
		if got := unescapeZeek(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDuplicateFields: a JSON line that names a field twice (or under both
// spellings), and every line under a #fields header that does, are
// malformed: which value counts is not known, and the last would win
// silently.
func TestDuplicateFields(t *testing.T) {
	data := `{"_path":"conn","ts":1713484800,"uid":"C1","ts":1.0}
{"_path":"conn","ts":1713484800,"uid":"C2","id.orig_h":"10.0.0.1","id_orig_h":"10.0.0.66"}
{"_path":"conn","ts":1713484800,"uid":"C3","id":{"orig_h":"10.0.0.1"},"id.orig_h":"10.0.0.66"}
{"_path":"conn","ts":1713484800,"uid":"C4","id.orig_h":"10.0.0.1"}
`
	b, rep, _ := decode(t, "conn.json", data, true)
	if rep.Rows != 1 || rep.Bad != 3 || len(b.Conns) != 1 || b.Conns[0].UID != "C4" {
		t.Fatalf("rows %d bad %d errors %v", rep.Rows, rep.Bad, rep.Errors)
	}
	for _, e := range rep.Errors {
		if !strings.Contains(e.Reason, "appears twice") {
			t.Errorf("reason %q", e.Reason)
		}
	}
	tsv := "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tts\n1713484800.0\tC1\t1.0\n1713484801.0\tC2\t2.0\n" +
		"#fields\tts\tuid\n1713484802.0\tC3\n"
	_, rep, _ = decode(t, "conn.log", tsv, true)
	if rep.Rows != 1 || rep.Bad != 2 || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Reason, "names ts twice") {
		t.Fatalf("TSV: rows %d bad %d errors %v", rep.Rows, rep.Bad, rep.Errors)
	}
}

// A site's http.log that adds the reply's Server header (not in Zeek's
// default log) keeps it; one without the field reads as before.
func TestHTTPServerField(t *testing.T) {
	data := `{"_path":"http","ts":1.5,"uid":"H1","id.orig_h":"10.0.0.1","id.resp_h":"192.0.2.1","id.resp_p":80,"method":"GET","server":"Kestrel-C2/0.9"}
{"_path":"http","ts":2.5,"uid":"H2","id.orig_h":"10.0.0.1","id.resp_h":"192.0.2.1","id.resp_p":80,"method":"GET"}
`
	b, rep, _ := decode(t, "http.json", data, true)
	if len(b.HTTP) != 2 || len(rep.Ignored) != 0 || b.HTTP[0].Server != "Kestrel-C2/0.9" || b.HTTP[1].Server != "" {
		t.Errorf("http %+v, ignored %v", b.HTTP, rep.Ignored)
	}
}
