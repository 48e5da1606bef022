// Package scenariotest gives tests the scenario's DDoS as its edge
// router exported it: a small scenario (4 days, 30 hosts) generated into
// the test's temporary directory, and its IPFIX capture.
package scenariotest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/scenario"
)

// FlowCapture generates a small scenario and returns the path of its
// flow capture (flows/ddos.pcap), the capture's bytes and the truth.
func FlowCapture(tb testing.TB) (string, []byte, *scenario.Truth) {
	tb.Helper()
	cfg := scenario.Default()
	cfg.Days, cfg.Hosts, cfg.Rate = 4, 30, 2000
	dir := tb.TempDir()
	truth, err := scenario.Generate(tb.Context(), cfg, dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, filepath.FromSlash(truth.DDoS.FlowFile))
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return path, data, truth
}
