package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
)

// An incident's external addresses get their AS, ISP and country from
// the configured databases (the shared MaxMind test files), in the
// table and the JSON; domains and unknown addresses are left alone, and
// a database that cannot be read is an error naming it.
func TestOriginEnrichment(t *testing.T) {
	dir := filepath.Join(datasets, "maxmind-test-mmdb", "test-data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset maxmind-test-mmdb is not here (%v); skipping", err)
	}
	cfg := config.Default()
	cfg.Origin.MMDB = []string{filepath.Join(dir, "GeoLite2-ASN-Test.mmdb"), filepath.Join(dir, "GeoLite2-Country-Test.mmdb")}
	inc := &correlate.Incident{ID: "INC-1", Class: "espionage", Infrastructure: []correlate.Infra{
		{Kind: "ip", Value: "89.160.20.112", Hosts: 2, Detectors: []string{"beacon"}},
		{Kind: "ip", Value: "10.9.9.9", Hosts: 1, Detectors: []string{"exfil"}},
		{Kind: "domain", Value: "evil.example", Hosts: 1, Detectors: []string{"dga"}},
	}}
	if err := enrichOrigin(cfg, inc); err != nil {
		t.Fatal(err)
	}
	o := inc.Infrastructure[0].Origin
	if o == nil || o.ASN != 29518 || o.ASOrg != "Bredband2 AB" || o.Country != "SE" || inc.Infrastructure[1].Origin != nil || inc.Infrastructure[2].Origin != nil {
		t.Fatalf("infrastructure %+v, origin %+v", inc.Infrastructure, o)
	}
	var out bytes.Buffer
	if err := writeIncident(&App{Stdout: &out}, inc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seen by beacon; AS29518 Bredband2 AB, SE") {
		t.Errorf("incident:\n%s", out.String())
	}
	cfg.Origin.MMDB = []string{filepath.Join(t.TempDir(), "gone.mmdb")}
	if err := enrichOrigin(cfg, inc); err == nil || !strings.Contains(err.Error(), "gone.mmdb") {
		t.Errorf("a missing database: %v", err)
	}
}
