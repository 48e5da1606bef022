package correlate

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
)

var (
	t0    = time.Date(2025, 3, 4, 9, 20, 0, 0, time.UTC)
	local = netip.MustParsePrefix("10.0.0.0/8").Contains
	a     = netip.MustParseAddr
)

func finding(det string, score float64, src, dst, domain string, first time.Duration) detect.Finding {
	f := detect.Finding{Detector: det, Score: score, Sensor: "s", Domain: domain, FirstSeen: t0.Add(first), LastSeen: t0.Add(first + 48*time.Hour),
		Evidence: map[string]any{}}
	if src != "" {
		f.Src = a(src)
	}
	if dst != "" {
		f.Dst = a(dst)
	}
	return f
}

// campaign is a small intrusion: a web shell on the mail server, its C2,
// lateral movement to a workstation whose own C2 a second workstation
// shares, exfiltration from that one; beside it, adware on two hosts, the
// mail server's ordinary mail and a weak beacon of an unrelated host.
func campaign() []detect.Finding {
	exfil := finding("exfil", 0.75, "10.10.0.63", "198.51.100.50", "", 150*time.Hour)
	exfil.Evidence = map[string]any{"bytes_out": uint64(131577698), "bytes_out_per_day": []map[string]any{
		{"day": "2025-03-10", "bytes": uint64(100000000)}, {"day": "2025-03-11", "bytes": uint64(31577698)}}}
	exfil.Attack = []string{"T1048", "T1041"}
	c2 := finding("beacon", 0.93, "10.20.0.25", "198.51.100.23", "", 2*time.Hour)
	c2.Attack = []string{"T1071.001"}
	c2.Evidence = map[string]any{"period_seconds": 14400.0, "jitter": 0.3}
	shell := finding("httpanom", 0.87, "203.0.113.46", "10.20.0.25", "", 0)
	shell.Attack = []string{"T1505.003", "T1190"}
	lat := finding("lateral", 1, "10.20.0.25", "10.10.0.12", "", 100*time.Hour)
	lat.Attack = []string{"T1021.001"}
	adA := finding("beacon", 0.9, "10.10.0.31", "192.0.2.200", "", -3*time.Hour)
	adA.Evidence = map[string]any{"period_seconds": 60.0, "jitter": 0.04}
	adB := finding("beacon", 0.9, "10.10.0.10", "192.0.2.200", "", -2*time.Hour)
	adB.Evidence = map[string]any{"period_seconds": 60.0, "jitter": 0.04}
	return []detect.Finding{
		exfil, c2, shell, lat, adA, adB,
		finding("rare", 0.6, "10.20.0.25", "198.51.100.23", "", 2*time.Hour),                // weak, about the C2: joins
		finding("beacon", 0.9, "10.10.0.12", "203.0.113.77", "", 101*time.Hour),             // second stage C2
		finding("beacon", 0.52, "10.10.0.63", "203.0.113.77", "", 140*time.Hour),            // weak, same C2: joins
		finding("exfil", 0.55, "10.20.0.25", "23.0.27.31", "", -40*time.Hour),               // mail, weak: stays a finding
		finding("beacon", 0.52, "151.111.241.45", "10.20.0.40", "", 0),                      // weak, unrelated
		finding("dnstunnel", 0.77, "10.10.0.12", "", "x1.ns-update.example", 110*time.Hour), // names a domain
		finding("beacon", 0.55, "85.67.7.88", "10.20.0.25", "", 50*time.Hour),               // a remote user of the mail server
		finding("rare", 0.55, "10.20.0.25", "141.101.12.31", "", 50*time.Hour),              // an outside mail server it sends to
	}
}

func TestCampaign(t *testing.T) {
	incs := Correlate(campaign(), Options{IsLocal: local})
	if len(incs) != 2 {
		for _, i := range incs {
			t.Log(i.Summary, i.Hosts)
		}
		t.Fatalf("%d incidents, want the campaign and the adware", len(incs))
	}
	c := incs[0]
	wantHosts := []netip.Addr{a("10.10.0.12"), a("10.10.0.63"), a("10.20.0.25")}
	if c.Class != ClassEspionage || !slices.Equal(c.Hosts, wantHosts) {
		t.Errorf("campaign: %s on %v", c.Class, c.Hosts)
	}
	if !c.DwellStart.Equal(t0) {
		t.Errorf("dwell start %v, want the web shell's %v (the mail server's ordinary traffic is older)", c.DwellStart, t0)
	}
	if len(c.Findings) != 8 {
		t.Errorf("%d findings in the campaign, want 8", len(c.Findings))
	}
	if len(c.BytesOut) != 1 || c.BytesOut[0].Bytes != 131577698 || len(c.BytesOut[0].PerDay) != 2 {
		t.Errorf("bytes out %+v", c.BytesOut)
	}
	if want := []string{"T1190", "T1505.003", "T1071.001", "T1021.001", "T1041", "T1048"}; !slices.Equal(c.Attack, want) {
		t.Errorf("attack %v, want %v (by tactic)", c.Attack, want)
	}
	if slices.ContainsFunc(c.Infrastructure, func(i Infra) bool { return i.Value == "85.67.7.88" || i.Value == "141.101.12.31" }) {
		t.Errorf("an outside client of the compromised server counts as the attacker's: %+v", c.Infrastructure)
	}
	if !slices.ContainsFunc(c.Infrastructure, func(i Infra) bool { return i.Kind == "domain" && i.Value == "ns-update.example" }) {
		t.Errorf("infrastructure %+v lacks the tunnel's registered domain", c.Infrastructure)
	}
	ad := incs[1]
	if ad.Class != ClassCommodity || len(ad.Hosts) != 2 || ad.Score >= c.Score {
		t.Errorf("adware: %s %.2f on %v", ad.Class, ad.Score, ad.Hosts)
	}
}

// TestStableIDs: the same findings in another order, or with later ones
// added, give the same ids.
func TestStableIDs(t *testing.T) {
	fs := campaign()
	ids := func(fs []detect.Finding) []string {
		var out []string
		for _, i := range Correlate(fs, Options{IsLocal: local}) {
			out = append(out, i.ID)
		}
		slices.Sort(out)
		return out
	}
	want := ids(fs)
	rev := slices.Clone(fs)
	slices.Reverse(rev)
	if got := ids(rev); !slices.Equal(got, want) {
		t.Errorf("reordered: %v, want %v", got, want)
	}
	more := append(slices.Clone(fs), finding("exfil", 0.8, "10.10.0.63", "203.0.113.120", "", 300*time.Hour))
	if got := ids(more); !slices.Equal(got, want) {
		t.Errorf("with a later finding: %v, want %v", got, want)
	}
}

func TestSharedInfrastructureDoesNotLink(t *testing.T) {
	var fs []detect.Finding
	for i := range 12 { // 12 hosts beacon to the same update service
		f := finding("beacon", 0.8, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}).String(), "198.51.100.80", "", 0)
		f.Evidence = map[string]any{"period_seconds": 3600.0, "jitter": 0.01}
		fs = append(fs, f)
	}
	if incs := Correlate(fs, Options{IsLocal: local, MaxShared: 10}); len(incs) != 12 {
		t.Errorf("%d incidents, want one per host: what 12 hosts share ties nothing", len(incs))
	}
}

func TestClasses(t *testing.T) {
	sweep := finding("lateral", 0.9, "10.1.1.1", "", "", 0)
	sweep.Evidence = map[string]any{"admin_service_hosts": 40}
	cron := finding("beacon", 0.8, "10.1.1.2", "198.51.100.7", "", 0)
	cron.Evidence = map[string]any{"period_seconds": 300.0, "jitter": 0.0}
	ddos := finding("ddos", 0.95, "198.51.100.66", "10.20.0.40", "", 0)
	for _, tc := range []struct {
		f    detect.Finding
		want Class
	}{{sweep, ClassScanning}, {cron, ClassBenign}, {ddos, ClassDDoS}, {finding("exfil", 0.8, "10.1.1.3", "198.51.100.9", "", 0), ClassSuspicious}} {
		incs := Correlate([]detect.Finding{tc.f}, Options{IsLocal: local})
		if len(incs) != 1 || incs[0].Class != tc.want {
			t.Errorf("%s: %+v, want %s", tc.f.Detector, incs, tc.want)
		}
	}
}

func TestOrderByTactic(t *testing.T) {
	got := OrderByTactic([]string{"T1048", "T9999", "T1071.001", "T1190", "T1021.002", "T1071.001"})
	if want := []string{"T1190", "T1071.001", "T1021.002", "T1048", "T9999"}; !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
}

// BenchmarkCorrelate groups 10,000 findings about 2,000 hosts, most of them
// weak background, as a large hunt gives.
func BenchmarkCorrelate(b *testing.B) {
	var fs []detect.Finding
	for i := range 10000 {
		src := netip.AddrFrom4([4]byte{10, byte(i / 65536 % 256), byte(i / 250 % 8), byte(i % 250)}).String()
		dst := netip.AddrFrom4([4]byte{198, 51, byte(i % 100), byte(i % 251)}).String()
		score := 0.3 + float64(i%7)/10
		fs = append(fs, finding([]string{"beacon", "rare", "exfil", "lateral"}[i%4], score, src, dst, "", time.Duration(i)*time.Minute))
	}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(Correlate(fs, Options{IsLocal: local}))
	}
	b.ReportMetric(float64(n), "incidents")
	b.ReportMetric(float64(len(fs))*float64(b.N)/b.Elapsed().Seconds(), "findings/s")
}

// TestHostFindings joins host and network evidence of one host: a host
// finding that knows the computer's address ties its name to it, a host
// finding that knows only the name joins through that, and the incident
// lists the names and accounts and counts the host stages.
func TestHostFindings(t *testing.T) {
	beacon := finding("beacon", 0.9, "10.20.0.25", "198.51.100.23", "", time.Hour)
	shell := finding("host", 0.92, "10.20.0.25", "", "", 0)
	shell.Host, shell.Accounts = "MAIL01", []string{`MIN\svc`}
	shell.Evidence = map[string]any{"rule": "webshell", "stage": "initial-access"}
	dump := finding("host", 0.9, "", "", "", 2*time.Hour)
	dump.Host, dump.Accounts = "mail01", []string{`MIN\admin`}
	dump.Evidence = map[string]any{"rule": "credential-dump", "stage": "credential-access"}
	other := finding("host", 0.8, "", "", "", 0)
	other.Host = "WS9"
	other.Evidence = map[string]any{"rule": "log-cleared", "stage": "defense-evasion"}
	incs := Correlate([]detect.Finding{beacon, shell, dump, other}, Options{IsLocal: local})
	if len(incs) != 2 {
		t.Fatalf("%d incidents: %+v", len(incs), incs)
	}
	inc := incs[0]
	if len(inc.Findings) != 3 || inc.Class != ClassEspionage || !slices.Equal(inc.Accounts, []string{`MIN\admin`, `MIN\svc`}) ||
		!slices.Equal(inc.HostNames, []string{"MAIL01"}) || len(inc.Hosts) != 1 || !inc.DwellStart.Equal(t0) {
		t.Errorf("incident %+v", inc)
	}
	if incs[1].Findings[0].Host != "WS9" || incs[1].Class != ClassSuspicious {
		t.Errorf("the other host's incident: %+v", incs[1])
	}
}
