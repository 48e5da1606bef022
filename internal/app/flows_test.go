package app

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestHuntFlows hunts a store that holds only flow records, as an ISP's
// or an edge router's export gives them: a beacon of new connections
// every ten minutes (±10 %) for three days to an unusual port, a
// connection of six hours cut by the exporter every 30 minutes in both
// directions, a SYN scan of a thousand ports and a 300 MB upload. Each is
// found, from the flows (evidence.records), and the pieces of the long
// connection are not taken for a beacon.
func TestHuntFlows(t *testing.T) {
	a := netip.MustParseAddr
	t0 := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	var flows []event.Flow
	line := int64(0)
	add := func(ts time.Time, dur time.Duration, src string, sp uint16, dst string, dp uint16, proto string, flags uint8, pkts, bytes uint64) {
		line++
		flows = append(flows, event.Flow{TS: ts, End: ts.Add(dur), SrcIP: a(src), SrcPort: sp, DstIP: a(dst), DstPort: dp, Proto: proto,
			TCPFlags: flags, Packets: pkts, Bytes: bytes, Exporter: a("10.0.0.1"), Export: event.ExportIPFIX,
			Src: event.Source{Sensor: "edge", File: "/flows/edge.pcap", Line: line}})
	}
	n := 0
	for ts := t0.Add(3 * time.Minute); ts.Before(t0.AddDate(0, 0, 3)); n++ {
		sp := uint16(40000 + n%20000)
		add(ts, 2*time.Second, "10.1.0.5", sp, "203.0.113.50", 8531, "tcp", 0x1b, 8, 900)
		add(ts.Add(30*time.Millisecond), 2*time.Second, "203.0.113.50", 8531, "10.1.0.5", sp, "tcp", 0x1b, 6, 1400)
		ts = ts.Add(time.Duration(float64(10*time.Minute) * (0.9 + 0.2*float64(n%7)/6)))
	}
	for i := range 12 {
		ts := t0.Add(26*time.Hour + time.Duration(i)*30*time.Minute)
		add(ts, 30*time.Minute, "10.1.0.6", 50000, "198.51.100.60", 2222, "tcp", 0x18, 300, 60_000)
		add(ts.Add(time.Millisecond), 30*time.Minute, "198.51.100.60", 2222, "10.1.0.6", 50000, "tcp", 0x18, 300, 500_000)
	}
	for p := range 1000 {
		add(t0.Add(40*time.Hour+time.Duration(p)*10*time.Millisecond), 0, "10.1.0.7", 61000, "198.51.100.70", uint16(p+1), "tcp", 0x02, 1, 44)
	}
	add(t0.Add(50*time.Hour), 20*time.Minute, "10.1.0.8", 51000, "203.0.113.80", 443, "tcp", 0x1b, 220_000, 310_000_000)
	add(t0.Add(50*time.Hour+time.Millisecond), 20*time.Minute, "203.0.113.80", 443, "10.1.0.8", 51000, "tcp", 0x1b, 100_000, 4_000_000)

	m := storetest.NewMem()
	if err := m.Write(t.Context(), &event.Batch{Flows: flows}); err != nil {
		t.Fatal(err)
	}
	env, _ := environment(config.Default())
	ds, err := detectors(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runDetectors(t.Context(), m, env, ds, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, f := range res.Findings {
		if f.Evidence["records"] != "flow" {
			t.Errorf("a finding not from the flows: %s %s", f.Detector, f.Summary)
		}
		for _, d := range f.Detectors() {
			found[d+" "+f.Src.String()+">"+f.Dst.String()] = fmt.Sprintf("%.2f %s", f.Score, f.Summary)
		}
	}
	for _, want := range []string{"beacon 10.1.0.5>203.0.113.50", "longconn 10.1.0.6>198.51.100.60", "scan 10.1.0.7>198.51.100.70", "exfil 10.1.0.8>203.0.113.80"} {
		if found[want] == "" {
			t.Errorf("%s not found; found %v", want, found)
		}
	}
	if s := found["beacon 10.1.0.6>198.51.100.60"]; s != "" {
		t.Errorf("the pieces of one connection taken for a beacon: %s", s)
	}
	// --timings names both passes of a detector that runs over flows.
	var out strings.Builder
	printTimings(&out, res.Timings)
	for _, want := range []string{"beacon ", "beacon (flows) ", "ddos "} {
		if !strings.Contains(out.String(), "\n"+want) && !strings.HasPrefix(out.String(), want) {
			t.Errorf("--timings without %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ddos (flows)") {
		t.Errorf("--timings lists a flow pass of a detector that has none:\n%s", out.String())
	}
}
