package blocklist

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

var local = netip.MustParsePrefix("10.0.0.0/8").Contains

func f(det string, score float64, src, dst, domain string) detect.Finding {
	x := detect.Finding{Detector: det, Score: score, Domain: domain, Evidence: map[string]any{}}
	if src != "" {
		x.Src = netip.MustParseAddr(src)
	}
	if dst != "" {
		x.Dst = netip.MustParseAddr(dst)
	}
	return x
}

func incidents() []correlate.Incident {
	shared := f("beacon", 0.9, "10.1.1.1", "198.51.100.80", "")
	shared.Evidence["internal_hosts_contacting"] = 40.0
	// A web shell driven from three addresses: the finding names the
	// first as Src and the others as infrastructure (issue #14, item 9).
	shell := f("httpanom", 0.87, "203.0.113.46", "10.20.0.25", "")
	shell.Infra = []netip.Addr{netip.MustParseAddr("203.0.113.47"), netip.MustParseAddr("192.168.7.7")}
	return []correlate.Incident{
		{ID: "INC-aaaaaaaaaa", Class: correlate.ClassEspionage, Findings: []detect.Finding{
			f("beacon", 0.93, "10.20.0.25", "198.51.100.23", ""),
			f("beacon", 0.89, "10.20.0.25", "", "cdn-update.example"),
			shell,
			f("rare", 0.6, "10.20.0.25", "198.51.100.99", ""),         // weak only
			f("beacon", 0.9, "10.20.0.25", "2001:db8:bad::1", ""),     // IPv6
			f("exfil", 0.8, "10.10.0.63", "192.168.1.1", ""),          // special-purpose
			f("beacon", 0.9, "10.20.0.25", "203.0.113.200", ""),       // allow-listed
			f("dnstunnel", 0.8, "10.10.0.12", "", "bad name.example"), // not for a zone
			shared,
		}},
		{ID: "INC-bbbbbbbbbb", Class: correlate.ClassBenign, Findings: []detect.Finding{f("beacon", 0.8, "10.1.1.2", "198.51.100.7", "")}},
	}
}

func entries(t *testing.T) ([]Entry, []Skipped) {
	t.Helper()
	allow := &detect.Allowlist{Nets: []netip.Prefix{netip.MustParsePrefix("203.0.113.200/32")}}
	return Entries(incidents(), Options{IsLocal: local, Allow: allow})
}

func TestEntries(t *testing.T) {
	es, skipped := entries(t)
	var got []string
	for _, e := range es {
		got = append(got, e.Kind+" "+e.Value)
	}
	want := []string{"domain cdn-update.example", "ip 198.51.100.23", "ip 203.0.113.46", "ip 203.0.113.47", "ip 2001:db8:bad::1"}
	if !slices.Equal(got, want) {
		t.Errorf("blocked %v, want %v", got, want)
	}
	why := map[string]string{}
	for _, s := range skipped {
		why[s.Value] = s.Reason
	}
	for v, reason := range map[string]string{"198.51.100.99": "weak", "192.168.1.1": "special-purpose", "203.0.113.200": "allow-listed",
		"192.168.7.7":      "special-purpose",
		"bad name.example": "zone file", "198.51.100.80": "shared", "198.51.100.7": "benign-periodic"} {
		if !strings.Contains(why[v], reason) {
			t.Errorf("%s: left out for %q, want %q", v, why[v], reason)
		}
	}
	if one, _ := Entries(incidents(), Options{IsLocal: local, Incident: "INC-bbbbbbbbbb"}); len(one) != 0 {
		t.Errorf("a benign incident alone gave %v", one)
	}
}

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNFT checks the script with nft itself where it is installed
// (.ci/run installs nftables).
func TestNFT(t *testing.T) {
	es, _ := entries(t)
	out := string(NFT(es, 24*time.Hour))
	for _, want := range []string{"table inet dwell_block", `198.51.100.23 timeout 24h comment "dwell INC-aaaaaaaaaa espionage"`,
		"2001:db8:bad::1 timeout 24h", "ip daddr @dwell_v4 counter drop"} {
		if !strings.Contains(out, want) {
			t.Errorf("nft script lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cdn-update") {
		t.Error("a name in the nft script")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft not installed: the script is not checked by nftables")
	}
	if msg, err := exec.CommandContext(t.Context(), nft, "-c", "-f", write(t, "block.nft", []byte(out))).CombinedOutput(); err != nil {
		if strings.Contains(string(msg), "Operation not permitted") {
			t.Skipf("nft -c needs CAP_NET_ADMIN here: %s", msg)
		}
		t.Fatalf("nft -c rejects the script: %v\n%s\n%s", err, msg, out)
	}
	// An empty list is a valid script too.
	if msg, err := exec.CommandContext(t.Context(), nft, "-c", "-f", write(t, "empty.nft", NFT(nil, time.Hour))).CombinedOutput(); err != nil {
		t.Fatalf("nft -c rejects an empty script: %v\n%s", err, msg)
	}
}

// TestRPZ checks the zone with named-checkzone where it is installed
// (.ci/run installs bind9-utils).
func TestRPZ(t *testing.T) {
	es, _ := entries(t)
	zone := RPZ(es, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	for _, want := range []string{"cdn-update.example\tCNAME\t.", "*.cdn-update.example\tCNAME\t.", "32.23.100.51.198.rpz-ip\tCNAME\t.",
		"128.1.zz.bad.db8.2001.rpz-ip\tCNAME\t."} {
		if !strings.Contains(string(zone), want) {
			t.Errorf("zone lacks %q:\n%s", want, zone)
		}
	}
	check, err := exec.LookPath("named-checkzone")
	if err != nil {
		t.Skip("named-checkzone not installed: the zone is not checked by BIND")
	}
	if msg, err := exec.CommandContext(t.Context(), check, "rpz.dwell", write(t, "rpz.zone", zone)).CombinedOutput(); err != nil {
		t.Fatalf("named-checkzone rejects the zone: %v\n%s\n%s", err, msg, zone)
	}
}

func TestRPZIP(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.23":        "32.23.100.51.198",
		"2001:db8::1":          "128.1.zz.db8.2001",
		"2001:db8:0:1::":       "128.zz.1.0.db8.2001",
		"::ffff:10.1.2.3":      "32.3.2.1.10",
		"2001:db8:1:2:3:4:5:6": "128.6.5.4.3.2.1.db8.2001",
	} {
		if got := rpzIP(netip.MustParseAddr(in)); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestIPSetCrowdSecCSV(t *testing.T) {
	es, _ := entries(t)
	ipset := string(IPSet(es, time.Hour))
	for _, want := range []string{"create dwell_v4 hash:net family inet hashsize 1024 maxelem 65536 timeout 3600 comment",
		`add dwell_v4 198.51.100.23 timeout 3600 comment "dwell INC-aaaaaaaaaa espionage"`, "create dwell_v6 hash:net family inet6",
		"add dwell_v6 2001:db8:bad::1"} {
		if !strings.Contains(ipset, want) {
			t.Errorf("ipset file lacks %q:\n%s", want, ipset)
		}
	}
	data, err := CrowdSec(es, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ds []map[string]string
	if err := json.Unmarshal(data, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != 4 || ds[0]["scope"] != "ip" || ds[0]["type"] != "ban" || ds[0]["duration"] != "24h" {
		t.Errorf("decisions %v", ds)
	}
	if csv := string(CSV(es)); !strings.HasPrefix(csv, "kind,value,incident,class,score\ndomain,cdn-update.example,INC-aaaaaaaaaa,espionage,0.890\n") {
		t.Errorf("csv:\n%s", csv)
	}
}
