package duckdb

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
)

// TestNetCond checks the SQL network conditions against netip on
// addresses in and around each prefix: exact prefixes must agree, inexact
// ones must hold a superset.
func TestNetCond(t *testing.T) {
	s, err := Open(t.Context(), ":memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	addrs := []string{"10.0.0.1", "10.255.255.255", "11.0.0.1", "9.255.255.255", "172.16.0.1", "172.31.255.254", "172.32.0.1", "172.15.9.9",
		"192.168.0.1", "192.168.127.3", "192.168.128.3", "192.169.0.1", "100.64.0.1", "100.127.255.255", "100.128.0.0", "0.0.0.0",
		"255.255.255.255", "203.0.113.7", "203.0.113.8", "fd00::1", "fdff:1::2", "fc00::1", "fe80::1", "febf::1", "fec0::1",
		"2001:db8:1::1", "2001:db8:2::1", "2001:db9::1", "::1", "::", "::ffff:10.0.0.1", "::ffff:203.0.113.7", "::ffff:172.20.1.1", "2001:db8:1:ffff::9"}
	for _, nets := range [][]string{
		{"10.0.0.0/8"}, {"172.16.0.0/12"}, {"192.168.0.0/17"}, {"100.64.0.0/10"}, {"203.0.113.7/32"}, {"0.0.0.0/0"},
		{"fc00::/7"}, {"fe80::/10"}, {"::/0"}, {"2001:db8:1::/48"}, {"10.0.0.0/8", "fd00::/8", "192.168.0.0/16"},
	} {
		var ps []netip.Prefix
		exact := true
		for _, n := range nets {
			p := netip.MustParsePrefix(n)
			ps = append(ps, p)
			exact = exact && (p.Addr().Is4() || p.Bits() <= 16)
		}
		sure, maybe := netCond("a", ps)
		for _, a := range addrs {
			var gotSure, gotMaybe bool
			q := "SELECT " + sure + ", " + maybe + " FROM (SELECT ? AS a)"
			if err := s.db.QueryRowContext(t.Context(), q, a).Scan(&gotSure, &gotMaybe); err != nil {
				t.Fatalf("%v: %v\n%s", nets, err, q)
			}
			in := store.InNets(ps, netip.MustParseAddr(a))
			if gotSure && !in {
				t.Errorf("%v: %s surely inside, but is not", nets, a)
			}
			if in && !gotMaybe {
				t.Errorf("%v: %s inside, but not even maybe", nets, a)
			}
			if exact && (gotSure != in || gotMaybe != in) {
				t.Errorf("%v (exact): %s inside=%v, sql sure=%v maybe=%v", strings.Join(nets, ","), a, in, gotSure, gotMaybe)
			}
		}
	}
}
