package scenario

import (
	"encoding/base32"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// The planted espionage campaign, modelled on what was reported of the
// 2019–2021 intrusion into the Belgian interior ministry: a web shell on the
// internet-facing mail server, an implant there and later on two
// workstations checking in every few hours to a day, a DNS tunnel kept as a
// backup, a stolen service account used over SMB, WinRM and RDP, documents
// staged from the file server and sent out slowly to a rented server and a
// cloud-storage service, all of it quiet and spread over the period until
// containment. Attacker infrastructure uses documentation addresses
// (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) and .example names.

// Attacker infrastructure.
var (
	shellIPs  = []netip.Addr{netip.MustParseAddr("203.0.113.45"), netip.MustParseAddr("203.0.113.46"), netip.MustParseAddr("198.51.100.9")}
	c2A       = netip.MustParseAddr("198.51.100.23")
	c2B       = netip.MustParseAddr("203.0.113.77")
	vps       = netip.MustParseAddr("198.51.100.50")
	cloud     = netip.MustParseAddr("203.0.113.120")
	adware    = netip.MustParseAddr("192.0.2.200")
	implantJA = "3b5074b1b5d032e5620f69f9f700ff0e"
)

const (
	c2ASNI     = "cdn-update.example"
	c2BSNI     = "static.cloudsvc.example"
	vpsSNI     = "backup.vps-host.example"
	cloudSNI   = "upload.cloudbox.example"
	tunnelZone = "t.ns-update.example"
	shellPath  = "/owa/auth/OutlookEN.aspx"
	// The implants' images on disk.
	mailImplant = "C:\\ProgramData\\Microsoft\\Crypto\\msupdate.exe"
	wsImplant   = "C:\\ProgramData\\WinTel\\wintel.exe"
	adwareHost  = "track.adpush.example"
)

// plan is the campaign and the other planted activity, laid out in time
// before any hour is written.
type plan struct {
	m       *model
	rng     *rand.Rand
	buckets map[int]*event.Batch
	events  []hostEvent
	truth   *Truth
	gens    map[int]*hourGen
}

// hostEvent is one Windows event (docs/scenario.md).
type hostEvent struct {
	TS       time.Time
	Computer string
	Channel  string
	EventID  int
	Fields   map[string]any
}

func newPlan(m *model) *plan {
	cfg := m.cfg
	p := &plan{m: m, rng: rand.New(rand.NewPCG(cfg.Seed, 0x63616d70)), buckets: map[int]*event.Batch{}, gens: map[int]*hourGen{}}
	end := cfg.Start.AddDate(0, 0, cfg.Days)
	p.truth = &Truth{Seed: cfg.Seed, Start: cfg.Start, End: end, Sensor: cfg.Sensor,
		Network: Network{Local: []string{"10.0.0.0/8"}, Servers: map[string]string{}, Hosts: len(m.all)}}
	for role, h := range m.servers {
		p.truth.Network.Servers[role] = h.addr.String()
	}
	for _, h := range m.work {
		if h.kind == laptop {
			p.truth.Network.Laptops++
		}
	}
	for d := range m.holidays {
		p.truth.Network.Holidays = append(p.truth.Network.Holidays, d)
	}
	sort.Strings(p.truth.Network.Holidays)
	p.truth.Network.Resolvers = []string{m.servers["dns1"].addr.String(), m.servers["dns2"].addr.String()}
	p.campaign()
	p.commodity()
	p.ddos()
	p.mailboxTheft()
	p.siblings()
	return p
}

// when returns the moment a fraction f into the period, at hh:mm UTC.
func (p *plan) when(f float64, hh, mm int) time.Time {
	day := p.m.cfg.Start.AddDate(0, 0, int(f*float64(p.m.cfg.Days)))
	return day.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
}

// gen returns the generator writing planted records into the hour of ts.
func (p *plan) gen(ts time.Time) *hourGen {
	h := int(ts.Sub(p.m.cfg.Start) / time.Hour)
	g := p.gens[h]
	if g == nil {
		b := &event.Batch{}
		p.buckets[h] = b
		g = &hourGen{m: p.m, hour: h + 1<<20, start: p.m.cfg.Start.Add(time.Duration(h) * time.Hour), rng: p.rng, b: b}
		p.gens[h] = g
	}
	return g
}

// into adds the planted records of hour h to b; certificates already
// logged that day (certs) are not logged again.
func (p *plan) into(h int, b *event.Batch, certs map[string]bool) {
	pb := p.buckets[h]
	if pb == nil {
		return
	}
	x509 := b.X509
	b.Append(pb)
	b.X509 = x509
	for _, c := range pb.X509 {
		if !certs[c.Fingerprint] {
			certs[c.Fingerprint] = true
			b.X509 = append(b.X509, c)
		}
	}
}

func (p *plan) inPeriod(ts time.Time) bool {
	return !ts.Before(p.m.cfg.Start) && ts.Before(p.m.cfg.Start.AddDate(0, 0, p.m.cfg.Days))
}

func (p *plan) event(ts time.Time, h *host, channel string, id int, fields map[string]any) {
	p.events = append(p.events, hostEvent{TS: ts, Computer: h.name + ".ministry.example", Channel: channel, EventID: id, Fields: fields})
}

// nextOn returns t, or the next moment h is switched on after it.
func (p *plan) nextOn(h *host, t time.Time) time.Time {
	for i := 0; i < 24*14 && !p.m.on(h, t); i++ {
		t = t.Truncate(time.Hour).Add(time.Hour + time.Duration(p.rng.IntN(40))*time.Minute)
	}
	return t
}

type technique struct {
	id, name, detector, note string
	hosts, peers             []string
	domain                   string
	from, to                 time.Time
	events                   int
}

func (p *plan) addTechnique(t technique) {
	p.truth.Campaign.Techniques = append(p.truth.Campaign.Techniques, Technique{ID: t.id, Name: t.name, Hosts: t.hosts, Peers: t.peers,
		Domain: t.domain, From: t.from, To: t.to, Detector: t.detector, Note: t.note, Events: t.events})
}

// pick returns the workstations the campaign uses: an always-on desktop
// (ws-A) and a desktop switched off at night (ws-B).
func (p *plan) pick() (a, b *host) {
	for _, h := range p.m.work {
		if a == nil && h.kind == desktop && h.alwaysOn {
			a = h
		}
		if b == nil && h.kind == desktop && !h.alwaysOn && h.addr.As4()[3] > 60 {
			b = h
		}
	}
	if a == nil {
		a = p.m.work[0]
	}
	if b == nil || b == a {
		b = p.m.work[len(p.m.work)-1]
	}
	return a, b
}

func (p *plan) campaign() {
	m := p.m
	mail, files := m.servers["mail"], m.servers["files"]
	wsA, wsB := p.pick()
	contain := p.when(0.9, 14, 0)
	c := &p.truth.Campaign
	c.Name = "planted espionage campaign"
	c.Containment = contain
	c.Hosts = []string{mail.addr.String(), files.addr.String(), wsA.addr.String(), wsB.addr.String()}
	svc := "MINISTRY\\svc-exchange"
	c.Accounts = []string{svc, "MINISTRY\\" + wsA.user, "MINISTRY\\" + wsB.user}
	c.Domains = []string{"cdn-update.example", "cloudsvc.example", "ns-update.example", "vps-host.example", "cloudbox.example"}
	for _, a := range append(append([]netip.Addr{}, shellIPs...), c2A, c2B, vps, cloud) {
		c.ExternalIPs = append(c.ExternalIPs, a.String())
	}

	// Initial access: the web shell on the mail server, driven now and then.
	ia := p.when(0.1, 9, 20)
	c.FirstEvent = ia
	posts, shells := 0, 0
	for s, ts := 0, ia; ts.Before(contain); s++ {
		n := 5
		if s > 0 {
			n = 2 + p.rng.IntN(5)
		}
		from := shellIPs[s%len(shellIPs)]
		for i := range n {
			t := ts.Add(time.Duration(i*40+p.rng.IntN(30)) * time.Second)
			g := p.gen(t)
			req := int64(300 + p.rng.IntN(1700))
			cn := g.conn(t, from, mail.addr, 80, "tcp", "http", 300*time.Millisecond, req+500, 1200+int64(p.rng.IntN(3000)), "SF")
			g.http(cn, "POST", "mail.ministry.example", shellPath, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0",
				200, req, int64(cn.DstBytes.V)-300, "")
			posts++
		}
		p.event(ts.Add(20*time.Second), mail, "Microsoft-Windows-Sysmon/Operational", 1, map[string]any{
			"Image": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "cmd.exe /c whoami /all & net group \"domain admins\" /domain",
			"ParentImage": "C:\\Windows\\System32\\inetsrv\\w3wp.exe", "User": "NT AUTHORITY\\SYSTEM", "IntegrityLevel": "System"})
		shells++
		ts = ts.Add(time.Duration(3*24+p.rng.IntN(48)) * time.Hour)
	}
	p.addTechnique(technique{id: "T1505.003", name: "Server Software Component: Web Shell", detector: "httpanom", hosts: []string{mail.addr.String()},
		peers: addrs(shellIPs), from: ia, to: contain, events: posts, note: "POSTs to " + shellPath + " on the mail server from three outside addresses"})

	p.addTechnique(technique{id: "T1059.003", name: "Command and Scripting Interpreter: Windows Command Shell", hosts: []string{mail.addr.String()},
		from: ia, to: contain, events: shells, note: "host logs only: cmd.exe started by the IIS worker w3wp.exe"})

	// Implants: the mail server first, then two workstations.
	periods := []time.Duration{m.cfg.BeaconMin, time.Duration(math.Sqrt(float64(m.cfg.BeaconMin) * float64(m.cfg.BeaconMax))), m.cfg.BeaconMax}
	n := p.beacon(mail, mailImplant, c2A, c2ASNI, "self signed certificate", periods[0], ia.Add(2*time.Hour), contain)
	p.addTechnique(technique{id: "T1071.001", name: "Application Layer Protocol: Web Protocols (C2)", detector: "beacon",
		hosts: []string{mail.addr.String()}, peers: []string{c2A.String()}, domain: c2ASNI, from: ia.Add(2 * time.Hour), to: contain, events: n,
		note: fmt.Sprintf("implant checks in every %s ±30%%", periods[0])})
	p.event(ia.Add(90*time.Minute), mail, "Microsoft-Windows-Sysmon/Operational", 1, map[string]any{
		"Image": mailImplant, "CommandLine": "msupdate.exe -k netsvcs",
		"ParentImage": "C:\\Windows\\System32\\cmd.exe", "User": "NT AUTHORITY\\SYSTEM", "IntegrityLevel": "System"})

	// Credential use and lateral movement to the file server and ws-A.
	lat := p.when(0.38, 10, 5)
	moves, logons := 0, 0
	for k, t := range []time.Time{lat, lat.Add(26 * time.Hour), p.when(0.5, 9, 40), p.when(0.7, 15, 10)} {
		g := p.gen(t)
		g.conn(t, mail.addr, files.addr, 445, "tcp", "smb", 30*time.Second, 60_000, 300_000, "SF")
		g = p.gen(t.Add(3 * time.Minute))
		g.conn(t.Add(3*time.Minute), mail.addr, files.addr, 5985, "tcp", "http", 90*time.Second, 40_000, 90_000, "SF")
		moves += 2
		p.event(t, files, "Security", 4624, map[string]any{"TargetUserName": "svc-exchange", "TargetDomainName": "MINISTRY", "LogonType": 3,
			"IpAddress": mail.addr.String(), "AuthenticationPackageName": "NTLM", "WorkstationName": "MAIL01"})
		logons++
		p.event(t.Add(3*time.Minute), files, "Microsoft-Windows-Sysmon/Operational", 1, map[string]any{
			"Image": "C:\\Windows\\System32\\wsmprovhost.exe", "CommandLine": "C:\\Windows\\system32\\wsmprovhost.exe -Embedding",
			"ParentImage": "C:\\Windows\\System32\\svchost.exe", "User": svc, "IntegrityLevel": "High"})
		if k == 0 {
			rdp := t.Add(2 * time.Hour)
			g := p.gen(rdp)
			g.conn(rdp, mail.addr, wsA.addr, 3389, "tcp", "rdp", 40*time.Minute, 2_500_000, 9_000_000, "SF")
			moves++
			p.event(rdp, wsA, "Security", 4624, map[string]any{"TargetUserName": "svc-exchange", "TargetDomainName": "MINISTRY", "LogonType": 10,
				"IpAddress": mail.addr.String(), "AuthenticationPackageName": "Negotiate", "WorkstationName": "MAIL01"})
			logons++
			p.event(rdp.Add(12*time.Minute), wsA, "System", 7045, map[string]any{"ServiceName": "WinTelemetrySvc",
				"ImagePath": wsImplant, "ServiceType": "user mode service", "StartType": "auto start", "AccountName": "LocalSystem"})
		}
	}
	p.addTechnique(technique{id: "T1021.002", name: "Remote Services: SMB/Windows Admin Shares", detector: "lateral",
		hosts: []string{mail.addr.String(), files.addr.String()}, from: lat, to: p.when(0.7, 15, 10), events: 4, note: "stolen service account svc-exchange"})
	p.addTechnique(technique{id: "T1021.006", name: "Remote Services: Windows Remote Management", detector: "lateral",
		hosts: []string{mail.addr.String(), files.addr.String()}, from: lat.Add(3 * time.Minute), to: p.when(0.7, 15, 13), events: 4})
	p.addTechnique(technique{id: "T1021.001", name: "Remote Services: Remote Desktop Protocol", detector: "lateral",
		hosts: []string{mail.addr.String(), wsA.addr.String()}, from: lat.Add(2 * time.Hour), to: lat.Add(2*time.Hour + 40*time.Minute), events: 1})

	p.addTechnique(technique{id: "T1078.002", name: "Valid Accounts: Domain Accounts", hosts: []string{files.addr.String(), wsA.addr.String()},
		from: lat, to: p.when(0.7, 15, 10), events: logons,
		note: "host logs only: network and RDP logons of the service account svc-exchange from the mail server"})

	aStart := lat.Add(2*time.Hour + 15*time.Minute)
	n = p.beacon(wsA, wsImplant, c2B, c2BSNI, "ok", periods[1], aStart, contain)
	bStart := p.when(0.5, 10, 0)
	// ws-B is reached over WinRM from ws-A.
	g := p.gen(bStart.Add(-30 * time.Minute))
	g.conn(bStart.Add(-30*time.Minute), wsA.addr, wsB.addr, 5985, "tcp", "http", 60*time.Second, 30_000, 50_000, "SF")
	p.event(bStart.Add(-29*time.Minute), wsB, "System", 7045, map[string]any{"ServiceName": "WinTelemetrySvc",
		"ImagePath": wsImplant, "ServiceType": "user mode service", "StartType": "auto start", "AccountName": "LocalSystem"})
	p.addTechnique(technique{id: "T1543.003", name: "Create or Modify System Process: Windows Service", hosts: []string{wsA.addr.String(), wsB.addr.String()},
		from: aStart.Add(-3 * time.Minute), to: bStart.Add(-29 * time.Minute), events: 2,
		note: "host logs only: service WinTelemetrySvc installed to start the implant"})
	p.addTechnique(technique{id: "T1021.006", name: "Remote Services: Windows Remote Management", detector: "lateral",
		hosts: []string{wsA.addr.String(), wsB.addr.String()}, from: bStart.Add(-30 * time.Minute), to: bStart.Add(-29 * time.Minute), events: 1})
	n += p.beacon(wsB, wsImplant, c2B, c2BSNI, "ok", periods[2], bStart, contain)
	p.addTechnique(technique{id: "T1071.001", name: "Application Layer Protocol: Web Protocols (C2)", detector: "beacon",
		hosts: []string{wsA.addr.String(), wsB.addr.String()}, peers: []string{c2B.String()}, domain: c2BSNI, from: aStart, to: contain, events: n,
		note: fmt.Sprintf("implants check in every %s (ws-A) and %s (ws-B) ±30%%; ws-B is off at night, so check-ins wait for the morning", periods[1], periods[2])})

	// The DNS tunnel kept as a backup channel, used a few times a month.
	tunnel := 0
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	for _, f := range []float64{0.42, 0.58, 0.74, 0.86} {
		t := p.when(f, 21, 10+p.rng.IntN(30))
		if !t.Before(contain) {
			continue
		}
		for i := range 80 + p.rng.IntN(120) {
			ts := t.Add(time.Duration(i*4+p.rng.IntN(4)) * time.Second)
			buf := make([]byte, 28+p.rng.IntN(8))
			for j := range buf {
				buf[j] = byte(p.rng.IntN(256))
			}
			label := strings.ToLower(b32.EncodeToString(buf))
			if len(label) > 60 {
				label = label[:30] + "." + label[30:]
			}
			p.gen(ts).dns(ts, wsA.addr, label+"."+tunnelZone, "TXT", "TXT 40 "+strings.ToLower(b32.EncodeToString(buf[:20])))
			tunnel++
		}
	}
	p.addTechnique(technique{id: "T1071.004", name: "Application Layer Protocol: DNS (tunnel)", detector: "dnstunnel",
		hosts: []string{wsA.addr.String()}, domain: "ns-update.example", from: p.when(0.42, 21, 0), to: p.when(0.86, 23, 0), events: tunnel,
		note: "TXT queries carrying data under " + tunnelZone + ", a few bursts"})

	// Staging: documents pulled from the file server to ws-B (a usual edge).
	staged := 0
	for _, f := range []float64{0.52, 0.53, 0.6} {
		t := p.nextOn(wsB, p.when(f, 12, 30))
		p.gen(t).conn(t, wsB.addr, files.addr, 445, "tcp", "smb", 15*time.Minute, 400_000, 300_000_000+int64(p.rng.IntN(200_000_000)), "SF")
		staged++
		p.event(t.Add(16*time.Minute), wsB, "Microsoft-Windows-Sysmon/Operational", 1, map[string]any{
			"Image": "C:\\Windows\\System32\\rar.exe", "CommandLine": "rar.exe a -hp -v50m C:\\Users\\Public\\Libraries\\d.rar \\\\FS01\\Dossiers\\Sensitive",
			"ParentImage": wsImplant, "User": "MINISTRY\\" + wsB.user, "IntegrityLevel": "Medium"})
	}
	p.addTechnique(technique{id: "T1039", name: "Data from Network Shared Drive", hosts: []string{wsB.addr.String(), files.addr.String()},
		from: p.when(0.52, 12, 0), to: p.when(0.6, 14, 0), events: staged,
		note: "SMB reads from the file server every workstation uses: on the network, a large read on an ordinary edge"})
	p.addTechnique(technique{id: "T1560.001", name: "Archive Collected Data: Archive via Utility", hosts: []string{wsB.addr.String()},
		from: p.when(0.52, 12, 0), to: p.when(0.6, 14, 0), events: staged, note: "host logs only: rar.exe with a password, in 50 MB volumes"})

	// Low-and-slow exfiltration to the rented server, cloud uploads.
	var toVPS, toCloud int64
	chunks := 0
	for d := int(0.55 * float64(m.cfg.Days)); ; d++ {
		day := m.cfg.Start.AddDate(0, 0, d)
		if !day.Before(contain.Truncate(24 * time.Hour)) {
			break
		}
		if !m.workday(day) {
			continue
		}
		for i := range 6 + p.rng.IntN(10) {
			t := day.Add(17*time.Hour + time.Duration(i*7+p.rng.IntN(5))*time.Minute)
			if !m.on(wsB, t) {
				t = day.Add(16*time.Hour + time.Duration(i*4)*time.Minute)
			}
			up := int64(1_000_000 + p.rng.IntN(3_000_000))
			g := p.gen(t)
			cn := g.conn(t, wsB.addr, vps, 443, "tcp", "ssl", time.Duration(20+p.rng.IntN(40))*time.Second, up, 3000+int64(p.rng.IntN(2000)), "SF")
			g.tls(cn, vpsSNI, implantJA, "ok", "CN=R3,O=Let's Encrypt,C=US")
			p.netEvent(wsB, wsImplant, "MINISTRY\\"+wsB.user, cn, vpsSNI)
			toVPS += up
			chunks++
		}
	}
	for _, f := range []float64{0.65, 0.8} {
		t := p.nextOn(wsB, p.when(f, 15, 45))
		up := int64(150_000_000 + p.rng.IntN(250_000_000))
		g := p.gen(t)
		cn := g.conn(t, wsB.addr, cloud, 443, "tcp", "ssl", 25*time.Minute, up, 80_000, "SF")
		g.tls(cn, cloudSNI, implantJA, "ok", "CN=R3,O=Let's Encrypt,C=US")
		p.event(t.Add(-time.Second), wsB, "Microsoft-Windows-Sysmon/Operational", 1, map[string]any{
			"Image": "C:\\Users\\Public\\Libraries\\rc.exe", "CommandLine": "rc.exe copy C:\\Users\\Public\\Libraries\\d.rar box:archive --transfers 1",
			"ParentImage": wsImplant, "User": "MINISTRY\\" + wsB.user, "IntegrityLevel": "Medium"})
		p.netEvent(wsB, "C:\\Users\\Public\\Libraries\\rc.exe", "MINISTRY\\"+wsB.user, cn, cloudSNI)
		toCloud += up
		chunks++
	}
	c.Exfiltration = []Exfil{{Src: wsB.addr.String(), Dst: vps.String(), Domain: vpsSNI, Bytes: toVPS},
		{Src: wsB.addr.String(), Dst: cloud.String(), Domain: cloudSNI, Bytes: toCloud}}
	p.addTechnique(technique{id: "T1048", name: "Exfiltration Over Alternative Protocol (rented server)", detector: "exfil",
		hosts: []string{wsB.addr.String()}, peers: []string{vps.String()}, domain: vpsSNI, from: p.when(0.55, 17, 0), to: contain, events: chunks,
		note: fmt.Sprintf("%d bytes in 1–4 MB pieces on working evenings", toVPS)})
	p.addTechnique(technique{id: "T1567.002", name: "Exfiltration to Cloud Storage", detector: "exfil",
		hosts: []string{wsB.addr.String()}, peers: []string{cloud.String()}, domain: cloudSNI, from: p.when(0.65, 15, 0), to: p.when(0.8, 17, 0), events: 2,
		note: fmt.Sprintf("%d bytes in two uploads", toCloud)})
}

// beacon plants an implant's check-ins from from to to and returns how many.
// Each check-in is also a Sysmon network connection event from image.
func (p *plan) beacon(h *host, image string, c2 netip.Addr, sni, validation string, period time.Duration, from, to time.Time) int {
	n := 0
	subject := "CN=" + sni
	issuer := "CN=R3,O=Let's Encrypt,C=US"
	if validation != "ok" {
		issuer = subject
	}
	for t := from; t.Before(to); t = t.Add(time.Duration(float64(period) * (0.7 + 0.6*p.rng.Float64()))) {
		at := p.nextOn(h, t)
		if !at.Before(to) || !p.inPeriod(at) {
			break
		}
		g := p.gen(at)
		if p.rng.Float64() < 0.2 {
			g.dns(at.Add(-30*time.Millisecond), h.addr, sni, "A", c2.String())
		}
		up, down := int64(1500+p.rng.IntN(900)), int64(900+p.rng.IntN(400))
		if p.rng.Float64() < 0.1 { // tasked: commands down, results up
			up, down = int64(8000+p.rng.IntN(30_000)), int64(20_000+p.rng.IntN(60_000))
		}
		cn := g.conn(at, h.addr, c2, 443, "tcp", "ssl", time.Duration(300+p.rng.IntN(900))*time.Millisecond, up, down, "SF")
		g.tls(cn, sni, implantJA, validation, issuer)
		p.netEvent(h, image, "NT AUTHORITY\\SYSTEM", cn, sni)
		n++
		if at.After(t) { // a missed check-in resumes from when it happened
			t = at
		}
	}
	return n
}

// commodity plants adware on two laptops: loud, every minute, not targeted.
func (p *plan) commodity() {
	var victims []*host
	for _, h := range p.m.work {
		if h.kind == laptop && len(victims) < 2 && h.addr.As4()[3]%7 == 3 {
			victims = append(victims, h)
		}
	}
	if len(victims) == 0 {
		victims = []*host{p.m.work[1]}
	}
	var hosts []string
	for _, h := range victims {
		hosts = append(hosts, h.addr.String())
		start := p.m.cfg.Start.Add(time.Duration(p.rng.IntN(48)) * time.Hour)
		end := p.m.cfg.Start.AddDate(0, 0, p.m.cfg.Days)
		for t := start; t.Before(end); t = t.Add(time.Duration(float64(time.Minute) * (0.95 + 0.1*p.rng.Float64()))) {
			if !p.m.on(h, t) {
				t = p.nextOn(h, t)
				if !t.Before(end) {
					break
				}
			}
			g := p.gen(t)
			cn := g.conn(t, h.addr, adware, 80, "tcp", "http", 150*time.Millisecond, 420, 380, "SF")
			g.http(cn, "GET", adwareHost, "/v1/ping?id="+h.name+"&v=3.2", "AdPush/3.2 (Windows; x64)", 200, 0, 120, "")
		}
	}
	p.truth.Commodity = append(p.truth.Commodity, Infection{Name: "AdPush adware", Hosts: hosts, Peers: []string{adware.String()},
		Domain: "adpush.example", Period: "1m"})
}

func addrs(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}
