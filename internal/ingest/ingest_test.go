package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/ingesttest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
)

const header = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2024-04-19-00-00-01\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"

func rows(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%d.%06d\tC%08d\t10.0.%d.%d\t%d\t192.0.2.1\t443\ttcp\tssl\t1.5\t100\t200\tSF\tT\tF\t0\tShADadFf\t10\t1000\t12\t5000\t-\n",
			1713484800+i, i%1000000, i, i/256%256, i%256, 1024+i%60000)
	}
	return b.String()
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func write(t *testing.T, path string, data []byte, old bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if old { // not written to for a while: complete
		past := time.Now().Add(-time.Hour)
		if err := os.Chtimes(path, past, past); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, sink ingest.Sink, paths ...string) *ingest.Summary {
	t.Helper()
	return runWith(t, sink, ingest.Options{Formats: zeek.Formats(), BatchRows: 1000, Sensor: "s"}, paths...)
}

func runWith(t *testing.T, sink ingest.Sink, opt ingest.Options, paths ...string) *ingest.Summary {
	t.Helper()
	cands, err := ingest.Discover(paths)
	if err != nil {
		t.Fatal(err)
	}
	in := ingest.New(sink, opt)
	sum, err := in.Run(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// runner ingests paths into sink.
type runner func(t *testing.T, sink ingest.Sink, paths ...string) *ingest.Summary

// ledgerReads runs f twice: with each input's ledger entries asked of the
// sink, as a run of a few inputs does, and with the whole ledger read at
// the start of each run, as a run of many does.
func ledgerReads(t *testing.T, f func(t *testing.T, run runner)) {
	t.Run("per input", func(t *testing.T) { f(t, run) })
	t.Run("ledger once", func(t *testing.T) {
		f(t, func(t *testing.T, sink ingest.Sink, paths ...string) *ingest.Summary {
			t.Helper()
			return runWith(t, sink, ingest.LedgerOnce(ingest.Options{Formats: zeek.Formats(), BatchRows: 1000, Sensor: "s"}), paths...)
		})
	})
	t.Run("seen", func(t *testing.T) { // dwell serve's polls
		seen := &ingest.Seen{}
		f(t, func(t *testing.T, sink ingest.Sink, paths ...string) *ingest.Summary {
			t.Helper()
			return runWith(t, sink, ingest.LedgerOnce(ingest.Options{Formats: zeek.Formats(), BatchRows: 1000, Sensor: "s", Seen: seen}), paths...)
		})
	})
}

func statuses(sum *ingest.Summary) map[string]ingest.Status {
	out := map[string]ingest.Status{}
	for _, f := range sum.Files {
		out[filepath.Base(f.Path)] = f.Status
	}
	return out
}

func TestDiscoverZeekLayout(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"2024-04-19/conn.00:00:00-01:00:00.log.gz", "2024-04-19/dns.00:00:00-01:00:00.log.gz",
		"2024-04-20/conn.00:00:00-01:00:00.log.gz", "spool/zeek/conn.log", ".hidden/conn.log", "2024-04-19/.conn.log.swp", "a/b/c/d/http.log"} {
		write(t, filepath.Join(dir, p), []byte("x"), true)
	}
	if err := os.Symlink(filepath.Join(dir, "spool", "zeek"), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	// A link back up must not loop.
	if err := os.Symlink(dir, filepath.Join(dir, "a", "loop")); err != nil {
		t.Fatal(err)
	}
	cands, err := ingest.Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cands {
		rel, _ := filepath.Rel(dir, c.Path)
		got = append(got, rel)
	}
	want := []string{"2024-04-19/conn.00:00:00-01:00:00.log.gz", "2024-04-19/dns.00:00:00-01:00:00.log.gz", "2024-04-20/conn.00:00:00-01:00:00.log.gz",
		"a/b/c/d/http.log", "current/conn.log"} // spool/zeek is current/: read once
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	// What cannot be read is a failed candidate, not the end of the run:
	// a missing path, a FIFO, a directory it may not list.
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "2024-04-19", "lost+found")
	if err := os.Mkdir(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(locked, 0o700) })
	cands, err = ingest.Discover([]string{filepath.Join(dir, "missing"), fifo, filepath.Join(dir, "2024-04-19")})
	if err != nil {
		t.Fatal(err)
	}
	why := map[string]string{}
	readable := 0
	for _, c := range cands {
		if c.Err != "" {
			why[filepath.Base(c.Path)] = c.Err
		} else {
			readable++
		}
	}
	if !strings.Contains(why["missing"], "no such file") || !strings.Contains(why["pipe"], "FIFO") || readable != 2 {
		t.Errorf("candidates %+v", cands)
	}
	if os.Getuid() != 0 && !strings.Contains(why["lost+found"], "permission denied") { // root reads any directory
		t.Errorf("unreadable directory: %+v", cands)
	}
	for name, want := range map[string]event.Kind{"conn.log": event.KindConn, "conn.00:00:00-01:00:00.log.gz": event.KindConn,
		"open_conn.18_00_00-19_00_00.log.gz": event.KindOpenConn, "conn_json.log": event.KindConn, "ssl.json.gz": event.KindTLS,
		"files.log": event.KindFile, "weird.log": 0, "conn-summary.log": 0, "x509.log": event.KindX509,
		"dmz-sensor_conn.log": event.KindConn, "conn_brussels.log": event.KindConn, "json_streaming_conn.1.log": event.KindConn,
		"brussels-open_conn.log": event.KindOpenConn, "json_streaming_dns.0.log.gz": event.KindDNS, "dns_http.log": 0, "flow.log": 0,
		"edge-flow.json": 0, "Conn.log": event.KindConn} {
		if got := ingest.KindHint("/x/" + name); got != want {
			t.Errorf("KindHint(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestIdempotent(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "2024-04-19", "conn.00:00:00-01:00:00.log.gz"), gz(t, header+rows(0, 2500)+"#close\tx\n"), true)
		write(t, filepath.Join(dir, "2024-04-19", "conn.01:00:00-02:00:00.log"), []byte(header+rows(2500, 2600)), true)
		sink := &ingesttest.Sink{}
		sum := run(t, sink, dir)
		if sum.Rows != 2600 || sink.Rows(event.KindConn) != 2600 {
			t.Fatalf("first run: %d rows, sink %d", sum.Rows, sink.Rows(event.KindConn))
		}
		sum = run(t, sink, dir)
		if sum.Rows != 0 || sum.Count(ingest.StatusUnchanged) != 2 || sink.Rows(event.KindConn) != 2600 {
			t.Fatalf("second run: %d rows, %v", sum.Rows, statuses(sum))
		}
		if d := sink.Doubles(); len(d) > 0 {
			t.Fatalf("doubled: %v", d)
		}
	})
}

func TestGrowingFile(t *testing.T) {
	for _, size := range []int{3, 3000} { // below and above the identity head
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ledgerReads(t, func(t *testing.T, run runner) { testGrowingFile(t, run, size) })
		})
	}
}

func testGrowingFile(t *testing.T, run runner, size int) {
	path := filepath.Join(t.TempDir(), "current", "conn.log")
	all := header + rows(0, size)
	cut := strings.LastIndex(all[:len(all)-10], "\n") + 20 // mid-line: Zeek is writing it
	write(t, path, []byte(all[:cut]), false)
	sink := &ingesttest.Sink{}
	first := run(t, sink, path)
	if int(first.Rows) != size-1 || len(first.Files[0].Notes) == 0 {
		t.Fatalf("first run: %d rows, notes %v", first.Rows, first.Files[0].Notes)
	}
	more := all + rows(size, size+5)
	write(t, path, []byte(more), false)
	second := run(t, sink, path)
	if second.Rows != 6 || !second.Files[0].Resumed {
		t.Fatalf("second run: %d rows, resumed %v, %+v", second.Rows, second.Files[0].Resumed, second.Files[0])
	}
	if got := sink.Rows(event.KindConn); got != int64(size+5) {
		t.Fatalf("stored %d, want %d", got, size+5)
	}
	if d := sink.Doubles(); len(d) > 0 {
		t.Fatalf("doubled: %v", d)
	}
	if l := sink.Entries(); len(l) != 1 {
		t.Fatalf("ledger has %d entries: %+v", len(l), l)
	}
	third := run(t, sink, path)
	if third.Rows != 0 || third.Files[0].Status != ingest.StatusUnchanged {
		t.Fatalf("third run: %+v", third.Files[0])
	}
}

// TestComplete: a fresh file whose last line is unterminated (a truncated
// copy) is read to its end when the inputs are declared complete.
func TestComplete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conn.log")
	all := header + rows(0, 10)
	write(t, path, []byte(all[:len(all)-30]), false)
	cands, err := ingest.Discover([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	sink := &ingesttest.Sink{}
	in := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), Sensor: "s", Complete: true})
	sum, err := in.Run(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	// The cut line lost its last fields: counted as bad, the nine before it kept.
	if sum.Rows != 9 || sum.Files[0].Bad != 1 || len(sum.Files[0].Notes) != 0 {
		t.Fatalf("rows %d, bad %d, notes %q", sum.Rows, sum.Files[0].Bad, sum.Files[0].Notes)
	}
}

// TestRotation: current/conn.log, read while Zeek wrote it, later appears
// gzip-compressed in a dated directory with more lines; only those are new.
func TestRotation(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		dir := t.TempDir()
		all := header + rows(0, 3000)
		partial := all[:strings.Index(all, "C00002000")-30]
		partial = partial[:strings.LastIndex(partial, "\n")+1]
		write(t, filepath.Join(dir, "current", "conn.log"), []byte(partial), false)
		sink := &ingesttest.Sink{}
		run(t, sink, filepath.Join(dir, "current"))
		if err := os.Remove(filepath.Join(dir, "current", "conn.log")); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "2024-04-19", "conn.00:00:00-01:00:00.log.gz"), gz(t, all+"#close\tx\n"), true)
		sum := run(t, sink, dir)
		if sink.Rows(event.KindConn) != 3000 || !sum.Files[0].Resumed {
			t.Fatalf("stored %d (want 3000), %+v", sink.Rows(event.KindConn), sum.Files[0])
		}
	})
}

func TestSameStartDifferentContent(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		dir := t.TempDir()
		head := header + rows(0, 100)
		write(t, filepath.Join(dir, "a", "conn.log"), []byte(head+rows(100, 200)), true)
		write(t, filepath.Join(dir, "b", "conn.log"), []byte(head+rows(500, 700)), true)
		sink := &ingesttest.Sink{}
		sum := run(t, sink, dir)
		if sink.Rows(event.KindConn) != 500 {
			t.Fatalf("stored %d, want 500: %+v", sink.Rows(event.KindConn), sum.Files)
		}
		sum = run(t, sink, dir)
		if sum.Rows != 0 || sum.Count(ingest.StatusUnchanged) != 2 {
			t.Fatalf("second run: %d rows %v", sum.Rows, statuses(sum))
		}
	})
}

func TestTruncatedGzip(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		data := gz(t, header+rows(0, 50000))
		path := filepath.Join(t.TempDir(), "conn.log.gz")
		write(t, path, data[:len(data)/2], true)
		sink := &ingesttest.Sink{}
		sum := run(t, sink, path)
		f := sum.Files[0]
		if f.Status != ingest.StatusIngested || f.Rows < 10000 || f.Rows > 40000 || f.Bad != 0 {
			t.Fatalf("%+v", f)
		}
		if !strings.Contains(strings.Join(f.Notes, " "), "truncated") {
			t.Errorf("notes do not say truncated: %v", f.Notes)
		}
		sum = run(t, sink, path)
		if sum.Rows != 0 {
			t.Fatalf("re-read added %d rows", sum.Rows)
		}
		// The complete file later: the rest comes in.
		write(t, path, data, true)
		run(t, sink, path)
		if got := sink.Rows(event.KindConn); got != 50000 {
			t.Fatalf("stored %d, want 50000", got)
		}
		if d := sink.Doubles(); len(d) > 0 {
			t.Fatalf("%d doubled", len(d))
		}
	})
}

func TestCopiesInOneRun(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		dir := t.TempDir()
		content := gz(t, header+rows(0, 5000)+"#close\tx\n")
		for _, d := range []string{"a", "b", "c"} {
			write(t, filepath.Join(dir, d, "conn.log.gz"), content, true)
		}
		sink := &ingesttest.Sink{}
		sum := run(t, sink, dir)
		if sink.Rows(event.KindConn) != 5000 || sum.Count(ingest.StatusUnchanged) != 2 {
			t.Fatalf("stored %d, %v", sink.Rows(event.KindConn), statuses(sum))
		}
	})
}

func TestRejectedAndSkipped(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conn.log"), []byte("Lorem ipsum dolor sit amet\n"), true)
	write(t, filepath.Join(dir, "weird.log"), []byte("#separator \\x09\n#path\tweird\n#fields\tts\tname\n1.0\tx\n"), true)
	write(t, filepath.Join(dir, "empty.log"), nil, true)
	write(t, filepath.Join(dir, "conn-summary.log"), []byte(">== Total ==="), true)
	sink := &ingesttest.Sink{}
	sum := run(t, sink, dir)
	st := statuses(sum)
	want := map[string]ingest.Status{"conn.log": ingest.StatusRejected, "weird.log": ingest.StatusSkipped,
		"empty.log": ingest.StatusSkipped, "conn-summary.log": ingest.StatusSkipped}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s: %s, want %s", k, st[k], v)
		}
	}
	for _, f := range sum.Files {
		if f.Status == ingest.StatusRejected && (f.Explicit || !strings.Contains(f.Err, "Lorem ipsum")) {
			t.Errorf("rejection: %+v", f)
		}
	}
}

func TestManySmallFilesShareTransactions(t *testing.T) {
	dir := t.TempDir()
	for i := range 60 {
		write(t, filepath.Join(dir, fmt.Sprintf("conn.%02d.log", i)), []byte(header+rows(i*10, i*10+10)), true)
	}
	sink := &ingesttest.Sink{}
	run(t, sink, dir)
	if sink.Rows(event.KindConn) != 600 || len(sink.Entries()) != 60 {
		t.Fatalf("stored %d rows, %d ledger entries", sink.Rows(event.KindConn), len(sink.Entries()))
	}
	if sink.Batches() >= 60 {
		t.Errorf("%d writes for 60 small files: batches are not merged", sink.Batches())
	}
	if r := sink.Regressions(); len(r) > 0 {
		t.Errorf("checkpoints moved back: %v", r)
	}
}

func TestStoreFailureStops(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conn.log"), []byte(header+rows(0, 10)), true)
	sink := &ingesttest.Sink{Fail: errors.New("disk full")}
	cands, _ := ingest.Discover([]string{dir})
	_, err := ingest.New(sink, ingest.Options{Formats: zeek.Formats()}).Run(context.Background(), cands)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v", err)
	}
}

// TestGoneAfterListing: a file listed, then rotated away before it is
// opened (Zeek's current/conn.log), fails with Gone set, and the other
// files are read.
func TestGoneAfterListing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "current", "conn.log"), []byte(header+rows(0, 10)), true)
	write(t, filepath.Join(dir, "2024-04-19", "conn.00:00:00-01:00:00.log"), []byte(header+rows(10, 20)), true)
	cands, err := ingest.Discover([]string{dir})
	if err != nil || len(cands) != 2 {
		t.Fatalf("discovered %d: %v", len(cands), err)
	}
	if err := os.Rename(filepath.Join(dir, "current", "conn.log"), filepath.Join(dir, "rotated.log")); err != nil {
		t.Fatal(err)
	}
	sink := &ingesttest.Sink{}
	sum, err := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), Sensor: "s"}).Run(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sum.Files {
		current := strings.Contains(f.Path, "current")
		if f.Gone != current || current && f.Status != ingest.StatusFailed {
			t.Errorf("%s: gone %v, status %v (%s)", f.Path, f.Gone, f.Status, f.Err)
		}
	}
	if sum.Rows != 10 {
		t.Errorf("%d rows stored, want the other file's 10", sum.Rows)
	}
}

// TestSameContentOtherEncoding: a log read as .gz is the same input
// decompressed, or compressed at another level (identity is the decoded
// content): nothing is stored twice.
func TestSameContentOtherEncoding(t *testing.T) {
	ledgerReads(t, func(t *testing.T, run runner) {
		dir := t.TempDir()
		content := header + rows(0, 124)
		write(t, filepath.Join(dir, "a", "conn.00:00:00-01:00:00.log.gz"), gz(t, content), true)
		sink := &ingesttest.Sink{}
		if sum := run(t, sink, filepath.Join(dir, "a")); sum.Rows != 124 {
			t.Fatalf("first read: %d rows", sum.Rows)
		}
		write(t, filepath.Join(dir, "b", "conn.00:00:00-01:00:00.log"), []byte(content), true)
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "c", "conn.00:00:00-01:00:00.log.gz"), buf.Bytes(), true)
		for _, d := range []string{"b", "c"} {
			sum := run(t, sink, filepath.Join(dir, d))
			if sum.Rows != 0 || sum.Files[0].Status != ingest.StatusUnchanged {
				t.Errorf("%s: %d rows, %+v", d, sum.Rows, sum.Files[0])
			}
		}
		if d := sink.Doubles(); len(d) > 0 || sink.Rows(event.KindConn) != 124 {
			t.Errorf("stored %d rows, doubles %v", sink.Rows(event.KindConn), d)
		}
	})
}

// A reader hands the writer pieces of a large file (they wait in a pool,
// and their size is most of an ingest's memory); the writer stores them
// whole, in transactions of up to BatchRows.
func TestLargeFileInPieces(t *testing.T) {
	const n = 40000
	path := filepath.Join(t.TempDir(), "conn.log")
	write(t, path, []byte(header+rows(0, n)), true)
	pieces := 0
	sink := &ingesttest.Sink{Refuse: func(b *event.Batch) error {
		pieces += len(b.Progress)
		return nil
	}}
	cands, err := ingest.Discover([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	in := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), BatchRows: 100000, Sensor: "s"})
	if _, err := in.Run(context.Background(), cands); err != nil {
		t.Fatal(err)
	}
	if got := sink.Rows(event.KindConn); got != n || len(sink.Doubles()) != 0 {
		t.Fatalf("stored %d of %d rows, doubles %v", got, n, sink.Doubles())
	}
	if pieces < 3 {
		t.Errorf("%d pieces of a %d-row file: the reader handed it over whole", pieces, n)
	}
	if led := sink.Entries(); len(led) != 1 || led[0].Rows != n {
		t.Errorf("ledger %+v", led)
	}
	if r := sink.Regressions(); len(r) > 0 {
		t.Errorf("checkpoints moved back: %v", r)
	}
}

func TestPieceSize(t *testing.T) {
	for _, c := range []struct{ batch, piece int }{{122880, 15360}, {16384, 16384}, {1000, 1000}, {16385, 8193}, {10_000_000, 16367}} {
		if got := ingest.PieceSize(c.batch); got != c.piece {
			t.Errorf("pieceSize(%d) = %d, want %d", c.batch, got, c.piece)
		}
	}
}

// dnsRows returns Zeek JSON dns records numbered from to to.
func dnsRows(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `{"ts":%d.5,"uid":"D%08d","id.orig_h":"10.1.%d.%d","id.orig_p":%d,"id.resp_h":"192.0.2.53","id.resp_p":53,"proto":"udp","query":"h%d.example.org"}`+"\n",
			1713484800+i, i, i/256%256, i%256, 1024+i%60000, i)
	}
	return b.String()
}

// TestOneLogAtATime: a conn log and a dns log, two workers. The dns log
// is read once the conn log is, so their records share at most the one
// transaction where the one ends and the other begins (reading both at
// once mixed 3 of 4); every record is stored once, and no checkpoint
// moves back.
func TestOneLogAtATime(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conn.log"), []byte(header+rows(0, 60000)), true)
	write(t, filepath.Join(dir, "dns.log"), []byte(dnsRows(0, 60000)), true)
	sink := &ingesttest.Sink{}
	// Pieces of 13,334 records: three make a transaction.
	runWith(t, sink, ingest.Options{Formats: zeek.Formats(), BatchRows: 40000, Workers: 2, Sensor: "s"}, dir)
	checkOneLog(t, sink, 60000)
}

// checkOneLog checks a run of conn and dns logs of each records each:
// all stored once, no checkpoint moved back, at most one transaction
// mixing the two logs.
func checkOneLog(t *testing.T, sink *ingesttest.Sink, each int64) {
	t.Helper()
	if c, d := sink.Rows(event.KindConn), sink.Rows(event.KindDNS); c != each || d != each {
		t.Fatalf("stored %d conn and %d dns records, want %d each", c, d, each)
	}
	if d := sink.Doubles(); len(d) > 0 {
		t.Errorf("%d records stored twice", len(d))
	}
	if r := sink.Regressions(); len(r) > 0 {
		t.Errorf("checkpoints moved back: %v", r)
	}
	if sink.Mixed() > 1 {
		t.Errorf("%d of %d transactions mixed conn and dns records", sink.Mixed(), sink.Batches())
	}
}

// TestKindsAcrossDays: Zeek's day directories are read a log at a time
// across the days (all conn, then all dns), not day by day, so
// transactions mix two logs at most once.
func TestKindsAcrossDays(t *testing.T) {
	dir := t.TempDir()
	for d, day := range []string{"2024-04-19", "2024-04-20", "2024-04-21"} {
		write(t, filepath.Join(dir, day, "conn.00:00:00-01:00:00.log"), []byte(header+rows(d*5000, d*5000+5000)), true)
		write(t, filepath.Join(dir, day, "dns.00:00:00-01:00:00.log"), []byte(dnsRows(d*5000, d*5000+5000)), true)
	}
	sink := &ingesttest.Sink{}
	runWith(t, sink, ingest.Options{Formats: zeek.Formats(), BatchRows: 4000, Workers: 2, Sensor: "s"}, dir)
	checkOneLog(t, sink, 15000)
}

// TestNoShortTails: Zeek's hourly files seldom end where a transaction
// of BatchRows does; a transaction that passes a multiple of BatchRows
// takes more pieces until the rest is over half of it (a small rest
// would make DuckDB rewrite its neighbouring row groups).
func TestNoShortTails(t *testing.T) {
	dir := t.TempDir()
	const files, each, batch = 8, 17000, 40000
	for h := range files {
		write(t, filepath.Join(dir, fmt.Sprintf("conn.%02d:00:00-%02d:00:00.log", h, h+1)), []byte(header+rows(h*each, h*each+each)), true)
	}
	sink := &ingesttest.Sink{}
	// Pieces of 13,334 records: each file one and a rest of 3,666.
	runWith(t, sink, ingest.Patient(ingest.Options{Formats: zeek.Formats(), BatchRows: batch, Workers: 2, Sensor: "s"}), dir)
	if n := sink.Rows(event.KindConn); n != files*each {
		t.Fatalf("stored %d records, want %d", n, files*each)
	}
	if d := sink.Doubles(); len(d) > 0 {
		t.Errorf("%d records stored twice", len(d))
	}
	for i, sizes := range sink.Sizes[:len(sink.Sizes)-1] { // the last may end short
		if n := sizes[event.KindConn]; n > batch && n%batch > 0 && n%batch <= batch/2 {
			t.Errorf("transaction %d of %d: %d records, a rest of %d", i+1, len(sink.Sizes), n, n%batch)
		}
	}
}

// TestSeen: a run with the Seen of the run before skips the files that
// run found stored to their end, unopened, while their size, time and
// ledger entry stay; anything else is read as without it.
func TestSeen(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "2024-04-19", "conn.00:00:00-01:00:00.log")
	b := filepath.Join(dir, "2024-04-19", "conn.01:00:00-02:00:00.log")
	write(t, a, []byte(header+rows(0, 100)), true)
	write(t, b, []byte(header+rows(100, 200)), true)
	sink := &ingesttest.Sink{}
	opt := ingest.LedgerOnce(ingest.Options{Formats: zeek.Formats(), BatchRows: 1000, Sensor: "s", Seen: &ingest.Seen{}})
	check := func(step string, rows int64, st map[string]ingest.Status) {
		t.Helper()
		sum := runWith(t, sink, opt, dir)
		if got := statuses(sum); sum.Rows != rows || !maps.Equal(got, st) {
			t.Fatalf("%s: %d rows, %v; want %d, %v", step, sum.Rows, got, rows, st)
		}
	}
	both := func(s ingest.Status) map[string]ingest.Status {
		return map[string]ingest.Status{filepath.Base(a): s, filepath.Base(b): s}
	}
	check("first run", 200, both(ingest.StatusIngested))
	check("second run", 0, both(ingest.StatusUnchanged))

	// Another start, the same size and time: not opened, so not read.
	// (Opened, it is another input: TestSameStartDifferentContent.)
	forged := []byte(strings.Replace(header+rows(0, 100), "00-00-01", "00-00-02", 1))
	info, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	forge := func() {
		t.Helper()
		write(t, a, forged, false)
		if err := os.Chtimes(a, info.ModTime(), info.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	forge()
	check("same size and time", 0, both(ingest.StatusUnchanged))

	// Grown: read from where it was left.
	f, err := os.OpenFile(b, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(rows(200, 210)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check("grown", 10, map[string]ingest.Status{filepath.Base(a): ingest.StatusUnchanged, filepath.Base(b): ingest.StatusIngested})
	check("grown, again", 0, both(ingest.StatusUnchanged))

	// Its ledger entry removed (dwell delete): read again.
	sink.Forget(b)
	check("entry removed", 110, map[string]ingest.Status{filepath.Base(a): ingest.StatusUnchanged, filepath.Base(b): ingest.StatusIngested})

	// Gone, then back as it was: forgotten, so opened (and its other
	// start read as another input).
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	check("gone", 0, map[string]ingest.Status{filepath.Base(b): ingest.StatusUnchanged})
	forge()
	check("back", 100, map[string]ingest.Status{filepath.Base(a): ingest.StatusIngested, filepath.Base(b): ingest.StatusUnchanged})
}
