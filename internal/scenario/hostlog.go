package scenario

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Windows host events, one JSON object per line, one gzip file per day
// (hostlogs/YYYY-MM-DD.jsonl.gz), in the flat shape of the OTRF Security
// Datasets: the system fields of the event (TimeCreated, EventID, Channel,
// Provider, Computer, EventRecordID) beside its event-data fields under
// their Windows names (Image, CommandLine, ParentImage, User, TargetUserName,
// LogonType, IpAddress, DestinationIp, ServiceName, ImagePath, ...).
//
// They cover the hosts the campaign touched, the domain controllers and a
// sample of ordinary workstations: logons and logoffs (Security 4624,
// 4625, 4634), process creation (Sysmon 1), network connections (Sysmon 3)
// and service installs (System 7045).

const (
	chSysmon   = "Microsoft-Windows-Sysmon/Operational"
	chSecurity = "Security"
	chSystem   = "System"
)

var providers = map[string]string{chSysmon: "Microsoft-Windows-Sysmon", chSecurity: "Microsoft-Windows-Security-Auditing",
	chSystem: "Service Control Manager"}

// netEvent records a Sysmon network connection for a connection.
func (p *plan) netEvent(h *host, image, user string, c *event.Conn, hostname string) {
	p.event(c.TS, h, chSysmon, 3, map[string]any{"Image": image, "User": user, "Protocol": c.Proto, "Initiated": "true",
		"SourceIp": c.SrcIP.String(), "SourcePort": c.SrcPort, "DestinationIp": c.DstIP.String(), "DestinationPort": c.DstPort,
		"DestinationHostname": hostname})
}

// hostBackground adds a day's ordinary events of the logged hosts.
func (p *plan) hostBackground(rng *rand.Rand, day time.Time, logged []*host, out []hostEvent) []hostEvent {
	m := p.m
	add := func(ts time.Time, h *host, channel string, id int, fields map[string]any) {
		out = append(out, hostEvent{TS: ts, Computer: h.name + ".ministry.example", Channel: channel, EventID: id, Fields: fields})
	}
	dcs := []*host{m.servers["dc1"], m.servers["dc2"]}
	files := m.servers["files"]
	// By user agent; Edge's also names Chrome, so it comes first.
	browsers := []struct{ token, image string }{
		{"Edg/", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"},
		{"Firefox/", "C:\\Program Files\\Mozilla Firefox\\firefox.exe"},
		{"Chrome/", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"},
	}
	for _, h := range logged {
		if h.kind == server {
			// Scheduled work on the servers, every four hours.
			for hh := 1; hh < 24; hh += 4 {
				ts := day.Add(time.Duration(hh)*time.Hour + phase(h, "task", time.Hour))
				add(ts, h, chSysmon, 1, map[string]any{"Image": "C:\\Windows\\System32\\svchost.exe",
					"CommandLine": "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule", "ParentImage": "C:\\Windows\\System32\\services.exe",
					"User": "NT AUTHORITY\\SYSTEM", "IntegrityLevel": "System", "ProcessId": 1000 + rng.IntN(60000)})
			}
			continue
		}
		if !m.workday(day) {
			continue
		}
		// The working day of a workstation's user.
		user := h.user
		in := day.Add(7*time.Hour + time.Duration(rng.IntN(90))*time.Minute)
		leave := day.Add(16*time.Hour + time.Duration(rng.IntN(60))*time.Minute)
		if rng.Float64() < 0.05 {
			add(in.Add(-time.Minute), h, chSecurity, 4625, map[string]any{"TargetUserName": user, "TargetDomainName": "MINISTRY", "LogonType": 2,
				"Status": "0xc000006d", "SubStatus": "0xc000006a", "IpAddress": "127.0.0.1", "WorkstationName": h.name})
		}
		add(in, h, chSecurity, 4624, map[string]any{"TargetUserName": user, "TargetDomainName": "MINISTRY", "LogonType": 2,
			"IpAddress": "127.0.0.1", "AuthenticationPackageName": "Negotiate", "LogonProcessName": "User32", "WorkstationName": h.name})
		dc := dcs[rng.IntN(2)]
		add(in.Add(time.Second), dc, chSecurity, 4624, map[string]any{"TargetUserName": user, "TargetDomainName": "MINISTRY", "LogonType": 3,
			"IpAddress": h.addr.String(), "AuthenticationPackageName": "Kerberos", "LogonProcessName": "Kerberos", "WorkstationName": h.name})
		add(in.Add(40*time.Second), files, chSecurity, 4624, map[string]any{"TargetUserName": user, "TargetDomainName": "MINISTRY", "LogonType": 3,
			"IpAddress": h.addr.String(), "AuthenticationPackageName": "Kerberos", "LogonProcessName": "Kerberos", "WorkstationName": h.name})
		browser := browsers[len(browsers)-1].image
		for _, b := range browsers {
			if strings.Contains(h.ua, b.token) {
				browser = b.image
				break
			}
		}
		procs := []struct{ image, cmd, parent string }{
			{"C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE", "C:\\Windows\\System32\\userinit.exe"},
			{"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"", "C:\\Windows\\explorer.exe"},
			{browser, "\"" + browser + "\"", "C:\\Windows\\explorer.exe"},
			{"C:\\Users\\" + user + "\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe", "Teams.exe --system-initiated", "C:\\Windows\\explorer.exe"},
			{"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n \"\\\\FS01\\Dossiers\\note.docx\"", "C:\\Windows\\explorer.exe"},
		}
		for i, pr := range procs {
			add(in.Add(time.Duration(20+i*30+rng.IntN(600))*time.Second), h, chSysmon, 1, map[string]any{"Image": pr.image, "CommandLine": pr.cmd,
				"ParentImage": pr.parent, "User": "MINISTRY\\" + user, "IntegrityLevel": "Medium", "ProcessId": 1000 + rng.IntN(60000)})
		}
		for range 4 + rng.IntN(8) {
			ts := in.Add(time.Duration(rng.Int64N(int64(leave.Sub(in)))))
			s := m.pickSite(rng)
			add(ts, h, chSysmon, 3, map[string]any{"Image": browser, "User": "MINISTRY\\" + user, "Protocol": "tcp", "Initiated": "true",
				"SourceIp": h.addr.String(), "SourcePort": 49152 + rng.IntN(16000), "DestinationIp": s.addr.String(), "DestinationPort": 443,
				"DestinationHostname": s.name})
		}
		if rng.Float64() < 0.01 { // software updates install services too
			add(in.Add(2*time.Hour), h, chSystem, 7045, map[string]any{"ServiceName": "Google Updater Service",
				"ImagePath":   "\"C:\\Program Files (x86)\\Google\\GoogleUpdater\\updater.exe\" --system --windows-service",
				"ServiceType": "user mode service", "StartType": "auto start", "AccountName": "LocalSystem"})
		}
		if !h.alwaysOn {
			add(leave, h, chSecurity, 4634, map[string]any{"TargetUserName": user, "TargetDomainName": "MINISTRY", "LogonType": 2})
		}
	}
	return out
}

// loggedHosts returns the hosts whose events are written: those the
// campaign touched, the servers, and a sample of workstations.
func (p *plan) loggedHosts() []*host {
	seen := map[string]bool{}
	var out []*host
	add := func(h *host) {
		if !seen[h.name] {
			seen[h.name] = true
			out = append(out, h)
		}
	}
	for _, role := range []string{"dc1", "dc2", "mail", "files", "web", "proxy"} {
		add(p.m.servers[role])
	}
	for _, a := range p.truth.Campaign.Hosts {
		for _, h := range p.m.all {
			if h.addr.String() == a {
				add(h)
			}
		}
	}
	for i := 0; i < len(p.m.work) && len(out) < 32; i += 7 {
		add(p.m.work[i])
	}
	return out
}

// writeHostLogs writes the campaign's and the background's host events,
// one file per day, and returns the files and the number of events.
func writeHostLogs(dir string, m *model, p *plan) ([]string, int64, error) {
	if err := os.MkdirAll(filepath.Join(dir, "hostlogs"), 0o755); err != nil {
		return nil, 0, err
	}
	logged := p.loggedHosts()
	var files []string
	var gz gzipFiles
	var total int64
	records := map[string]int64{}
	campaign := slices.Clone(p.events)
	slices.SortStableFunc(campaign, func(a, b hostEvent) int { return a.TS.Compare(b.TS) })
	for d := range m.cfg.Days {
		day := m.cfg.Start.AddDate(0, 0, d)
		rng := rand.New(rand.NewPCG(m.cfg.Seed, 0x686f7374<<16|uint64(d)))
		evs := p.hostBackground(rng, day, logged, nil)
		for _, e := range campaign {
			if !e.TS.Before(day) && e.TS.Before(day.AddDate(0, 0, 1)) {
				evs = append(evs, e)
			}
		}
		slices.SortStableFunc(evs, func(a, b hostEvent) int { return a.TS.Compare(b.TS) })
		var buf []byte
		for _, e := range evs {
			records[e.Computer]++
			obj := make(map[string]any, len(e.Fields)+8)
			for k, v := range e.Fields {
				obj[k] = v
			}
			obj["TimeCreated"] = e.TS.UTC().Format("2006-01-02T15:04:05.000Z")
			obj["EventID"] = e.EventID
			obj["Channel"] = e.Channel
			obj["Provider"] = providers[e.Channel]
			obj["Computer"] = e.Computer
			obj["EventRecordID"] = records[e.Computer]
			if e.Channel == chSysmon {
				obj["UtcTime"] = e.TS.UTC().Format("2006-01-02 15:04:05.000")
			}
			line, err := json.Marshal(obj)
			if err != nil {
				return nil, 0, fmt.Errorf("host event %s %d: %w", e.Channel, e.EventID, err)
			}
			buf = append(append(buf, line...), '\n')
		}
		if len(evs) == 0 {
			continue
		}
		name := filepath.ToSlash(filepath.Join("hostlogs", day.Format("2006-01-02")+".jsonl.gz"))
		if err := gz.write(filepath.Join(dir, filepath.FromSlash(name)), buf, m.cfg.Level, day); err != nil {
			return nil, 0, err
		}
		files = append(files, name)
		total += int64(len(evs))
	}
	return files, total, nil
}
