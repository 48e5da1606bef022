package suricata

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/detecttest"
	"github.com/dwell-nsm/dwell/internal/event"
)

// TestTally checks that the detector's running totals give Detect's
// findings whatever order the alerts come in (detecttest.Tally): groups
// of alerts on two sensors, several at one instant, with flows repeated,
// severities and actions mixed; and that the allow-list still applies.
func TestTally(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 777, time.UTC)
	b := &event.Batch{}
	for i := range 300 {
		a := event.Alert{TS: t0.Add(time.Duration(i/4) * time.Second), FlowID: fmt.Sprint(i % 11),
			SrcIP: netip.MustParseAddr(fmt.Sprintf("10.0.0.%d", 1+i%3)), DstIP: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 10+i%3)), DstPort: uint16(80 + i%2),
			AppProto: []string{"http", "tls"}[i%2], SignatureID: event.Some(uint64(2000000 + i%5)), Signature: fmt.Sprint("ET sig ", i%5),
			Category: []string{"A Network Trojan was detected", "Web Application Attack"}[i%2], Severity: event.Some(uint64(1 + i%4)),
			Src: event.Source{Sensor: []string{"a", "b"}[i%2], File: "eve.json", Line: int64(i + 1)}}
		if i%7 == 0 {
			a.Action = "blocked"
		}
		if i%13 == 0 {
			a.Attack = []string{"T1071.001"}
		}
		b.Alerts = append(b.Alerts, a)
	}
	fs := detecttest.Tally(t, New(&detect.Env{Local: detect.DefaultLocal()}), b)
	if len(fs) != 30 {
		t.Errorf("%d findings, want 30 (3 sources × 5 signatures × 2 sensors)", len(fs))
	}
	allow := &detect.Env{Local: detect.DefaultLocal()}
	allow.Allow.Nets = []netip.Prefix{netip.MustParsePrefix("203.0.113.10/32")}
	if fs := detecttest.Tally(t, New(allow), b); len(fs) != 20 {
		t.Errorf("%d findings with 203.0.113.10 allowed, want 20", len(fs))
	}
}
