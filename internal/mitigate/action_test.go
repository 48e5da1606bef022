package mitigate

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The nftables announcer against the kernel's nftables: a table and sets
// made for the test, the attacked addresses added and removed. It needs
// root (CAP_NET_ADMIN); elsewhere it skips.
func TestNFTables(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil || os.Geteuid() != 0 {
		t.Skip("nft is not installed or the test does not run as root; skipping")
	}
	table := fmt.Sprintf("dwelltest%d", os.Getpid())
	for _, args := range [][]string{{"add", "table", "inet", table}, {"add", "set", "inet", table, "bh4", "{ type ipv4_addr; }"},
		{"add", "set", "inet", table, "bh6", "{ type ipv6_addr; }"}} {
		if out, err := exec.CommandContext(t.Context(), "nft", args...).CombinedOutput(); err != nil {
			t.Skipf("nft %v: %v: %s; skipping", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.CommandContext(context.Background(), "nft", "delete", "table", "inet", table).Run() })
	n := &NFTables{Family: "inet", Table: table, Set4: "bh4", Set6: "bh6"}
	list := func() string {
		out, err := exec.CommandContext(t.Context(), "nft", "list", "table", "inet", table).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	m := New(Config{Protected: []Protected{{Prefix: netip.MustParsePrefix("10.20.0.0/16"), Blackhole: true, FlowSpec: true},
		{Prefix: netip.MustParsePrefix("2001:db8::/32"), Blackhole: true}}, Hold: time.Millisecond}, []Announcer{n}, nil, nil)
	if err := m.Start(t.Context(), "a", host("10.20.0.40"), vs("udp/53")); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context(), "b", host("2001:db8::80"), vs("udp/53")); err != nil {
		t.Fatal(err)
	}
	if l := list(); !strings.Contains(l, "10.20.0.40") || !strings.Contains(l, "2001:db8::80") {
		t.Fatalf("elements not added:\n%s", l)
	}
	m.End("a")
	m.End("b")
	time.Sleep(5 * time.Millisecond)
	m.Sweep(t.Context())
	if l := list(); strings.Contains(l, "10.20.0.40") || strings.Contains(l, "2001:db8::80") {
		t.Fatalf("elements not removed:\n%s", l)
	}
}

// The exec hook gets the route in its environment; dry-run mode runs
// nothing and audits what it would have done.
func TestExecAndDryRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$DWELL_ACTION|$DWELL_KIND|$DWELL_TARGET|$DWELL_PROTO|$DWELL_SRC_PORT|$DWELL_ROUTE\" >> "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Protected: []Protected{{Prefix: netip.MustParsePrefix("10.20.0.0/16"), FlowSpec: true}}, Hold: time.Millisecond}
	m := New(cfg, []Announcer{&Exec{Command: []string{script}}}, nil, nil)
	if err := m.Start(t.Context(), "a", host("10.20.0.40"), vs("udp/123")); err != nil {
		t.Fatal(err)
	}
	m.End("a")
	time.Sleep(5 * time.Millisecond)
	m.Sweep(t.Context())
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "announce|flowspec|10.20.0.40/32|udp|123|flowspec destination 10.20.0.40/32 protocol udp source-port 123 discard\n" +
		"withdraw|flowspec|10.20.0.40/32|udp|123|flowspec destination 10.20.0.40/32 protocol udp source-port 123 discard\n"
	if string(data) != want {
		t.Errorf("hook calls:\n%s\nwant:\n%s", data, want)
	}

	cfg.DryRun = true
	var audit []string
	m = New(cfg, []Announcer{&Exec{Command: []string{script}}}, nil, func(a, o, d string) { audit = append(audit, a+" "+o+" "+d) })
	if err := m.Start(t.Context(), "b", host("10.20.0.41"), vs("tcp-syn")); err != nil {
		t.Fatal(err)
	}
	if data2, _ := os.ReadFile(out); string(data2) != want {
		t.Errorf("dry run ran the hook:\n%s", data2)
	}
	if len(audit) != 1 || audit[0] != "mitigation_dry_run b announce flowspec destination 10.20.0.41/32 protocol tcp tcp-flags syn !ack discard" {
		t.Errorf("audit %q", audit)
	}
	// A network attacked as a whole gets FlowSpec rules for the network,
	// never a black hole; one that holds listed infrastructure, nothing.
	whole := New(Config{Protected: []Protected{{Prefix: netip.MustParsePrefix("10.30.0.0/16"), Blackhole: true, FlowSpec: true}},
		Infrastructure: []netip.Prefix{netip.MustParsePrefix("10.30.9.1/32")}}, nil, nil, nil)
	routes, err := whole.Routes(netip.MustParsePrefix("10.30.1.0/24"), vs("udp/53", "tcp-syn"))
	if err != nil || len(routes) != 2 || routes[0].String() != "flowspec destination 10.30.1.0/24 protocol udp source-port 53 discard" ||
		routes[1].Kind != FlowSpec {
		t.Errorf("whole network: %v %v", routes, err)
	}
	// SYN-ACK reflection: SYN and ACK only, not all TCP to the target,
	// and a rule GoBGP's codec takes.
	if r, err := whole.Routes(netip.MustParsePrefix("10.30.1.0/24"), vs("tcp-synack")); err != nil || len(r) != 1 || !r[0].SYNACK || r[0].SYN ||
		r[0].String() != "flowspec destination 10.30.1.0/24 protocol tcp tcp-flags syn+ack discard" {
		t.Errorf("tcp-synack: %v %v", r, err)
	} else if _, err := (&Speaker{}).update(r[0], false); err != nil {
		t.Errorf("tcp-synack as a BGP update: %v", err)
	}
	if _, err := whole.Routes(netip.MustParsePrefix("10.30.0.0/16"), vs("udp/53")); !errors.Is(err, ErrRefused) {
		t.Errorf("a network holding infrastructure: %v", err)
	}
	if _, err := whole.Routes(netip.MustParsePrefix("10.0.0.0/8"), vs("udp/53")); !errors.Is(err, ErrRefused) {
		t.Errorf("wider than the protected network: %v", err)
	}
	// A network that allows no mitigation refuses.
	if _, err := New(Config{Protected: []Protected{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}, nil, nil, nil).Routes(
		host("10.1.1.1"), vs("udp/53")); err == nil {
		t.Error("a network without blackhole or flowspec allowed a route")
	}
}
