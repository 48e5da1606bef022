package attribution

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func TestPivot(t *testing.T) {
	a := netip.MustParseAddr
	t0 := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	b := &event.Batch{}
	dns := func(i int, q string, answers ...string) {
		b.DNS = append(b.DNS, event.DNS{TS: t0.Add(time.Duration(i) * time.Hour), UID: fmt.Sprint("D", i), SrcIP: a("10.0.0.5"), DstIP: a("10.0.0.53"),
			Query: q, QTypeName: "A", Answers: answers})
	}
	tls := func(i int, dst, sni, fp, ja3s string) {
		b.TLS = append(b.TLS, event.TLS{TS: t0.Add(time.Duration(i) * time.Hour), UID: fmt.Sprint("T", i), SrcIP: a("10.0.0.7"), DstIP: a(dst),
			DstPort: 443, ServerName: sni, CertChainFPs: []string{fp}, JA3S: ja3s})
	}
	dns(1, "cdn.evil.example", "198.51.100.23")
	dns(2, "cdn.evil.example", "203.0.113.79")         // the name moved: found through the domain
	dns(3, "Update.Other.example", "198.51.100.23")    // another name of the C2 address
	dns(4, "update.other.example", "192.0.2.55")       // and where that name pointed too
	dns(5, "cdn.evil.example", "10.1.2.3", "TXT data") // an internal answer: never infrastructure
	for i := range 25 {                                // shared hosting: not followed
		dns(10+i, fmt.Sprintf("site%d.hosting.example", i), "198.51.100.50")
	}
	dns(40, "site0.hosting.example", "192.0.2.99")
	dns(41, "www.evil.test", "192.0.2.77") // the same name under another suffix: too short a name ("evil") to follow
	inc0 := &correlate.Incident{Infrastructure: []correlate.Infra{{Kind: "domain", Value: "cdn-update.example"}}}
	dns(42, "cdn-update.test", "192.0.2.88") // a look-alike of a longer name: followed
	for i := range 6 {                       // a common word: not followed
		dns(50+i, fmt.Sprintf("mailer.tld%d", i), "192.0.2.1")
	}
	tls(1, "198.51.100.23", "cdn.evil.example", "fpX", "common")
	tls(2, "203.0.113.78", "sync.other-name.example", "fpX", "common") // the same certificate elsewhere
	tls(3, "10.0.0.9", "intranet", "fpX", "")                          // inside: not the attacker's
	for i := range 5 {                                                 // a stock JA3S: too common
		tls(10+i, fmt.Sprintf("192.0.2.%d", 10+i), "www.example.org", fmt.Sprint("fp", i), "common")
	}
	web := func(i int, dst, server string) {
		b.HTTP = append(b.HTTP, event.HTTP{TS: t0.Add(time.Duration(i) * time.Hour), UID: fmt.Sprint("H", i), SrcIP: a("10.0.0.8"), DstIP: a(dst),
			DstPort: 80, Method: "GET", URI: "/", Server: server})
	}
	web(1, "198.51.100.23", "Kestrel-C2/0.9 (build 4471)")
	web(2, "192.0.2.140", "Kestrel-C2/0.9 (build 4471)") // the same odd banner elsewhere: followed
	web(3, "198.51.100.23", "nginx")
	web(4, "192.0.2.141", "nginx") // a bare product name: not followed
	for i := range 5 {             // a stock banner: too common
		web(10+i, fmt.Sprintf("192.0.2.%d", 150+i), "Apache/2.4.41 (Ubuntu)")
	}
	web(20, "198.51.100.23", "Apache/2.4.41 (Ubuntu)")
	m := storetest.NewMem()
	if err := m.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	inc := &correlate.Incident{Infrastructure: []correlate.Infra{{Kind: "ip", Value: "198.51.100.23"}, {Kind: "ip", Value: "198.51.100.50"},
		{Kind: "domain", Value: "evil.example"}}}
	local := netip.MustParsePrefix("10.0.0.0/8").Contains
	names, notes, err := Pivot(context.Background(), m, inc, local, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, x := range inc.Infrastructure[3:] {
		got[x.Value] = x.Pivot
	}
	for value, why := range map[string]string{
		"203.0.113.79":  "passive DNS: cdn.evil.example pointed at it",
		"192.0.2.55":    "passive DNS: update.other.example pointed at it",
		"other.example": "passive DNS: update.other.example pointed at 198.51.100.23",
		"203.0.113.78":  "same certificate fpX as 198.51.100.23",
		"192.0.2.140":   "same HTTP Server header Kestrel-C2/0.9 (… as 198.51.100.23",
	} {
		if !strings.HasPrefix(got[value], why) {
			t.Errorf("%s: pivot %q, want %q", value, got[value], why)
		}
	}
	if len(got) != 5 {
		t.Errorf("added %v", got)
	}
	for _, want := range []string{"198.51.100.50 had 25 names", "JA3S common is on 7 servers", `HTTP Server header "nginx" names a product without a version`,
		"HTTP Server header Apache/2.4.41 (U… is on 6 servers"} {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("notes %v lack %q", notes, want)
		}
	}
	inc0.Infrastructure = append(inc0.Infrastructure, correlate.Infra{Kind: "domain", Value: "mailer.example"})
	if _, notes, err := Pivot(context.Background(), m, inc0, local, Limits{}); err != nil {
		t.Fatal(err)
	} else {
		var pivots []string
		for _, x := range inc0.Infrastructure[2:] {
			pivots = append(pivots, x.Value+": "+x.Pivot)
		}
		want := []string{"cdn-update.test: name pattern: cdn-update under another suffix than cdn-update.example",
			"192.0.2.88: name pattern: cdn-update.test (like cdn-update.example) pointed at it"}
		if !slices.Equal(pivots, want) || !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, `"mailer" is the name of 6`) }) {
			t.Errorf("name patterns: %q, notes %q", pivots, notes)
		}
	}
	if !slices.ContainsFunc(names, func(x correlate.NameSeen) bool {
		return x.Name == "update.other.example" && x.Addr == a("198.51.100.23") && x.Log == "dns"
	}) {
		t.Errorf("passive DNS lacks the lower-cased name of the C2 address: %v", names)
	}
}
