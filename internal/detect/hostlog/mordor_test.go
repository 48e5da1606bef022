package hostlog

import (
	"archive/zip"
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/winlog"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()

// loadZip reads the JSON lines of a Security Datasets capture into a
// memory store.
func loadZip(t *testing.T, path string) *storetest.Mem {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	b := &event.Batch{}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for n := int64(1); sc.Scan(); n++ {
			if len(sc.Bytes()) == 0 {
				continue
			}
			e, err := winlog.Decode(sc.Bytes())
			if err != nil {
				t.Fatalf("%s:%d: %v", f.Name, n, err)
			}
			e.Src = event.Source{Sensor: "mordor", File: f.Name, Line: n}
			b.Host = append(b.Host, e)
		}
		_ = rc.Close()
	}
	m := storetest.NewMem()
	if err := m.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return m
}

func hunt(t *testing.T, r store.Reader) []detect.Finding {
	t.Helper()
	fs, err := New(&detect.Env{Local: detect.DefaultLocal()}, Config{}).Detect(context.Background(), r, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestSecurityDatasets runs the detector on OTRF's labelled captures: each
// must yield a finding citing the technique its metadata maps it to.
func TestSecurityDatasets(t *testing.T) {
	dir := filepath.Join(datasets, "mordor-atomic-subset")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared dataset absent (%v): skipping", err)
	}
	cases := map[string]string{
		"credential_access/cmd_lsass_memory_dumpert_syscalls.zip":                             "T1003.001",
		"credential_access/psh_lsass_memory_dump_comsvcs.zip":                                 "T1003.001",
		"credential_access/cmd_dumping_ntds_dit_file_ntdsutil.zip":                            "T1003.003",
		"credential_access/cmd_sam_copy_esentutl.zip":                                         "T1003.002",
		"credential_access/empire_dcsync_dcerpc_drsuapi_DsGetNCChanges.zip":                   "T1003.006",
		"credential_access/covenant_dcsync_dcerpc_drsuapi_DsGetNCChanges.zip":                 "T1003.006",
		"credential_access/empire_over_pth_patch_lsass.zip":                                   "T1550.002",
		"defense_evasion/auditpol_system_user_auditpolicy_modification.zip":                   "T1562.002",
		"defense_evasion/reg_cmd_process_commandline_logging_disabled.zip":                    "T1562.002",
		"lateral_movement/schtask_create.zip":                                                 "T1053.005",
		"lateral_movement/empire_psexec_dcerpc_tcp_svcctl.zip":                                "T1569.002",
		"lateral_movement/covenant_sharpsc_create_dcerpc_smb_svcctl.zip":                      "T1543.003",
		"lateral_movement/covenant_sharpwmi_create_dcerpc_wmi.zip":                            "T1047",
		"lateral_movement/covenant_psremoting_command.zip":                                    "T1021.006",
		"lateral_movement/mimikatz_CVE-2020-1472_Unauthenticated_NetrServerAuthenticate2.zip": "T1003",
	}
	for file, technique := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".zip"), func(t *testing.T) {
			fs := hunt(t, loadZip(t, filepath.Join(dir, file)))
			var got []string
			for _, f := range fs {
				if f.Score >= 0.4 {
					got = append(got, f.Attack...)
				}
				if slices.Contains(f.Attack, technique) && f.Score >= 0.4 {
					if len(f.Evidence["records"].([]map[string]any)) == 0 {
						t.Errorf("finding without evidence records: %+v", f)
					}
					return
				}
			}
			t.Errorf("no finding cites %s; findings cite %v", technique, got)
		})
	}
}
