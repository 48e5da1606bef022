package app

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/correlate"
)

// TestAllowFromVerdict: an incident closed as a false positive gives
// allow-list entries in the store; the next hunt drops its findings; the
// entries can be listed and removed, and a too-wide prefix or a missing
// reason is refused.
func TestAllowFromVerdict(t *testing.T) {
	db := filepath.Join(t.TempDir(), "d.db")
	if code, out, errOut := runDwell(t, "ingest", "--db", db, "--complete", "../detect/httpanom/testdata/http"); code != ExitOK {
		t.Fatalf("ingest: %s%s", out, errOut)
	}
	hunt := func() []correlate.Incident {
		t.Helper()
		code, out, errOut := runDwell(t, "hunt", "--db", db, "--format", "json")
		if code != ExitOK {
			t.Fatalf("hunt: %s", errOut)
		}
		var doc struct {
			Incidents []correlate.Incident `json:"incidents"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Incidents
	}
	shellOf := func(incs []correlate.Incident) *correlate.Incident {
		for i := range incs {
			if slices.Contains(incs[i].Attack, "T1505.003") {
				return &incs[i]
			}
		}
		return nil
	}
	shell := shellOf(hunt())
	if shell == nil {
		t.Fatal("no web-shell incident to judge")
	}
	// TLP:RED need-to-know in the blocklist export: the incident's
	// infrastructure is for the people named on it only.
	if code, out, errOut := runDwell(t, "export", "blocklist", "--db", db, "--format", "csv", "--incident", shell.ID); code != ExitOK ||
		!strings.Contains(out, "192.0.2.10") {
		t.Fatalf("blocklist of the web shell: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runDwell(t, "triage", "--db", db, "--by", "alice", "--tlp", "red", "--person", "alice", shell.ID); code != ExitOK {
		t.Fatal(errOut)
	}
	if code, out, _ := runDwell(t, "export", "blocklist", "--db", db, "--format", "csv", "--as", "bob"); code != ExitOK || strings.Contains(out, "192.0.2.10") {
		t.Errorf("the RED incident's infrastructure exported for bob: %s", out)
	}
	if code, out, _ := runDwell(t, "export", "blocklist", "--db", db, "--format", "csv", "--as", "alice"); code != ExitOK || !strings.Contains(out, "192.0.2.10") {
		t.Errorf("alice, named on it, does not get its infrastructure: %s", out)
	}
	if code, out, errOut := runDwell(t, "export", "stix", "--db", db, "--incident", shell.ID, "--as", "bob"); code == ExitOK ||
		strings.Contains(out, "192.0.2.10") || !strings.Contains(errOut, "no incident") {
		t.Errorf("the RED incident exported as STIX for bob: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runDwell(t, "export", "stix", "--db", db, "--incident", shell.ID, "--as", "alice"); code != ExitOK || !strings.Contains(out, "192.0.2.10") {
		t.Errorf("alice's STIX export of the RED incident: %d %s", code, errOut)
	}
	// Nor through SQL: the hunt and the triage are dwell's own state.
	for _, q := range []string{"SELECT value FROM dwell_meta", "SELECT count(*) FROM main.DWELL_META WHERE key LIKE 'triage:%'"} {
		if code, out, errOut := runDwell(t, "query", "--db", db, "--", q); code == ExitOK || strings.Contains(out, "192.0.2.10") ||
			!strings.Contains(errOut, "not readable by SQL") {
			t.Errorf("dwell query %q: %d %s %s", q, code, out, errOut)
		}
	}
	if code, _, errOut := runDwell(t, "triage", "--db", db, "--by", "alice", "--status", "false_positive", shell.ID); code != ExitUsage ||
		!strings.Contains(errOut, "--reason") {
		t.Errorf("false positive without a reason: %d %s", code, errOut)
	}
	if code, _, errOut := runDwell(t, "triage", "--db", db, "--by", "alice", "--status", "false_positive", "--reason", "the red team", shell.ID); code != ExitOK {
		t.Fatal(errOut)
	}
	var values []string
	for _, i := range shell.Infrastructure {
		values = append(values, i.Value)
	}
	for _, bad := range [][]string{{"--reason", "x", "10.0.0.0/8"}, {"198.51.100.1"}, {"--reason", "x", "not a value"}} {
		if code, _, errOut := runDwell(t, append([]string{"allow", "add", "--db", db}, bad...)...); code != ExitUsage {
			t.Errorf("allow add %v: %d %s", bad, code, errOut)
		}
	}
	args := append([]string{"allow", "add", "--db", db, "--by", "alice", "--incident", shell.ID, "--reason", "the red team"}, values...)
	if code, out, errOut := runDwell(t, args...); code != ExitOK || !strings.Contains(out, "allow-listed") {
		t.Fatalf("allow add: %s %s", out, errOut)
	}
	if code, out, _ := runDwell(t, "allow", "list", "--db", db); code != ExitOK || !strings.Contains(out, values[0]) || !strings.Contains(out, shell.ID) {
		t.Errorf("allow list: %s", out)
	}
	if again := shellOf(hunt()); again != nil {
		t.Errorf("the allow-listed web shell is still found: %s %v", again.ID, again.Infrastructure)
	}
	for _, v := range values {
		if code, _, errOut := runDwell(t, "allow", "remove", "--db", db, v); code != ExitOK {
			t.Fatal(errOut)
		}
	}
	if shellOf(hunt()) == nil {
		t.Errorf("removing the entries does not bring the finding back")
	}
}
