// Package bgptest starts Debian's GoBGP daemon (gobgpd) on loopback for
// tests of dwell's BGP mitigation, and reads its RIB with the gobgp CLI,
// as an operator would.
package bgptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Peer is what dwell's speaker is configured with to reach the daemon:
// it connects from LocalAddr as AS LocalAS to AS 65000.
const (
	LocalAddr = "127.0.0.2"
	LocalAS   = 65001
	PeerAS    = 65000
)

// GoBGP is a running gobgpd.
type GoBGP struct {
	// Addr is its BGP address (127.0.0.1:port).
	Addr    string
	apiPort int
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts gobgpd as AS 65000 on 127.0.0.1, accepting a peer of AS
// 65001 from 127.0.0.2 for IPv4 and IPv6 unicast and FlowSpec; it skips
// the test where gobgpd or gobgp is not installed. The daemon is killed
// when the test ends, its log shown if the test failed.
func Start(t testing.TB) *GoBGP {
	t.Helper()
	bin, err := exec.LookPath("gobgpd")
	if err != nil {
		t.Skip("gobgpd is not installed (apt-get install gobgpd); skipping the BGP test")
	}
	if _, err := exec.LookPath("gobgp"); err != nil {
		t.Skip("gobgp (the CLI) is not installed; skipping the BGP test")
	}
	bgpPort := freePort(t)
	g := &GoBGP{Addr: fmt.Sprintf("127.0.0.1:%d", bgpPort), apiPort: freePort(t)}
	var fams strings.Builder
	for _, f := range []string{"ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"} {
		fmt.Fprintf(&fams, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
	}
	conf := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "10.255.0.1"
  port = %d
  local-address-list = ["127.0.0.1"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
%s`, PeerAS, bgpPort, LocalAddr, LocalAS, fams.String())
	path := filepath.Join(t.TempDir(), "gobgpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cmd := exec.CommandContext(context.Background(), bin, "-f", path, //nolint:gosec // G204: the installed gobgpd
		"-t", "toml", "--api-hosts", fmt.Sprintf("127.0.0.1:%d", g.apiPort), "--log-plain")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gobgpd:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := g.CLI("global"); err == nil {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("gobgpd did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CLI runs the gobgp command against the daemon.
func (g *GoBGP) CLI(args ...string) ([]byte, error) {
	args = append([]string{"-u", "127.0.0.1", "-p", fmt.Sprint(g.apiPort)}, args...)
	out, err := exec.CommandContext(context.Background(), "gobgp", args...).CombinedOutput() //nolint:gosec // G204: the installed gobgp CLI
	if err != nil {
		return out, fmt.Errorf("gobgp %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// RIB returns the destinations in the daemon's global RIB of one family
// ("ipv4", "ipv6", "ipv4-flowspec", ...) as `gobgp global rib -a FAMILY
// -j` prints them: each prefix or FlowSpec rule with its paths' JSON.
func (g *GoBGP) RIB(t testing.TB, family string) map[string]string {
	t.Helper()
	out, err := g.CLI("global", "rib", "-a", family, "-j")
	if err != nil {
		t.Fatal(err)
	}
	out = bytes.TrimSpace(out)
	var dsts map[string][]json.RawMessage
	if len(out) > 0 {
		if err := json.Unmarshal(out, &dsts); err != nil {
			t.Fatalf("gobgp output %q: %v", out, err)
		}
	}
	rib := map[string]string{}
	for k, paths := range dsts {
		for _, p := range paths {
			rib[k] += string(p)
		}
	}
	return rib
}

// WaitRIB polls the daemon until want holds of its RIB of family, and
// returns how long that took; the test fails after within.
func (g *GoBGP) WaitRIB(t testing.TB, family string, within time.Duration, want func(map[string]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		rib := g.RIB(t, family)
		if want(rib) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s RIB after %s: %v", family, within, rib)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
