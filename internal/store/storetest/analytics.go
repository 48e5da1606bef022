package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// AnalyticsData returns records that exercise every analytic query: three
// days of connections between a few hosts (some unanswered, some without
// durations), open-connection reports, DNS, TLS with certificates, HTTP.
func AnalyticsData() *event.Batch {
	a := netip.MustParseAddr
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	hosts := []netip.Addr{a("10.0.0.5"), a("10.0.0.17"), a("192.168.1.9")}
	dsts := []netip.Addr{a("198.51.100.7"), a("203.0.113.9"), a("10.0.0.17")}
	states := []string{"SF", "S0", "REJ", "SF", "RSTO"}
	b := &event.Batch{}
	line := int64(0)
	src := func(file string) event.Source { line++; return event.Source{Sensor: "site-a", File: file, Line: line} }
	for i := range 240 {
		ts := day.Add(time.Duration(i) * 17 * time.Minute).Add(time.Duration(i%7) * 1234 * time.Microsecond)
		c := event.Conn{
			TS: ts, UID: fmt.Sprintf("C%04d", i), SrcIP: hosts[i%3], SrcPort: uint16(40000 + i), DstIP: dsts[(i/3)%3],
			DstPort: []uint16{443, 80, 445}[i%3], Proto: "tcp", ConnState: states[i%len(states)],
			SrcBytes: event.Some(uint64(100 * (i % 9))), DstBytes: event.Some(uint64(1000 + i)), SrcIPBytes: event.Some(uint64(400 + i%5)),
			Src: src("/logs/conn.log"),
		}
		if i%4 != 0 {
			c.Duration = event.Some(time.Duration(i) * 250 * time.Millisecond)
		}
		if i%11 == 0 {
			c.Src.Sensor = "site-b"
		}
		b.Conns = append(b.Conns, c)
	}
	for r := range 3 {
		for _, u := range []string{"Copen1", "Copen2"} {
			b.OpenConns = append(b.OpenConns, event.Conn{
				TS: day.Add(time.Hour), UID: u, SrcIP: hosts[0], SrcPort: 51000, DstIP: dsts[0], DstPort: 22, Proto: "tcp", Service: "ssh",
				Duration: event.Some(time.Duration(r+1) * time.Hour), SrcBytes: event.Some(uint64(10 * (r + 1))), DstBytes: event.Some(uint64(20 * (r + 1))),
				Src: src("/logs/open_conn.log"),
			})
		}
	}
	names := []string{"a1b2.t.example.com", "www.example.org", "c3d4.t.example.com", "www.example.org"}
	for i := range 40 {
		d := event.DNS{TS: day.Add(time.Duration(i) * time.Minute), UID: fmt.Sprintf("D%d", i), SrcIP: hosts[i%2], DstIP: a("10.0.0.53"),
			DstPort: 53, Proto: "udp", Query: names[i%4], QTypeName: []string{"TXT", "A"}[i%2], RCodeName: []string{"NOERROR", "NXDOMAIN", "NOERROR"}[i%3],
			Src: src("/logs/dns.log")}
		b.DNS = append(b.DNS, d)
	}
	b.X509 = []event.X509{
		{TS: day, Fingerprint: "fp1", Subject: "CN=self", Issuer: "CN=self", NotValidBefore: event.Some(day.AddDate(-1, 0, 0)),
			NotValidAfter: event.Some(day.AddDate(0, -1, 0)), SANDNS: []string{"self.example"}, Src: src("/logs/x509.log")},
		{TS: day, Fingerprint: "fp2", Subject: "CN=cdn.example.net", Issuer: "CN=CA", NotValidBefore: event.Some(day.AddDate(0, -2, 0)),
			NotValidAfter: event.Some(day.AddDate(1, 0, 0)), SANDNS: []string{"cdn.example.net", "*.example.net"}, Src: src("/logs/x509.log")},
	}
	for i := range 30 {
		t := event.TLS{TS: day.Add(time.Duration(i) * 3 * time.Minute), UID: fmt.Sprintf("T%d", i), SrcIP: hosts[i%3], DstIP: dsts[i%2],
			DstPort: 443, ServerName: []string{"self.example", "cdn.example.net", ""}[i%3], JA3: []string{"ja3a", "ja3b"}[i%2], JA3S: []string{"", "ja3s1", "ja3s2"}[i%3],
			ValidationStatus: []string{"self signed certificate", "ok"}[i%2], Established: event.Some(i%5 != 0),
			CertChainFPs: []string{[]string{"fp1", "fp2"}[i%2]}, Src: src("/logs/ssl.log")}
		if i%3 == 0 {
			t.SNIMatchesCert = event.Some(false)
		}
		b.TLS = append(b.TLS, t)
	}
	for i := range 30 {
		h := event.HTTP{TS: day.Add(time.Duration(i) * 5 * time.Minute), UID: fmt.Sprintf("H%d", i), SrcIP: []netip.Addr{a("192.0.2.10"), hosts[1]}[i%2],
			DstIP: dsts[0], DstPort: 80, Method: []string{"POST", "GET"}[i%2], Host: []string{"", "mail.example.gov"}[i%2],
			URI: []string{"/owa/auth/x.aspx?cmd=1", "/index.html"}[i%2], UserAgent: "Mozilla/5.0", RequestBodyLen: event.Some(uint64(i * 10)),
			StatusCode: event.Some(uint64([]int{200, 404, 200}[i%3])), Server: []string{"", "Apache", "Pwn/1.0"}[i%3], Src: src("/logs/http.log")}
		if i%6 == 1 {
			h.Method, h.RequestBodyLen, h.ResponseBodyLen = "PUT", event.Some(uint64(i*100_000)), event.Some[uint64](120)
			h.OrigMIMETypes, h.OrigFilenames = []string{"application/zip"}, []string{"q3.zip"}
		}
		if i%4 == 3 {
			h.RespMIMETypes = [][]string{{"text/html", "application/x-dosexec"}, {"application/x-executable"}, {"text/plain"}}[i%3]
		}
		b.HTTP = append(b.HTTP, h)
	}
	// DNS answers: addresses of both families, names, data and a text
	// that looks like an address and is not one.
	answers := [][]string{{"198.51.100.7", "203.0.113.9"}, {"cdn.example.net", "198.51.100.7"}, {"2001:db8::7"}, {"TXT 18 302f0175"}, {"01.2.3.4", "10.0.0.17"}}
	for i := range 25 {
		b.DNS = append(b.DNS, event.DNS{TS: day.Add(time.Duration(i) * 97 * time.Minute), UID: fmt.Sprintf("R%d", i), SrcIP: hosts[i%3], DstIP: a("10.0.0.53"),
			DstPort: 53, Proto: "udp", Query: []string{"a.example.com", "www.example.org", "v6.example.net"}[i%3], QTypeName: "A", RCodeName: "NOERROR",
			Answers: answers[i%len(answers)], Src: src("/logs/dns.log")})
	}
	// Files sent both ways, by Zeek 5 (is_orig) and older Zeek (tx_hosts).
	for i := range 12 {
		f := event.File{TS: day.Add(time.Duration(i) * 4 * time.Hour), FUID: fmt.Sprintf("F%d", i), UID: fmt.Sprintf("C%04d", i), SrcIP: hosts[i%3],
			SrcPort: 50000, DstIP: dsts[i%2], DstPort: 443, Source: "HTTP", MIMEType: []string{"application/x-7z-compressed", "text/html"}[i%2],
			Filename: []string{"backup.7z", ""}[i%2], SeenBytes: event.Some(uint64(i * 700_000)), IsOrig: event.Some(i%3 != 0), Src: src("/logs/files.log")}
		if i%4 == 3 {
			f.UID, f.SrcIP, f.DstIP, f.IsOrig = "", netip.Addr{}, netip.Addr{}, event.Opt[bool]{}
			f.TxHosts, f.RxHosts = []netip.Addr{hosts[0]}, []netip.Addr{dsts[1]}
		}
		b.Files = append(b.Files, f)
	}
	// A vertical scan and a horizontal sweep, mostly unanswered.
	for i := range 24 {
		st := []string{"S0", "REJ", "S0", "SF"}[i%4]
		b.Conns = append(b.Conns, event.Conn{TS: day.Add(20*time.Hour + time.Duration(i)*time.Second), UID: fmt.Sprintf("V%d", i), SrcIP: hosts[1],
			SrcPort: uint16(45000 + i), DstIP: dsts[1], DstPort: uint16(20 + i), Proto: "tcp", ConnState: st, Src: src("/logs/conn.log")})
		b.Conns = append(b.Conns, event.Conn{TS: day.Add(21*time.Hour + time.Duration(i)*time.Second), UID: fmt.Sprintf("W%d", i), SrcIP: hosts[2],
			SrcPort: uint16(46000 + i), DstIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i%12)}), DstPort: 23, Proto: "tcp", ConnState: st,
			DstBytes: event.Some(uint64(i % 3)), Src: src("/logs/conn.log")})
		// Backscatter: SYN-ACKs from port 80 to a victim, whose roles
		// Zeek turned (the "originator" sent nothing): not its fan-out.
		b.Conns = append(b.Conns, event.Conn{TS: day.Add(22*time.Hour + time.Duration(i)*time.Second), UID: fmt.Sprintf("B%d", i), SrcIP: hosts[0],
			SrcPort: uint16(47000 + i), DstIP: netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), DstPort: 80, Proto: "tcp", ConnState: "OTH",
			History: "^h", SrcPkts: event.Some(uint64(0)), DstPkts: event.Some(uint64(1)), Src: src("/logs/conn.log")})
	}
	b.Flows = SessionFlows()
	return b
}

// SessionFlows returns flow records that exercise their stitching into
// sessions (store.Sessions): a long connection cut by active timeouts in
// both directions, silences shorter and longer than the gap, fixed-port
// UDP polls, attempts that are unanswered, refused, reset or never
// closed, both directions starting in one millisecond, sampling, IPv6,
// two exporters and two sensors.
func SessionFlows() []event.Flow {
	a := netip.MustParseAddr
	t0 := time.Date(2024, 4, 19, 6, 0, 0, 0, time.UTC)
	var out []event.Flow
	line := int64(0)
	add := func(sensor, exporter string, ts time.Time, dur time.Duration, src string, sp uint16, dst string, dp uint16, proto string, flags uint8, pkts, bytes uint64, smp uint32) {
		line++
		out = append(out, event.Flow{TS: ts, End: ts.Add(dur), SrcIP: a(src), SrcPort: sp, DstIP: a(dst), DstPort: dp, Proto: proto, TCPFlags: flags,
			Packets: pkts, Bytes: bytes, Sampling: smp, Exporter: a(exporter), Export: event.ExportIPFIX,
			Src: event.Source{Sensor: sensor, File: "/flows/" + sensor + ".pcap", Line: line}})
	}
	e1, e2 := "10.0.0.1", "10.0.0.2"
	// 3 hours to 198.51.100.7:443, cut every 30 minutes, both directions.
	for i := range 6 {
		ts := t0.Add(time.Duration(i) * 30 * time.Minute)
		flags := uint8(0x18)
		if i == 0 {
			flags = 0x1a
		}
		if i == 5 {
			flags |= 0x01
		}
		add("edge", e1, ts, 30*time.Minute, "10.0.0.5", 50001, "198.51.100.7", 443, "tcp", flags, 100, 60_000, 0)
		add("edge", e1, ts.Add(time.Millisecond), 30*time.Minute, "198.51.100.7", 443, "10.0.0.5", 50001, "tcp", flags, 90, 900_000, 0)
	}
	// The same five-tuple through another exporter: a session of its own.
	add("edge", e2, t0.Add(10*time.Millisecond), time.Minute, "10.0.0.5", 50001, "198.51.100.7", 443, "tcp", 0x1b, 10, 5000, 0)
	// Silences of 30 s (one session) and 90 s (two).
	c := t0.Add(4 * time.Hour)
	add("edge", e1, c, 10*time.Second, "10.0.0.17", 40000, "203.0.113.9", 8080, "tcp", 0x1a, 5, 600, 0)
	add("edge", e1, c.Add(40*time.Second), 10*time.Second, "10.0.0.17", 40000, "203.0.113.9", 8080, "tcp", 0x18, 5, 600, 0)
	add("edge", e1, c.Add(140*time.Second), 10*time.Second, "10.0.0.17", 40000, "203.0.113.9", 8080, "tcp", 0x19, 5, 600, 0)
	add("edge", e1, c.Add(5*time.Millisecond), 45*time.Second, "203.0.113.9", 8080, "10.0.0.17", 40000, "tcp", 0x1b, 12, 30_000, 0)
	// NTP-like polls from a fixed port: every 64 s (sessions of their own)
	// and every 20 s (one session), answered.
	for i := range 4 {
		p := c.Add(time.Duration(i) * 64 * time.Second)
		add("edge", e1, p, 0, "10.0.0.5", 123, "192.0.2.123", 123, "udp", 0, 1, 76, 0)
		add("edge", e1, p.Add(20*time.Millisecond), 0, "192.0.2.123", 123, "10.0.0.5", 123, "udp", 0, 1, 76, 0)
		q := c.Add(time.Hour + time.Duration(i)*20*time.Second)
		add("edge", e1, q, 0, "10.0.0.5", 5353, "192.0.2.53", 53, "udp", 0, 1, 70, 0)
	}
	// Attempts: unanswered, refused, reset by either end, never closed,
	// no SYN seen; and both directions in the same millisecond.
	s := t0.Add(5 * time.Hour)
	for i := range 5 {
		add("edge", e1, s.Add(time.Duration(i)*time.Second), 0, "10.0.0.17", uint16(41000+i), "198.51.100.99", uint16(20+i), "tcp", 0x02, 1, 44, 0)
	}
	add("edge", e1, s, 0, "10.0.0.17", 42000, "198.51.100.7", 3389, "tcp", 0x02, 1, 44, 0)
	add("edge", e1, s, 0, "198.51.100.7", 3389, "10.0.0.17", 42000, "tcp", 0x14, 1, 40, 0)
	add("edge", e1, s.Add(time.Second), time.Second, "10.0.0.17", 42001, "198.51.100.7", 80, "tcp", 0x16, 4, 500, 0)
	add("edge", e1, s.Add(time.Second), time.Second, "198.51.100.7", 80, "10.0.0.17", 42001, "tcp", 0x12, 3, 300, 0)
	add("edge", e1, s.Add(2*time.Second), time.Second, "10.0.0.17", 42002, "198.51.100.7", 80, "tcp", 0x12, 4, 500, 0)
	add("edge", e1, s.Add(2*time.Second), time.Second, "198.51.100.7", 80, "10.0.0.17", 42002, "tcp", 0x16, 3, 300, 0)
	add("edge", e1, s.Add(3*time.Second), 9*time.Second, "10.0.0.17", 42003, "198.51.100.7", 22, "tcp", 0x1a, 40, 9000, 0)
	add("edge", e1, s.Add(3*time.Second), 9*time.Second, "198.51.100.7", 22, "10.0.0.17", 42003, "tcp", 0x1a, 40, 19000, 0)
	add("edge", e1, s.Add(4*time.Second), time.Second, "10.0.0.17", 42004, "198.51.100.7", 25, "tcp", 0x18, 4, 500, 0)
	// A large upload, cut in three.
	for i := range 3 {
		add("edge", e1, s.Add(30*time.Second+time.Duration(i)*10*time.Second), 10*time.Second, "10.0.0.5", 51500, "203.0.113.50", 443, "tcp",
			[]uint8{0x1a, 0x18, 0x19}[i], 2000, 2_000_000, 0)
	}
	add("edge", e1, s.Add(30*time.Second+time.Millisecond), 30*time.Second, "203.0.113.50", 443, "10.0.0.5", 51500, "tcp", 0x1b, 900, 40_000, 0)
	// Sampled, IPv6, another sensor.
	add("edge", e1, s.Add(time.Minute), 2*time.Second, "10.0.0.5", 51000, "198.51.100.8", 443, "tcp", 0x1b, 3, 3000, 100)
	add("edge", e1, s.Add(time.Minute), 2*time.Second, "2001:db8::5", 51000, "2001:db8:1::7", 443, "tcp", 0x1b, 10, 10_000, 0)
	add("core", e1, s.Add(2*time.Minute), time.Minute, "10.0.0.5", 51001, "10.0.0.17", 445, "tcp", 0x1b, 30, 40_000, 0)
	add("core", e1, s.Add(2*time.Minute), time.Minute, "10.0.0.17", 445, "10.0.0.5", 51001, "tcp", 0x1b, 20, 2_000, 0)
	// Flows made from a packet capture: never a session (the capture's
	// connections are in conn).
	add("edge", e1, s.Add(3*time.Minute), time.Second, "10.0.0.5", 51002, "198.51.100.8", 443, "tcp", 0x1b, 5, 900, 0)
	out[len(out)-1].Export, out[len(out)-1].Exporter = event.ExportPcap, netip.Addr{}
	return out
}

func testAnalytics(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := AnalyticsData()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	windows := []store.Window{{}, {Since: day.Add(30 * time.Minute), Until: day.Add(50 * time.Hour)},
		{Conns: store.FlowSessions}, {Since: day.Add(10*time.Hour + 30*time.Second), Until: day.Add(11*time.Hour + 90*time.Second), Conns: store.FlowSessions}}
	for _, w := range windows {
		t.Run(fmt.Sprintf("%s window %v-%v", w.Conns, w.Since.Format(time.RFC3339), w.Until.Format(time.RFC3339)), func(t *testing.T) {
			testConnAnalytics(t, s, b, w)
			if w.Conns == store.ConnLog {
				testLogAnalytics(t, s, b, w)
			}
		})
	}
}

// testConnAnalytics checks the analytics over connections, of Zeek's
// conn log or of flow sessions as w says.
func testConnAnalytics(t *testing.T, s store.Store, b *event.Batch, w store.Window) {
	ctx := context.Background()
	cb := connsOf(b, w)
	first, last, n, ok, err := s.Span(ctx, w)
	wf, wl, wn := refSpan(cb, w)
	if err != nil || !ok || n != wn || !first.Equal(wf) || !last.Equal(wl) {
		t.Errorf("Span = %v %v %d %v %v; want %v %v %d", first, last, n, ok, err, wf, wl, wn)
	}
	for i, f := range pairFilters() {
		var pairs []store.PairStat
		if err := s.Pairs(ctx, w, f, func(p *store.PairStat) error { pairs = append(pairs, *p); return nil }); err != nil {
			t.Fatal(err)
		}
		sameOrNone(t, w, fmt.Sprintf("Pairs(filter %d)", i), pairs, refPairs(cb, w, f))
	}
	// An empty destination list keeps nothing.
	if err := s.Pairs(ctx, w, store.PairFilter{Dsts: []netip.Addr{}}, func(p *store.PairStat) error {
		return fmt.Errorf("pair %v -> %v kept by an empty destination list", p.Src, p.Dst)
	}); err != nil {
		t.Error(err)
	}
	for i, f := range flowFilters() {
		var flows []store.DailyFlow
		if err := s.DailyFlows(ctx, w, f, func(d *store.DailyFlow) error { flows = append(flows, *d); return nil }); err != nil {
			t.Fatal(err)
		}
		sameOrNone(t, w, fmt.Sprintf("DailyFlows(filter %d)", i), flows, refDaily(cb, w, f))
		var days []store.HostDay
		if err := s.HostDays(ctx, w, f, func(h *store.HostDay) error { days = append(days, *h); return nil }); err != nil {
			t.Fatal(err)
		}
		sameOrNone(t, w, fmt.Sprintf("HostDays(filter %d)", i), days, refHostDays(cb, w, f))
	}
	for i, local := range [][]netip.Prefix{nil, testLocal(), {netip.MustParsePrefix("10.0.0.16/28")}} {
		addrs, err := s.LocalAddrs(ctx, w, local)
		if err != nil {
			t.Fatal(err)
		}
		if want := refLocalAddrs(cb, w, local); !slices.Equal(addrs, want) {
			t.Errorf("LocalAddrs(nets %d) = %v; want %v", i, addrs, want)
		}
		var dsts []store.DstStat
		if err := s.Destinations(ctx, w, addrs, func(d *store.DstStat) error { dsts = append(dsts, *d); return nil }); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("Destinations(nets %d)", i), dsts, refDestinations(cb, w, addrs))
	}
	for _, kind := range []store.SeriesKind{store.SeriesConn, store.SeriesSessions, store.SeriesTLSName, store.SeriesHTTPHost} {
		if w.Conns == store.FlowSessions && (kind == store.SeriesTLSName || kind == store.SeriesHTTPHost) {
			continue
		}
		for i, f := range seriesFilters() {
			testSeries(t, s, w, kind, i, f, refSeries(cb, kind, w, f))
		}
	}
	for _, f := range fanoutFilters() {
		var got []store.Fanout
		if err := s.Fanout(ctx, w, f, func(x *store.Fanout) error { got = append(got, *x); return nil }); err != nil {
			t.Fatal(err)
		}
		sameOrNone(t, w, fmt.Sprintf("Fanout(%+v)", f), got, refFanout(cb, w, f))
	}
	for i, f := range uploadFilters() {
		var got []store.Upload
		if err := s.Uploads(ctx, w, f, func(u *store.Upload) error { got = append(got, *u); return nil }); err != nil {
			t.Fatal(err)
		}
		sameOrNone(t, w, fmt.Sprintf("Uploads(filter %d)", i), got, refUploads(b, cb, w, f))
	}
	a := netip.MustParseAddr
	for i, f := range []store.NameFilter{{}, {Addrs: []netip.Addr{a("198.51.100.7"), a("2001:db8::7")}}, {Names: []string{"example.com"}},
		{Names: []string{"cdn.example.net", "mail.example.gov"}, Addrs: []netip.Addr{a("203.0.113.9")}}, {Labels: []string{"example", "www"}},
		{Names: []string{"nothing.example"}, Labels: []string{"nothing"}}} {
		var got []store.NameAddr
		if err := s.PassiveDNS(ctx, w, f, func(x *store.NameAddr) error { got = append(got, *x); return nil }); err != nil {
			t.Fatal(err)
		}
		sameRows(t, w, fmt.Sprintf("PassiveDNS(filter %d)", i), i < 5, got, refPassiveDNS(b, w, f))
	}
	for i, f := range []store.PrintFilter{{}, {Addrs: []netip.Addr{a("203.0.113.9")}}, {Values: []string{"fp2", "Pwn/1.0", "nothing"}}} {
		var got []store.ServerPrint
		if err := s.ServerPrints(ctx, w, f, func(x *store.ServerPrint) error { got = append(got, *x); return nil }); err != nil {
			t.Fatal(err)
		}
		sameRows(t, w, fmt.Sprintf("ServerPrints(filter %d)", i), i < 2, got, refServerPrints(b, w, f))
	}
}

// sameRows checks a backend's rows against the reference's: none where
// it has none; over all history, when some says the test data holds
// rows for the filter, that the reference found them.
func sameRows[T any](t *testing.T, w store.Window, what string, some bool, got, want []T) {
	t.Helper()
	if some && len(want) == 0 && w == (store.Window{}) {
		t.Errorf("%s: the test data gives no row", what)
	}
	if len(want) == 0 {
		if len(got) > 0 {
			t.Errorf("%s: %d row(s), want none: %+v", what, len(got), got[0])
		}
		return
	}
	same(t, what, got, want)
}

// seriesFilters are the filters Series is checked with.
func seriesFilters() []store.SeriesFilter {
	a := netip.MustParseAddr
	return []store.SeriesFilter{{MinCount: 3}, {MinCount: 1, SkipDsts: []netip.Addr{a("203.0.113.9")}, SkipNames: []string{"self.example"}},
		{MinCount: 1, Dsts: []netip.Addr{a("203.0.113.9"), a("198.51.100.7")}}, {MinCount: 1, MinDuration: 40 * time.Second}}
}

// testSeries checks one Series query against want.
func testSeries(t *testing.T, s store.Store, w store.Window, kind store.SeriesKind, i int, f store.SeriesFilter, want []store.Series) {
	t.Helper()
	var series []store.Series
	err := s.Series(context.Background(), kind, w, f, func(sr *store.Series) error {
		c := *sr
		c.Times, c.Sizes = slices.Clone(sr.Times), slices.Clone(sr.Sizes)
		series = append(series, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Keys come in no defined order.
	slices.SortFunc(series, func(a, b store.Series) int { return strings.Compare(seriesKey(&a), seriesKey(&b)) })
	sameOrNone(t, w, fmt.Sprintf("Series(%d, filter %d)", kind, i), series, want)
}

// testLogAnalytics checks the analytics over Zeek's other logs.
func testLogAnalytics(t *testing.T, s store.Store, b *event.Batch, w store.Window) {
	ctx := context.Background()
	var open []store.OpenConn
	if err := s.OpenConns(ctx, w, func(o *store.OpenConn) error { open = append(open, *o); return nil }); err != nil {
		t.Fatal(err)
	}
	same(t, "OpenConns", open, refOpen(b, w))
	for i, f := range []store.DNSFilter{{}, {RCode: "NXDOMAIN"}, {Srcs: []netip.Addr{netip.MustParseAddr("10.0.0.17")}}} {
		var names []store.DNSName
		if err := s.DNSNames(ctx, w, f, func(d *store.DNSName) error { names = append(names, *d); return nil }); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("DNSNames(filter %d)", i), names, refDNS(b, w, f))
	}
	var resolved []store.Resolution
	if err := s.Resolved(ctx, w, func(r *store.Resolution) error { resolved = append(resolved, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	same(t, "Resolved", resolved, refResolved(b, w))
	var tls []store.TLSSession
	if err := s.TLSSessions(ctx, w, func(x *store.TLSSession) error {
		c := *x
		c.CertNames = slices.Clone(x.CertNames)
		tls = append(tls, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	same(t, "TLSSessions", tls, refTLS(b, w))
	var reqs []store.HTTPRequest
	if err := s.HTTPRequests(ctx, w, func(h *store.HTTPRequest) error {
		c := *h
		c.Statuses = slices.Clone(h.Statuses)
		reqs = append(reqs, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	same(t, "HTTPRequests", reqs, refHTTP(b, w))
	var served []store.ServerName
	if err := s.ServerNames(ctx, w, func(n *store.ServerName) error { served = append(served, *n); return nil }); err != nil {
		t.Fatal(err)
	}
	same(t, "ServerNames", served, refServerNames(b, w))
}

// sameOrNone is same, except that over flow sessions a filter written
// for the conn log's addresses may rightly keep nothing.
func sameOrNone[T any](t *testing.T, w store.Window, what string, got, want []T) {
	t.Helper()
	if w.Conns == store.FlowSessions && len(want) == 0 && len(got) == 0 {
		return
	}
	same(t, what, got, want)
}

// testLocal mixes exact and inexact networks: octet-aligned and not,
// IPv6 short and long.
func testLocal() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/17"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("2001:db8:1::/48")}
}

// testInside is the local addresses of AnalyticsData for testLocal.
func testInside() []netip.Addr {
	a := netip.MustParseAddr
	return []netip.Addr{a("10.0.0.5"), a("10.0.0.17"), a("192.168.1.9")}
}

func pairFilters() []store.PairFilter {
	a := netip.MustParseAddr
	return []store.PairFilter{
		{},
		{Sides: store.Sides{Inside: testInside(), Src: store.Inside, Dst: store.Outside}},
		{Sides: store.Sides{Inside: testInside(), Src: store.Inside, Dst: store.Inside}},
		{Sides: store.Sides{Inside: []netip.Addr{a("10.0.0.17")}, Src: store.Outside}},
		{Sides: store.Sides{Inside: []netip.Addr{}, Src: store.Outside}},
		{MinPairConns: 15},
		{MinDuration: 40 * time.Second},
		{MinDuration: 50 * time.Second, MinPairConns: 10},
		{Dsts: []netip.Addr{a("203.0.113.9"), a("10.0.0.17")}},
		{Srcs: []netip.Addr{a("203.0.113.9"), a("10.0.0.17")}},
		{SkipDsts: []netip.Addr{a("203.0.113.9")}},
	}
}

func flowFilters() []store.FlowFilter {
	return []store.FlowFilter{
		{},
		{Sides: store.Sides{Inside: testInside(), Src: store.Inside, Dst: store.Outside}},
		{MinPairSrcBytes: 10_000},
		{Sides: store.Sides{Inside: testInside(), Src: store.Inside}, MinPairSrcBytes: 5_000},
	}
}

func fanoutFilters() []store.FanoutFilter {
	return []store.FanoutFilter{{By: store.FanoutByPort, MinTargets: 1}, {By: store.FanoutByHost, MinTargets: 2}, {By: store.FanoutByPort, MinTargets: 3}}
}

func uploadFilters() []store.UploadFilter {
	return []store.UploadFilter{{MinBytes: 1}, {MinBytes: 1_000_000},
		{MinBytes: 1, Sides: store.Sides{Inside: testInside(), Src: store.Inside, Dst: store.Outside}}}
}

func seriesKey(s *store.Series) string {
	return s.Sensor + "|" + s.Src.String() + "|" + s.Dst.String() + s.Name + "|" + fmt.Sprintf("%05d", s.Port) + "|" + s.Proto
}

func same[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	if len(want) == 0 {
		t.Errorf("%s: the test data gives no expected results", what)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d results, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s[%d]:\n got %+v\nwant %+v", what, i, got[i], want[i])
			return
		}
	}
}

// The reference implementations below define what each query returns.

func refSpan(b *event.Batch, w store.Window) (first, last time.Time, n int64) {
	for _, c := range b.Conns {
		if !w.Contains(c.TS) {
			continue
		}
		if n == 0 || c.TS.Before(first) {
			first = c.TS
		}
		if c.TS.After(last) {
			last = c.TS
		}
		n++
	}
	return first, last, n
}

func failed(state string) bool {
	switch state {
	case "REJ", "S0", "RSTOS0", "RSTRH", "SH", "SHR":
		return true
	}
	return false
}

func refPairs(b *event.Batch, w store.Window, f store.PairFilter) []store.PairStat {
	type key struct {
		sensor, src, dst string
		port             uint16
		proto            string
	}
	m := map[key]*store.PairStat{}
	days := map[key]map[time.Time]bool{}
	in := f.Set()
	for _, c := range b.Conns {
		if !w.Contains(c.TS) || !f.Keep(in, c.SrcIP, c.DstIP) || (f.Dsts != nil && !slices.Contains(f.Dsts, c.DstIP)) ||
			(f.Srcs != nil && !slices.Contains(f.Srcs, c.SrcIP)) || slices.Contains(f.SkipDsts, c.DstIP) {
			continue
		}
		k := key{c.Src.Sensor, c.SrcIP.String(), c.DstIP.String(), c.DstPort, c.Proto}
		p := m[k]
		if p == nil {
			p = &store.PairStat{Sensor: c.Src.Sensor, Src: c.SrcIP, Dst: c.DstIP, DstPort: c.DstPort, Proto: c.Proto, First: c.TS, Last: c.TS}
			m[k], days[k] = p, map[time.Time]bool{}
		}
		p.Conns++
		p.First, p.Last = event.Earliest(p.First, c.TS), event.Latest(p.Last, c.TS)
		p.Duration += c.Duration.V
		p.MaxDuration = max(p.MaxDuration, c.Duration.V)
		p.SrcBytes += int64(c.SrcBytes.V)
		p.DstBytes += int64(c.DstBytes.V)
		if failed(c.ConnState) {
			p.Failed++
		}
		switch {
		case c.SrcPkts.Valid && c.SrcPkts.V == 0:
			p.Silent++
		case isProbe(&c):
			p.Probes++
		}
		days[k][c.TS.Truncate(24*time.Hour)] = true
	}
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.sensor != b.sensor {
			return a.sensor < b.sensor
		}
		if a.src != b.src {
			return a.src < b.src
		}
		if a.dst != b.dst {
			return a.dst < b.dst
		}
		if a.port != b.port {
			return a.port < b.port
		}
		return a.proto < b.proto
	})
	var kept []store.PairStat
	total := map[string]int64{} // records per (sensor, src, dst) over the kept stats
	for _, k := range keys {
		p := m[k]
		p.Days = int64(len(days[k]))
		if f.MinDuration > 0 && p.MaxDuration < f.MinDuration && p.Duration < f.MinDuration {
			continue
		}
		if f.MinFailedShare > 0 && float64(p.Failed) < f.MinFailedShare*float64(p.Conns) {
			continue
		}
		kept = append(kept, *p)
		total[k.sensor+"|"+k.src+"|"+k.dst] += p.Conns
	}
	out := make([]store.PairStat, 0, len(kept))
	for _, p := range kept {
		if total[p.Sensor+"|"+p.Src.String()+"|"+p.Dst.String()] >= f.MinPairConns {
			out = append(out, p)
		}
	}
	return out
}

func refDaily(b *event.Batch, w store.Window, f store.FlowFilter) []store.DailyFlow {
	m := map[string]*store.DailyFlow{}
	sent := map[string]int64{}
	in := f.Set()
	for _, c := range b.Conns {
		if !w.Contains(c.TS) || !f.Keep(in, c.SrcIP, c.DstIP) {
			continue
		}
		sent[c.Src.Sensor+"|"+c.SrcIP.String()+"|"+c.DstIP.String()] += int64(c.SrcBytes.V)
		day := c.TS.Truncate(24 * time.Hour)
		k := strings.Join([]string{c.Src.Sensor, c.SrcIP.String(), c.DstIP.String(), day.Format(time.RFC3339)}, "|")
		d := m[k]
		if d == nil {
			d = &store.DailyFlow{Sensor: c.Src.Sensor, Src: c.SrcIP, Dst: c.DstIP, Day: day, First: c.TS, Last: c.TS}
			m[k] = d
		}
		d.Conns++
		d.SrcBytes += int64(c.SrcBytes.V)
		d.DstBytes += int64(c.DstBytes.V)
		d.MaxSrcBytes = max(d.MaxSrcBytes, int64(c.SrcBytes.V))
		d.First, d.Last = event.Earliest(d.First, c.TS), event.Latest(d.Last, c.TS)
	}
	var out []store.DailyFlow
	for _, d := range sortedValues(m) {
		if sent[d.Sensor+"|"+d.Src.String()+"|"+d.Dst.String()] >= f.MinPairSrcBytes {
			out = append(out, d)
		}
	}
	return out
}

func refHostDays(b *event.Batch, w store.Window, f store.FlowFilter) []store.HostDay {
	m := map[string]*store.HostDay{}
	in := f.Set()
	for _, c := range b.Conns {
		if !w.Contains(c.TS) || !f.Keep(in, c.SrcIP, c.DstIP) || !c.SrcIP.IsValid() {
			continue
		}
		d := c.TS.Truncate(24 * time.Hour)
		k := strings.Join([]string{c.Src.Sensor, c.SrcIP.String(), d.Format(time.RFC3339)}, "|")
		h := m[k]
		if h == nil {
			h = &store.HostDay{Sensor: c.Src.Sensor, Src: c.SrcIP, Day: d}
			m[k] = h
		}
		h.SrcBytes += int64(c.SrcBytes.V)
	}
	return sortedValues(m)
}

func refDestinations(b *event.Batch, w store.Window, clients []netip.Addr) []store.DstStat {
	in := store.Sides{Inside: clients}.Set()
	m := map[string]*store.DstStat{}
	seen := map[string]map[netip.Addr]bool{}
	for _, c := range b.Conns {
		if !w.Contains(c.TS) || !c.DstIP.IsValid() {
			continue
		}
		k := c.DstIP.String()
		d := m[k]
		if d == nil {
			d = &store.DstStat{Dst: c.DstIP, First: c.TS, Last: c.TS}
			m[k], seen[k] = d, map[netip.Addr]bool{}
		}
		d.Conns++
		d.First, d.Last = event.Earliest(d.First, c.TS), event.Latest(d.Last, c.TS)
		if in[c.SrcIP] && !seen[k][c.SrcIP] {
			seen[k][c.SrcIP] = true
			d.Clients++
		}
	}
	return sortedValues(m)
}

func refLocalAddrs(b *event.Batch, w store.Window, local []netip.Prefix) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, c := range b.Conns {
		if !w.Contains(c.TS) {
			continue
		}
		for _, a := range []netip.Addr{c.SrcIP, c.DstIP} {
			if a.IsValid() && store.InNets(local, a) && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func refSeries(b *event.Batch, kind store.SeriesKind, w store.Window, f store.SeriesFilter) []store.Series {
	type point struct {
		ts   time.Time
		src  event.Source
		size int64
	}
	type acc struct {
		s      store.Series
		points []point
		total  int64
	}
	m := map[string]*acc{}
	add := func(src event.Source, from, dst netip.Addr, port uint16, proto, name string, ts time.Time, size int64) {
		if !w.Contains(ts) || !from.IsValid() || (name == "" && slices.Contains(f.SkipDsts, dst)) || (name != "" && slices.Contains(f.SkipNames, name)) ||
			(name == "" && f.Dsts != nil && !slices.Contains(f.Dsts, dst)) {
			return
		}
		k := src.Sensor + "|" + from.String() + "|" + dst.String() + name + "|" + fmt.Sprintf("%05d", port) + "|" + proto
		a := m[k]
		if a == nil {
			a = &acc{s: store.Series{Sensor: src.Sensor, Src: from, Dst: dst, Port: port, Proto: proto, Name: name}}
			m[k] = a
		}
		a.points = append(a.points, point{ts, src, size})
		a.total += size
	}
	switch kind {
	case store.SeriesConn:
		for _, c := range b.Conns {
			if c.DstIP.IsValid() {
				add(c.Src, c.SrcIP, c.DstIP, 0, "", "", c.TS, int64(c.SrcIPBytes.V))
			}
		}
	case store.SeriesSessions:
		for _, c := range b.Conns {
			if c.DstIP.IsValid() {
				add(c.Src, c.SrcIP, c.DstIP, c.DstPort, c.Proto, "", c.TS, c.Duration.V.Microseconds())
			}
		}
	case store.SeriesTLSName:
		for _, t := range b.TLS {
			if t.ServerName != "" {
				add(t.Src, t.SrcIP, netip.Addr{}, 0, "", t.ServerName, t.TS, 0)
			}
		}
	case store.SeriesHTTPHost:
		for _, h := range b.HTTP {
			if h.Host != "" {
				add(h.Src, h.SrcIP, netip.Addr{}, 0, "", h.Host, h.TS, int64(h.RequestBodyLen.V))
			}
		}
	}
	out := map[string]*store.Series{}
	for k, a := range m {
		if len(a.points) < max(f.MinCount, 1) || (kind == store.SeriesSessions && a.total < f.MinDuration.Microseconds()) {
			continue
		}
		// In millisecond order; sizes in the same millisecond ascending.
		sort.SliceStable(a.points, func(i, j int) bool {
			p, q := a.points[i], a.points[j]
			if pm, qm := p.ts.UnixMilli(), q.ts.UnixMilli(); pm != qm {
				return pm < qm
			}
			return p.size < q.size
		})
		for _, p := range a.points {
			a.s.Times = append(a.s.Times, p.ts.UnixMilli()*1000)
			a.s.Sizes = append(a.s.Sizes, p.size)
		}
		out[k] = &a.s
	}
	return sortedValues(out)
}

func refOpen(b *event.Batch, w store.Window) []store.OpenConn {
	m := map[string]*store.OpenConn{}
	for _, c := range b.OpenConns {
		if !w.Contains(c.TS) {
			continue
		}
		k := c.Src.Sensor + "|" + c.UID
		if o := m[k]; o != nil && o.Duration >= c.Duration.V {
			continue
		}
		m[k] = &store.OpenConn{Sensor: c.Src.Sensor, UID: c.UID, Src: c.SrcIP, Dst: c.DstIP, DstPort: c.DstPort, Proto: c.Proto,
			Service: c.Service, Start: c.TS, Reported: c.TS.Add(c.Duration.V), Duration: c.Duration.V,
			SrcBytes: int64(c.SrcBytes.V), DstBytes: int64(c.DstBytes.V)}
	}
	return sortedValues(m)
}

func refDNS(b *event.Batch, w store.Window, f store.DNSFilter) []store.DNSName {
	m := map[string]*store.DNSName{}
	for _, d := range b.DNS {
		if !w.Contains(d.TS) || d.Query == "" || (f.RCode != "" && d.RCodeName != f.RCode) || (f.Srcs != nil && !slices.Contains(f.Srcs, d.SrcIP)) {
			continue
		}
		k := strings.Join([]string{d.Src.Sensor, d.SrcIP.String(), d.Query, d.QTypeName, d.RCodeName, addrStr(d.DstIP)}, "|")
		n := m[k]
		if n == nil {
			n = &store.DNSName{Sensor: d.Src.Sensor, Src: d.SrcIP, Query: d.Query, QType: d.QTypeName, RCode: d.RCodeName, Dst: d.DstIP, First: d.TS, Last: d.TS}
			m[k] = n
		}
		n.Count++
		n.First, n.Last = event.Earliest(n.First, d.TS), event.Latest(n.Last, d.TS)
	}
	return sortedValues(m)
}

func refServerNames(b *event.Batch, w store.Window) []store.ServerName {
	m := map[string]*store.ServerName{}
	add := func(src event.Source, from netip.Addr, name string, ts time.Time) {
		if !w.Contains(ts) || name == "" {
			return
		}
		k := src.Sensor + "|" + from.String() + "|" + name
		n := m[k]
		if n == nil {
			n = &store.ServerName{Sensor: src.Sensor, Src: from, Name: name}
			m[k] = n
		}
		n.Count++
	}
	for _, t := range b.TLS {
		add(t.Src, t.SrcIP, t.ServerName, t.TS)
	}
	for _, h := range b.HTTP {
		add(h.Src, h.SrcIP, h.Host, h.TS)
	}
	return sortedValues(m)
}

func refTLS(b *event.Batch, w store.Window) []store.TLSSession {
	certs := map[string]event.X509{}
	for _, x := range b.X509 {
		switch {
		case x.Fingerprint != "":
			certs[x.Fingerprint] = x
		case x.ID != "":
			certs[x.ID] = x
		}
	}
	m := map[string]*store.TLSSession{}
	for _, t := range b.TLS {
		if !w.Contains(t.TS) {
			continue
		}
		sni := ""
		if t.SNIMatchesCert.Valid {
			sni = map[bool]string{true: "T", false: "F"}[t.SNIMatchesCert.V]
		}
		fp := ""
		switch {
		case len(t.CertChainFPs) > 0:
			fp = t.CertChainFPs[0]
		case len(t.CertChainFUIDs) > 0:
			fp = t.CertChainFUIDs[0]
		}
		x := certs[fp]
		subject, issuer := t.Subject, t.Issuer
		if subject == "" {
			subject = x.Subject
		}
		if issuer == "" {
			issuer = x.Issuer
		}
		k := strings.Join([]string{t.Src.Sensor, t.SrcIP.String(), t.DstIP.String(), fmt.Sprintf("%05d", t.DstPort), t.ServerName, t.JA3, t.JA4,
			t.ValidationStatus, sni, fp, t.Subject, t.Issuer}, "|")
		s := m[k]
		if s == nil {
			s = &store.TLSSession{Sensor: t.Src.Sensor, Src: t.SrcIP, Dst: t.DstIP, DstPort: t.DstPort, ServerName: t.ServerName, JA3: t.JA3, JA4: t.JA4,
				ValidationStatus: t.ValidationStatus, SNIMatchesCert: sni, CertFingerprint: fp, Subject: subject, Issuer: issuer,
				NotBefore: x.NotValidBefore.V, NotAfter: x.NotValidAfter.V, CertNames: x.SANDNS, First: t.TS, Last: t.TS}
			m[k] = s
		}
		s.Count++
		if t.Established.V {
			s.Established++
		}
		s.First, s.Last = event.Earliest(s.First, t.TS), event.Latest(s.Last, t.TS)
	}
	return sortedValues(m)
}

func refHTTP(b *event.Batch, w store.Window) []store.HTTPRequest {
	m := map[string]*store.HTTPRequest{}
	for _, h := range b.HTTP {
		if !w.Contains(h.TS) {
			continue
		}
		path, _, _ := strings.Cut(h.URI, "?")
		k := strings.Join([]string{h.Src.Sensor, h.SrcIP.String(), h.DstIP.String(), fmt.Sprintf("%05d", h.DstPort), h.Host, h.Method, path, h.UserAgent}, "|")
		r := m[k]
		if r == nil {
			r = &store.HTTPRequest{Sensor: h.Src.Sensor, Src: h.SrcIP, Dst: h.DstIP, DstPort: h.DstPort, Host: h.Host, Method: h.Method, Path: path,
				UserAgent: h.UserAgent, First: h.TS, Last: h.TS, Statuses: []int64{}}
			m[k] = r
		}
		r.Count++
		r.RequestBytes += int64(h.RequestBodyLen.V)
		if slices.ContainsFunc(h.RespMIMETypes, func(m string) bool { return slices.Contains(store.ExecutableMIME(), m) }) {
			r.Executables++
		}
		r.First, r.Last = event.Earliest(r.First, h.TS), event.Latest(r.Last, h.TS)
		if h.StatusCode.Valid && !slices.Contains(r.Statuses, int64(h.StatusCode.V)) {
			r.Statuses = append(r.Statuses, int64(h.StatusCode.V))
			slices.Sort(r.Statuses)
		}
	}
	return sortedValues(m)
}

// sortedValues returns the map's values in the order of their keys; keys
// are built so that this is the queries' documented order.
func sortedValues[T any](m map[string]*T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, *m[k])
	}
	return out
}

// addrStr is an address as the stores order it: "" when unset.
func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
