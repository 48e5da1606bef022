package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// hourGen writes one hour of ordinary activity.
type hourGen struct {
	m     *model
	hour  int
	start time.Time
	rng   *rand.Rand
	b     *event.Batch
	n     int
	certs map[string]bool
	// siteLogged marks, per site of the model, that its certificate is
	// logged that day (or nil).
	siteLogged []bool
	times      []int64 // background's draw of moments (the worker's buffer)
	uids       string  // connection ids from uidFrom on (uid)
	uidFrom    int
}

func (g *hourGen) uid(prefix byte) string {
	g.n++
	if prefix != 'C' {
		return uid(prefix, g.m.cfg.Seed, g.hour, g.n)
	}
	// Connection ids are cut from one string made for the next
	// uidChunk of them: one allocation instead of one per record, and
	// the records' ids lie together in memory as the records do.
	i := g.n - g.uidFrom
	if g.uids == "" || i >= uidChunk {
		b := make([]byte, 0, uidChunk*uidLen)
		for n := g.n; n < g.n+uidChunk; n++ {
			b = appendUID(b, 'C', g.m.cfg.Seed, g.hour, n)
		}
		g.uids, g.uidFrom, i = string(b), g.n, 0
	}
	return g.uids[i*uidLen : (i+1)*uidLen]
}

// uidChunk is how many connection ids hourGen.uid makes at a time.
const uidChunk = 512

// at returns a random moment of the hour.
func (g *hourGen) at() time.Time {
	return g.start.Add(time.Duration(g.rng.Int64N(int64(time.Hour/time.Microsecond))) * time.Microsecond)
}

// fingerprint is a stable certificate fingerprint for a name.
func fingerprint(name string) string {
	s := sha256.Sum256([]byte("cert:" + name))
	return hex.EncodeToString(s[:])
}

// conn appends a finished TCP or UDP connection and returns it.
func (g *hourGen) conn(ts time.Time, from, to netip.Addr, port uint16, proto, service string, dur time.Duration, up, down int64, state string) *event.Conn {
	ts = event.Micro(ts) // Zeek's precision
	history := "ShADadFf"
	switch state {
	case "S0":
		history, up, down, dur = "S", 0, 0, 0
	case "REJ":
		history, up, down, dur = "Sr", 0, 0, dur/100
	}
	if proto == "udp" {
		history = "Dd"
	}
	upPkts := uint64(up/1300 + 3)
	downPkts := uint64(down/1300 + 2)
	if state == "S0" || state == "REJ" {
		upPkts, downPkts = 1, uint64(btoi(state == "REJ"))
	}
	c := event.Conn{
		TS: ts, UID: g.uid('C'), SrcIP: from, SrcPort: uint16(1024 + g.rng.IntN(64000)), DstIP: to, DstPort: port, Proto: proto,
		Service: service, ConnState: state, History: history,
		LocalSrc: event.Some(g.m.local(from)), LocalDst: event.Some(g.m.local(to)), MissedBytes: event.Some[uint64](0),
		SrcPkts: event.Some(upPkts), DstPkts: event.Some(downPkts),
		SrcIPBytes: event.Some(uint64(up) + upPkts*52), DstIPBytes: event.Some(uint64(down) + downPkts*52),
	}
	if state != "S0" {
		c.Duration = event.Some(dur.Truncate(time.Microsecond))
		c.SrcBytes, c.DstBytes = event.Some(uint64(up)), event.Some(uint64(down))
	}
	g.b.Conns = append(g.b.Conns, c)
	return &g.b.Conns[len(g.b.Conns)-1]
}

func (m *model) local(a netip.Addr) bool {
	b := a.As4()
	return b[0] == 10
}

// dns appends a query from a host through its resolver.
func (g *hourGen) dns(ts time.Time, from netip.Addr, query, qtype string, answers ...string) {
	ts = event.Micro(ts)
	resolver := g.m.servers["dns1"].addr
	if from.As4()[3]%2 == 1 {
		resolver = g.m.servers["dns2"].addr
	}
	d := event.DNS{TS: ts, UID: g.uid('C'), SrcIP: from, SrcPort: uint16(1024 + g.rng.IntN(64000)), DstIP: resolver, DstPort: 53, Proto: "udp",
		TransID: event.Some(uint64(g.rng.IntN(65536))), RTT: event.Some(time.Duration(200+g.rng.IntN(30000)) * time.Microsecond),
		Query: query, QClass: event.Some[uint64](1), QClassNm: "C_INTERNET", QTypeName: qtype, QType: event.Some(qtypeNum(qtype)),
		RCode: event.Some[uint64](0), RCodeName: "NOERROR", AA: event.Some(false), TC: event.Some(false), RD: event.Some(true),
		RA: event.Some(true), Z: event.Some[uint64](0), Rejected: event.Some(false)}
	if len(answers) > 0 {
		d.Answers = answers
		if len(answers) <= len(g.m.ttls) {
			d.TTLs = g.m.ttls[:len(answers):len(answers)] // shared, read-only
		} else {
			d.TTLs = slices.Repeat([]time.Duration{300 * time.Second}, len(answers))
		}
	}
	g.b.DNS = append(g.b.DNS, d)
}

func qtypeNum(t string) uint64 {
	switch t {
	case "AAAA":
		return 28
	case "TXT":
		return 16
	case "CNAME":
		return 5
	case "NULL":
		return 10
	case "MX":
		return 15
	}
	return 1
}

// tls appends the TLS handshake of a connection, and its certificate
// the first time it is seen that day.
func (g *hourGen) tls(c *event.Conn, sni, ja3, validation, issuer string) {
	chain := g.m.chains[sni]
	if chain == nil {
		chain = []string{fingerprint(sni)}
	}
	g.handshake(c, sni, chain, nil, ja3, validation, issuer)
}

// siteTLS is tls to one of the model's web sites, without looking its
// chain up by name, nor, once its certificate is logged that day, the
// certificate: most connections of an hour are these.
func (g *hourGen) siteTLS(c *event.Conn, s *site, ja3, issuer string) {
	var logged *bool
	if g.siteLogged != nil {
		logged = &g.siteLogged[s.i]
	}
	g.handshake(c, s.name, s.chain, logged, ja3, "ok", issuer)
}

// handshake appends the ssl record and, unless logged says it was or the
// day's certificates hold it, the x509 record.
func (g *hourGen) handshake(c *event.Conn, sni string, chain []string, logged *bool, ja3, validation, issuer string) {
	fp := chain[0]
	g.b.TLS = append(g.b.TLS, event.TLS{TS: c.TS.Add(12 * time.Millisecond), UID: c.UID, SrcIP: c.SrcIP, SrcPort: c.SrcPort, DstIP: c.DstIP,
		DstPort: c.DstPort, Version: "TLSv13", Cipher: "TLS_AES_128_GCM_SHA256", Curve: "x25519", ServerName: sni,
		Resumed: event.Some(false), NextProtocol: "h2", Established: event.Some(true), SSLHistory: "CsiI", CertChainFPs: chain,
		ClientCertChainFPs: []string{}, SNIMatchesCert: event.Some(true), ValidationStatus: validation, JA3: ja3,
		JA3S: "f4febc55ea12b31ae17cfb7e614afda8"})
	if logged != nil {
		if *logged {
			return
		}
		*logged = true
	}
	if g.certs == nil {
		g.certs = map[string]bool{}
	}
	if !g.certs[fp] {
		g.certs[fp] = true
		subject := "CN=" + sni
		g.b.X509 = append(g.b.X509, event.X509{TS: c.TS.Add(13 * time.Millisecond), Fingerprint: fp, Version: event.Some[uint64](3),
			Serial: fp[:16], Subject: subject, Issuer: issuer, NotValidBefore: event.Some(g.m.cfg.Start.AddDate(0, -3, 0)),
			NotValidAfter: event.Some(g.m.cfg.Start.AddDate(1, 0, 0)), KeyAlg: "rsaEncryption", SigAlg: "sha256WithRSAEncryption",
			KeyType: "rsa", KeyLength: event.Some[uint64](2048), Exponent: "65537", SANDNS: []string{sni},
			BasicConstraintCA: event.Some(false), HostCert: event.Some(true), ClientCert: event.Some(false)})
	}
}

// http appends the HTTP request of a connection.
func (g *hourGen) http(c *event.Conn, method, host, uri, ua string, status int, reqLen, respLen int64, mime string) {
	h := event.HTTP{TS: c.TS.Add(5 * time.Millisecond), UID: c.UID, SrcIP: c.SrcIP, SrcPort: c.SrcPort, DstIP: c.DstIP, DstPort: c.DstPort,
		TransDepth: event.Some[uint64](1), Method: method, Host: host, URI: uri, Version: "1.1", UserAgent: ua,
		RequestBodyLen: event.Some(uint64(reqLen)), ResponseBodyLen: event.Some(uint64(respLen)), StatusCode: event.Some(uint64(status)),
		StatusMsg: statusText(status), Tags: []string{}}
	if mime != "" {
		fuid := g.uid('F')
		h.RespFUIDs, h.RespMIMETypes = []string{fuid}, []string{mime}
		// The connection's ends as Zeek's files.log gives them (id.orig_h
		// is the client); is_orig F: the responder sent the file.
		g.b.Files = append(g.b.Files, event.File{TS: h.TS.Add(time.Millisecond), FUID: fuid, UID: c.UID, SrcIP: c.SrcIP, SrcPort: c.SrcPort,
			DstIP: c.DstIP, DstPort: c.DstPort, Source: "HTTP", Depth: event.Some[uint64](0), Analyzers: []string{}, MIMEType: mime,
			Duration: event.Some(time.Duration(respLen/50) * time.Microsecond), IsOrig: event.Some(false), SeenBytes: event.Some(uint64(respLen)),
			TotalBytes: event.Some(uint64(respLen)), MissingBytes: event.Some[uint64](0), OverflowBytes: event.Some[uint64](0),
			TimedOut: event.Some(false)})
	}
	g.b.HTTP = append(g.b.HTTP, h)
}

func statusText(s int) string {
	switch s {
	case 200:
		return "OK"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 404:
		return "Not Found"
	}
	return "OK"
}

// phase returns a host's stable offset for a periodic task.
func phase(h *host, task string, period time.Duration) time.Duration {
	s := sha256.Sum256([]byte(h.name + task))
	return time.Duration(uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16) % period
}

// background writes n ordinary connections, plus the periodic traffic,
// mail, remote webmail and Internet noise of the hour.
func (g *hourGen) background(n int) {
	m := g.m
	mid := g.start.Add(30 * time.Minute)
	var active []*host
	var weight []float64
	total := 0.0
	for _, h := range m.work {
		if m.on(h, mid) {
			active = append(active, h)
			total += h.activity
			weight = append(weight, total)
		}
	}
	// Drawn in time order: an hour's records then lie in memory nearly
	// in the order they are written, which keeps the sort before writing
	// short and the encoder's reads sequential. (Drawn at random moments,
	// their sorted order jumped across memory: encoding took three times
	// as long, docs/benchmarks.md.)
	g.times = g.times[:0]
	for range n {
		g.times = append(g.times, g.rng.Int64N(int64(time.Hour/time.Microsecond)))
	}
	slices.Sort(g.times)
	for _, off := range g.times {
		ts := g.start.Add(time.Duration(off) * time.Microsecond)
		if len(active) == 0 || g.rng.Float64() < 0.04 {
			g.serverTraffic(ts)
			continue
		}
		x := g.rng.Float64() * total
		i, _ := slices.BinarySearch(weight, x)
		g.userTraffic(active[min(i, len(active)-1)], ts)
	}
	g.periodic()
	g.edge()
}

// userTraffic is one thing a person does: browse, open a share, log on.
func (g *hourGen) userTraffic(h *host, ts time.Time) {
	m := g.m
	r := g.rng.Float64()
	switch {
	case r < 0.78: // the web
		s := m.pickSite(g.rng)
		if g.rng.Float64() < 0.2 {
			s = &m.sites[h.sites[g.rng.IntN(len(h.sites))]]
		}
		if g.rng.Float64() < 0.35 {
			g.dns(ts.Add(-20*time.Millisecond), h.addr, s.name, "A", s.answer...)
		}
		down := lognormal(g.rng, 25_000, 1.4)
		up := int64(float64(down)*s.upload) + 700
		dur := time.Duration(lognormal(g.rng, 2e6, 1.5)) * time.Microsecond
		if s.https {
			c := g.conn(ts, h.addr, s.addr, 443, "tcp", "ssl", dur, up, down, "SF")
			g.siteTLS(c, s, h.ja3, "CN=R3,O=Let's Encrypt,C=US")
		} else {
			c := g.conn(ts, h.addr, s.addr, 80, "tcp", "http", dur, up, down, "SF")
			mime := ""
			if g.rng.Float64() < 0.3 {
				mime = []string{"text/html", "image/png", "image/jpeg", "application/javascript"}[g.rng.IntN(4)]
			}
			g.http(c, "GET", s.name, []string{"/", "/index.html", "/news", "/img/logo.png", "/about"}[g.rng.IntN(5)], h.ua, 200, 0, max(down-200, 0), mime)
		}
	case r < 0.86: // the file server
		fs := m.servers["files"]
		g.conn(ts, h.addr, fs.addr, 445, "tcp", "smb", time.Duration(lognormal(g.rng, 5e6, 1))*time.Microsecond,
			lognormal(g.rng, 20_000, 1.2), lognormal(g.rng, 200_000, 1.5), "SF")
	case r < 0.94: // the domain controller
		dc := m.servers["dc1"]
		if g.rng.IntN(2) == 1 {
			dc = m.servers["dc2"]
		}
		port, proto, svc := uint16(389), "tcp", "ldap"
		if g.rng.IntN(2) == 0 {
			port, proto, svc = 88, "udp", "krb"
		}
		g.conn(ts, h.addr, dc.addr, port, proto, svc, time.Duration(g.rng.IntN(50000))*time.Microsecond, 1400, 1800, "SF")
	default: // QUIC and the like: connection records only
		s := m.pickSite(g.rng)
		g.conn(ts, h.addr, s.addr, 443, "udp", "", time.Duration(lognormal(g.rng, 3e6, 1))*time.Microsecond,
			lognormal(g.rng, 3_000, 1), lognormal(g.rng, 60_000, 1.3), "SF")
	}
}

// serverTraffic is what servers do on their own.
func (g *hourGen) serverTraffic(ts time.Time) {
	m := g.m
	switch g.rng.IntN(4) {
	case 0: // updates through the proxy
		s := m.infraSite("update")
		c := g.conn(ts, m.servers["proxy"].addr, s.addr, 443, "tcp", "ssl", 4*time.Second, 3000, lognormal(g.rng, 400_000, 1.2), "SF")
		g.tls(c, s.name, m.servers["proxy"].ja3, "ok", "CN=Microsoft RSA TLS CA 01,O=Microsoft Corporation,C=US")
	case 1: // backups: the file server to the backup server
		g.conn(ts, m.servers["files"].addr, m.servers["backup"].addr, 445, "tcp", "smb", 40*time.Second, lognormal(g.rng, 20e6, 0.5), 40_000, "SF")
	case 2: // resolvers asking upstream
		r := m.servers["dns1"]
		if g.rng.IntN(2) == 1 {
			r = m.servers["dns2"]
		}
		up := netip.MustParseAddr("9.9.9.9")
		g.conn(ts, r.addr, up, 53, "udp", "dns", 20*time.Millisecond, 80, 200, "SF")
	default: // domain controllers replicating
		g.conn(ts, m.servers["dc1"].addr, m.servers["dc2"].addr, 135, "tcp", "dce_rpc", time.Second, 4000, 6000, "SF")
	}
}

// periodic is the traffic machines send on timers: time, antivirus,
// telemetry, monitoring.
func (g *hourGen) periodic() {
	m := g.m
	every := func(h *host, task string, period time.Duration, jitter float64, fn func(ts time.Time)) {
		off := phase(h, task, period)
		first := g.start.Truncate(period).Add(off)
		for ts := first; ts.Before(g.start.Add(time.Hour)); ts = ts.Add(period) {
			if ts.Before(g.start) || !m.on(h, ts) {
				continue
			}
			j := time.Duration((g.rng.Float64()*2 - 1) * jitter * float64(period))
			t := ts.Add(j)
			if t.Before(g.start) || !t.Before(g.start.Add(time.Hour)) {
				t = ts
			}
			fn(t)
		}
	}
	ntpInt := m.servers["dc1"].addr
	av, tele := m.infraSite("av"), m.infraSite("telemetry")
	for _, h := range m.all {
		if h.kind != server {
			every(h, "ntp", 1024*time.Second, 0, func(ts time.Time) {
				g.conn(ts, h.addr, ntpInt, 123, "udp", "ntp", 30*time.Millisecond, 48, 48, "SF")
			})
			every(h, "telemetry", 15*time.Minute, 0.05, func(ts time.Time) {
				if g.rng.Float64() < 0.2 { // the answer's TTL outlives most check-ins
					g.dns(ts.Add(-15*time.Millisecond), h.addr, tele.name, "A", tele.addr.String())
				}
				c := g.conn(ts, h.addr, tele.addr, 443, "tcp", "ssl", 800*time.Millisecond, lognormal(g.rng, 4000, 0.4), 1200, "SF")
				g.tls(c, tele.name, h.ja3, "ok", "CN=Microsoft RSA TLS CA 02,O=Microsoft Corporation,C=US")
			})
		}
		every(h, "av", time.Hour, 0.1, func(ts time.Time) {
			if g.rng.Float64() < 0.5 {
				g.dns(ts.Add(-15*time.Millisecond), h.addr, av.name, "A", av.addr.String())
			}
			c := g.conn(ts, h.addr, av.addr, 443, "tcp", "ssl", 600*time.Millisecond, 900, lognormal(g.rng, 2500, 0.3), "SF")
			g.tls(c, av.name, h.ja3, "ok", "CN=DigiCert TLS RSA SHA256 2020 CA1,O=DigiCert Inc,C=US")
		})
	}
	ntp := m.infraSite("ntp")
	for _, role := range []string{"dc1", "dc2"} {
		h := m.servers[role]
		every(h, "ntp-upstream", 1024*time.Second, 0, func(ts time.Time) {
			g.conn(ts, h.addr, ntp.addr, 123, "udp", "ntp", 25*time.Millisecond, 48, 48, "SF")
		})
	}
	mon := m.servers["monitor"]
	for _, role := range []string{"dc1", "dc2", "dns1", "dns2", "mail", "files", "backup", "web", "proxy"} {
		h := m.servers[role]
		every(h, "snmp", 5*time.Minute, 0, func(ts time.Time) {
			g.conn(ts, mon.addr, h.addr, 161, "udp", "snmp", 5*time.Millisecond, 120, 400, "SF")
		})
	}
}

// edge is what reaches the internet-facing servers: mail, webmail users,
// web visitors, scanners.
func (g *hourGen) edge() {
	m := g.m
	act := m.activity(g.start.Add(30 * time.Minute))
	mail, web := m.servers["mail"], m.servers["web"]
	for range int(30*act) + 2 { // mail in and out
		ts := g.at()
		peer := m.senders[g.rng.IntN(len(m.senders))]
		if g.rng.IntN(3) == 0 {
			g.conn(ts, mail.addr, peer, 25, "tcp", "smtp", 2*time.Second, lognormal(g.rng, 40_000, 1), 900, "SF")
		} else {
			g.conn(ts, peer, mail.addr, 25, "tcp", "smtp", 2*time.Second, lognormal(g.rng, 60_000, 1.2), 900, "SF")
		}
	}
	// Remote webmail behind the load balancer that offloads TLS: Zeek sees HTTP.
	owa := []struct {
		method, uri string
		req         int64
	}{{"GET", "/owa/", 0}, {"POST", "/owa/service.svc?action=GetItem", 900}, {"GET", "/owa/prem/15.2.1118/scripts/boot.worker.js", 0},
		{"POST", "/owa/auth.owa", 300}, {"GET", "/owa/auth/logon.aspx?url=https%3a%2f%2fmail.ministry.example%2fowa%2f", 0}}
	for range int(25*act) + 1 {
		ts := g.at()
		u := m.owaUsers[g.rng.IntN(len(m.owaUsers))]
		o := owa[g.rng.IntN(len(owa))]
		c := g.conn(ts, u, mail.addr, 80, "tcp", "http", 400*time.Millisecond, o.req+600, lognormal(g.rng, 20_000, 1), "SF")
		g.http(c, o.method, "mail.ministry.example", o.uri, m.work[int(u.As4()[1])%len(m.work)].ua, 200, o.req, max(int64(c.DstBytes.V)-300, 0), "")
	}
	for range int(40*act) + 3 { // visitors of the public web site
		ts := g.at()
		v := publicAddr(5, g.rng.IntN(5000))
		g.conn(ts, v, web.addr, 443, "tcp", "ssl", time.Second, 900, lognormal(g.rng, 50_000, 1), "SF")
	}
	for range 25 { // scanners, day and night
		ts := g.at()
		s := m.scanners[g.rng.IntN(len(m.scanners))]
		target := web.addr
		if g.rng.IntN(2) == 0 {
			target = mail.addr
		}
		port := []uint16{22, 23, 445, 3389, 8080, 5900, 1433, 3306, 6379, 9200}[g.rng.IntN(10)]
		g.conn(ts, s, target, port, "tcp", "", 0, 0, 0, []string{"REJ", "S0"}[g.rng.IntN(2)])
	}
}
