package app

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Suricata's EVE: alerts become suricata findings that join incidents,
// beside dwell's own; the flow, dns, http, tls and fileinfo events fill
// the tables the other detectors read.
func TestEVEAlertsInHunt(t *testing.T) {
	db := filepath.Join(t.TempDir(), "eve.db")
	eve := filepath.Join("..", "ingest", "eve", "testdata", "eve.json")
	code, out, errOut := runDwell(t, "ingest", "--db", db, "--sensor", "ids1", eve)
	if code != ExitOK || !strings.Contains(out, "alert 3") {
		t.Fatalf("ingest: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runDwell(t, "hunt", "--db", db, "--format", "json")
	if code != ExitOK {
		t.Fatalf("hunt: exit %d\n%s%s", code, out, errOut)
	}
	var res struct {
		Findings []struct {
			Detector string         `json:"detector"`
			Src      string         `json:"src"`
			Dst      string         `json:"dst"`
			Severity string         `json:"severity"`
			Attack   []string       `json:"attack"`
			Evidence map[string]any `json:"evidence"`
		} `json:"findings"`
		Incidents []struct {
			Hosts     []string `json:"hosts"`
			Detectors []string `json:"detectors"`
		} `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	found := false
	for _, f := range res.Findings {
		if f.Detector == "suricata" && f.Src == "10.2.8.101" && f.Dst == "185.244.25.183" {
			found = true
			if f.Severity != "high" && f.Severity != "critical" || len(f.Attack) != 1 || f.Attack[0] != "T1071" || f.Evidence["alerts"] != float64(2) {
				t.Errorf("Cobalt Strike finding %+v", f)
			}
		}
	}
	if !found {
		t.Fatalf("no suricata finding for the Cobalt Strike alerts:\n%s", out)
	}
	inIncident := false
	for _, inc := range res.Incidents {
		for _, h := range inc.Hosts {
			inIncident = inIncident || h == "10.2.8.101"
		}
	}
	if !inIncident {
		t.Errorf("the alerted host is in no incident:\n%s", out)
	}
	code, out, _ = runDwell(t, "query", "--db", db, "SELECT count(*) FROM alert WHERE signature_id = 2027138")
	if code != ExitOK || !strings.Contains(out, "2") {
		t.Errorf("alert table: %s", out)
	}
}
