package hostlog

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// loadEVTX reads EVTX files into a memory store.
func loadEVTX(t *testing.T, paths ...string) *storetest.Mem {
	t.Helper()
	m := storetest.NewMem()
	if err := m.Write(context.Background(), readEVTX(t, paths...)); err != nil {
		t.Fatal(err)
	}
	return m
}

// readEVTX reads EVTX files into a batch.
func readEVTX(t *testing.T, paths ...string) *event.Batch {
	t.Helper()
	b := &event.Batch{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		rd := evtx.Reader{File: p}
		if _, err := rd.ReadAll(context.Background(), f, fi.Size(), 1, func(e *event.HostEvent) error {
			b.Host = append(b.Host, *e)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		_ = f.Close()
	}
	return b
}

// TestAttackSamples runs the detector on EVTX files of the shared
// evtx-to-mitre-attack collection, each recorded while one technique was
// carried out (its folder names it): each must yield a finding citing it.
func TestAttackSamples(t *testing.T) {
	root := filepath.Join(datasets, "evtx-to-mitre-attack")
	if _, err := os.Stat(root); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	cases := map[string]string{
		"TA0005-Defense Evasion/T1070.001-Clear Windows event logs/ID104-1102-Event log cleared.evtx":                                 "T1070.001",
		"TA0005-Defense Evasion/T1562.002-Disable Windows Event Logging/ID4719-Audit policy deactivation.evtx":                        "T1562.002",
		"TA0005-Defense Evasion/T1562.002-Disable Windows Event Logging/ID4688-Audit policy clear attempt.evtx":                       "T1562.002",
		"TA0006-Credential Access/T1003-Credential dumping/ID10-Mimikatz LSASS process dump.evtx":                                     "T1003.001",
		"TA0006-Credential Access/T1003-Credential dumping/ID4662-DCsync attack using Mimikatz.evtx":                                  "T1003.006",
		"TA0006-Credential Access/T1003-Credential dumping/ID4688-IFM created.evtx":                                                   "T1003.003",
		"TA0006-Credential Access/T1003-Credential dumping/ID4688-4663-4656-LSASS dump with LSASSY (process).evtx":                    "T1003.001",
		"TA0006-Credential Access/T1558-Steal or Forge Kerberos Tickets/ID4769-Kerberoast ticket with low encryption.evtx":            "T1558.003",
		"TA0008-Lateral Movement/T1550-Use Alternate Authentication Material/ID4624-Mimikatz Pass the hash.evtx":                      "T1550.002",
		"TA0008-Lateral Movement/T1021.002-SMB Windows Admin Shares/ID4688,4697,5140-5145 PSexec remote execution + admin share.evtx": "T1569.002",
		"TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID7045-4697-SMBexec service registration.evtx":  "T1543.003",
		"TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID4697-MSF payload deployed via service.evtx":   "T1543.003",
		"TA0002-Execution/T1569.002-Service execution/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx":                  "T1569.002",
		"TA0002-Execution/T1053.005-Scheduled Task/ID4698-4699-Fast created & deleted task by ATexec (susp. arg.).evtx":               "T1053.005",
		"TA0002-Execution/T1047-Windows Management Instrumentation/ID1-WMI spwaning PowerShell process - WMImplant.evtx":              "T1047", //nolint:misspell // the dataset's file name
		"TA0002-Execution/T1059.003-Windows Command Shell/ID4688-SQL Server payload injectection for reverse shell (MSF).evtx":        "T1505.003",
		"TA0004-Privilege Escalation/T1546-Image File Execution Options Injection/ID12,13-Stickey key registry update.evtx":           "T1546.012",
	}
	for file, technique := range cases {
		t.Run(filepath.Base(file), func(t *testing.T) {
			fs := hunt(t, loadEVTX(t, filepath.Join(root, file)))
			var got []string
			for _, f := range fs {
				if f.Score < 0.5 {
					continue
				}
				if slices.Contains(f.Attack, technique) {
					return
				}
				got = append(got, f.Attack...)
			}
			t.Errorf("no finding of 0.5 or more cites %s; findings cite %v", technique, got)
		})
	}
	// A tool installing a hundred services is one finding, not a hundred.
	fs := hunt(t, loadEVTX(t, filepath.Join(root, "TA0002-Execution/T1569.002-Service execution/ID7000,7009,7045-Payload deployed via service - Tchopper.evtx")))
	if n := len(byRule(fs, "service")); n > maxSubjects+1 {
		t.Errorf("%d service findings on one host", n)
	}
}
