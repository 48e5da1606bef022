package mitigate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// NFTables adds attacked addresses to nftables sets, for a local
// scrubbing rule the operator wrote (for example `ip daddr @dwell4
// drop` in a prerouting chain): black-hole routes only, one set per
// address family. The table and sets must exist; dwell changes their
// elements, never the rules.
type NFTables struct {
	// Family and Table name the table ("inet", "dwell").
	Family, Table string
	// Set4 and Set6 are the sets of IPv4 and IPv6 addresses.
	Set4, Set6 string
	// Binary is the nft program; default "nft".
	Binary string
}

var _ Announcer = (*NFTables)(nil)

// Name implements Announcer.
func (n *NFTables) Name() string { return "nftables " + n.Family + " " + n.Table }

func (n *NFTables) run(ctx context.Context, op string, r Route) error {
	if r.Kind != Blackhole {
		return nil // FlowSpec rules are for routers
	}
	set := n.Set4
	if r.Dst.Addr().Is6() {
		set = n.Set6
	}
	if set == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	bin := n.Binary
	if bin == "" {
		bin = "nft"
	}
	out, err := exec.CommandContext(ctx, bin, op, "element", //nolint:gosec // G204: the configured nft and sets, and an address
		n.Family, n.Table, set, "{ "+r.Dst.Addr().String()+" }").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft %s element %s %s %s: %w: %s", op, n.Family, n.Table, set, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Announce implements Announcer.
func (n *NFTables) Announce(ctx context.Context, r Route) error { return n.run(ctx, "add", r) }

// Withdraw implements Announcer.
func (n *NFTables) Withdraw(ctx context.Context, r Route) error { return n.run(ctx, "delete", r) }

// Exec runs the operator's command for each announcement and withdrawal,
// with the route in its environment: DWELL_ACTION (announce, withdraw),
// DWELL_ROUTE (the route as the audit trail writes it), DWELL_KIND
// (blackhole, flowspec), DWELL_TARGET (the destination prefix: an
// address's host prefix, or a network), DWELL_PROTO, DWELL_SRC_PORT and
// DWELL_RATE_LIMIT. A command that fails or runs over 30 s is an error.
type Exec struct {
	Command []string
}

var _ Announcer = (*Exec)(nil)

// Name implements Announcer.
func (e *Exec) Name() string { return "exec " + strings.Join(e.Command, " ") }

func (e *Exec) run(ctx context.Context, op string, r Route) error {
	if len(e.Command) == 0 {
		return fmt.Errorf("exec: no command")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...) //nolint:gosec // G204: the operator's configured hook
	cmd.Env = append(os.Environ(), "DWELL_ACTION="+op, "DWELL_ROUTE="+r.String(), "DWELL_KIND="+string(r.Kind),
		"DWELL_TARGET="+r.Dst.String(), "DWELL_PROTO="+r.Proto, "DWELL_TCP_FLAGS="+tcpFlags(r), fmt.Sprintf("DWELL_SRC_PORT=%d", r.SrcPort),
		fmt.Sprintf("DWELL_RATE_LIMIT=%.0f", r.RateLimit))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", e.Name(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Announce implements Announcer.
func (e *Exec) Announce(ctx context.Context, r Route) error { return e.run(ctx, "announce", r) }

// Withdraw implements Announcer.
func (e *Exec) Withdraw(ctx context.Context, r Route) error { return e.run(ctx, "withdraw", r) }

// tcpFlags names the TCP flags a route matches for the exec hook: "syn"
// (SYN without ACK), "syn+ack", or "" (any).
func tcpFlags(r Route) string {
	switch {
	case r.SYN:
		return "syn"
	case r.SYNACK:
		return "syn+ack"
	}
	return ""
}
