package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/event"
)

// datasets is where the shared test data lives: $DWELL_DATASETS, or
// ../shared/datasets beside the repository.
var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../shared/datasets"
}()

// runDwell runs a command line in-process and returns its exit code and output.
func runDwell(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Logger: slog.New(slog.DiscardHandler), Now: time.Now}
	code := a.Main(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func TestUsageAndHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, ExitUsage, "Commands:"},
		{[]string{"help"}, ExitOK, "ingest"},
		{[]string{"--help"}, ExitOK, "query"},
		{[]string{"nosuch"}, ExitUsage, `unknown command "nosuch"`},
		{[]string{"ingest", "--help"}, ExitOK, "Examples:"},
		{[]string{"query", "--help"}, ExitOK, "read-only"},
		{[]string{"help", "query"}, ExitOK, "--format"},
		{[]string{"ingest"}, ExitUsage, "no input"},
		{[]string{"query"}, ExitUsage, "no SQL"},
		{[]string{"query", "--format", "xml", "SELECT 1"}, ExitUsage, "unknown format"},
		{[]string{"ingest", "--nosuchflag", "x"}, ExitUsage, "flag provided but not defined"},
		{[]string{"version"}, ExitOK, "dwell "},
		{[]string{"scenario", "--help"}, ExitOK, "--rate"},
		{[]string{"scenario"}, ExitUsage, "--out DIR is required"},
		{[]string{"scenario", "--out", "x", "--days", "2"}, ExitUsage, "days: 2 is not between"},
		{[]string{"scenario", "--out", "x", "--start", "March"}, ExitUsage, "is not a date"},
		{[]string{"demo", "--help"}, ExitOK, "--keep"},
		{[]string{"demo", "--detectors", "nosuch"}, ExitUsage, "unknown detector"},
	} {
		code, out, errOut := runDwell(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.out) {
			t.Errorf("dwell %v: exit %d (want %d), output %q does not contain %q", tc.args, code, tc.code, out+errOut, tc.out)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"tab\there":            `tab\there`,
		"\x1b[31mred\x1b[0m":   `\x1b[31mred\x1b[0m`,
		"bad\xffutf8":          `bad\xffutf8`,
		"rtl\u202eoverride":    `rtl\xe2\x80\xaeoverride`,
		"日本語":                  "日本語",
		strings.Repeat("a", 9): "aaaaa…",
	} {
		max := 0
		if len(in) == 9 {
			max = 5
		}
		if got := sanitize(in, max); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	if withCommas(1234567) != "1,234,567" || withCommas(-1000) != "-1,000" || human(1234567) != "1.2M" || human(999) != "999" {
		t.Error("number formatting")
	}
}

func TestParseInterleaved(t *testing.T) {
	var co common
	a := &App{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	fs := a.newFlags(ingestCommand(), &co)
	v := fs.Bool("v", false, "")
	pos, err := parse(fs, []string{"a", "--db", "x.db", "b", "-v", "--", "-c"})
	if err != nil || co.db != "x.db" || !*v || strings.Join(pos, ",") != "a,b,-c" {
		t.Errorf("pos %v db %q v %v err %v", pos, co.db, *v, err)
	}
	if filepath.Base(co.db) != "x.db" {
		t.Error(co.db)
	}
	// A query that starts with an SQL comment is an argument, not a flag;
	// a flag's value with a blank stays the flag's.
	var co2 common
	fs = a.newFlags(queryCommand(), &co2)
	fs.StringVar(&co2.sensor, "sensor", "", "")
	pos, err = parse(fs, []string{"--db", "y.db", "-- why\nSELECT 1", "--sensor", "-my site-"})
	if err != nil || strings.Join(pos, "|") != "-- why\nSELECT 1" || co2.db != "y.db" || co2.sensor != "-my site-" {
		t.Errorf("pos %q db %q sensor %q err %v", pos, co2.db, co2.sensor, err)
	}
}

// TestIngestShapes ingests every Zeek log shape of the reader's fixtures
// through the CLI: records of every shape are stored, sensors named in
// JSON streaming logs are kept, and the one input of no log dwell stores
// is named with the reason. An ingest that stores nothing from any input
// fails (exit 1) and says why; a hunt of an empty store says there is
// nothing to hunt.
func TestIngestShapes(t *testing.T) {
	shapes := filepath.Join("..", "ingest", "zeek", "testdata", "shapes")
	db := filepath.Join(t.TempDir(), "s.db")
	code, out, errOut := runDwell(t, "ingest", "--db", db, shapes)
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"17 records stored", "conn 11", "dns 2", "1 file, 0 records: log type not recognised", "mystery.json", "weird (1 lines, 1 file)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runDwell(t, "query", "--db", db, "--format", "csv", "SELECT sensor, count(*) AS n FROM conn GROUP BY ALL ORDER BY 1")
	if code != ExitOK || !strings.Contains(out, "default,10") || !strings.Contains(out, "dmz-sensor,1") {
		t.Errorf("sensors: exit %d\n%s", code, out)
	}

	empty := filepath.Join(t.TempDir(), "e.db")
	code, out, errOut = runDwell(t, "ingest", "--db", empty, filepath.Join(shapes, "mystery.json"))
	if code != ExitFail || !strings.Contains(out, "1 file, 0 records: log type not recognised") || !strings.Contains(errOut, "nothing was stored from any input") {
		t.Errorf("ingest of nothing: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runDwell(t, "hunt", "--db", empty)
	if code != ExitFail || !strings.Contains(errOut, "nothing to hunt") {
		t.Errorf("hunt of an empty store: exit %d, %s", code, errOut)
	}
}

// TestUserMessage: DuckDB's advice for its own shell is not shown; an
// out-of-memory error points at dwell's configuration instead.
func TestUserMessage(t *testing.T) {
	err := errors.New("hunt: Out of Memory Error: failed to allocate data of size 16.0 MiB (1.0 GiB/1.0 GiB used)\n\n" +
		"Possible solutions:\n* Reducing the number of threads (SET threads=X)\n* Increasing the memory limit (SET memory_limit='...GB')\n")
	got := userMessage(err)
	if strings.Contains(got, "SET ") || !strings.Contains(got, "memory_limit in dwell's configuration") || !strings.Contains(got, "16.0 MiB") {
		t.Errorf("%q", got)
	}
	if plain := errors.New("no store"); userMessage(plain) != "no store" {
		t.Error(userMessage(plain))
	}
}

// TestStatus: dwell status summarises a store: records and time range per
// table, inputs per sensor, the quarantine, intel and the last hunt.
func TestStatus(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	if code, out, errOut := runDwell(t, "status", "--db", db); code != ExitFail || !strings.Contains(errOut, "no store") {
		t.Errorf("status of no store: exit %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runDwell(t, "ingest", "--complete", "--sensor", "brussels", "--db", db, "../../examples/zeek"); code != ExitOK {
		t.Fatalf("%s%s", out, errOut)
	}
	code, out, errOut := runDwell(t, "status", "--db", db, "--format", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s storeStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Tables) != len(event.Kinds) || s.Tables[0].Table != "conn" || s.Tables[0].Records == 0 || s.Tables[0].First.IsZero() ||
		!s.Tables[0].Last.After(s.Tables[0].First) || len(s.Sensors) != 1 || s.Sensors[0].Sensor != "brussels" || s.Sensors[0].Records == 0 {
		t.Errorf("status %+v", s)
	}
	if code, out, _ := runDwell(t, "status", "--db", db); code != ExitOK || !strings.Contains(out, "brussels") || !strings.Contains(out, "no hunt kept yet") {
		t.Errorf("table: %s", out)
	}
}

// TestIngestStdin: dwell ingest - reads standard input, once.
func TestIngestStdin(t *testing.T) {
	log := "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n" +
		"1713484800.000000\tC1\t10.0.0.1\t5000\t192.0.2.1\t443\ttcp\n1713484801.000000\tC2\t10.0.0.1\t5001\t192.0.2.1\t443\ttcp"
	db := filepath.Join(t.TempDir(), "d.db")
	for i, want := range []string{"2 records stored (conn 2)", "1 unchanged"} {
		var stdout, stderr bytes.Buffer
		a := &App{Stdin: strings.NewReader(log), Stdout: &stdout, Stderr: &stderr, Logger: slog.New(slog.DiscardHandler), Now: time.Now}
		if code := a.Main(t.Context(), []string{"ingest", "--db", db, "-"}); code != ExitOK || !strings.Contains(stdout.String(), want) {
			t.Errorf("run %d: exit %d\n%s%s", i+1, code, stdout.String(), stderr.String())
		}
	}
}

// TestDeleteSensor: dwell delete says what it would delete, and with
// --yes deletes one sensor's records; the other sensor's stay.
func TestDeleteSensor(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	drop := filepath.Join(t.TempDir(), "conn.log")
	if err := os.WriteFile(drop, []byte("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"+
		"1713484800.000000\tC1\t10.0.0.1\t5000\t192.0.2.1\t443\ttcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for sensor, dir := range map[string]string{"keep": "../../examples/zeek", "drop": drop} {
		if code, out, errOut := runDwell(t, "ingest", "--complete", "--sensor", sensor, "--db", db, dir); code != ExitOK {
			t.Fatalf("%s%s", out, errOut)
		}
	}
	code, out, _ := runDwell(t, "delete", "--db", db, "--sensor", "drop")
	if code != ExitOK || !strings.Contains(out, "add --yes") {
		t.Fatalf("dry run: exit %d %s", code, out)
	}
	if code, out, errOut := runDwell(t, "delete", "--db", db, "--sensor", "drop", "--yes"); code != ExitOK || !strings.Contains(out, "records and the progress") {
		t.Fatalf("exit %d %s%s", code, out, errOut)
	}
	_, out, _ = runDwell(t, "status", "--db", db, "--format", "json")
	var s storeStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Sensors) != 1 || s.Sensors[0].Sensor != "keep" || s.Tables[0].Records == 0 {
		t.Errorf("after delete: %+v", s)
	}
	if code, _, errOut := runDwell(t, "delete", "--db", db, "--sensor", "drop", "--yes"); code != ExitFail || !strings.Contains(errOut, "no input of sensor") {
		t.Errorf("deleting it again: exit %d %s", code, errOut)
	}
}

// TestRulesCommands lists a rules directory and tests a rule against its
// own regression sample and another rule's.
func TestRulesCommands(t *testing.T) {
	root := filepath.Join(datasets, "sigma-regression")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	code, out, errOut := runDwell(t, "rules", "list", "--rules", filepath.Join(root, "rules"))
	if code != ExitOK || !strings.Contains(out, "192 rule(s) loaded, 1 refused") || !strings.Contains(out, "cisco_cli_dot1x_disabled.yml") {
		t.Errorf("list: exit %d %s%s", code, out, errOut)
	}
	rule := filepath.Join(root, "rules/windows/process_creation/proc_creation_win_amsi_registry_tampering.yml")
	own, _ := filepath.Glob(filepath.Join(root, "regression_data/rules/windows/process_creation/proc_creation_win_amsi_registry_tampering/*.evtx"))
	other, _ := filepath.Glob(filepath.Join(root, "regression_data/rules/windows/process_creation/proc_creation_win_bitsadmin_download/*.evtx"))
	if code, out, errOut := runDwell(t, "rules", "test", rule, "--match", own[0], "--no-match", other[0]); code != ExitOK || strings.Contains(out, "FAIL") {
		t.Errorf("test: exit %d %s%s", code, out, errOut)
	}
	if code, out, _ := runDwell(t, "rules", "test", rule, "--no-match", own[0]); code != ExitFail || !strings.Contains(out, "FAIL") {
		t.Errorf("a sample the rule fires on, given as --no-match: exit %d %s", code, out)
	}
	if code, _, _ := runDwell(t, "rules", "test", rule); code != ExitUsage {
		t.Errorf("test without samples: exit %d", code)
	}
}

// TestSigmaNetworkRules hunts Zeek logs with Sigma rules of the network
// log sources: a Zeek DNS rule, a proxy rule over the http table, and a
// DNS category rule that must not fire.
func TestSigmaNetworkRules(t *testing.T) {
	sigmaNetworkRules(t, filepath.Join(t.TempDir(), "d.db"))
}

// sigmaNetworkRules runs the network rules' test on the store db (a path
// or a clickhouse:// URL).
func sigmaNetworkRules(t *testing.T, db string) {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	if err := os.Mkdir(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, y := range map[string]string{
		"zeek_dns.yml": "title: Update domain queried\nid: n1\nlogsource: {product: zeek, service: dns}\n" +
			"detection:\n  s:\n    query|endswith: '.example.org'\n  condition: s\nlevel: low\n",
		"proxy.yml": "title: Gate script\nid: n2\nlogsource: {category: proxy}\ndetection:\n  s:\n    c-uri|endswith: '/gate.php'\n" +
			"  condition: s\nlevel: high\ntags: [attack.command-and-control, attack.t1071.001]\n",
		"dns_none.yml": "title: Nothing\nid: n3\nlogsource: {category: dns}\ndetection:\n  s:\n    query: 'never.invalid'\n  condition: s\n",
		"broken.yml":   "title: Broken\nid: n4\nlogsource: {category: dns}\ndetection:\n  s:\n    query|nope: x\n  condition: s\n",
	} {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "dwell.yml")
	if err := os.WriteFile(cfg, []byte("sigma:\n  rules: ["+rules+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runDwell(t, "ingest", "--complete", "--db", db, "../../examples/zeek"); code != ExitOK {
		t.Fatalf("%s%s", out, errOut)
	}
	code, out, errOut := runDwell(t, "hunt", "--config", cfg, "--db", db, "--detectors", "sigma", "--findings", "--format", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "1 Sigma rule(s) or file(s) refused") {
		t.Errorf("the refused rule is not mentioned: %q", errOut)
	}
	var res struct {
		Findings []struct {
			Detector string         `json:"detector"`
			Src      string         `json:"src"`
			Attack   []string       `json:"attack"`
			Evidence map[string]any `json:"evidence"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	fired := map[string]bool{}
	for _, f := range res.Findings {
		fired[f.Evidence["rule_id"].(string)] = true
		if f.Detector != "sigma" || f.Src == "" || f.Evidence["record"] == nil {
			t.Errorf("finding %+v", f)
		}
	}
	if !fired["n1"] || !fired["n2"] || fired["n3"] {
		t.Errorf("rules fired: %v", fired)
	}
}

// TestRulesImport imports a rule into an empty rules directory and
// retro-hunts it at once over the stored Windows events.
func TestRulesImport(t *testing.T) {
	root := filepath.Join(datasets, "sigma-regression")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "d.db")
	sample, _ := filepath.Glob(filepath.Join(root, "regression_data/rules/windows/process_creation/proc_creation_win_amsi_registry_tampering/*.evtx"))
	if code, out, errOut := runDwell(t, "ingest", "--db", db, sample[0]); code != ExitOK {
		t.Fatalf("%s%s", out, errOut)
	}
	rules := filepath.Join(dir, "rules")
	src := filepath.Join(root, "rules/windows/process_creation/proc_creation_win_amsi_registry_tampering.yml")
	code, out, errOut := runDwell(t, "rules", "import", "--db", db, "--to", rules, src)
	if code != ExitOK || !strings.Contains(out, "1 file(s) imported") || !strings.Contains(out, "1 finding(s)") ||
		!strings.Contains(out, "AMSI Related Registry Tampering") {
		t.Errorf("exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(rules, filepath.Base(src))); err != nil {
		t.Errorf("not copied: %v", err)
	}
	if code, _, _ := runDwell(t, "rules", "import", "--db", db, src); code != ExitUsage {
		t.Errorf("no rules directory anywhere: exit %d", code)
	}
}

// dwell ingest opens the store with its own memory limit and threads,
// each falling back to the store-wide setting.
func TestIngestStoreSettings(t *testing.T) {
	cfg := config.Default()
	cfg.MemoryLimit, cfg.Threads = "4GB", 8
	cfg.Ingest.MemoryLimit, cfg.Ingest.Threads = "768MB", 1
	if got := ingestStore(cfg); got.MemoryLimit != "768MB" || got.Threads != 1 || cfg.MemoryLimit != "4GB" || cfg.Threads != 8 {
		t.Errorf("ingest: memory %s, threads %d (store-wide now %s, %d)", got.MemoryLimit, got.Threads, cfg.MemoryLimit, cfg.Threads)
	}
	cfg.Ingest.MemoryLimit, cfg.Ingest.Threads = "", 0
	if got := ingestStore(cfg); got.MemoryLimit != "4GB" || got.Threads != 8 {
		t.Errorf("ingest without its own settings: memory %s, threads %d", got.MemoryLimit, got.Threads)
	}
	if d := config.Default().Ingest.Threads; d != max(1, runtime.GOMAXPROCS(0)/2) {
		t.Errorf("default ingest threads %d", d)
	}
}
