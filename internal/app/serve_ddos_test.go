package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/alert"
	"github.com/dwell-nsm/dwell/internal/alert/alerttest"
	"github.com/dwell-nsm/dwell/internal/collect"
	"github.com/dwell-nsm/dwell/internal/mitigate/bgptest"
	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

// freeUDP returns a UDP port free on 127.0.0.1 now.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := new(net.ListenConfig).ListenPacket(t.Context(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestServeDDoS is the live DDoS defence end to end: dwell serve
// collects the scenario's edge export over UDP (replayed here), the
// streaming detector finds the flood, the attack is announced by webhook
// and mitigated through a BGP session to a real gobgpd (black-hole route
// and FlowSpec rules in its RIB), and when the attack ends the routes
// are withdrawn after the hold time; every flow is stored, the actions
// are in the audit trail and the counters in the metrics.
func TestServeDDoS(t *testing.T) {
	g := bgptest.Start(t)
	dir := t.TempDir()
	_, capture, truth := scenariotest.FlowCapture(t)
	db := filepath.Join(dir, "dwell.db")
	udp := freeUDP(t)
	hook, hookIn := alerttest.Webhook(t, 0)
	cfgFile := filepath.Join(dir, "dwell.yaml")
	cfg := fmt.Sprintf(`store: %s
sensor: edge
serve:
  listen: 127.0.0.1:0
  hunt_after: 1s
  collect:
    listen: [%q]
    sockets: 1
  ddos:
    networks: [{prefix: 10.20.0.0/16, pps: 10000, blackhole: true, flowspec: true}]
    end_after: 2s
    max_hold: 2s
  mitigation:
    hold: 1s
    infrastructure: [10.20.0.1]
    bgp: [{peer: %q, local_addr: %s, local_as: %d, peer_as: %d, router_id: 10.255.0.2}]
  alerts:
    min_severity: low
    webhooks: [{url: %q}]
`, db, udp, g.Addr, bgptest.LocalAddr, bgptest.LocalAS, bgptest.PeerAS, hook)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, stop := startServe(t, "--config", cfgFile)
	waitFor(t, "the BGP session", func() bool { return strings.Contains(log.String(), "bgp: session established") })

	// Ten minutes of the capture around the attack's start, a minute a
	// second (the detector's clock is the wall clock: faster, the edge's
	// ordinary traffic would look like a flood too); the first datagram
	// with an attack record is timed.
	target := truth.DDoS.Target
	firstAttack := truth.DDoS.From.Add(time.Minute) // the first minute's records leave at its end
	var sentAt atomic.Int64
	st, err := collect.Replay(t.Context(), bytes.NewReader(capture), udp, collect.ReplayOptions{Speed: 60,
		From: truth.DDoS.From.Add(-4 * time.Minute), To: truth.DDoS.From.Add(6 * time.Minute),
		Sent: func(captured, at time.Time) {
			if !captured.Before(firstAttack) && sentAt.Load() == 0 {
				sentAt.Store(at.UnixNano())
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	alerts := func(event string) []alert.Alert {
		var out []alert.Alert
		for _, m := range hookIn.Messages() {
			var a alert.Alert
			if err := json.Unmarshal([]byte(m), &a); err == nil && a.Event == event {
				out = append(out, a)
			}
		}
		return out
	}
	waitFor(t, "the attack's alert", func() bool { return len(alerts("ddos_start")) > 0 })
	a := alerts("ddos_start")[0]
	t.Logf("alert %s after the first attack datagram was sent: %s", a.At.Sub(time.Unix(0, sentAt.Load())).Round(time.Millisecond), a.Summary)
	if a.Class != "ddos" || a.Hosts[0] != target || !strings.Contains(a.Summary, "TCP SYN flood") || !strings.Contains(strings.Join(a.Changes, " "), "blackhole "+target+"/32") {
		t.Errorf("alert %+v", a)
	}
	g.WaitRIB(t, "ipv4", 5*time.Second, func(rib map[string]string) bool { return rib[target+"/32"] != "" })
	g.WaitRIB(t, "ipv4-flowspec", 5*time.Second, func(rib map[string]string) bool { return len(rib) == 3 })

	// The attack ends: an alert, and the routes go after the hold time.
	waitFor(t, "the end of the attack", func() bool { return len(alerts("ddos_end")) > 0 })
	for _, fam := range []string{"ipv4", "ipv4-flowspec"} {
		g.WaitRIB(t, fam, 10*time.Second, func(rib map[string]string) bool { return len(rib) == 0 })
	}

	// Every flow decoded is stored and queryable through the server.
	sf := readServerFile(t, db)
	metrics := func() string {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, sf.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return b.String()
	}
	var flows int64
	waitFor(t, "the flows stored", func() bool {
		m := metrics()
		if !strings.Contains(m, fmt.Sprintf("dwell_collect_datagrams_total %d\n", st.Messages)) {
			return false
		}
		if _, err := fmt.Sscanf(m[strings.Index(m, "\ndwell_collect_flows_total ")+1:], "dwell_collect_flows_total %d", &flows); err != nil {
			t.Fatal(err)
		}
		code, out, _ := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM flow")
		return code == ExitOK && strings.TrimSpace(out) == fmt.Sprintf("n\n%d", flows)
	})
	m := metrics()
	for _, w := range []string{fmt.Sprintf("dwell_collect_stored_total %d", flows), `dwell_ddos_attacks_total{event="start"} 1`,
		`dwell_ddos_attacks_total{event="end"} 1`, `dwell_ddos_mitigations_total{outcome="announced"} 1`, "dwell_collect_kernel_drops_total 0",
		"dwell_collect_dropped_total 0"} {
		if !strings.Contains(m, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	// The hunt that follows the stored flows makes the attack a ddos
	// incident on the target, as for ingested flows.
	waitFor(t, "the ddos incident", func() bool {
		code, out, _ := runDwell(t, "incidents", "--db", db, "--format", "json")
		return code == ExitOK && strings.Contains(out, `"class": "ddos"`) && strings.Contains(out, target)
	})
	if code := stop(); code != ExitOK {
		t.Fatalf("exit %d:\n%s", code, log.String())
	}
	trail, err := os.ReadFile(filepath.Join(db+".serve", auditFileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"action":"mitigation_announce"`, `"action":"mitigation_withdraw"`, "blackhole " + target + "/32 by bgp"} {
		if !bytes.Contains(trail, []byte(w)) {
			t.Errorf("audit trail lacks %s", w)
		}
	}
	if code, out, errOut := runDwell(t, "audit", "verify", "--db", db); code != ExitOK {
		t.Errorf("audit verify: %s %s", out, errOut)
	}
}

// The collector's flows go into a ClickHouse store too: dwell serve on
// the two-shard cluster receives the scenario's export and every flow is
// stored there, queryable through the server.
func TestServeCollectClickHouse(t *testing.T) {
	if chServers == nil {
		t.Skip(chSkip)
	}
	_, capture, truth := scenariotest.FlowCapture(t)
	dir := t.TempDir()
	udp := freeUDP(t)
	cfgFile := filepath.Join(dir, "dwell.yaml")
	cfg := fmt.Sprintf(`store: %q
sensor: edge
serve:
  listen: 127.0.0.1:0
  state_dir: %s
  collect: {listen: [%q], sockets: 2}
`, chServers.ClusterURL(), filepath.Join(dir, "state"), udp)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stop := startServe(t, "--config", cfgFile)
	if _, err := collect.Replay(t.Context(), bytes.NewReader(capture), udp, collect.ReplayOptions{Speed: 18_000}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("n\n%d", truth.Counts["flows"])
	waitFor(t, "the flows in ClickHouse", func() bool {
		code, out, _ := runDwell(t, "query", "--config", cfgFile, "--format", "csv", "SELECT count() AS n FROM flow")
		return code == ExitOK && strings.TrimSpace(out) == want
	})
	if code := stop(); code != ExitOK {
		t.Errorf("exit %d", code)
	}
}
