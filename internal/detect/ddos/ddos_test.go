package ddos

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func env() *detect.Env { return &detect.Env{Local: detect.DefaultLocal()} }

func run(t *testing.T, b *event.Batch, d *Detector) []detect.Finding {
	t.Helper()
	m := storetest.NewMem()
	if err := m.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	fs, err := d.Detect(context.Background(), detect.NewCache(m), store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// The conformance data's flood: ten minutes of SYN flood and DNS and NTP
// reflection against the web server, among ordinary flows.
func TestFlood(t *testing.T) {
	fs := run(t, storetest.FlowData(), New(env(), Config{}))
	if len(fs) != 1 {
		t.Fatalf("%d findings: %+v", len(fs), fs)
	}
	f := fs[0]
	t.Log(f.Summary)
	if f.Dst.String() != "10.20.0.40" || f.Src.IsValid() || f.Severity < detect.SeverityHigh {
		t.Errorf("finding %+v", f)
	}
	if !slices.Equal(f.Attack, []string{"T1498", "T1498.001", "T1498.002"}) {
		t.Errorf("techniques %v", f.Attack)
	}
	for _, want := range []string{"TCP SYN flood", "DNS reflection (udp/53)", "NTP reflection (udp/123)"} {
		if !strings.Contains(f.Summary, want) {
			t.Errorf("summary lacks %q: %s", want, f.Summary)
		}
	}
	if got := f.LastSeen.Sub(f.FirstSeen); got < 9*time.Minute || got > 11*time.Minute {
		t.Errorf("attack lasted %v, want about ten minutes", got)
	}
	// DNS reflection flows are sampled 1 in 10: their share counts that.
	v := f.Evidence["vectors"].(map[string]float64)
	if v["udp/53"] < 0.2 || v["tcp-syn"] < 0.5 {
		t.Errorf("vector shares %v", v)
	}
}

// One host sending fast is a transfer; two floods an hour apart are two
// attacks; an allow-listed target is left out.
func TestNotFloods(t *testing.T) {
	t0 := time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)
	dst := netip.MustParseAddr("10.20.0.40")
	b := &event.Batch{}
	for i := range 10 {
		b.Flows = append(b.Flows, event.Flow{TS: t0.Add(time.Duration(i) * time.Minute), SrcIP: netip.MustParseAddr("10.1.1.1"), DstIP: dst,
			Proto: "tcp", TCPFlags: 0x1b, Packets: 5_000_000, Bytes: 7_000_000_000})
	}
	if fs := run(t, b, New(env(), Config{})); len(fs) != 0 {
		t.Errorf("a single fast sender: %+v", fs)
	}
	b = &event.Batch{}
	for _, start := range []time.Duration{0, time.Hour} {
		for i := range 50 {
			b.Flows = append(b.Flows, event.Flow{TS: t0.Add(start + time.Duration(i)*time.Second), DstIP: dst, Proto: "udp", SrcPort: 123,
				SrcIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Packets: 100_000, Bytes: 46_800_000})
		}
	}
	fs := run(t, b, New(env(), Config{}))
	if len(fs) != 2 {
		t.Fatalf("two floods an hour apart: %d findings", len(fs))
	}
	e := env()
	e.Allow.Nets = []netip.Prefix{netip.MustParsePrefix("10.20.0.0/24")}
	if fs := run(t, b, New(e, Config{})); len(fs) != 0 {
		t.Errorf("allow-listed target: %d findings", len(fs))
	}
}
