package app

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// An incident's external addresses get their AS, ISP and country from
// the configured databases (the shared MaxMind test files), in the
// table and the JSON; domains and unknown addresses are left alone, and
// a database that cannot be read is an error naming it.
func TestOriginEnrichment(t *testing.T) {
	dir := filepath.Join(datasets, "maxmind-test-mmdb", "test-data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset maxmind-test-mmdb is not here (%v); skipping", err)
	}
	cfg := config.Default()
	cfg.Origin.MMDB = []string{filepath.Join(dir, "GeoLite2-ASN-Test.mmdb"), filepath.Join(dir, "GeoLite2-Country-Test.mmdb")}
	inc := &correlate.Incident{ID: "INC-1", Class: "espionage", Infrastructure: []correlate.Infra{
		{Kind: "ip", Value: "89.160.20.112", Hosts: 2, Detectors: []string{"beacon"}},
		{Kind: "ip", Value: "10.9.9.9", Hosts: 1, Detectors: []string{"exfil"}},
		{Kind: "domain", Value: "evil.example", Hosts: 1, Detectors: []string{"dga"}},
	}}
	x, err := newAnswerer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = x.Close() }()
	if err := x.origin(inc); err != nil {
		t.Fatal(err)
	}
	o := inc.Infrastructure[0].Origin
	if o == nil || o.ASN != 29518 || o.ASOrg != "Bredband2 AB" || o.Country != "SE" || inc.Infrastructure[1].Origin != nil || inc.Infrastructure[2].Origin != nil {
		t.Fatalf("infrastructure %+v, origin %+v", inc.Infrastructure, o)
	}
	var out bytes.Buffer
	if err := writeIncident(&App{Stdout: &out}, inc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seen by beacon; AS29518 Bredband2 AB, SE") {
		t.Errorf("incident:\n%s", out.String())
	}
	cfg.Origin.MMDB = []string{filepath.Join(t.TempDir(), "gone.mmdb")}
	if _, err := newAnswerer(cfg); err == nil || !strings.Contains(err.Error(), "gone.mmdb") {
		t.Errorf("a missing database: %v", err)
	}
}

// The first contact with an incident's infrastructure is the earliest
// connection to or from any of its addresses in all history, however long
// before the first finding.
func TestFirstContact(t *testing.T) {
	m := storetest.NewMem()
	c2 := netip.MustParseAddr("203.0.113.5")
	t0 := time.Date(2019, 3, 4, 10, 0, 0, 0, time.UTC)
	b := &event.Batch{}
	for i, ts := range []time.Time{t0.AddDate(1, 0, 0), t0, t0.AddDate(0, 0, 1)} {
		b.Conns = append(b.Conns, event.Conn{TS: ts, UID: fmt.Sprint("C", i), SrcIP: netip.MustParseAddr("10.1.2.3"), SrcPort: 50000,
			DstIP: c2, DstPort: 443, Proto: "tcp", Src: event.Source{Sensor: "hq", File: "conn.log", Line: int64(i + 9)}})
	}
	b.Conns = append(b.Conns, event.Conn{TS: t0.AddDate(-1, 0, 0), UID: "Cx", SrcIP: netip.MustParseAddr("10.1.2.4"), SrcPort: 50000,
		DstIP: netip.MustParseAddr("198.51.100.9"), DstPort: 80, Proto: "tcp", Src: event.Source{Sensor: "hq", File: "conn.log", Line: 1}})
	if err := m.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	inc := &correlate.Incident{ID: "INC-2", DwellStart: t0.AddDate(1, 0, 0), Infrastructure: []correlate.Infra{
		{Kind: "ip", Value: c2.String()}, {Kind: "domain", Value: "evil.example"}}}
	if err := firstContact(t.Context(), m, inc, nil); err != nil {
		t.Fatal(err)
	}
	c := inc.FirstContact
	if c == nil || !c.At.Equal(t0) || c.Dst != c2 || c.Src.String() != "10.1.2.3" || c.Conns != 3 || c.Days != 3 {
		t.Fatalf("first contact %+v", c)
	}
	// An inbound connection from it, earlier still.
	b = &event.Batch{Conns: []event.Conn{{TS: t0.AddDate(0, -2, 0), UID: "Cin", SrcIP: c2, SrcPort: 40000,
		DstIP: netip.MustParseAddr("10.20.0.25"), DstPort: 25, Proto: "tcp", Src: event.Source{Sensor: "hq", File: "conn.log", Line: 2}}}}
	if err := m.Write(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if err := firstContact(t.Context(), m, inc, nil); err != nil {
		t.Fatal(err)
	}
	if in := inc.FirstContact; in == nil || in.Src != c2 || in.Dst.String() != "10.20.0.25" || !in.At.Equal(t0.AddDate(0, -2, 0)) {
		t.Fatalf("inbound first contact %+v", in)
	}
	inc.FirstContact = c
	var out bytes.Buffer
	if err := writeIncident(&App{Stdout: &out}, inc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "first contact 2019-03-04T10:00:00Z  10.1.2.3 -> 203.0.113.5:443/tcp (3 connection(s) on 3 day(s) in all history, conn records): 366 days before the first finding") {
		t.Errorf("incident:\n%s", out.String())
	}
	// A flow record, earlier than any conn record, and a DNS answer
	// earlier still.
	fl := &event.Batch{Flows: []event.Flow{{TS: t0.AddDate(0, -3, 0), End: t0.AddDate(0, -3, 0).Add(time.Second), SrcIP: netip.MustParseAddr("10.1.2.9"),
		SrcPort: 51000, DstIP: c2, DstPort: 443, Proto: "tcp", Packets: 3, Bytes: 180, Src: event.Source{Sensor: "edge", File: "flows.nfcapd", Line: 4}}}}
	if err := m.Write(t.Context(), fl); err != nil {
		t.Fatal(err)
	}
	if err := firstContact(t.Context(), m, inc, nil); err != nil {
		t.Fatal(err)
	}
	if f := inc.FirstContact; f == nil || f.Log != "flow" || f.Src.String() != "10.1.2.9" || !f.At.Equal(t0.AddDate(0, -3, 0)) {
		t.Fatalf("first contact from flows %+v", f)
	}
	names := []correlate.NameSeen{{Log: "dns", Name: "cdn.evil.example", Addr: c2, Count: 2, First: t0.AddDate(0, -4, 0)},
		{Log: "ssl", Name: "cdn.evil.example", Addr: c2, Count: 1, First: t0.AddDate(-2, 0, 0)}} // a server name is no contact by itself
	if err := firstContact(t.Context(), m, inc, names); err != nil {
		t.Fatal(err)
	}
	if d := inc.FirstContact; d == nil || d.Log != "dns" || d.Name != "cdn.evil.example" || !d.At.Equal(t0.AddDate(0, -4, 0)) ||
		!strings.Contains(inc.OriginSentence(), "a DNS answer gave cdn.evil.example as 203.0.113.5") {
		t.Fatalf("first contact from DNS %+v", d)
	}
}
