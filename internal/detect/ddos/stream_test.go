package ddos

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/ingest/pcap"
	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

const datasets = "../../../../shared/datasets"

// feed gives the stream flows at their arrival times, ticking every
// second of the arrival clock in between, and a minute more at the end.
type feeder struct {
	s    *Stream
	last time.Time
}

func (f *feeder) at(now time.Time, flows []event.Flow) {
	for !f.last.IsZero() && f.last.Add(time.Second).Before(now) {
		f.last = f.last.Add(time.Second)
		f.s.Tick(f.last)
	}
	f.s.Tick(now) // what expires now goes before what arrives
	f.s.Observe(now, flows)
	f.last = now
}

func (f *feeder) drain(d time.Duration) {
	for end := f.last.Add(d); f.last.Before(end); {
		f.last = f.last.Add(time.Second)
		f.s.Tick(f.last)
	}
}

// The scenario's DDoS, its edge router's IPFIX export decoded as a
// collector receives it (each message at its capture time): one attack
// on the web server, found with the first minute's export, with its
// three vectors, ended after the attack; the ordinary edge traffic makes
// none.
func TestStreamScenario(t *testing.T) {
	_, data, truth := scenariotest.FlowCapture(t)
	var events []Event
	s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}}}, func(e Event) { events = append(events, e) })
	f := &feeder{s: s}
	dec := netflow.NewDecoder()
	var flows []event.Flow
	err := netflow.Messages(bytes.NewReader(data), func(m netflow.Message) error {
		var err error
		flows, err = dec.Decode(m.Exporter, m.TS, m.Payload, flows[:0])
		if err != nil {
			return err
		}
		f.at(m.TS, flows)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.drain(5 * time.Minute)
	events = onlyStartEnd(events)
	if len(events) != 2 || events[0].Kind != "start" || events[1].Kind != "end" {
		t.Fatalf("events: %+v", events)
	}
	a := events[1].Attack
	t.Log(a.Summary(), a.Trigger)
	if a.Target.String() != truth.DDoS.Target {
		t.Errorf("target %s, truth %s", a.Target, truth.DDoS.Target)
	}
	// The first attack records leave the router at the end of the attack's
	// first minute.
	if first := truth.DDoS.From.Add(time.Minute); a.Start.Before(first) || a.Start.After(first.Add(5*time.Second)) {
		t.Errorf("start %s, first attack export %s", a.Start, first)
	}
	if a.End.Before(truth.DDoS.To) || a.End.After(truth.DDoS.To.Add(3*time.Minute)) {
		t.Errorf("end %s, attack ended %s", a.End, truth.DDoS.To)
	}
	vec := a.Vector()
	slices.Sort(vec)
	if !slices.Equal(vec, []string{"tcp-syn", "udp/123", "udp/53"}) {
		t.Errorf("vectors %v (%v)", vec, a.Vectors)
	}
	// The scenario's DNS responses are 1,450 bytes, its NTP ones 468.
	if a.MeanLength("udp/53") != 1450 || a.MeanLength("udp/123") != 468 {
		t.Errorf("mean lengths %d, %d", a.MeanLength("udp/53"), a.MeanLength("udp/123"))
	}
	if a.Sources < 20 || len(a.TopSources) == 0 || len(a.Timeline) < 100 || a.PeakPPS < 10_000 {
		t.Errorf("sources %d, top %v, %d timeline samples, peak %.0f pps", a.Sources, a.TopSources, len(a.Timeline), a.PeakPPS)
	}
	if st := s.Stats(); st.Active != 0 || st.Attacks != 1 || st.Untracked != 0 {
		t.Errorf("stats %+v", st)
	}
}

// captureFlows reads a traffic capture's flows as ingest/pcap makes
// them.
func captureFlows(t *testing.T, path string) []event.Flow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := &ingest.Input{Path: path, Head: data[:min(len(data), event.HeadSize)], Final: true}
	src, err := pcap.Formats()[0].Open(bytes.NewReader(data), in)
	if err != nil {
		t.Fatal(err)
	}
	var all event.Batch
	for {
		var b event.Batch
		err := src.Next(t.Context(), &b, 1000)
		all.Append(&b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return all.Flows
}

// The shared DDoS captures (victim side, all attack traffic), as flows
// arriving when they end: each is one attack on the victim, of its
// vector. The captures are short samples of attacks, so the threshold is
// low.
func TestStreamCaptures(t *testing.T) {
	dir := filepath.Join(datasets, "ddos-stopddos")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset ddos-stopddos is not here (%v); skipping", err)
	}
	for _, c := range []struct {
		file, vector string
		pps          float64
	}{
		{"pkt.TCP.synflood.spoofed.pcap", "tcp-syn", 100},
		{"pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", "tcp-syn", 100},
		{"amp.TCP.reflection.SYNACK.pcap", "tcp-synack", 100},
		{"amp.UDP.isakmp.pcap", "udp/4500", 100},
		{"amp.UDP.snmp.src161.pcapng", "udp/161", 100},
		{"amp.UDP.bacnet.IOT.37810.pcapng", "udp/47808", 100},
		// The slowest sample: 1,300 packets of DNS responses and their
		// fragments in 30 s, and twice as many TCP packets that are not
		// DNS (the dataset's README): the reflection is one vector of two.
		{"amp.dns.RRSIG.fragmented.pcap", "udp/53", 30},
	} {
		t.Run(c.file, func(t *testing.T) {
			flows := captureFlows(t, filepath.Join(dir, c.file))
			slices.SortStableFunc(flows, func(a, b event.Flow) int { return a.End.Compare(b.End) })
			var events []Event
			s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("10.10.10.0/24"), PPS: c.pps}}, MinSources: 5},
				func(e Event) { events = append(events, e) })
			f := &feeder{s: s}
			for i := range flows {
				f.at(flows[i].End, flows[i:i+1])
			}
			f.drain(2 * time.Minute)
			events = onlyStartEnd(events)
			if len(events) != 2 {
				t.Fatalf("%d events: %+v", len(events), events)
			}
			a := events[1].Attack
			t.Log(a.Summary())
			if a.Target.String() != "10.10.10.10" && a.Target.String() != "10.10.10.1" {
				t.Errorf("target %s", a.Target)
			}
			if v := a.Vector(); !slices.Contains(v[:min(len(v), 2)], c.vector) || (v[0] != c.vector && c.file != "amp.dns.RRSIG.fragmented.pcap") {
				t.Errorf("vectors %v (%v), want %s", v, a.Vectors, c.vector)
			}
		})
	}
}

// The safety of the tracking: flows to unprotected addresses are not
// tracked, MaxTargets bounds the addresses, one source is not an attack,
// and a rate under the end level for EndAfter ends the attack.
func TestStreamBounds(t *testing.T) {
	var events []Event
	s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), PPS: 1000}}, MaxTargets: 3, MinSources: 2},
		func(e Event) { events = append(events, e) })
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	flow := func(src, dst string, packets uint64) event.Flow {
		return event.Flow{TS: t0, End: t0, SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), Proto: "udp", SrcPort: 53,
			DstPort: 4444, Packets: packets, Bytes: packets * 1000}
	}
	f := &feeder{s: s}
	f.at(t0, []event.Flow{flow("203.0.113.1", "198.51.100.1", 1e6)}) // not protected
	f.at(t0, []event.Flow{flow("203.0.113.1", "192.0.2.1", 1e6)})    // one source
	for i := range 5 {
		f.at(t0, []event.Flow{flow("203.0.113.2", netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}).String(), 1)})
	}
	if st := s.Stats(); st.Targets != 3 || st.Untracked != 3 || len(events) != 0 {
		t.Fatalf("stats %+v, events %+v", st, events)
	}
	f.drain(5 * time.Second)
	if st := s.Stats(); st.Targets != 0 {
		t.Fatalf("idle targets kept: %+v", st)
	}
	t1 := f.last
	f.at(t1, []event.Flow{flow("203.0.113.1", "192.0.2.1", 3000), flow("203.0.113.2", "192.0.2.1", 3000)})
	if len(events) != 1 || events[0].Kind != "start" || events[0].Attack.Trigger == "" {
		t.Fatalf("events %+v", events)
	}
	// The rate (6,000 packets over the 2 s window) drops to zero after
	// it; the attack ends 30 s later.
	f.drain(time.Minute)
	if len(events) != 2 || events[1].Kind != "end" {
		t.Fatalf("events %+v", events)
	}
	if d := events[1].Attack.End.Sub(t1); d < 2*time.Second || d > 3*time.Second {
		t.Errorf("ended %s after the start", d)
	}
}

// onlyStartEnd drops the update events.
func onlyStartEnd(events []Event) []Event {
	return slices.DeleteFunc(events, func(e Event) bool { return e.Kind == "update" })
}

// steady sends the stream, for secs seconds from t0, a flow a second to
// each of dsts of pps packets, from sources distinct per second.
func steady(f *feeder, t0 time.Time, secs int, dsts []netip.Addr, pps uint64) time.Time {
	for i := range secs {
		now := t0.Add(time.Duration(i) * time.Second)
		var flows []event.Flow
		for j, d := range dsts {
			src := netip.AddrFrom4([4]byte{203, 0, byte(j % 250), byte(1 + i%250)})
			flows = append(flows, event.Flow{TS: now.Add(-time.Second), End: now, SrcIP: src, DstIP: d, Proto: "udp", SrcPort: 53,
				DstPort: 4444, Packets: pps, Bytes: pps * 1000})
		}
		f.at(now, flows)
	}
	return t0.Add(time.Duration(secs) * time.Second)
}

// An attack spread over a network's addresses, each under its own
// threshold (carpet bombing), is an attack on the network when the
// network has thresholds of its own; its addresses are not attacks.
func TestStreamCarpetBombing(t *testing.T) {
	var events []Event
	s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), PPS: 10_000, NetPPS: 20_000}},
		MinSources: 5, EndAfter: 5 * time.Second}, func(e Event) { events = append(events, e) })
	var dsts []netip.Addr
	for i := range 200 {
		dsts = append(dsts, netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}))
	}
	f := &feeder{s: s}
	end := steady(f, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), 30, dsts, 200) // 40,000 packets/s in all
	f.drain(time.Minute)
	events = onlyStartEnd(events)
	if len(events) != 2 || !events[0].Attack.Whole || events[0].Attack.Dst().String() != "192.0.2.0/24" {
		t.Fatalf("events %+v", events)
	}
	a := events[1].Attack
	t.Log(a.Summary())
	if a.Vector()[0] != "udp/53" || a.End.After(end.Add(10*time.Second)) || !strings.HasPrefix(a.ID, "ddos-192.0.2.0_24-") {
		t.Errorf("attack %+v", a)
	}
}

// Automatic thresholds: after five minutes of an address's ordinary
// traffic (5,000 packets/s), Baseline 3 raises its threshold from the
// configured 10,000 to about 15,000: 12,000 packets/s is then not an
// attack, 20,000 is.
func TestStreamBaseline(t *testing.T) {
	var events []Event
	s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), PPS: 10_000, Baseline: 3}},
		MinSources: 5}, func(e Event) { events = append(events, e) })
	dst := []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	f := &feeder{s: s}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 := steady(f, t0, 7*60, dst, 5_000)
	if len(events) != 0 {
		t.Fatalf("ordinary traffic: %+v", events)
	}
	t2 := steady(f, t1, 20, dst, 12_000)
	if len(events) != 0 {
		t.Fatalf("12,000 packets/s after a 5,000 baseline: %+v", events[0].Attack.Trigger)
	}
	steady(f, t2, 5, dst, 20_000)
	if len(events) != 1 || events[0].Kind != "start" {
		t.Fatalf("20,000 packets/s: %+v", events)
	}
	t.Log(events[0].Attack.Trigger)
}

// A vector's own threshold: a SYN flood of 8,000 packets/s is an attack
// under a total threshold of 100,000 when SYN floods have one of 5,000;
// UDP at 50,000 packets/s, under both, is not.
func TestStreamVectorThreshold(t *testing.T) {
	var events []Event
	s := NewStream(StreamConfig{Networks: []Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), PPS: 100_000,
		VectorPPS: map[string]float64{"tcp-syn": 5_000}}}, MinSources: 5, EndAfter: 5 * time.Second},
		func(e Event) { events = append(events, e) })
	f := &feeder{s: s}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	udp := steady(f, t0, 10, []netip.Addr{netip.MustParseAddr("192.0.2.8")}, 50_000)
	if len(events) != 0 {
		t.Fatalf("UDP under the thresholds: %+v", events[0].Attack.Trigger)
	}
	dst := netip.MustParseAddr("192.0.2.9")
	for i := range 10 {
		now := udp.Add(time.Duration(i) * time.Second)
		var flows []event.Flow
		for j := range 8 {
			flows = append(flows, event.Flow{TS: now.Add(-time.Second), End: now, SrcIP: netip.AddrFrom4([4]byte{198, 18, byte(i), byte(j)}),
				SrcPort: uint16(1024 + j), DstIP: dst, DstPort: 443, Proto: "tcp", TCPFlags: 0x02, Packets: 1_000, Bytes: 60_000})
		}
		f.at(now, flows)
	}
	f.drain(time.Minute)
	events = onlyStartEnd(events)
	if len(events) != 2 || events[0].Attack.Target != dst || !strings.HasPrefix(events[0].Attack.Trigger, "tcp-syn ") {
		t.Fatalf("events %+v", events)
	}
	t.Log(events[0].Attack.Trigger)
}
