package hostlog

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// ev builds a host event: fields are name, value pairs.
func ev(ts time.Time, computer, channel string, id uint32, kv ...string) event.HostEvent {
	e := event.HostEvent{TS: ts, Computer: computer, Channel: channel, EventID: id, Src: event.Source{Sensor: "s", File: "f.evtx", Line: ts.Unix()}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Fields = append(e.Fields, event.Field{Name: kv[i], Value: kv[i+1]})
	}
	return e
}

const (
	sysmon   = "Microsoft-Windows-Sysmon/Operational"
	security = "Security"
)

func run(t *testing.T, evs []event.HostEvent) []detect.Finding {
	t.Helper()
	m := storetest.NewMem()
	if err := m.Write(context.Background(), &event.Batch{Host: evs}); err != nil {
		t.Fatal(err)
	}
	return hunt(t, m)
}

// byRule returns the findings of one rule.
func byRule(fs []detect.Finding, rule string) []detect.Finding {
	var out []detect.Finding
	for _, f := range fs {
		if f.Evidence["rule"] == rule {
			out = append(out, f)
		}
	}
	return out
}

func TestRulesFireOnIntrusionSteps(t *testing.T) {
	evs := []event.HostEvent{
		ev(t0, "EXCH01", sysmon, 3, "Initiated", "true", "SourceIp", "10.20.0.25", "DestinationIp", "10.20.0.1"),
		ev(t0.Add(time.Minute), "EXCH01", sysmon, 1, "Image", `C:\Windows\System32\cmd.exe`, "ParentImage",
			`c:\windows\system32\inetsrv\w3wp.exe`, "CommandLine", "cmd /c whoami", "User", `NT AUTHORITY\SYSTEM`),
		ev(t0.Add(2*time.Minute), "EXCH01", sysmon, 1, "Image", `C:\Windows\System32\cmd.exe`, "ParentImage",
			`c:\windows\system32\inetsrv\w3wp.exe`, "CommandLine", "cmd /c net group", "User", `NT AUTHORITY\SYSTEM`),
		ev(t0.Add(time.Hour), "DC1", security, 4662, "SubjectUserName", "jdoe", "SubjectDomainName", "MIN",
			"Properties", "%%7688 {1131f6ad-9c07-11d1-f79f-00c04fc2dcd2}"),
		ev(t0.Add(time.Hour), "DC1", security, 4769, "TargetUserName", "jdoe@MIN", "ServiceName", "svc-sql", "TicketEncryptionType", "0x17"),
		ev(t0.Add(time.Hour), "DC1", security, 4769, "TargetUserName", "jdoe@MIN", "ServiceName", "svc-web", "TicketEncryptionType", "0x17"),
		ev(t0.Add(2*time.Hour), "WS1", "System", 7045, "ServiceName", "PSEXESVC", "ImagePath", `%SystemRoot%\PSEXESVC.exe`),
		ev(t0.Add(3*time.Hour), "WS1", security, 1102, "SubjectUserName", "jdoe", "SubjectDomainName", "MIN"),
		ev(t0.Add(4*time.Hour), "WS1", sysmon, 10, "SourceImage", `C:\Users\jdoe\m.exe`, "TargetImage", `C:\Windows\system32\lsass.exe`,
			"GrantedAccess", "0x1010"),
		ev(t0.Add(5*time.Hour), "WS1", sysmon, 13, "TargetObject", `HKU\S-1\Software\Microsoft\Windows\CurrentVersion\Run\upd`,
			"Details", `C:\Users\Public\upd.exe`, "Image", `C:\Users\Public\drop.exe`),
		ev(t0.Add(6*time.Hour), "EXCH01", "Microsoft-Windows-PowerShell/Operational", 4104,
			"ScriptBlockText", `New-MailboxExportRequest -Mailbox minister -FilePath \\EXCH01\x$\m.pst`),
	}
	evs[1].Provider, evs[7].Provider = "Microsoft-Windows-Sysmon", "Microsoft-Windows-Eventlog"
	fs := run(t, evs)
	want := map[string]string{"webshell": "T1505.003", "dcsync": "T1003.006", "kerberoast": "T1558.003", "service": "T1569.002",
		"log-cleared": "T1070.001", "lsass-access": "T1003.001", "autorun": "T1547.001", "mailbox-export": "T1114.001"}
	for rule, technique := range want {
		got := byRule(fs, rule)
		if len(got) != 1 || !slices.Contains(got[0].Attack, technique) || got[0].Score < 0.5 {
			t.Errorf("%s: %+v", rule, got)
		}
	}
	w := byRule(fs, "webshell")[0]
	if w.Evidence["events"] != 2 || w.Host != "EXCH01" || w.Src.String() != "10.20.0.25" || !strings.Contains(w.Summary, "w3wp.exe started cmd.exe") {
		t.Errorf("web shell finding: %+v", w)
	}
	if k := byRule(fs, "kerberoast")[0]; k.Score <= 0.55 {
		t.Errorf("two services asked for in RC4 should weigh more than one: %v", k.Score)
	}
	if d := byRule(fs, "dcsync")[0]; !slices.Equal(d.Accounts, []string{`MIN\jdoe`}) {
		t.Errorf("dcsync accounts %v", d.Accounts)
	}
}

func TestBenignStaysQuiet(t *testing.T) {
	evs := []event.HostEvent{
		// A domain controller replicating, an antivirus reading LSASS, an
		// updater's service, a shell started from Explorer, AES tickets.
		ev(t0, "DC1", security, 4662, "SubjectUserName", "DC2$", "Properties", "{1131f6ad-9c07-11d1-f79f-00c04fc2dcd2}"),
		ev(t0, "WS1", sysmon, 10, "SourceImage", `C:\ProgramData\Microsoft\Windows Defender\Platform\MsMpEng.exe`,
			"TargetImage", `C:\Windows\system32\lsass.exe`, "GrantedAccess", "0x1410"),
		ev(t0, "WS1", sysmon, 10, "SourceImage", `C:\Users\x\tool.exe`, "TargetImage", `C:\Windows\system32\lsass.exe`, "GrantedAccess", "0x1000"),
		ev(t0, "WS1", "System", 7045, "ServiceName", "Google Updater Service", "ImagePath", `"C:\Program Files (x86)\Google\GoogleUpdater\updater.exe" --system`),
		ev(t0, "WS1", sysmon, 1, "Image", `C:\Windows\System32\cmd.exe`, "ParentImage", `C:\Windows\explorer.exe`, "CommandLine", "cmd"),
		ev(t0, "DC1", security, 4769, "TargetUserName", "jdoe", "ServiceName", "krbtgt", "TicketEncryptionType", "0x17"),
		ev(t0, "DC1", security, 4769, "TargetUserName", "jdoe", "ServiceName", "svc-sql", "TicketEncryptionType", "0x12"),
		ev(t0, "WS1", sysmon, 1, "Image", `C:\Windows\System32\conhost.exe`, "ParentImage", `C:\Windows\System32\wbem\WmiPrvSE.exe`),
	}
	for _, f := range run(t, evs) {
		if f.Score >= 0.3 {
			t.Errorf("benign activity scored %.2f: %s", f.Score, f.Summary)
		}
	}
}

// TestNewSources learns from the first days which sources each account
// logs on from: a later logon from elsewhere is a finding, stronger when a
// service follows it on that host.
func TestNewSources(t *testing.T) {
	var evs []event.HostEvent
	logon := func(ts time.Time, host, user, src, lt string) event.HostEvent {
		return ev(ts, host, security, 4624, "TargetUserName", user, "TargetDomainName", "MIN", "IpAddress", src, "LogonType", lt)
	}
	for d := range 10 {
		day := t0.AddDate(0, 0, d)
		evs = append(evs, logon(day, "FS1", "alice", "10.10.0.5", "3"), logon(day, "FS1", "bob", "10.10.0.6", "3"))
	}
	evs = append(evs, logon(t0.AddDate(0, 0, 8), "WS9", "alice", "10.20.0.25", "10"),
		ev(t0.AddDate(0, 0, 8).Add(10*time.Minute), "WS9", "System", 7045, "ServiceName", "svc", "ImagePath", `C:\ProgramData\x\x.exe`),
		logon(t0.AddDate(0, 0, 9), "FS1", "bob", "10.10.0.7", "3"))
	fs := byRule(run(t, evs), "new-source")
	if len(fs) != 2 {
		t.Fatalf("new-source findings: %+v", fs)
	}
	for _, f := range fs {
		switch f.Host {
		case "WS9":
			if f.Score < 0.8 || f.Src.String() != "10.20.0.25" || f.Evidence["followed_by"] == nil {
				t.Errorf("RDP from a new source followed by a service: %+v", f)
			}
		case "FS1":
			if f.Score > 0.5 {
				t.Errorf("a network logon from a new source alone scored %.2f", f.Score)
			}
		}
	}
}
