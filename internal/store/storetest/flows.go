package storetest

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// FlowData returns flow records with a flood: ordinary flows to two
// servers over an hour, and ten minutes of SYN flood and DNS and NTP
// reflection against one of them, some sampled.
func FlowData() *event.Batch {
	a := netip.MustParseAddr
	t0 := time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)
	web, mail := a("10.20.0.40"), a("10.20.0.25")
	b := &event.Batch{}
	line := int64(0)
	add := func(f event.Flow) {
		line++
		f.Src = event.Source{Sensor: "edge", File: "/flows/edge.pcap", Line: line}
		f.Exporter, f.Export = a("10.20.0.1"), event.ExportIPFIX
		if f.End.IsZero() {
			f.End = f.TS.Add(time.Second)
		}
		b.Flows = append(b.Flows, f)
	}
	for i := range 600 {
		ts := t0.Add(time.Duration(i) * 6 * time.Second)
		dst := []netip.Addr{web, mail}[i%2]
		add(event.Flow{TS: ts, SrcIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 50)}), SrcPort: uint16(30000 + i), DstIP: dst,
			DstPort: []uint16{443, 25}[i%2], Proto: "tcp", TCPFlags: 0x1b, Packets: uint64(10 + i%20), Bytes: uint64(4000 + i)})
	}
	flood := t0.Add(20 * time.Minute)
	for i := range 900 {
		ts := flood.Add(time.Duration(i) * 666 * time.Millisecond)
		src := netip.AddrFrom4([4]byte{byte(1 + i%200), byte(i / 200), 7, byte(i % 250)})
		switch i % 3 {
		case 0:
			add(event.Flow{TS: ts, SrcIP: src, SrcPort: uint16(1024 + i), DstIP: web, DstPort: 443, Proto: "tcp", TCPFlags: 0x02,
				Packets: 50_000, Bytes: 3_000_000})
		case 1:
			add(event.Flow{TS: ts, SrcIP: src, SrcPort: 53, DstIP: web, DstPort: uint16(2000 + i), Proto: "udp", Packets: 2_000, Bytes: 2_900_000, Sampling: 10})
		default:
			add(event.Flow{TS: ts, SrcIP: src, SrcPort: 123, DstIP: web, DstPort: uint16(2000 + i), Proto: "udp", Packets: 20_000, Bytes: 9_360_000})
		}
	}
	// An ICMP echo and a flow of another protocol.
	add(event.Flow{TS: flood, SrcIP: a("203.0.113.5"), DstIP: web, SrcPort: 8, Proto: "icmp", Packets: 1, Bytes: 84})
	add(event.Flow{TS: flood, SrcIP: a("203.0.113.6"), DstIP: web, Proto: "47", Packets: 3, Bytes: 300})
	// A SYN-ACK reflector, a normal connection's server side and UDP
	// fragments without ports.
	add(event.Flow{TS: flood, SrcIP: a("198.51.100.7"), SrcPort: 80, DstIP: web, DstPort: 40000, Proto: "tcp", TCPFlags: 0x12, Packets: 900, Bytes: 54_000})
	add(event.Flow{TS: flood, SrcIP: a("198.51.100.8"), SrcPort: 80, DstIP: web, DstPort: 40001, Proto: "tcp", TCPFlags: 0x1b, Packets: 9, Bytes: 5_400})
	add(event.Flow{TS: flood, SrcIP: a("198.51.100.9"), DstIP: web, Proto: "udp", Packets: 700, Bytes: 1_000_000})
	return b
}

// refFlood is the reference FloodVectors.
func refFlood(b *event.Batch, w store.Window, minPackets int64) []store.FloodVector {
	type mkey struct {
		sensor string
		dst    netip.Addr
		minute time.Time
	}
	type vkey struct {
		mkey
		vector string
	}
	totals := map[mkey]int64{}
	vecs := map[vkey]*store.FloodVector{}
	srcs := map[vkey]map[netip.Addr]bool{}
	for _, f := range b.Flows {
		if !w.Contains(f.TS) || !f.DstIP.IsValid() {
			continue
		}
		mult := int64(max(f.Sampling, 1))
		m := mkey{f.Src.Sensor, f.DstIP, f.TS.UTC().Truncate(time.Minute)}
		totals[m] += int64(f.Packets) * mult
		k := vkey{m, store.FloodVectorOf(f.Proto, f.TCPFlags, f.SrcPort, f.DstPort)}
		v := vecs[k]
		if v == nil {
			v = &store.FloodVector{Sensor: m.sensor, Dst: m.dst, Minute: m.minute, Vector: k.vector}
			vecs[k], srcs[k] = v, map[netip.Addr]bool{}
		}
		v.Flows++
		v.Packets += int64(f.Packets) * mult
		v.Bytes += int64(f.Bytes) * mult
		if f.SrcIP.IsValid() {
			srcs[k][f.SrcIP] = true
		}
	}
	var out []store.FloodVector
	for k, v := range vecs {
		if totals[k.mkey] >= minPackets {
			v.Sources = int64(len(srcs[k]))
			out = append(out, *v)
		}
	}
	slices.SortFunc(out, func(a, b store.FloodVector) int {
		return cmp.Or(strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Dst.String(), b.Dst.String()), a.Minute.Compare(b.Minute),
			strings.Compare(a.Vector, b.Vector))
	})
	return out
}

// FloodVectors implements store.Analytics.
func (m *Mem) FloodVectors(_ context.Context, w store.Window, minPackets int64, fn func(*store.FloodVector) error) error {
	m.mu.RLock()
	r := refFlood(&m.b, w, minPackets)
	m.mu.RUnlock()
	return each(r, fn)
}

func testFlows(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := FlowData()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, event.KindFlow); err != nil || n != int64(len(b.Flows)) {
		t.Errorf("Count(flow) = %d, %v; want %d", n, err, len(b.Flows))
	}
	t0 := time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)
	for _, w := range []store.Window{{}, {Since: t0.Add(25 * time.Minute), Until: t0.Add(27 * time.Minute)}} {
		for _, min := range []int64{0, 1_000_000} {
			var got []store.FloodVector
			if err := s.FloodVectors(ctx, w, min, func(v *store.FloodVector) error { got = append(got, *v); return nil }); err != nil {
				t.Fatal(err)
			}
			want := refFlood(b, w, min)
			if min > 0 && (len(want) == 0 || len(want) > 60) {
				t.Fatalf("the reference keeps %d vectors over %d packets a minute: the data tests nothing", len(want), min)
			}
			same(t, fmt.Sprintf("FloodVectors(%v, %d)", w, min), got, want)
		}
	}
}

// testSessionsAfterWrites asks for flow sessions between writes of the
// records that make them: each answer holds every record written
// before it (a store that keeps sessions must stitch them anew), for
// every window end asked.
func testSessionsAfterWrites(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	flows := SessionFlows()
	var written event.Batch
	end := time.Date(2024, 4, 19, 10, 0, 0, 0, time.UTC)
	for i, part := range [][]event.Flow{flows[:len(flows)/3], flows[len(flows)/3 : 2*len(flows)/3], flows[2*len(flows)/3:]} {
		if err := s.Write(ctx, &event.Batch{Flows: part}); err != nil {
			t.Fatal(err)
		}
		written.Flows = append(written.Flows, part...)
		for _, w := range []store.Window{{Conns: store.FlowSessions}, {Until: end, Conns: store.FlowSessions}} {
			for range 2 { // the second answer comes from what the first kept, if anything
				var got []store.PairStat
				if err := s.Pairs(ctx, w, store.PairFilter{}, func(p *store.PairStat) error { got = append(got, *p); return nil }); err != nil {
					t.Fatal(err)
				}
				same(t, fmt.Sprintf("after write %d, Pairs until %v", i+1, w.Until), got, refPairs(connsOf(&written, w), w, store.PairFilter{}))
			}
		}
	}
}

// testExtremeCounts writes counts no traffic reaches (2^64-1 bytes, a
// sampling interval of 2^31), as a store reached past ingest's screen
// would hold, and runs the analytics that add and multiply them: each
// answers (sums saturate or wrap), none fails the hunt.
func testExtremeCounts(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	a := netip.MustParseAddr
	t0 := time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)
	const huge = ^uint64(0)
	b := &event.Batch{}
	for i := range 3 {
		src := event.Source{Sensor: "edge", File: "/x.log", Line: int64(i + 1)}
		b.Conns = append(b.Conns, event.Conn{TS: t0.Add(time.Duration(i) * time.Minute), UID: fmt.Sprintf("C%d", i), SrcIP: a("10.0.0.1"),
			SrcPort: 5000, DstIP: a("192.0.2.1"), DstPort: 443, Proto: "tcp", SrcBytes: event.Some(huge), DstBytes: event.Some(huge),
			SrcPkts: event.Some(huge), Duration: event.Some(time.Minute), Src: src})
		b.HTTP = append(b.HTTP, event.HTTP{TS: t0.Add(time.Duration(i) * time.Minute), UID: fmt.Sprintf("C%d", i), SrcIP: a("10.0.0.1"),
			DstIP: a("192.0.2.1"), DstPort: 80, Method: "POST", RequestBodyLen: event.Some(huge), Src: src})
		b.Flows = append(b.Flows, event.Flow{TS: t0.Add(time.Duration(i) * time.Second), End: t0.Add(time.Minute), SrcIP: a("198.51.100.1"),
			SrcPort: 53, DstIP: a("10.0.0.1"), DstPort: 40000, Proto: "udp", Packets: huge, Bytes: huge, Sampling: 1 << 31,
			Exporter: a("10.0.0.254"), Export: event.ExportIPFIX, Src: src})
	}
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []store.Window{{}, {Conns: store.FlowSessions}} {
		checks := map[string]error{
			"Pairs":      s.Pairs(ctx, w, store.PairFilter{}, func(*store.PairStat) error { return nil }),
			"DailyFlows": s.DailyFlows(ctx, w, store.FlowFilter{}, func(*store.DailyFlow) error { return nil }),
			"HostDays":   s.HostDays(ctx, w, store.FlowFilter{}, func(*store.HostDay) error { return nil }),
			"Series":     s.Series(ctx, store.SeriesConn, w, store.SeriesFilter{MinCount: 1}, func(*store.Series) error { return nil }),
			"Uploads":    s.Uploads(ctx, w, store.UploadFilter{MinBytes: 1}, func(*store.Upload) error { return nil }),
			"Fanout":     s.Fanout(ctx, w, store.FanoutFilter{MinTargets: 1}, func(*store.Fanout) error { return nil }),
			"Flood":      s.FloodVectors(ctx, w, 1, func(*store.FloodVector) error { return nil }),
			"HTTP":       s.HTTPRequests(ctx, w, func(*store.HTTPRequest) error { return nil }),
		}
		for name, err := range checks {
			if err != nil {
				t.Errorf("%s over %s: %v", name, w.Conns, err)
			}
		}
	}
}
