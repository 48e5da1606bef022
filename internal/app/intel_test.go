package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
)

// listed returns the indicators of a store as dwell intel list --format
// json gives them, keyed by type, value and port (sources differ between
// stores by design: the importer names them).
func listed(t *testing.T, db string) map[string]event.Indicator {
	t.Helper()
	code, out, errOut := runDwell(t, "intel", "list", "--db", db, "--format", "json")
	if code != ExitOK {
		t.Fatalf("intel list: exit %d: %s", code, errOut)
	}
	var doc struct {
		Indicators []event.Indicator `json:"indicators"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	m := map[string]event.Indicator{}
	for _, i := range doc.Indicators {
		i.Source, i.Ref, i.Group = "", "", ""
		m[i.Key()] = i
	}
	return m
}

// TestIntelEndToEnd: intel imported after the telemetry is retro-hunted
// over it, the sightings are findings of dwell hunt, a re-import updates
// rather than duplicates, and the STIX and MISP exports import into a
// fresh store as the same indicators.
func TestIntelEndToEnd(t *testing.T) {
	dir := filepath.Join(datasets, "rita-missing-host-beacon")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	tmp := t.TempDir()
	db := filepath.Join(tmp, "a.db")
	if code, _, errOut := runDwell(t, "ingest", "--complete", "-q", "--db", db, dir); code != ExitOK {
		t.Fatalf("ingest: %s", errOut)
	}
	feed := filepath.Join(tmp, "iocs.csv")
	csv := "value,type,comment,tlp,confidence\n64.225.56.201,ip-dst,beacon C2,amber,90\n" +
		"repos-droplet.digitalocean.com,domain,asked by the beacon host,green,\n192.0.2.99,ip-dst,never seen,clear,\n"
	if err := os.WriteFile(feed, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second import updates
		code, out, errOut := runDwell(t, "intel", "import", "--db", db, "--source", "cert", feed)
		if code != ExitOK || !strings.Contains(out, "sighting(s)") {
			t.Fatalf("intel import: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	if got := listed(t, db); len(got) != 3 {
		t.Fatalf("%d indicators after two imports of the same feed, want 3", len(got))
	}

	code, out, errOut := runDwell(t, "intel", "retrohunt", "--db", db, "--format", "json")
	if code != ExitOK {
		t.Fatalf("retrohunt: %s", errOut)
	}
	var rh struct {
		Sightings []struct {
			Sighting event.Sighting `json:"sighting"`
		} `json:"sightings"`
	}
	if err := json.Unmarshal([]byte(out), &rh); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var conn *event.Sighting
	logs := map[string]bool{}
	for i, s := range rh.Sightings {
		logs[s.Sighting.Log] = true
		if strings.Contains(s.Sighting.Key, "192.0.2.99") {
			t.Errorf("sighting of an address never seen: %+v", s)
		}
		if s.Sighting.Log == "conn" && s.Sighting.Observed == "64.225.56.201" {
			conn = &rh.Sightings[i].Sighting
		}
	}
	// SELECT count(*) FROM conn WHERE '64.225.56.201' IN (id_orig_h, id_resp_h): 105,753 on 4 days.
	if conn == nil || conn.Count != 105753 || conn.Days != 4 || conn.First.Year() != 2024 {
		t.Fatalf("conn sighting of the C2: %+v", conn)
	}
	// The stored sightings, read back without matching again.
	code, out, errOut = runDwell(t, "intel", "sightings", "--db", db, "--format", "json")
	var stored struct {
		Sightings []struct {
			event.Sighting
			Value string `json:"value"`
		} `json:"sightings"`
	}
	if code != ExitOK || json.Unmarshal([]byte(out), &stored) != nil || len(stored.Sightings) != len(rh.Sightings) {
		t.Errorf("intel sightings: %d %s %s", code, tail(out, 300), errOut)
	}
	if !logs["dns"] || !logs["http"] {
		t.Errorf("sightings only in %v (want the domain in dns, the address as an HTTP Host)", logs)
	}

	code, out, errOut = runDwell(t, "hunt", "--db", db, "--format", "json", "--detectors", "iocmatch")
	if code != ExitOK {
		t.Fatalf("hunt: %s", errOut)
	}
	var hunt struct {
		Findings []detect.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &hunt); err != nil {
		t.Fatal(err)
	}
	if len(hunt.Findings) == 0 || !slices.ContainsFunc(hunt.Findings, func(f detect.Finding) bool { return f.Dst.String() == "64.225.56.201" }) {
		t.Errorf("no iocmatch finding for the C2 address: %+v", hunt.Findings)
	}

	want := listed(t, db)
	for _, format := range []string{"stix", "misp"} {
		out := filepath.Join(tmp, "export."+format+".json")
		code, msg, errOut := runDwell(t, "export", format, "--db", db, "--out", out, "--producer", "CERT.test")
		if code != ExitOK {
			t.Fatalf("export %s: exit %d: %s", format, code, errOut)
		}
		if !strings.Contains(msg, "3 indicator(s) and") {
			t.Errorf("export %s said %q", format, msg)
		}
		db2 := filepath.Join(tmp, format+".db")
		if code, msg, errOut := runDwell(t, "intel", "import", "--db", db2, out); code != ExitOK {
			t.Fatalf("import of the %s export: exit %d\n%s\n%s", format, code, msg, errOut)
		}
		got := listed(t, db2)
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("%s: %q not re-imported", format, k)
				continue
			}
			if g.TLP != w.TLP || g.Name != w.Name || g.Confidence != w.Confidence || g.Actionable != w.Actionable {
				t.Errorf("%s: %q changed:\n was %+v\n now %+v", format, k, w, g)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d indicators re-imported, want %d", format, len(got), len(want))
		}
	}

	// --tlp leaves out what is marked above it.
	code, msg, _ := runDwell(t, "export", "stix", "--db", db, "--out", "-", "--tlp", "green")
	if code != ExitOK || strings.Contains(msg, "64.225.56.201") || !strings.Contains(msg, "repos-droplet.digitalocean.com") {
		t.Errorf("TLP:GREEN export: exit %d, holds the amber address or lacks the green domain", code)
	}
	if code, _, errOut := runDwell(t, "export", "stix", "--db", db, "--out", "-", "--tlp", "purple"); code != ExitUsage || !strings.Contains(errOut, "not a TLP level") {
		t.Errorf("bad --tlp: exit %d: %s", code, errOut)
	}
}

// endlessTAXII is a TAXII server that always has more: each page holds
// one new indicator and a new next token, and the date added grows. With
// failAt set, the page of that number fails.
type endlessTAXII struct {
	mu     sync.Mutex
	pages  int
	after  []string // added_after of each request
	failAt int
}

func (e *endlessTAXII) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", intel.TAXIIMediaType)
	switch {
	case strings.HasSuffix(r.URL.Path, "/taxii2/"):
		fmt.Fprint(w, `{"title":"t","api_roots":["/api/"]}`)
	case strings.HasSuffix(r.URL.Path, "/api/collections/"):
		fmt.Fprint(w, `{"collections":[{"id":"c1","title":"endless","can_read":true}]}`)
	case strings.HasSuffix(r.URL.Path, "/objects/"):
		e.mu.Lock()
		e.pages++
		n := e.pages
		e.after = append(e.after, r.URL.Query().Get("added_after"))
		e.mu.Unlock()
		if n == e.failAt {
			http.Error(w, `{"title":"overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		added := time.Date(2024, 1, 1, 0, 0, n, 0, time.UTC).Format("2006-01-02T15:04:05.000Z")
		w.Header().Set("X-TAXII-Date-Added-Last", added)
		fmt.Fprintf(w, `{"more":true,"next":"n%d","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--%08d-0000-4000-8000-000000000000",`+
			`"created":"2024-01-01T00:00:00Z","modified":"2024-01-01T00:00:00Z","valid_from":"2024-01-01T00:00:00Z","pattern_type":"stix",`+
			`"pattern":"[domain-name:value = 'c2-%d.example']"}]}`, n, n, n)
	default:
		http.NotFound(w, r)
	}
}

// TestTAXIIEndless: a server that pages forever is read up to the cap,
// what was read is stored, and the next import goes on from there; an
// import cut by a failing page keeps the pages before it.
func TestTAXIIEndless(t *testing.T) {
	srv := &endlessTAXII{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "dwell.yml")
	if err := os.WriteFile(cfg, []byte("intel:\n  taxii_max_pages: 20\n  taxii_timeout: 10s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "d.db")
	code, out, errOut := runDwell(t, "intel", "import", "--config", cfg, "--db", db, "--taxii", ts.URL+"/taxii2/")
	if code != ExitOK || !strings.Contains(out, "stopped after 20 pages") || !strings.Contains(out, "stored 20 indicator(s)") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	srv.failAt = 25
	code, out, errOut = runDwell(t, "intel", "import", "--config", cfg, "--db", db, "--taxii", ts.URL+"/taxii2/")
	if code == ExitOK || !strings.Contains(errOut, "503") {
		t.Fatalf("a failing page: exit %d\n%s%s", code, out, errOut)
	}
	if srv.after[20] != "2024-01-01T00:00:20.000Z" {
		t.Errorf("the second import did not go on from the first: added_after %q", srv.after[20])
	}
	srv.failAt = 0
	code, out, _ = runDwell(t, "intel", "import", "--config", cfg, "--db", db, "--taxii", ts.URL+"/taxii2/")
	if code != ExitOK || srv.after[25] != "2024-01-01T00:00:24.000Z" {
		t.Errorf("after the failure: exit %d, added_after %q\n%s", code, srv.after[25], out)
	}
	_, list, _ := runDwell(t, "intel", "list", "--db", db, "--format", "json")
	if n := strings.Count(list, `"c2-`); n != 44 {
		t.Errorf("%d indicators stored, want 20 + 4 + 20", n)
	}
}

// TestIntelSourceIsThePath: a feed imported as f.txt and as /abs/f.txt is
// one source: its indicators are stored once.
func TestIntelSourceIsThePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("198.51.100.23\nevil.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	db := filepath.Join(dir, "d.db")
	for _, src := range []string{"f.txt", "./f.txt", filepath.Join(dir, "f.txt")} {
		if code, out, errOut := runDwell(t, "intel", "import", "--db", db, src); code != ExitOK {
			t.Fatalf("%s: %s%s", src, out, errOut)
		}
	}
	_, out, _ := runDwell(t, "intel", "list", "--db", db, "--format", "json")
	if n := strings.Count(out, `"value"`); n != 2 || !strings.Contains(out, filepath.Join(dir, "f.txt")) {
		t.Errorf("%d indicators stored:\n%s", n, out)
	}
}

// TestIntelDelete: deleting a source removes its indicators and their
// sightings; the others stay.
func TestIntelDelete(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "conn.log")
	if err := os.WriteFile(log, []byte("#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"+
		"1713484800.000000\tC1\t10.0.0.7\t5000\t198.51.100.23\t443\ttcp\n1713484801.000000\tC2\t10.0.0.8\t5000\t203.0.113.9\t443\ttcp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, ip := range map[string]string{"a.txt": "198.51.100.23", "b.txt": "203.0.113.9"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(ip+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "d.db")
	if code, out, errOut := runDwell(t, "ingest", "--complete", "--db", db, log); code != ExitOK {
		t.Fatalf("%s%s", out, errOut)
	}
	if code, out, errOut := runDwell(t, "intel", "import", "--db", db, filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")); code != ExitOK ||
		!strings.Contains(out, "2 sighting(s)") {
		t.Fatalf("%s%s", out, errOut)
	}
	code, out, errOut := runDwell(t, "intel", "delete", "--db", db, filepath.Join(dir, "a.txt"))
	if code != ExitOK || !strings.Contains(out, "1 indicator(s) deleted") || !strings.Contains(out, "1 sighting(s)") {
		t.Errorf("delete: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runDwell(t, "intel", "delete", "--db", db, "nothing-such"); code != ExitFail || !strings.Contains(errOut, "no indicator") {
		t.Errorf("deleting an unknown source: exit %d %s", code, errOut)
	}
}
