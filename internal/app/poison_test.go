package app

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestPoisonedClocksDoNotBendTheHunt plants, in one hourly conn log of a
// scenario, copies of its own connections dated 1970, 9999 and two years
// before the rest (the attacker who knows dwell keeps first-seen dates
// and spans): the hunt finds exactly what it finds without them.
func TestPoisonedClocksDoNotBendTheHunt(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and hunts a scenario twice; skipped with -short")
	}
	if raceDetector {
		t.Skip("generates and hunts a scenario twice, sequentially: it checks findings, not concurrency, and takes minutes under the race detector")
	}
	cfg := scenario.Default()
	cfg.Days, cfg.Hosts, cfg.Rate = 4, 60, 20_000
	clean := t.TempDir()
	if _, err := scenario.Generate(t.Context(), cfg, clean, nil); err != nil {
		t.Fatal(err)
	}
	ref := huntOn(t, storetest.NewMem(), clean)

	poisoned := t.TempDir()
	if err := os.CopyFS(poisoned, os.DirFS(clean)); err != nil {
		t.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(poisoned, "*", "conn.12:00:00-13:00:00.log.gz"))
	if err != nil || len(logs) < 2 {
		t.Fatalf("no hourly conn logs to poison: %v %v", logs, err)
	}
	planted := 0
	for _, path := range logs[1:3] {
		planted += poison(t, path)
	}
	if planted < 30 {
		t.Fatalf("planted only %d records", planted)
	}
	got := huntOn(t, storetest.NewMem(), poisoned)
	sameFindings(t, "poisoned", got, ref)
}

// poison appends to a gzipped Zeek conn log copies of some of its
// connections between internal hosts and to the outside, with absurd
// clocks, and returns how many it planted.
func poison(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var out []string
	var tail []string
	for _, l := range lines {
		if strings.HasPrefix(l, "#close") {
			tail = append(tail, l)
			continue
		}
		out = append(out, l)
	}
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "#") || n >= 60 {
			continue
		}
		cols := strings.Split(l, "\t")
		if len(cols) < 6 || !strings.HasPrefix(cols[2], "10.") {
			continue
		}
		for i, ts := range []string{"1.000000", "253402300799.000000", fmt.Sprintf("%.6f", mustFloat(t, cols[0])-2*365*86400)} {
			c := append([]string(nil), cols...)
			c[0], c[1] = ts, fmt.Sprintf("Cpoison%d_%d", n, i)
			if i == 2 {
				c[5] = "445" // an old SMB session to make the pair look familiar
			}
			out = append(out, strings.Join(c, "\t"))
		}
		n += 3
	}
	out = append(out, tail...)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(strings.Join(out, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// ipfixRecord is one flow of ipfixCapture.
type ipfixRecord struct {
	src, dst       [4]byte
	bytes, packets uint64
	startMs, endMs uint64
	proto          uint8
}

// ipfixCapture returns a classic pcap (raw IP) of one IPFIX message from
// exporter 10.20.0.1: a template and a data set holding recs.
func ipfixCapture(export time.Time, recs []ipfixRecord) []byte {
	be := binary.BigEndian
	var msg []byte
	msg = be.AppendUint16(msg, 10)
	msg = be.AppendUint16(msg, 0) // length, below
	msg = be.AppendUint32(msg, uint32(export.Unix()))
	msg = be.AppendUint32(msg, 1)
	msg = be.AppendUint32(msg, 0)
	tpl := [][2]uint16{{8, 4}, {12, 4}, {1, 8}, {2, 8}, {152, 8}, {153, 8}, {4, 1}}
	msg = be.AppendUint16(msg, 2)
	msg = be.AppendUint16(msg, uint16(8+4*len(tpl)))
	msg = be.AppendUint16(msg, 256)
	msg = be.AppendUint16(msg, uint16(len(tpl)))
	for _, f := range tpl {
		msg = be.AppendUint16(msg, f[0])
		msg = be.AppendUint16(msg, f[1])
	}
	msg = be.AppendUint16(msg, 256)
	msg = be.AppendUint16(msg, uint16(4+41*len(recs)))
	for _, r := range recs {
		msg = append(msg, r.src[:]...)
		msg = append(msg, r.dst[:]...)
		msg = be.AppendUint64(msg, r.bytes)
		msg = be.AppendUint64(msg, r.packets)
		msg = be.AppendUint64(msg, r.startMs)
		msg = be.AppendUint64(msg, r.endMs)
		msg = append(msg, r.proto)
	}
	be.PutUint16(msg[2:], uint16(len(msg)))
	udp := be.AppendUint16(nil, 50000)
	udp = be.AppendUint16(udp, 4739)
	udp = be.AppendUint16(udp, uint16(8+len(msg)))
	udp = be.AppendUint16(udp, 0)
	udp = append(udp, msg...)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 20, 0, 1, 10, 20, 0, 2}
	be.PutUint16(ip[2:], uint16(20+len(udp)))
	pkt := append(ip, udp...)
	le := binary.LittleEndian
	var out []byte
	out = le.AppendUint32(out, 0xa1b2c3d4)
	out = le.AppendUint16(out, 2)
	out = le.AppendUint16(out, 4)
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, 65535)
	out = le.AppendUint32(out, 101)
	out = le.AppendUint32(out, uint32(export.Unix()))
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, uint32(len(pkt)))
	out = le.AppendUint32(out, uint32(len(pkt)))
	return append(out, pkt...)
}

// TestPoisonFlowRecord: an IPFIX record that starts near 2^63 ms (year
// 292 million) beside ordinary ones, in the same run as a Zeek log: the
// Zeek records and the ordinary flows are stored, the poison one is held
// in the quarantine table, and a second run stores nothing twice.
func TestPoisonFlowRecord(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	ms := uint64(now.Add(-time.Hour).UnixMilli())
	capture := ipfixCapture(now, []ipfixRecord{
		{src: [4]byte{10, 1, 0, 5}, dst: [4]byte{192, 0, 2, 9}, bytes: 5000, packets: 10, startMs: ms, endMs: ms + 2000, proto: 6},
		{src: [4]byte{10, 1, 0, 6}, dst: [4]byte{192, 0, 2, 9}, bytes: 5000, packets: 10, startMs: 1<<63 - 1000, endMs: 1<<63 - 1, proto: 6},
		{src: [4]byte{10, 1, 0, 7}, dst: [4]byte{192, 0, 2, 9}, bytes: 1 << 62, packets: 10, startMs: ms, endMs: ms + 2000, proto: 6},
		{src: [4]byte{10, 1, 0, 8}, dst: [4]byte{192, 0, 2, 9}, bytes: 700, packets: 3, startMs: ms + 5000, endMs: ms + 6000, proto: 17},
	})
	if err := os.WriteFile(filepath.Join(dir, "edge.pcap"), capture, 0o644); err != nil {
		t.Fatal(err)
	}
	zeekLog := "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n" +
		fmt.Sprintf("%d.000000\tC1\t10.1.0.5\t5000\t192.0.2.9\t443\ttcp\n", now.Add(-time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(dir, "conn.log"), []byte(zeekLog), 0o644); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Hour)
	for _, f := range []string{"edge.pcap", "conn.log"} {
		if err := os.Chtimes(filepath.Join(dir, f), past, past); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runDwell(t, "ingest", "--db", db, dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "2 record(s) held out") || !strings.Contains(out, "flow 2") || !strings.Contains(out, "conn 1") {
		t.Errorf("summary:\n%s", out)
	}
	code, out, errOut = runDwell(t, "query", "--db", db, "--format", "csv",
		"SELECT kind, ts IS NULL, claimed LIKE '292%', reason LIKE '%future%' OR reason LIKE '%2^53%' FROM quarantine ORDER BY source_line, reason")
	if code != ExitOK || strings.Count(out, "flow,") != 2 || !strings.Contains(out, "flow,true,true,true") {
		t.Errorf("quarantine (exit %d):\n%s%s", code, out, errOut)
	}
	code, out, _ = runDwell(t, "ingest", "--db", db, dir)
	if code != ExitOK || !strings.Contains(out, "2 unchanged") {
		t.Errorf("second run (exit %d):\n%s", code, out)
	}
}

// TestInvalidUTF8Kept: raw bytes that are not UTF-8 in a DNS name, a uid,
// a service and a history are stored escaped as Zeek escapes them, and
// counted, not turned into NULL.
func TestInvalidUTF8Kept(t *testing.T) {
	dir := t.TempDir()
	log := "#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\n" +
		"1713484800.000000\tC\xff1\t10.0.0.1\t5353\t10.0.0.53\t53\tudp\tx\xffy.example.com\n" +
		"#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\thistory\n" +
		"1713484801.000000\tC2\t10.0.0.1\t5000\t192.0.2.1\t443\ttcp\tss\xc3l\tSh\xfeAD\n"
	path := filepath.Join(dir, "mixed.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runDwell(t, "ingest", "--complete", "--db", db, path)
	if code != ExitOK || !strings.Contains(out, "4 text value(s) held bytes that are not UTF-8") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	code, out, errOut = runDwell(t, "query", "--db", db, "--format", "csv", `SELECT uid, query FROM dns UNION ALL SELECT service, history FROM conn`)
	for _, want := range []string{`C\xff1,x\xffy.example.com`, `ss\xc3l,Sh\xfeAD`} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("want %s (exit %d):\n%s%s", want, code, out, errOut)
		}
	}
}

// TestBroadIntelRefused: a list naming 10.0.0.0/8, 0.0.0.0/0 and the
// defended networks' hosts beside one real C2 address: the broad ones are
// refused with a warning that names them, the store keeps the real one,
// and the retro-hunt sights only it.
func TestBroadIntelRefused(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	log.WriteString("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n")
	for i := range 50 {
		fmt.Fprintf(&log, "%d.000000\tC%d\t10.0.0.%d\t5000\t10.0.1.%d\t445\ttcp\n", 1713484800+i, i, i, i)
	}
	log.WriteString("1713484900.000000\tCc2\t10.0.0.7\t5001\t198.51.100.23\t443\ttcp\n")
	conn := filepath.Join(dir, "conn.log")
	if err := os.WriteFile(conn, []byte(log.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	feed := filepath.Join(dir, "feed.txt")
	if err := os.WriteFile(feed, []byte("10.0.0.0/8\n0.0.0.0/0\n10.0.0.7\n198.51.100.23\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	if code, out, errOut := runDwell(t, "ingest", "--complete", "--db", db, conn); code != ExitOK {
		t.Fatalf("ingest: %s%s", out, errOut)
	}
	code, out, errOut := runDwell(t, "intel", "import", "--db", db, feed)
	if code != ExitOK {
		t.Fatalf("import: %s%s", out, errOut)
	}
	for _, want := range []string{"refused as matching the network's own traffic: cidr 10.0.0.0/8", "cidr 0.0.0.0/0", "ip 10.0.0.7",
		"stored 1 indicator(s)", "1 sighting(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
}

// TestHostileIntelStored: an indicator whose text is not UTF-8 and a MISP
// event whose timestamps are beyond any calendar are imported, not
// refused by the store: the text escaped as telemetry is, the times
// dropped.
func TestHostileIntelStored(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "ua.csv")
	if err := os.WriteFile(csv, []byte("value,type,comment\nEvil\xffAgent/1.0,user-agent,n\xe9\n198.51.100.9,ip-dst,c2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	misp := filepath.Join(dir, "event.json")
	event := `{"Event":{"uuid":"5f0c","info":"x","timestamp":"99999999999999","Attribute":[{"uuid":"a1","type":"domain",` +
		`"value":"evil.example","to_ids":true,"timestamp":"9223372036854775807"}]}}`
	if err := os.WriteFile(misp, []byte(event), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runDwell(t, "intel", "import", "--db", db, csv, misp)
	if code != ExitOK || !strings.Contains(out, "stored 3 indicator(s)") || !strings.Contains(out, "not UTF-8") {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runDwell(t, "intel", "list", "--db", db, "--all", "--format", "json")
	if code != ExitOK || !strings.Contains(out, `Evil\\xffAgent/1.0`) {
		t.Errorf("stored indicators (exit %d):\n%s", code, out)
	}
}

// TestUnreadableInputs: what cannot be read — a missing path, a FIFO —
// fails alone: the readable input is stored, the exit is 1, and -q still
// names the failures on standard error; a run with nothing readable
// creates no store.
func TestUnreadableInputs(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "conn.log")
	if err := os.WriteFile(conn, []byte("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"+
		"1713484800.000000\tC1\t10.0.0.1\t5000\t192.0.2.1\t443\ttcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "d.db")
	code, out, errOut := runDwell(t, "ingest", "-q", "--complete", "--db", db, conn, fifo, filepath.Join(dir, "missing.log"))
	if code != ExitFail || out != "" || !strings.Contains(errOut, "pipe: not a regular file (a FIFO)") ||
		!strings.Contains(errOut, "missing.log: no such file") {
		t.Errorf("exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	if code, out, _ := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) FROM conn"); code != ExitOK || !strings.Contains(out, "\n1\n") {
		t.Errorf("the readable input was not stored (exit %d): %s", code, out)
	}
	none := filepath.Join(t.TempDir(), "none.db")
	code, _, errOut = runDwell(t, "ingest", "--db", none, filepath.Join(dir, "nonexistent"))
	if code != ExitFail || !strings.Contains(errOut, "nothing to read") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(none); err == nil {
		t.Error("an ingest of nothing created a store")
	}
}
