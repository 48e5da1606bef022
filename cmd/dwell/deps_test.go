package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/dwell-nsm/dwell/"

// allowed lists, for each package (or prefix ending in "/"), which of
// dwell's packages it may import: the import directions of ARCHITECTURE.md.
// A package of dwell's that matches no rule fails the test, so new
// packages must be placed in the design.
var allowed = []struct {
	pkg     string
	imports []string
}{
	{"internal/event", nil},
	{"internal/config", nil},
	{"internal/ingest", []string{"internal/event"}},
	{"internal/ingest/", []string{"internal/event", "internal/ingest"}},
	// The capture readers are shared by the formats that take packet
	// captures (traffic and flow exports).
	{"internal/ingest/capture", nil},
	{"internal/ingest/capture/capturetest", []string{"internal/ingest/capture"}},
	{"internal/ingest/pcap", []string{"internal/event", "internal/ingest", "internal/ingest/capture"}},
	{"internal/ingest/netflow", []string{"internal/event", "internal/ingest", "internal/ingest/capture"}},
	{"internal/intel", []string{"internal/event"}},
	{"internal/store", []string{"internal/event"}},
	{"internal/store/", []string{"internal/event", "internal/store"}},
	// The conformance suite checks the settled answers (a Reader over any
	// backend) on each backend.
	{"internal/store/storetest", []string{"internal/event", "internal/store", "internal/store/settled"}},
	{"internal/detect", []string{"internal/event", "internal/intel", "internal/store"}},
	{"internal/detect/", []string{"internal/event", "internal/intel", "internal/store", "internal/detect"}},
	// Test support: detector cases are Zeek logs read into the memory store.
	{"internal/detect/detecttest", []string{"internal/event", "internal/store", "internal/store/storetest", "internal/detect",
		"internal/ingest", "internal/ingest/zeek"}},
	{"internal/correlate", []string{"internal/event", "internal/detect", "internal/geo"}},
	// What was taken and who may be behind it: incidents, the records and
	// events behind them, intel findings (docs/decisions/0015).
	{"internal/attribution", []string{"internal/event", "internal/store", "internal/detect", "internal/correlate"}},
	// Registration data of addresses, from the user's .mmdb files.
	{"internal/geo", nil},
	{"internal/export/", []string{"internal/event", "internal/detect", "internal/correlate", "internal/intel"}},
	{"internal/scenario", []string{"internal/event"}},
	// dwell serve's HTTP side runs commands through an interface app
	// implements; alerts are built from the configuration's channels.
	{"internal/server", nil},
	// The web console renders incidents and findings.
	{"internal/console", []string{"internal/correlate", "internal/detect"}},
	{"internal/alert", []string{"internal/config"}},
	{"internal/alert/alerttest", nil},
	// The live DDoS defence (decision 0014): the flow collector shares
	// ingest/netflow's decoder; mitigation knows routes, not records.
	{"internal/collect", []string{"internal/event", "internal/ingest/netflow"}},
	{"internal/mitigate", nil},
	{"internal/mitigate/bgptest", nil},
	{"internal/scenario/scenariotest", []string{"internal/scenario"}},
	{"internal/app", []string{"internal/"}},
	{"cmd/dwell", []string{"internal/app"}},
	{"bench/", nil},
	// Measuring tools of one reader: they read files with it, nothing more.
	{"bench/evtxagree", []string{"internal/event", "internal/ingest/evtx"}},
	{"bench/pcapbuild", []string{"internal/ingest/capture"}},
	{"bench/pcapread", []string{"internal/event", "internal/ingest", "internal/ingest/pcap"}},
	{"bench/evtxread", []string{"internal/event", "internal/ingest/evtx", "internal/detect/sigma"}},
	// Flow senders: a capture's flow messages, from the scenario or a file.
	{"bench/ddoslatency", []string{"internal/ingest/netflow", "internal/scenario"}},
	{"bench/flowblast", []string{"internal/ingest/netflow"}},
	// DuckDB's own loads of a conn.log: the peer of dwell's ingest, and the
	// store's floor, measured on the conn table the DuckDB store creates.
	{"bench/conncsv", nil},
	{"bench/duckdbload", []string{"bench/conncsv"}},
	{"bench/duckdbfloor", []string{"bench/conncsv", "internal/store/duckdb"}},
}

// backends may only be imported by internal/app.
var backends = []string{"internal/store/duckdb", "internal/store/clickhouse"}

func rule(pkg string) ([]string, bool) {
	best, found := -1, false
	var imports []string
	for _, r := range allowed {
		if pkg == r.pkg || (strings.HasSuffix(r.pkg, "/") && strings.HasPrefix(pkg, r.pkg)) {
			if len(r.pkg) > best {
				best, imports, found = len(r.pkg), r.imports, true
			}
		}
	}
	return imports, found
}

func permitted(imp string, allowedImports []string) bool {
	for _, a := range allowedImports {
		if imp == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a)) {
			return true
		}
	}
	return false
}

// TestImportDirections enforces the package layering of ARCHITECTURE.md.
func TestImportDirections(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, ok := strings.CutPrefix(f[0], module)
		if !ok {
			continue
		}
		n++
		rules, ok := rule(pkg)
		if !ok {
			t.Errorf("%s is not placed in the architecture (add it to the rules in this test and to ARCHITECTURE.md's layout)", pkg)
			continue
		}
		for _, full := range f[1:] {
			imp, ours := strings.CutPrefix(full, module)
			if !ours {
				continue
			}
			if !permitted(imp, rules) {
				t.Errorf("%s imports %s, which ARCHITECTURE.md's import directions forbid", pkg, imp)
			}
			for _, b := range backends {
				if imp == b && pkg != "internal/app" && !strings.HasPrefix(pkg, "bench/") {
					t.Errorf("%s imports the backend %s; only internal/app may", pkg, imp)
				}
			}
		}
	}
	if n < 8 {
		t.Fatalf("only %d packages listed", n)
	}
}

// TestDuckDBStaysInItsPackage: the cgo driver is linked only through
// store/duckdb, so everything else builds and tests without it.
func TestDuckDBStaysInItsPackage(t *testing.T) {
	pkgs, err := exec.CommandContext(t.Context(), "go", "list", "-f", `{{.ImportPath}}`, "../../internal/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(pkgs)) {
		rel := strings.TrimPrefix(p, module)
		if rel == "internal/app" || rel == "internal/store/duckdb" {
			continue
		}
		deps, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", `{{.ImportPath}}`, p).Output()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(deps, []byte("github.com/duckdb/duckdb-go")) {
			t.Errorf("%s depends on the DuckDB driver", rel)
		}
	}
}
