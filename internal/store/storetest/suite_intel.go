package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// IntelData returns two batches of records carrying every kind of value
// an indicator can match, some values in both (the summary merges them).
func IntelData() []*event.Batch {
	a := netip.MustParseAddr
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	var out []*event.Batch
	for n := range 2 {
		b := &event.Batch{}
		src := func(sensor string) event.Source { return event.Source{Sensor: sensor, File: "/logs/x.log", Line: 1} }
		for i := range 60 {
			ts := day.Add(time.Duration(n*60+i) * 47 * time.Minute)
			host := a(fmt.Sprintf("10.0.0.%d", 1+i%7))
			sensor := []string{"site-a", "site-b", ""}[i%3]
			b.Conns = append(b.Conns, event.Conn{TS: ts, SrcIP: host, DstIP: []netip.Addr{a("198.51.100.23"), a("203.0.113.45"), a("2001:db8:1::77"), a("192.0.2.200")}[i%4],
				DstPort: []uint16{443, 8443, 80}[i%3], Proto: "tcp", Src: src(sensor)})
			b.Conns = append(b.Conns, event.Conn{TS: ts.Add(time.Second), SrcIP: a("45.60.1.9"), DstIP: host, DstPort: 22, Proto: "tcp", Src: src(sensor)})
			b.DNS = append(b.DNS, event.DNS{TS: ts, SrcIP: host, Query: []string{"x.update-check.example.net", "a1b2.t.cdn-metrics.example.org", "Foo.3322.org.", "www.example.com"}[i%4],
				// The last two share an indicator's registered domain without being its name or one of its subdomains: no match.
				Answers: []string{"198.51.100.23", "cname.update-check.example.net", "edge.cdn-metrics.example.org", "notupdate-check.example.net"}, Src: src(sensor)})
			b.HTTP = append(b.HTTP, event.HTTP{TS: ts, SrcIP: host, Host: []string{"update-check.example.net:8080", "198.51.100.23", "www.example.com"}[i%3],
				URI: []string{"/api/v2/sync?id=1", "/", "/index.html"}[i%3], UserAgent: []string{"EvilAgent/1.0", "Mozilla/5.0"}[i%2], Src: src(sensor)})
			b.TLS = append(b.TLS, event.TLS{TS: ts, SrcIP: host, DstIP: a("198.51.100.23"), ServerName: "update-check.example.net", JA3: "E7D705A3286E19EA42F587B344EE6865",
				JA3S: "f4febc55ea12b31ae17cfb7e614afda8", JA4: "t13d1516h2_8daaf6152771_02713d6af862",
				CertChainFPs: []string{fmt.Sprintf("%064x", i%2)}, Src: src(sensor)})
			b.X509 = append(b.X509, event.X509{TS: ts, Fingerprint: fmt.Sprintf("%040x", 7), Src: src(sensor)})
			b.Files = append(b.Files, event.File{TS: ts, SrcIP: host, MD5: fmt.Sprintf("%032x", i%3), SHA1: fmt.Sprintf("%040x", 9), SHA256: "C3B0479644C6DD8E231882D04CBFE1919815EC96758D3CA14008EF492982B6A4", Src: src(sensor)})
			if i%5 == 0 { // an address seen in the router's flows only
				b.Flows = append(b.Flows, event.Flow{TS: ts, End: ts.Add(time.Minute), SrcIP: a("198.51.100.99"), SrcPort: 50000, DstIP: host, DstPort: 3389,
					Proto: "tcp", Packets: 10, Bytes: 900, Src: src(sensor)})
			}
		}
		out = append(out, b)
	}
	return out
}

// IntelIndicators returns indicators of every type against IntelData.
func IntelIndicators() []event.Indicator {
	mk := func(t event.IOCType, v string, port uint16) event.Indicator {
		return event.Indicator{Source: "test", Type: t, Value: v, Port: port, Ref: "ref-" + v, Group: "g", Name: "n", Confidence: 80,
			TLP: event.TLPAmber, Tags: []string{"tlp:amber"}, Attack: []string{"T1071.001"}, Actionable: true,
			ValidFrom: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Modified: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)}
	}
	inds := []event.Indicator{
		mk(event.IOCIP, "198.51.100.23", 0), mk(event.IOCIP, "203.0.113.45", 8443), mk(event.IOCIP, "203.0.113.45", 9999),
		mk(event.IOCCIDR, "192.0.2.0/24", 0), mk(event.IOCCIDR, "2001:db8::/32", 0), mk(event.IOCCIDR, "45.60.0.0/16", 0),
		mk(event.IOCDomain, "update-check.example.net", 0), mk(event.IOCDomain, "t.cdn-metrics.example.org", 0), mk(event.IOCDomain, "3322.org", 0),
		mk(event.IOCDomain, "example.com", 0), mk(event.IOCURL, "update-check.example.net/api/v2/sync", 0),
		mk(event.IOCMD5, fmt.Sprintf("%032x", 2), 0), mk(event.IOCSHA1, fmt.Sprintf("%040x", 9), 0),
		mk(event.IOCSHA256, "c3b0479644c6dd8e231882d04cbfe1919815ec96758d3ca14008ef492982b6a4", 0),
		mk(event.IOCJA3, "e7d705a3286e19ea42f587b344ee6865", 0), mk(event.IOCJA3S, "f4febc55ea12b31ae17cfb7e614afda8", 0),
		mk(event.IOCJA4, "t13d1516h2_8daaf6152771_02713d6af862", 0), mk(event.IOCCertSHA256, fmt.Sprintf("%064x", 1), 0),
		mk(event.IOCCertSHA1, fmt.Sprintf("%040x", 7), 0), mk(event.IOCUserAgent, "EvilAgent/1.0", 0),
		mk(event.IOCEmail, "x@example.org", 0), mk(event.IOCIP, "198.51.100.99", 0),
	}
	revoked := mk(event.IOCIP, "192.0.2.200", 0)
	revoked.Source, revoked.Revoked, revoked.Actionable = "other", true, false
	conf := mk(event.IOCDomain, "nowhere.example", 0)
	conf.Confidence, conf.TLP, conf.Tags, conf.Attack, conf.ValidFrom, conf.Modified = -1, "", nil, nil, time.Time{}, time.Time{}
	return append(inds, revoked, conf)
}

func testIntel(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	all := &event.Batch{}
	for _, b := range IntelData() {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		all.Append(b)
	}
	inds := IntelIndicators()
	added, updated, err := s.PutIndicators(ctx, inds[:10])
	if err != nil || added != 10 || updated != 0 {
		t.Fatalf("PutIndicators = %d, %d, %v; want 10 added", added, updated, err)
	}
	added, updated, err = s.PutIndicators(ctx, inds)
	if err != nil || added != len(inds)-10 || updated != 10 {
		t.Fatalf("PutIndicators again = %d, %d, %v; want %d added, 10 updated", added, updated, err, len(inds)-10)
	}
	var got []event.Indicator
	if err := s.Indicators(ctx, func(i *event.Indicator) error { got = append(got, *i); return nil }); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(inds)
	slices.SortFunc(want, func(a, b event.Indicator) int { return cmpStr(a.Key(), b.Key()) })
	if len(got) != len(want) {
		t.Fatalf("Indicators: %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(normInd(got[i]), normInd(want[i])) {
			t.Errorf("indicator %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	day := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for _, w := range []store.Window{{}, {Since: day.Add(30 * time.Hour), Until: day.Add(70 * time.Hour)}, {Since: day.AddDate(0, 0, 10)}} {
		sightings := matchAll(t, s, w)
		ref := refMatch(all, w, inds)
		if w.Since.Year() == 2024 && w.Since.Day() == 29 {
			if len(sightings) != 0 {
				t.Errorf("window after the data: %d sightings", len(sightings))
			}
			continue
		}
		same(t, fmt.Sprintf("MatchIndicators(%v)", w), sightings, ref)
		if w.Since.IsZero() {
			keys := map[string]bool{}
			for _, x := range ref {
				keys[x.Key] = true
			}
			for _, i := range inds {
				wantSeen := i.Type.Matchable() && !i.Revoked && i.Value != "nowhere.example" && (i.Type != event.IOCIP || i.Port != 9999)
				if keys[i.Key()] != wantSeen {
					t.Errorf("indicator %s %s:%d sighted %v, want %v", i.Type, i.Value, i.Port, keys[i.Key()], wantSeen)
				}
			}
			if err := s.PutSightings(ctx, sightings); err != nil {
				t.Fatal(err)
			}
			same(t, "Sightings", collect(t, func(fn func(*event.Sighting) error) error { return s.Sightings(ctx, fn) }), ref)
		}
	}
	if err := s.SetState(ctx, "taxii:x", "2024-01-01T00:00:00Z"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.State(ctx, "taxii:x"); err != nil || v != "2024-01-01T00:00:00Z" {
		t.Errorf("State = %q, %v", v, err)
	}
	if v, err := s.State(ctx, "nothing"); err != nil || v != "" {
		t.Errorf("State(unset) = %q, %v", v, err)
	}
}

// matchAll returns the sightings of s's indicators over w.
func matchAll(t *testing.T, s store.Store, w store.Window) []event.Sighting {
	t.Helper()
	return collect(t, func(fn func(*event.Sighting) error) error { return s.MatchIndicators(context.Background(), w, fn) })
}

// collect returns the sightings each hands its callback, their peers
// copied.
func collect(t *testing.T, each func(func(*event.Sighting) error) error) []event.Sighting {
	t.Helper()
	var out []event.Sighting
	if err := each(func(x *event.Sighting) error {
		c := *x
		c.Peers = slices.Clone(x.Peers)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func normInd(i event.Indicator) event.Indicator {
	if len(i.Tags) == 0 {
		i.Tags = nil
	}
	if len(i.Attack) == 0 {
		i.Attack = nil
	}
	return i
}

// testDeleteIndicators deletes one source's indicators: the others stay,
// and the retro-hunt no longer sights what was deleted.
func testDeleteIndicators(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	for _, b := range IntelData() {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	inds := IntelIndicators()
	gone := slices.Clone(inds)
	for i := range gone {
		gone[i].Source = "withdrawn"
	}
	if _, _, err := s.PutIndicators(ctx, append(slices.Clone(inds), gone...)); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteIndicators(ctx, "withdrawn")
	if err != nil || n != len(gone) {
		t.Fatalf("DeleteIndicators = %d, %v; want %d", n, err, len(gone))
	}
	if n, err := s.DeleteIndicators(ctx, "never imported"); err != nil || n != 0 {
		t.Errorf("deleting an unknown source = %d, %v", n, err)
	}
	left := 0
	if err := s.Indicators(ctx, func(i *event.Indicator) error {
		left++
		if i.Source == "withdrawn" {
			t.Errorf("kept %+v", i)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if left != len(inds) {
		t.Errorf("%d indicators left, want %d", left, len(inds))
	}
	withdrawn := map[string]bool{}
	for _, i := range gone {
		withdrawn[i.Key()] = true
	}
	if err := s.MatchIndicators(ctx, store.Window{}, func(x *event.Sighting) error {
		if withdrawn[x.Key] {
			t.Errorf("a deleted indicator is sighted: %+v", x)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
