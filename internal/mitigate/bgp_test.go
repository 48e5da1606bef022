package mitigate

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/mitigate/bgptest"
)

// Mitigation against a real router daemon: dwell peers with gobgpd, the
// black-hole route (with its community) and the FlowSpec rules of an
// attack's vectors appear in gobgpd's RIB within the alert latency bound
// and are withdrawn after the attack ends and the hold time passes; the
// safety rules refuse what they must.
func TestBGPWithGoBGP(t *testing.T) {
	g := bgptest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sp, err := NewSpeaker(BGPConfig{Peer: g.Addr, LocalAddr: bgptest.LocalAddr, LocalAS: bgptest.LocalAS, PeerAS: bgptest.PeerAS,
		RouterID: netip.MustParseAddr("10.255.0.2")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := sp.Established()
	done := make(chan struct{})
	go func() { defer close(done); sp.Run(ctx) }()
	select {
	case <-up:
	case <-time.After(20 * time.Second):
		t.Fatal("no BGP session with gobgpd")
	}

	var audit []string
	m := New(Config{
		Protected:      []Protected{{Prefix: netip.MustParsePrefix("10.20.0.0/16"), Blackhole: true, FlowSpec: true}, {Prefix: netip.MustParsePrefix("2001:db8::/32"), Blackhole: true}},
		Infrastructure: []netip.Prefix{netip.MustParsePrefix("10.20.0.1/32")},
		MaxRoutes:      5, Hold: time.Second,
	}, []Announcer{sp}, nil, func(action, object, detail string) { audit = append(audit, action+" "+object+" "+detail) })

	// The scenario's attack: SYN flood, DNS and NTP reflection on 10.20.0.40.
	if err := m.Start(ctx, "ddos-1", host("10.20.0.40"), []Vector{{"tcp-syn", 60}, {"udp/53", 1450}, {"udp/123", 468}}); err != nil {
		t.Fatal(err)
	}
	took := g.WaitRIB(t, "ipv4", 2*time.Second, func(rib map[string]string) bool {
		p := rib["10.20.0.40/32"]
		return strings.Contains(p, "65535:666") || strings.Contains(p, "4294902426") || strings.Contains(p, "BLACKHOLE")
	})
	t.Logf("black-hole route in gobgpd's RIB %s after the announcement", took)
	took = g.WaitRIB(t, "ipv4-flowspec", 2*time.Second, func(rib map[string]string) bool { return len(rib) == 3 })
	rib := g.RIB(t, "ipv4-flowspec")
	t.Logf("FlowSpec rules %s after: %v", took, keys(rib))
	for _, want := range []string{"[destination: 10.20.0.40/32][protocol: ==tcp][tcp-flags: =S]", "[destination: 10.20.0.40/32][protocol: ==udp][source-port: ==53][packet-length: >=725]",
		"[destination: 10.20.0.40/32][protocol: ==udp][source-port: ==123]"} {
		if _, ok := rib[want]; !ok {
			t.Errorf("no rule %s in %v", want, keys(rib))
		}
	}
	for k, p := range rib {
		if !strings.Contains(p, "discard") && !strings.Contains(p, "rate") {
			t.Errorf("rule %s has no discard action: %s", k, p)
		}
	}

	// Safety: an address outside the protected networks, the listed
	// infrastructure, and the route cap (five routes held: a sixth is
	// refused).
	for _, a := range []string{"192.0.2.7", "10.20.0.1"} {
		if err := m.Start(ctx, "ddos-x", host(a), vs("udp/53")); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want a refusal", a, err)
		}
	}
	if err := m.Start(ctx, "ddos-2", host("2001:db8::80"), vs("udp/123")); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "ddos-3", host("10.20.0.41"), vs("udp/53")); !errors.Is(err, ErrRefused) {
		t.Errorf("sixth route: %v, want a refusal", err)
	}
	g.WaitRIB(t, "ipv6", 2*time.Second, func(rib map[string]string) bool { return rib["2001:db8::80/128"] != "" })
	if rib := g.RIB(t, "ipv4"); len(rib) != 1 {
		t.Errorf("ipv4 RIB %v: only 10.20.0.40/32 may be there", keys(rib))
	}

	// The attacks end: nothing is withdrawn before the hold time, all of
	// it after.
	m.End("ddos-1")
	m.End("ddos-2")
	m.Sweep(ctx)
	if len(m.Announced()) != 5 {
		t.Errorf("withdrawn before the hold time: %v", m.Announced())
	}
	time.Sleep(1100 * time.Millisecond)
	m.Sweep(ctx)
	for _, fam := range []string{"ipv4", "ipv4-flowspec", "ipv6"} {
		g.WaitRIB(t, fam, 2*time.Second, func(rib map[string]string) bool { return len(rib) == 0 })
	}
	// A network attacked as a whole: a FlowSpec rule for the network,
	// no black hole.
	if err := m.Start(ctx, "ddos-4", netip.MustParsePrefix("10.20.5.0/24"), vs("udp/53")); err != nil {
		t.Fatal(err)
	}
	g.WaitRIB(t, "ipv4-flowspec", 2*time.Second, func(rib map[string]string) bool {
		return rib["[destination: 10.20.5.0/24][protocol: ==udp][source-port: ==53]"] != ""
	})
	if rib := g.RIB(t, "ipv4"); len(rib) != 0 {
		t.Errorf("a network black-holed: %v", keys(rib))
	}
	m.WithdrawAll(ctx)
	g.WaitRIB(t, "ipv4-flowspec", 2*time.Second, func(rib map[string]string) bool { return len(rib) == 0 })
	joined := strings.Join(audit, "\n")
	for _, want := range []string{"mitigation_announce ddos-1 announce blackhole 10.20.0.40/32", "mitigation_refused ddos-x",
		"mitigation_refused ddos-3", "mitigation_withdraw  withdraw flowspec destination 10.20.0.40/32 protocol udp source-port 53 packet-length >=725 discard"} {
		if !strings.Contains(joined, want) {
			t.Errorf("audit lacks %q:\n%s", want, joined)
		}
	}
	cancel()
	<-done
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// host is an address's host prefix.
func host(a string) netip.Prefix {
	ad := netip.MustParseAddr(a)
	return netip.PrefixFrom(ad, ad.BitLen())
}

// vs are vectors of unknown packet lengths.
func vs(names ...string) []Vector {
	out := make([]Vector, len(names))
	for i, n := range names {
		out[i] = Vector{Name: n}
	}
	return out
}
