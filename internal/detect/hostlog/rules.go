package hostlog

import (
	"cmp"
	"strings"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
)

// A rule judges one Windows event: when it fires it returns a hit, whose
// key groups repeated hits into one finding.
type rule struct {
	name  string
	stage string // the intrusion step: the incident's stage list
	ids   []uint32
	judge func(e *event.HostEvent) (hit, bool)
}

// hit is one rule firing on one event.
type hit struct {
	score   float64
	attack  []string
	account string // the account that acted
	subject string // what the finding is about: "w3wp.exe → cmd.exe", a service name
	detail  string // the command line, service path, ... of this event
	src     string // the address the action came from, when the event names one
	why     string // one sentence, without the host (added by the finding)
}

// base returns the lower-cased file name of a Windows path.
func base(p string) string {
	p = strings.ToLower(strings.Trim(strings.TrimSpace(p), `"`))
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		p = p[i+1:]
	}
	return p
}

func field(e *event.HostEvent, names ...string) string {
	for _, n := range names {
		if v, ok := e.Field(n); ok && v != "" && v != "-" {
			return v
		}
	}
	return ""
}

// account joins a domain and a user name as Windows writes them.
func account(domain, user string) string {
	if user == "" || user == "-" {
		return ""
	}
	if domain == "" || domain == "-" || strings.Contains(user, `\`) {
		return user
	}
	return domain + `\` + user
}

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// serverParents are processes that serve requests from the network: a
// shell under one of them is how a web shell (or an exploited service)
// runs commands.
var serverParents = set("w3wp.exe", "umworkerprocess.exe", "httpd.exe", "nginx.exe", "php-cgi.exe", "tomcat.exe", "tomcat7.exe",
	"tomcat8.exe", "tomcat9.exe", "tomcat10.exe", "sqlservr.exe", "msexchangepowershellapppool.exe", "beasvc.exe", "coldfusion.exe",
	"jbosssvc.exe", "owstimer.exe")

// remoteParents host commands sent from another machine: WMI and WinRM.
var remoteParents = map[string]struct {
	technique, what string
}{
	"wmiprvse.exe":    {"T1047", "WMI"},
	"wsmprovhost.exe": {"T1021.006", "WinRM (PowerShell remoting)"},
}

// remoteChildren are what WMI and WinRM start for their own work.
var remoteChildren = set("conhost.exe", "werfault.exe", "wmiadap.exe", "wmiprvse.exe", "mofcomp.exe", "wsmprovhost.exe", "msiexec.exe",
	"dllhost.exe", "taskhostw.exe", "sppsvc.exe", "wermgr.exe")

// shells are interpreters and living-off-the-land binaries an operator
// runs through a foothold.
var shells = set("cmd.exe", "powershell.exe", "pwsh.exe", "cscript.exe", "wscript.exe", "mshta.exe", "rundll32.exe", "regsvr32.exe",
	"certutil.exe", "bitsadmin.exe", "whoami.exe", "net.exe", "net1.exe", "nltest.exe", "ipconfig.exe", "systeminfo.exe", "tasklist.exe",
	"quser.exe", "query.exe", "netstat.exe", "arp.exe", "route.exe", "ping.exe", "nslookup.exe", "dsquery.exe", "wmic.exe", "reg.exe",
	"sc.exe", "schtasks.exe", "at.exe", "vssadmin.exe", "ntdsutil.exe", "procdump.exe", "procdump64.exe", "makecab.exe", "7z.exe",
	"rar.exe", "curl.exe", "msbuild.exe", "installutil.exe", "csc.exe")

// shellTechnique is the ATT&CK technique of running a shell.
func shellTechnique(child string) string {
	switch child {
	case "powershell.exe", "pwsh.exe":
		return "T1059.001"
	case "cmd.exe":
		return "T1059.003"
	case "cscript.exe", "wscript.exe":
		return "T1059.005"
	}
	return "T1218"
}

// process reads a process creation: Sysmon 1 or Security 4688.
func process(e *event.HostEvent) (image, parent, cmd, user string) {
	image = field(e, "Image", "NewProcessName")
	parent = field(e, "ParentImage", "ParentProcessName")
	cmd = field(e, "CommandLine")
	user = field(e, "User")
	if user == "" {
		user = account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
	}
	return
}

// userWritable reports a path in a place any user can write: where
// droppers put what they run.
func userWritable(p string) bool {
	p = strings.ToLower(p)
	for _, s := range []string{`\users\`, `\programdata\`, `\temp\`, `\appdata\`, `\windows\tasks\`, `\perflogs\`, `\$recycle.bin\`, `\public\`} {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// launches reports a command that starts an interpreter or fetches code.
func launches(c string) bool {
	c = strings.ToLower(c)
	for _, s := range []string{"cmd.exe", "cmd /c", "%comspec%", "powershell", "pwsh", "mshta", "rundll32", "regsvr32", "wscript", "cscript",
		"-enc", "frombase64string", "downloadstring", "iex", "certutil", "bitsadmin", `\\127.0.0.1\`, `\admin$\`} {
		if strings.Contains(c, s) {
			return true
		}
	}
	return false
}

// rules are the host detections. Each says what it looks for; docs/findings.md
// lists them with their techniques.
var rules = []rule{
	{name: "webshell", stage: "initial-access", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, parent, cmd, user := process(e)
		p, c := base(parent), base(image)
		if !serverParents[p] || !shells[c] {
			return hit{}, false
		}
		return hit{score: 0.92, attack: []string{"T1505.003", shellTechnique(c)}, account: user, subject: p + " → " + c, detail: cmd,
			why: "the server process " + p + " started " + c + ": a web shell (or an exploited service) running commands"}, true
	}},
	{name: "remote-exec", stage: "lateral-movement", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, parent, cmd, user := process(e)
		p, c := base(parent), base(image)
		r, ok := remoteParents[p]
		if !ok || remoteChildren[c] || c == "" {
			return hit{}, false
		}
		if !shells[c] {
			// Not a shell, and not what WMI and WinRM start for themselves:
			// a program run from afar.
			return hit{score: 0.6, attack: []string{r.technique}, account: user, subject: p + " → " + c, detail: cmd,
				why: c + " was started by " + p + ": a program run from another machine over " + r.what}, true
		}
		return hit{score: 0.7, attack: []string{r.technique, shellTechnique(c)}, account: user, subject: p + " → " + c, detail: cmd,
			why: c + " ran under " + p + ": a command sent from another machine over " + r.what}, true
	}},
	{name: "winrm-session", stage: "lateral-movement", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, _, _, user := process(e)
		if base(image) != "wsmprovhost.exe" {
			return hit{}, false
		}
		return hit{score: 0.45, attack: []string{"T1021.006"}, account: user, subject: "wsmprovhost.exe",
			why: "a PowerShell remoting session was opened by " + user}, true
	}},
	{name: "archive", stage: "collection", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, _, cmd, user := process(e)
		img := base(image)
		lc := strings.ToLower(cmd)
		if !archivers[img] && !strings.HasPrefix(lc, "rar ") && !strings.HasPrefix(lc, "7z ") {
			return hit{}, false
		}
		secret := strings.Contains(lc, " -hp") || strings.Contains(lc, " -p") || strings.Contains(lc, " -mhe")
		remote := strings.Contains(cmd, `\`)
		if !secret && !remote {
			return hit{}, false
		}
		attack, what := []string{"T1560.001"}, "packed files into an archive"
		if secret {
			what = "packed files into a password-protected archive"
		}
		if remote {
			attack = append(attack, "T1039")
			what += " from a network share"
		}
		return hit{score: 0.7, attack: attack, account: user, subject: img, detail: cmd, why: img + " " + what + ": " + clip(cmd, 120)}, true
	}},
	{name: "mailbox-export", stage: "collection", ids: []uint32{1, 4688, 4104}, judge: func(e *event.HostEvent) (hit, bool) {
		image, _, cmd, user := process(e)
		if cmd == "" {
			cmd = field(e, "ScriptBlockText") // PowerShell's script block logging
		}
		if !detect.MailboxExport(cmd) {
			return hit{}, false
		}
		// Exchange's own mailbox export: how whole mailboxes are taken
		// from a compromised server; eDiscovery does it rarely, by name.
		return hit{score: 0.75, attack: []string{"T1114.001"}, account: user, subject: cmp.Or(base(image), "powershell"), detail: cmd,
			why: "a mailbox was exported on the mail server: " + clip(cmd, 160)}, true
	}},
	{name: "cloud-copy", stage: "exfiltration", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, _, cmd, user := process(e)
		lc := strings.ToLower(cmd)
		rclone := base(image) == "rclone.exe"
		sync := (strings.Contains(lc, " copy ") || strings.Contains(lc, " sync ")) && strings.Contains(lc, "--transfers")
		if !rclone && !sync {
			return hit{}, false
		}
		return hit{score: 0.75, attack: []string{"T1567.002"}, account: user, subject: base(image), detail: cmd,
			why: "a file sync tool (rclone or a renamed copy) sent files out: " + clip(cmd, 120)}, true
	}},
	{name: "admin-share", stage: "lateral-movement", ids: []uint32{5140}, judge: func(e *event.HostEvent) (hit, bool) {
		share := strings.ToUpper(field(e, "ShareName"))
		src := field(e, "IpAddress")
		user := account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
		if !strings.HasSuffix(share, `\ADMIN$`) && !strings.HasSuffix(share, `\C$`) || src == "" || src == "127.0.0.1" || src == "::1" ||
			!person(user) {
			return hit{}, false
		}
		return hit{score: 0.45, attack: []string{"T1021.002"}, account: user, subject: share + " from " + src, src: src,
			why: user + " opened the administrative share " + share + " from " + src}, true
	}},
	{name: "service", stage: "lateral-movement", ids: []uint32{7045, 4697}, judge: func(e *event.HostEvent) (hit, bool) {
		name := field(e, "ServiceName")
		path := field(e, "ImagePath", "ServiceFileName")
		user := account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
		lp := strings.ToLower(path)
		switch {
		case strings.Contains(lp, `\admin$\`) || strings.Contains(lp, `\\127.0.0.1\`) || strings.EqualFold(name, "PSEXESVC") ||
			(launches(path) && !strings.Contains(lp, `\program files`)):
			return hit{score: 0.85, attack: []string{"T1569.002", "T1021.002", "T1543.003"}, account: user, subject: name, detail: path,
				why: "the service " + name + " was installed to run " + clip(path, 120) + ": remote execution as PsExec and its kin do it"}, true
		case userWritable(path):
			return hit{score: 0.6, attack: []string{"T1543.003"}, account: user, subject: name, detail: path,
				why: "the service " + name + " was installed from a user-writable folder (" + clip(path, 120) + ")"}, true
		}
		if e.EventID == 4697 && person(user) {
			// Installers run as SYSTEM; a person's account installing a
			// service is an administrator at work, or remote execution.
			return hit{score: 0.65, attack: []string{"T1543.003", "T1569.002"}, account: user, subject: name, detail: path,
				why: "the service " + name + " (" + clip(path, 100) + ") was installed by the account " + user}, true
		}
		return hit{score: 0.2, attack: []string{"T1543.003"}, account: user, subject: name, detail: path,
			why: "a new service was installed: " + name}, true
	}},
	{name: "scheduled-task", stage: "persistence", ids: []uint32{4698}, judge: func(e *event.HostEvent) (hit, bool) {
		name := field(e, "TaskName")
		content := field(e, "TaskContent")
		user := account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
		cmd := between(content, "<Command>", "</Command>") + " " + between(content, "<Arguments>", "</Arguments>")
		if launches(cmd) || userWritable(cmd) {
			return hit{score: 0.75, attack: []string{"T1053.005"}, account: user, subject: name, detail: strings.TrimSpace(cmd),
				why: "the scheduled task " + name + " was created to run " + clip(strings.TrimSpace(cmd), 120)}, true
		}
		return hit{score: 0.25, attack: []string{"T1053.005"}, account: user, subject: name, detail: strings.TrimSpace(cmd),
			why: "a scheduled task was created: " + name}, true
	}},
	{name: "autorun", stage: "persistence", ids: []uint32{13}, judge: func(e *event.HostEvent) (hit, bool) {
		key := field(e, "TargetObject")
		lk := strings.ToLower(key)
		val := field(e, "Details")
		image := field(e, "Image")
		var technique string
		switch {
		case strings.Contains(lk, `\currentversion\run`) || strings.Contains(lk, `\policies\explorer\run`):
			technique = "T1547.001"
		case strings.Contains(lk, `\winlogon\userinit`) || strings.Contains(lk, `\winlogon\shell`):
			technique = "T1547.004"
		case strings.Contains(lk, `\image file execution options\`) && strings.HasSuffix(lk, `\debugger`):
			technique = "T1546.012"
		default:
			return hit{}, false
		}
		score := 0.45
		if launches(val) || userWritable(val) {
			score = 0.75
		}
		return hit{score: score, attack: []string{technique}, account: field(e, "User"), subject: key, detail: val,
			why: base(image) + " set " + clip(key, 100) + " to " + clip(val, 100) + ": it runs at every logon"}, true
	}},
	{name: "log-cleared", stage: "defense-evasion", ids: []uint32{1102, 104}, judge: func(e *event.HostEvent) (hit, bool) {
		if e.EventID == 104 && !strings.Contains(strings.ToLower(e.Provider), "eventlog") {
			return hit{}, false
		}
		if e.EventID == 1102 && !strings.Contains(strings.ToLower(e.Provider), "eventlog") && e.Channel != "Security" {
			return hit{}, false
		}
		user := account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
		log := field(e, "Channel")
		if log == "" {
			log = e.Channel
		}
		return hit{score: 0.8, attack: []string{"T1070.001"}, account: user, subject: log,
			why: "the " + log + " event log was cleared"}, true
	}},
	{name: "audit-policy", stage: "defense-evasion", ids: []uint32{4719, 1, 4688, 13}, judge: func(e *event.HostEvent) (hit, bool) {
		switch e.EventID {
		case 4719:
			user := account(field(e, "SubjectDomainName"), field(e, "SubjectUserName"))
			changes := field(e, "AuditPolicyChanges")
			if !strings.Contains(changes, "%%8448") && !strings.Contains(changes, "%%8450") && !strings.Contains(strings.ToLower(changes), "removed") {
				return hit{}, false // success or failure auditing added, not removed
			}
			return hit{score: 0.6, attack: []string{"T1562.002"}, account: user, subject: "audit policy",
				detail: field(e, "SubcategoryGuid", "SubcategoryId"), why: "audit policy was changed to record less"}, true
		case 13:
			key := strings.ToLower(field(e, "TargetObject"))
			if strings.HasSuffix(key, `\processcreationincludecmdline_enabled`) && strings.Contains(field(e, "Details"), "0x00000000") {
				return hit{score: 0.7, attack: []string{"T1562.002"}, account: field(e, "User"), subject: "command-line auditing",
					why: "command lines were removed from process-creation auditing"}, true
			}
			return hit{}, false
		}
		image, _, cmd, user := process(e)
		lc := strings.ToLower(cmd)
		if base(image) == "auditpol.exe" && (strings.Contains(lc, "/clear") || strings.Contains(lc, "/remove") ||
			(strings.Contains(lc, "/set") && strings.Contains(lc, "disable"))) {
			return hit{score: 0.7, attack: []string{"T1562.002"}, account: user, subject: "auditpol", detail: cmd,
				why: "auditpol was run to stop auditing: " + clip(cmd, 120)}, true
		}
		return hit{}, false
	}},
	{name: "lsass-access", stage: "credential-access", ids: []uint32{10}, judge: func(e *event.HostEvent) (hit, bool) {
		if base(field(e, "TargetImage")) != "lsass.exe" {
			return hit{}, false
		}
		src := field(e, "SourceImage")
		if lsassReaders[base(src)] {
			return hit{}, false
		}
		access := strings.ToLower(field(e, "GrantedAccess"))
		if !readsMemory(access) {
			return hit{}, false
		}
		return hit{score: 0.85, attack: []string{"T1003.001"}, account: field(e, "SourceUser", "User"), subject: base(src) + " → lsass.exe",
			detail: src + " " + access, why: base(src) + " opened lsass.exe with access " + access + ": reading credentials from its memory"}, true
	}},
	{name: "credential-dump", stage: "credential-access", ids: []uint32{1, 4688}, judge: func(e *event.HostEvent) (hit, bool) {
		image, _, cmd, user := process(e)
		lc := strings.ToLower(cmd)
		img := base(image)
		var technique, what string
		switch {
		case strings.Contains(lc, "comsvcs") && strings.Contains(lc, "minidump"):
			technique, what = "T1003.001", "an LSASS dump through comsvcs.dll"
		case (img == "procdump.exe" || img == "procdump64.exe") && strings.Contains(lc, "lsass"):
			technique, what = "T1003.001", "an LSASS dump with procdump"
		case img == "ntdsutil.exe" && (strings.Contains(lc, "ifm") || strings.Contains(lc, "ac i ntds") || strings.Contains(lc, "activate instance ntds")):
			technique, what = "T1003.003", "a copy of the domain's NTDS.dit with ntdsutil"
		case img == "esentutl.exe" && strings.Contains(lc, "/vss") && (strings.Contains(lc, "sam") || strings.Contains(lc, "ntds") || strings.Contains(lc, "system")):
			technique, what = "T1003.002", "a copy of a locked registry hive or NTDS.dit through a shadow copy"
		case img == "reg.exe" && strings.Contains(lc, "save") && (strings.Contains(lc, `hklm\sam`) || strings.Contains(lc, `hklm\security`) || strings.Contains(lc, `hklm\system`)):
			technique, what = "T1003.002", "a copy of the SAM or SECURITY hive"
		case strings.Contains(lc, "sekurlsa::") || strings.Contains(lc, "lsadump::"):
			technique, what = "T1003", "mimikatz"
		default:
			return hit{}, false
		}
		return hit{score: 0.9, attack: []string{technique}, account: user, subject: img, detail: cmd,
			why: "the command line shows " + what + ": " + clip(cmd, 120)}, true
	}},
	{name: "dcsync", stage: "credential-access", ids: []uint32{4662}, judge: func(e *event.HostEvent) (hit, bool) {
		props := strings.ToLower(field(e, "Properties"))
		if !strings.Contains(props, "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2") && !strings.Contains(props, "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2") &&
			!strings.Contains(props, "89e95b76-444d-4c62-991a-0facbeda640c") {
			return hit{}, false
		}
		user := field(e, "SubjectUserName")
		if strings.HasSuffix(user, "$") {
			return hit{}, false // a domain controller replicating
		}
		acct := account(field(e, "SubjectDomainName"), user)
		return hit{score: 0.9, attack: []string{"T1003.006"}, account: acct, subject: "directory replication",
			why: acct + ", not a domain controller, asked the directory for replication (DCSync): every account's password hash"}, true
	}},
	{name: "pass-the-hash", stage: "lateral-movement", ids: []uint32{4624}, judge: func(e *event.HostEvent) (hit, bool) {
		if field(e, "LogonType") != "9" || !strings.EqualFold(field(e, "LogonProcessName"), "seclogo") {
			return hit{}, false
		}
		user := account(field(e, "TargetDomainName"), field(e, "TargetUserName"))
		return hit{score: 0.65, attack: []string{"T1550.002"}, account: user, subject: "logon type 9",
			why: user + " logged on with new credentials for the network only (logon type 9, seclogo): pass-the-hash, or runas /netonly"}, true
	}},
	{name: "kerberoast", stage: "credential-access", ids: []uint32{4769}, judge: func(e *event.HostEvent) (hit, bool) {
		enc := strings.ToLower(field(e, "TicketEncryptionType"))
		svc := field(e, "ServiceName")
		if (enc != "0x17" && enc != "0x18") || svc == "" || strings.HasSuffix(svc, "$") || strings.EqualFold(svc, "krbtgt") {
			return hit{}, false
		}
		user := field(e, "TargetUserName")
		return hit{score: 0.55, attack: []string{"T1558.003"}, account: user, subject: "RC4 service tickets", detail: svc,
			src: field(e, "IpAddress"), why: user + " asked for RC4-encrypted service tickets (" + svc + "): they can be cracked offline"}, true
	}},
	{name: "explicit-credentials", stage: "lateral-movement", ids: []uint32{4648}, judge: func(e *event.HostEvent) (hit, bool) {
		target := strings.ToLower(field(e, "TargetServerName"))
		proc := base(field(e, "ProcessName"))
		if target == "" || target == "localhost" || target == "127.0.0.1" || strings.EqualFold(target, firstLabel(e.Computer)) ||
			!shells[proc] {
			return hit{}, false
		}
		user := account(field(e, "TargetDomainName"), field(e, "TargetUserName"))
		return hit{score: 0.6, attack: []string{"T1078", "T1021"}, account: user, subject: proc + " → " + target, detail: field(e, "ProcessName"),
			why: proc + " used the explicit credentials of " + user + " to reach " + target}, true
	}},
}

// archivers pack files for theft.
var archivers = set("rar.exe", "winrar.exe", "7z.exe", "7za.exe", "7zr.exe", "makecab.exe", "zip.exe")

// lsassReaders open lsass.exe for their work: the system itself, security
// products, management agents.
var lsassReaders = set("wininit.exe", "csrss.exe", "lsm.exe", "services.exe", "svchost.exe", "msmpeng.exe", "mssense.exe",
	"wmiprvse.exe", "vmtoolsd.exe", "taskmgr.exe", "sihost.exe", "smartscreen.exe", "msiexec.exe", "lsaiso.exe", "searchindexer.exe",
	"nissrv.exe", "sensecncproxy.exe", "mpcmdrun.exe", "winlogon.exe", "googleupdate.exe", "vmms.exe")

// readsMemory reports an access mask that allows reading a process's
// memory (PROCESS_VM_READ, 0x10) or duplicating handles into it (0x40).
func readsMemory(mask string) bool {
	m := strings.TrimPrefix(mask, "0x")
	var v uint64
	for _, c := range m {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return false
		}
	}
	return v&0x10 != 0 || v&0x40 != 0
}

func between(s, open, close string) string {
	i := strings.Index(s, open)
	if i < 0 {
		return ""
	}
	s = s[i+len(open):]
	if j := strings.Index(s, close); j >= 0 {
		return s[:j]
	}
	return s
}

func firstLabel(host string) string {
	if i := strings.IndexByte(host, '.'); i >= 0 {
		return host[:i]
	}
	return host
}

// clip shortens s to at most n characters for a sentence.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
