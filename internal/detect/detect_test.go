package detect

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"
)

func TestAllowlist(t *testing.T) {
	p, err := ParsePair("10.0.0.0/8 -> 192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	l := Allowlist{Nets: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, Domains: []string{"Example.com.", "=updates.example.org"},
		Pairs: []Pair{p}}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		got  bool
		want bool
	}{
		{"domain itself", l.DomainAllowed("example.com"), true},
		{"subdomain", l.DomainAllowed("CDN.example.com."), true},
		{"lookalike", l.DomainAllowed("badexample.com"), false},
		{"exact name", l.DomainAllowed("updates.example.org"), true},
		{"exact excludes subdomains", l.DomainAllowed("x.updates.example.org"), false},
		{"empty", l.DomainAllowed(""), false},
		{"net", l.AddrAllowed(a("198.51.100.7")), true},
		{"mapped address", l.AddrAllowed(a("::ffff:198.51.100.7")), true},
		{"pair", l.PairAllowed(a("10.1.2.3"), a("192.0.2.10")), true},
		{"pair, other source", l.PairAllowed(a("172.16.0.1"), a("192.0.2.10")), false},
		{"dst in allowed net", l.PairAllowed(a("172.16.0.1"), a("198.51.100.1")), true},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if _, err := ParsePair("10.0.0.1"); err == nil {
		t.Error("pair without arrow accepted")
	}
	env := Env{Local: DefaultLocal(), Allow: l}
	if !env.IsLocal(a("10.9.9.9")) || env.IsLocal(a("8.8.8.8")) || !env.IsLocal(a("fd00::1")) {
		t.Error("IsLocal")
	}
	if !env.Allowed(&Finding{Domain: "www.example.com"}) || env.Allowed(&Finding{Src: a("10.0.0.1"), Dst: a("8.8.8.8")}) {
		t.Error("Allowed")
	}
}

func TestFindingJSONRoundTrip(t *testing.T) {
	f := Finding{Detector: "beacon", Score: 0.87654, Severity: SeverityOf(0.87654), Sensor: "s", Src: netip.MustParseAddr("10.0.0.1"),
		Domain: "c2.example", FirstSeen: time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), LastSeen: time.Date(2024, 2, 2, 3, 4, 5, 0, time.UTC),
		Attack: []string{"T1071"}, Summary: "x", Components: map[string]float64{"a": 1}, Evidence: map[string]any{"n": 3.0}}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"detector", "score", "severity", "src", "dst", "domain", "first_seen", "last_seen", "attack", "summary", "evidence", "components", "sensor"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	if got["severity"] != "critical" || got["score"] != 0.877 || got["dst"] != "" || got["first_seen"] != "2024-01-02T03:04:05.000006Z" {
		t.Errorf("JSON %s", b)
	}
	var back Finding
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Src != f.Src || back.Severity != f.Severity || !back.FirstSeen.Equal(f.FirstSeen) || back.Domain != f.Domain {
		t.Errorf("round trip %+v", back)
	}
}

func TestHelpers(t *testing.T) {
	q1, q2, q3 := Quartiles([]float64{1, 2, 3, 4, 5, 6, 7})
	if q1 != 2 || q2 != 4 || q3 != 6 {
		t.Errorf("odd quartiles %v %v %v", q1, q2, q3)
	}
	q1, q2, q3 = Quartiles([]float64{1, 2, 3, 4, 5, 6, 7, 8})
	if q1 != 2.5 || q2 != 4.5 || q3 != 6.5 {
		t.Errorf("even quartiles %v %v %v", q1, q2, q3)
	}
	if MAD([]float64{1, 1, 2, 2, 4, 6, 9}) != 1 {
		t.Error("MAD")
	}
	if Bucketed(96.3, 50, 70, 90, 100) != 0.726 && Round(Bucketed(96.3, 50, 70, 90, 100), 3) != 0.726 {
		t.Error("Bucketed")
	}
	if Entropy("aaaa") != 0 || Round(Entropy("abcd"), 3) != 2 {
		t.Error("Entropy")
	}
	if RegisteredDomain("a.b.example.co.uk.") != "example.co.uk" || RegisteredDomain("localhost") != "localhost" {
		t.Error("RegisteredDomain")
	}
	if Period(90*time.Second) != "1.5m" || Period(26*time.Hour) != "1d 2h" || Span(72*time.Hour) != "3 days" {
		t.Error(Period(90*time.Second), Period(26*time.Hour), Span(72*time.Hour))
	}
}
