package beacon

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

var datasets = func() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return "../../../../shared/datasets"
}()

func env() *detect.Env { return &detect.Env{Local: detect.DefaultLocal()} }

// TestRITAStatisticalScore checks RITA's own worked example: intervals of 98
// and 300 seconds, alternating, score 0.746.
func TestRITAStatisticalScore(t *testing.T) {
	var ts []uint32
	t0 := uint32(1_700_000_000)
	for i := range 21 {
		ts = append(ts, t0)
		t0 += []uint32{98, 300}[i%2]
	}
	got, err := ritaTimestampScore(ts)
	if err != nil || got != 0.746 {
		t.Errorf("timestamp score = %v, %v; want 0.746", got, err)
	}
}

// TestRITARegularBeacons reproduces RITA-SCORING.md's table of perfectly
// regular beacons over 24 hours.
func TestRITARegularBeacons(t *testing.T) {
	const start = 1_700_000_000
	for _, tc := range []struct {
		period time.Duration
		want   float64
		scored bool
	}{
		{time.Minute, 1, true}, {time.Hour, 1, true}, {2 * time.Hour, 1, true}, {4 * time.Hour, 0.75, true},
		{6 * time.Hour, 0.5, true}, {8 * time.Hour, 0.5, true}, {12 * time.Hour, 0, false},
	} {
		var ts []uint32
		var sizes []float64
		for s := int64(0); s <= 86400; s += int64(tc.period.Seconds()) {
			ts = append(ts, uint32(start+s))
			sizes = append(sizes, 512)
		}
		got, err := ScoreRITA(ts, sizes, start, start+86400)
		if (err == nil) != tc.scored || got.Score != tc.want {
			t.Errorf("period %v: score %v, err %v; want %v (scored %v)", tc.period, got.Score, err, tc.want, tc.scored)
		}
	}
}

// ingestDir reads a dataset directory into a memory store.
func ingestDir(t *testing.T, dir string) *storetest.Mem {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset not available: %v", err)
	}
	m := storetest.NewMem()
	cands, err := ingest.Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.New(m, ingest.Options{Formats: zeek.Formats()}).Run(context.Background(), cands); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRITAFixture: on RITA's own integration data, the RITA-compatible
// score matches RITA's figures for the beacon pair, and dwell's score over
// all three days ranks that pair first.
func TestRITAFixture(t *testing.T) {
	m := ingestDir(t, filepath.Join(datasets, "rita-missing-host-beacon"))
	fs, err := New(env(), Config{MinScore: 0.01}).Detect(context.Background(), detect.NewCache(m), store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	detect.Sort(fs)
	var ipFindings []detect.Finding
	for _, f := range fs {
		if f.Evidence["kind"] == "ip" {
			ipFindings = append(ipFindings, f)
		}
	}
	if len(ipFindings) == 0 {
		t.Fatal("no findings")
	}
	top := ipFindings[0]
	if top.Src.String() != "73.54.23.243" || top.Dst.String() != "64.225.56.201" {
		t.Fatalf("top finding is %v -> %v (%.3f), not the beacon: %+v", top.Src, top.Dst, top.Score, top)
	}
	rita := top.Evidence["rita"].(map[string]any)
	if rita["scored"] != true || rita["connections"] != 331 || math.Abs(rita["score"].(float64)-0.963) > 0.01 {
		t.Errorf("RITA evidence %v; want 331 connections, score 0.963 ±0.01", rita)
	}
	if top.Severity < detect.SeverityHigh {
		t.Errorf("beacon severity %v (score %.3f)", top.Severity, top.Score)
	}
	t.Logf("beacon %.3f (%s); rita %v; %d ip findings; runner-up %v -> %v %.3f", top.Score, top.Summary, rita["score"], len(ipFindings),
		ipFindings[1].Src, ipFindings[1].Dst, ipFindings[1].Score)
}

// network builds a month of realistic background traffic: office hours,
// weekends, popular destinations shared by many hosts, benign periodic
// traffic (NTP, update checks, telemetry) from every host.
type network struct {
	rng   *rand.Rand
	start time.Time
	days  int
	b     event.Batch
	line  int64
}

var (
	hosts = func() (h []netip.Addr) {
		for i := range 60 {
			h = append(h, netip.AddrFrom4([4]byte{10, 20, 1, byte(10 + i)}))
		}
		return h
	}()
	popular = []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("151.101.1.69"), netip.MustParseAddr("142.250.74.78")}
	ntp     = netip.MustParseAddr("162.159.200.1")
	updates = netip.MustParseAddr("13.107.4.50")
)

func (n *network) conn(src, dst netip.Addr, ts time.Time, bytes int64) {
	n.line++
	n.b.Conns = append(n.b.Conns, event.Conn{TS: ts, UID: fmt.Sprintf("C%d", n.line), SrcIP: src, SrcPort: uint16(1024 + n.line%60000),
		DstIP: dst, DstPort: 443, Proto: "tcp", ConnState: "SF", SrcBytes: event.Some(uint64(bytes)), DstBytes: event.Some[uint64](4000),
		SrcIPBytes: event.Some(uint64(bytes + 200)), Src: event.Source{Sensor: "test", File: "gen", Line: n.line}})
}

func (n *network) background() {
	for d := range n.days {
		day := n.start.AddDate(0, 0, d)
		weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
		for _, h := range hosts {
			if !weekend {
				// Browsing in office hours: bursts to popular and to a host's own rare sites.
				for range 40 + n.rng.IntN(40) {
					ts := day.Add(8*time.Hour + time.Duration(n.rng.Float64()*9*float64(time.Hour)))
					dst := popular[n.rng.IntN(len(popular))]
					if n.rng.IntN(4) == 0 {
						dst = netip.AddrFrom4([4]byte{198, 18, byte(n.rng.IntN(4)), byte(n.rng.IntN(250))})
					}
					n.conn(h, dst, ts, int64(300+n.rng.IntN(3000)))
				}
			}
			// NTP every 1024 s and update checks every 4 h ±10 %, from every host, all day.
			for s := 0.0; s < 86400; s += 1024 {
				n.conn(h, ntp, day.Add(time.Duration(s*float64(time.Second))), 48)
			}
			for s := n.rng.Float64() * 14400; s < 86400; s += 14400 * (0.9 + 0.2*n.rng.Float64()) {
				n.conn(h, updates, day.Add(time.Duration(s*float64(time.Second))), 900)
			}
		}
	}
}

// beacon plants an implant on src calling dst every period with uniform
// jitter of ±jitter, missing 5 % of its check-ins, plus a few unrelated
// connections to the same place.
func (n *network) beacon(src, dst netip.Addr, period time.Duration, jitter float64) {
	end := n.start.AddDate(0, 0, n.days)
	for ts := n.start.Add(time.Duration(n.rng.Float64() * float64(period))); ts.Before(end); {
		if n.rng.Float64() >= 0.05 {
			n.conn(src, dst, ts, int64(310+n.rng.IntN(20)))
		}
		ts = ts.Add(time.Duration(float64(period) * (1 + jitter*(2*n.rng.Float64()-1))))
	}
	for range 3 {
		n.conn(src, dst, n.start.Add(time.Duration(n.rng.Float64()*float64(end.Sub(n.start)))), 5000)
	}
}

// TestSlowJitteredBeacons: beacons from a minute to a day, with jitter up
// to ±50 %, over 30 days among background traffic, all score HIGH, and no
// benign periodic traffic outranks them.
func TestSlowJitteredBeacons(t *testing.T) {
	n := &network{rng: rand.New(rand.NewPCG(1, 2)), start: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), days: 30}
	n.background()
	type planted struct {
		src, dst netip.Addr
		period   time.Duration
		jitter   float64
	}
	var want []planted
	i := 0
	for _, p := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		for _, j := range []float64{0, 0.2, 0.5} {
			src := hosts[i%len(hosts)]
			dst := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
			n.beacon(src, dst, p, j)
			want = append(want, planted{src, dst, p, j})
			i++
		}
	}
	m := storetest.NewMem()
	if err := m.Write(context.Background(), &n.b); err != nil {
		t.Fatal(err)
	}
	fs, err := New(env(), Config{}).Detect(context.Background(), detect.NewCache(m), store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[[2]netip.Addr]detect.Finding{}
	lowest := 1.0
	for _, f := range fs {
		found[[2]netip.Addr{f.Src, f.Dst}] = f
	}
	for _, p := range want {
		f, ok := found[[2]netip.Addr{p.src, p.dst}]
		switch {
		case !ok:
			t.Errorf("beacon every %v ±%.0f%% from %v not found", p.period, p.jitter*100, p.src)
		case f.Severity < detect.SeverityHigh:
			t.Errorf("beacon every %v ±%.0f%%: score %.3f (%v), want HIGH: %s %v", p.period, p.jitter*100, f.Score, f.Severity, f.Summary, f.Components)
		default:
			lowest = min(lowest, f.Score)
			t.Logf("%v ±%.0f%%: %.3f %v", p.period, p.jitter*100, f.Score, f.Components)
			got := f.Evidence["period_seconds"].(float64)
			if math.Abs(got-p.period.Seconds())/p.period.Seconds() > 0.15 {
				t.Errorf("beacon every %v: period estimated %vs", p.period, got)
			}
		}
	}
	for _, f := range fs {
		if f.Dst == ntp || f.Dst == updates || f.Dst == popular[0] || f.Dst == popular[1] || f.Dst == popular[2] {
			if f.Score >= lowest {
				t.Errorf("benign %v -> %v scores %.3f, above the lowest beacon %.3f", f.Src, f.Dst, f.Score, lowest)
			}
		}
	}
	t.Logf("%d findings; lowest planted beacon %.3f", len(fs), lowest)
}

// TestLinkScopeIsNeverABeacon: the rhythms that hosts keep with their link
// (mDNS, SSDP, LLMNR, DHCPv6, router solicitations, broadcasts) are
// protocol timers, never check-ins with a controller; the same rhythm to
// a public address is one.
func TestLinkScopeIsNeverABeacon(t *testing.T) {
	n := &network{rng: rand.New(rand.NewPCG(5, 6)), start: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), days: 7}
	src := hosts[0]
	link := []string{"224.0.0.251", "239.255.255.250", "224.0.0.252", "255.255.255.255", "169.254.10.1",
		"ff02::fb", "ff02::1:2", "ff05::c", "fe80::1"}
	for _, a := range link {
		n.beacon(src, netip.MustParseAddr(a), 5*time.Minute, 0)
	}
	control := netip.MustParseAddr("203.0.113.77")
	n.beacon(src, control, 5*time.Minute, 0)
	m := storetest.NewMem()
	if err := m.Write(context.Background(), &n.b); err != nil {
		t.Fatal(err)
	}
	fs, err := New(env(), Config{}).Detect(context.Background(), detect.NewCache(m), store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fs {
		if f.Dst == control {
			found = true
			continue
		}
		t.Errorf("a beacon to %v (link scope): %.3f %s", f.Dst, f.Score, f.Summary)
	}
	if !found {
		t.Errorf("the same rhythm to %v is not found: %d findings", control, len(fs))
	}
}
