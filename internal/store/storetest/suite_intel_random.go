package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// RandomIntel returns seeded random batches and indicators made to
// overlap: addresses drawn from a few networks that network indicators
// cover in part, names and their siblings under a few registered domains
// and a dynamic-DNS suffix, several ports per address, more peers than a
// sighting keeps, values seen on several days and in several batches,
// and rows that more than one indicator matches (an address and its
// network, a name and its parent).
func RandomIntel(seed uint64) ([]*event.Batch, []event.Indicator) {
	rnd := rand.New(rand.NewPCG(seed, 5))
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }
	nets := []string{"198.51.100.", "203.0.113.", "192.0.2.", "45.60.1."}
	addr := func() netip.Addr {
		if rnd.IntN(6) == 0 {
			return netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", rnd.IntN(3), 1+rnd.IntN(20)))
		}
		return netip.MustParseAddr(pick(nets) + fmt.Sprint(1+rnd.IntN(40)))
	}
	host := func() netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(rnd.IntN(2)), byte(1 + rnd.IntN(45))}) }
	parents := []string{"evil.example", "notevil.example", "cdn.example.org", "example.org", "x.3322.org", "3322.org", "mail.gov.example"}
	name := func() string {
		n := pick(parents)
		for range rnd.IntN(3) {
			n = pick([]string{"a", "b", "c", "www", "t"}) + "." + n
		}
		return n
	}
	ports := []uint16{53, 80, 443, 8443}
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	var batches []*event.Batch
	for n := range 4 {
		b := &event.Batch{}
		src := event.Source{Sensor: []string{"site-a", "site-b"}[n%2], File: "/logs/x.log", Line: 1}
		for range 150 {
			ts := day.Add(time.Duration(rnd.IntN(5*24*60)) * time.Minute)
			h, a, port := host(), addr(), ports[rnd.IntN(len(ports))]
			b.Conns = append(b.Conns, event.Conn{TS: ts, SrcIP: h, DstIP: a, DstPort: port, Proto: "tcp", Src: src})
			if rnd.IntN(4) == 0 { // the other way round
				b.Conns = append(b.Conns, event.Conn{TS: ts, SrcIP: a, DstIP: h, DstPort: 22, Proto: "tcp", Src: src})
			}
			b.DNS = append(b.DNS, event.DNS{TS: ts, SrcIP: h, Query: name(), Answers: []string{addr().String(), name()}, Src: src})
			if rnd.IntN(2) == 0 {
				b.HTTP = append(b.HTTP, event.HTTP{TS: ts, SrcIP: h, Host: name(), URI: "/" + pick([]string{"a", "b"}), UserAgent: "Mozilla/5.0", Src: src})
			}
		}
		batches = append(batches, b)
	}
	mk := func(t event.IOCType, v string, port uint16) event.Indicator {
		return event.Indicator{Source: "random", Type: t, Value: v, Port: port, Confidence: 50, TLP: event.TLPGreen}
	}
	var inds []event.Indicator
	for range 12 {
		a := addr()
		port := uint16(0)
		if rnd.IntN(3) == 0 {
			port = ports[rnd.IntN(len(ports))]
		}
		inds = append(inds, mk(event.IOCIP, a.String(), port))
	}
	inds = append(inds, mk(event.IOCCIDR, "198.51.100.0/27", 0), mk(event.IOCCIDR, "203.0.113.16/28", 0), mk(event.IOCCIDR, "45.60.0.0/16", 0),
		mk(event.IOCCIDR, "2001:db8:1::/48", 0), mk(event.IOCCIDR, "2001:db8::/32", 0), mk(event.IOCCIDR, "192.0.0.0/3", 0))
	for _, p := range parents {
		if rnd.IntN(2) == 0 {
			inds = append(inds, mk(event.IOCDomain, p, 0))
		}
		if rnd.IntN(2) == 0 {
			inds = append(inds, mk(event.IOCDomain, pick([]string{"a", "b", "www"})+"."+p, 0))
		}
	}
	inds = append(inds, mk(event.IOCURL, "evil.example/a", 0))
	return batches, inds
}

// testIntelRandom matches RandomIntel's indicators over its data, all
// history and windows, against the reference.
func testIntelRandom(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	batches, inds := RandomIntel(7)
	all := &event.Batch{}
	for _, b := range batches {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		all.Append(b)
	}
	if _, _, err := s.PutIndicators(ctx, inds); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for _, w := range []store.Window{{}, {Since: day.AddDate(0, 0, 1), Until: day.AddDate(0, 0, 3)}, {Since: day.AddDate(0, 0, 4)}} {
		same(t, fmt.Sprintf("MatchIndicators(%v)", w), matchAll(t, s, w), refMatch(all, w, inds))
	}
}
