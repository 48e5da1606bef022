package app

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// fileTruth is what an independent reading of a Zeek log says it holds.
type fileTruth struct {
	kind  event.Kind // 0: a log type dwell does not store
	lines int64      // data lines
}

// truth reads a log without dwell's reader: decompress, find the log type
// from #path, _path or the name, count the data lines.
func truth(t *testing.T, path string) (fileTruth, bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	first, _, _ := strings.Cut(string(data), "\n")
	isTSV := strings.HasPrefix(first, "#separator")
	isJSON := strings.HasPrefix(first, "{")
	headerless := !isTSV && !isJSON && strings.Count(first, "\t") > 10 && ingest.KindHint(path) != 0
	if !isTSV && !isJSON && !headerless {
		return fileTruth{}, false
	}
	name := ""
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		if p, ok := strings.CutPrefix(l, "#path\t"); ok {
			name = p
		}
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if isJSON && name == "" {
			var obj map[string]any
			if json.Unmarshal([]byte(l), &obj) == nil {
				if p, ok := obj["_path"].(string); ok {
					name = p
				}
			}
		}
		n++
	}
	ft := fileTruth{lines: n}
	if name == "" {
		ft.kind = ingest.KindHint(path)
		if k, ok := inferred[filepath.ToSlash(path)[strings.Index(filepath.ToSlash(path), "datasets/")+len("datasets/"):]]; ok {
			ft.kind = k
		}
	} else {
		ft.kind, _ = event.ParseKind(name)
	}
	return ft, true
}

// inferred lists the logs whose type only their fields tell (no path in
// them, none in their name).
var inferred = map[string]event.Kind{
	"rita-parser-edgecases/json_with_all_fields/ORIGINALdns.log": event.KindDNS,
}

// knownBad lists the malformed lines the shared datasets really contain.
var knownBad = map[string]int64{
	"rita-parser-edgecases/has_unknown_field/http.log": 1,
	"rita-parser-edgecases/truncated/conn.log":         1,
	"rita-parser-edgecases/truncated/conn_top.log":     1,
	"rita-parser-edgecases/truncated/conn_json.log":    2,
}

// TestIngestDatasets ingests every Zeek log of the shared datasets into a
// DuckDB store and checks, file by file, that the stored rows are the data
// lines minus the counted bad ones; then that ingesting again adds nothing
// and that writing SQL is refused.
func TestIngestDatasets(t *testing.T) {
	dirs := []string{"rita-parser-edgecases", "rita-missing-host-beacon", "wrccdc-2018-zeek", "zeek-btest-pcap-to-logs/baselines"}
	var paths []string
	for _, d := range dirs {
		p := filepath.Join(datasets, d)
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		t.Skip("shared datasets not found under " + datasets + " (set DWELL_DATASETS)")
	}
	db := filepath.Join(t.TempDir(), "dwell.db")
	code, out, errOut := runDwell(t, append([]string{"ingest", "--complete", "--db", db}, paths...)...)
	if code != ExitOK {
		t.Fatalf("ingest exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "5 malformed line(s) skipped and counted") {
		t.Errorf("summary does not report the 5 bad lines:\n%s", out)
	}

	// Stored rows per source file, over every table.
	var parts []string
	for _, k := range event.Kinds {
		parts = append(parts, "SELECT source_file FROM "+k.String())
	}
	code, out, errOut = runDwell(t, "query", "--db", db, "--format", "csv",
		"SELECT source_file, count(*) FROM ("+strings.Join(parts, " UNION ALL ")+") GROUP BY ALL")
	if code != ExitOK {
		t.Fatalf("query exit %d: %s", code, errOut)
	}
	stored := map[string]int64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		var n int64
		f, c, _ := strings.Cut(l, ",")
		if _, err := fmt.Sscan(c, &n); err != nil {
			t.Fatalf("bad line %q", l)
		}
		stored[strings.Trim(f, `"`)] = n
	}
	checked := 0
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			ft, ok := truth(t, path)
			if !ok {
				return nil
			}
			abs, _ := filepath.Abs(path)
			rel, _ := filepath.Rel(datasets, path)
			want := int64(0)
			if ft.kind != 0 {
				want = ft.lines - knownBad[rel]
			}
			if got := stored[abs]; got != want {
				t.Errorf("%s: %d rows stored, want %d (%d data lines, %d bad, type %v)", rel, got, want, ft.lines, knownBad[rel], ft.kind)
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d files checked", checked)

	code, out, _ = runDwell(t, append([]string{"ingest", "--complete", "--db", db}, paths...)...)
	if code != ExitOK || !strings.Contains(out, ": 0 records stored") {
		t.Errorf("re-ingest: exit %d\n%s", code, out)
	}

	code, _, errOut = runDwell(t, "query", "--db", db, "DELETE FROM conn")
	if code != ExitFail || !strings.Contains(errOut, "refused") {
		t.Errorf("DELETE: exit %d, %s", code, errOut)
	}
	code, out, _ = runDwell(t, "query", "--db", db, "SELECT count(*) AS n FROM conn WHERE id_orig_h = '73.54.23.243' AND id_resp_p = 80")
	if code != ExitOK || !strings.Contains(out, "950") {
		t.Errorf("beacon connections: %s", out)
	}
}

func TestIngestExplicitRejectFails(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "conn.log")
	if err := os.WriteFile(bad, []byte("Lorem ipsum\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runDwell(t, "ingest", "--db", filepath.Join(dir, "d.db"), bad)
	if code != ExitFail || !strings.Contains(out, "rejected") || !strings.Contains(errOut, "could not be ingested") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runDwell(t, "query", "--db", filepath.Join(dir, "none.db"), "SELECT 1")
	if code != ExitFail || !strings.Contains(errOut, "dwell ingest") {
		t.Errorf("query on a missing store: exit %d %s", code, errOut)
	}
}

func TestQueryFormats(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	log := filepath.Join(dir, "dns.log")
	data := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tquery\tanswers\n" +
		"1713484800.5\tC1\t10.0.0.1\tevil\\x1b[31m.example\ta,b\n"
	if err := os.WriteFile(log, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runDwell(t, "ingest", "-q", "--db", db, log); code != 0 || out != "" {
		t.Fatalf("ingest: %d %q %s", code, out, errOut)
	}
	q := "SELECT ts, query, answers, id_orig_h FROM dns"
	_, out, _ := runDwell(t, "query", "--db", db, q)
	if !strings.Contains(out, `evil\x1b[31m.example`) || strings.Contains(out, "\x1b") || !strings.Contains(out, "2024-04-19T00:00:00.500000Z") || !strings.Contains(out, "(1 row)") {
		t.Errorf("table:\n%s", out)
	}
	_, out, _ = runDwell(t, "query", "--db", db, "--format", "json", q)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0]["query"] != "evil\x1b[31m.example" {
		t.Errorf("json %v: %s", err, out)
	}
	_, out, _ = runDwell(t, "query", "--db", db, "--format", "csv", q)
	if !strings.HasPrefix(out, "ts,query,answers,id_orig_h\n") || !strings.Contains(out, "[a, b]") {
		t.Errorf("csv:\n%s", out)
	}
}

// TestConfigFile checks that a config file sets the store and the sensor.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dwell.yaml")
	db := filepath.Join(dir, "from-config.db")
	if err := os.WriteFile(cfg, []byte("store: "+db+"\nsensor: brussels\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "conn.log")
	if err := os.WriteFile(log, []byte(connFixture(3)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runDwell(t, "ingest", "--config", cfg, log); code != 0 {
		t.Fatalf("%d %s %s", code, out, errOut)
	}
	_, out, _ := runDwell(t, "query", "--config", cfg, "--format", "csv", "SELECT DISTINCT sensor FROM conn")
	if strings.TrimSpace(out) != "sensor\nbrussels" {
		t.Errorf("sensor: %q", out)
	}
	if err := os.WriteFile(cfg, []byte("sensr: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runDwell(t, "ingest", "--config", cfg, log); code != ExitFail || !strings.Contains(errOut, "sensr") {
		t.Errorf("bad config: %d %s", code, errOut)
	}
}

// connFixture returns a Zeek conn.log with n rows.
func connFixture(n int) string {
	var b strings.Builder
	b.WriteString("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2024-04-19-00-00-01\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n" +
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n")
	for i := range n {
		fmt.Fprintf(&b, "%d.%06d\tC%09d\t10.1.%d.%d\t%d\t198.51.100.%d\t443\ttcp\tssl\t0.5\t300\t4000\tSF\tT\tF\t0\tShADadFf\t8\t700\t9\t4500\t-\n",
			1713484800+i*7, i%1000000, i, i/256%256, i%256, 20000+i%40000, i%200)
	}
	return b.String()
}
