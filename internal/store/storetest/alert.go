package storetest

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// refAlerts is the reference Alerts.
func refAlerts(b *event.Batch, w store.Window) []event.Alert {
	var out []event.Alert
	for _, a := range b.Alerts {
		if w.Contains(a.TS) {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b event.Alert) int {
		return cmp.Or(cmp.Compare(a.Src.Sensor, b.Src.Sensor), cmp.Compare(addrStr(a.SrcIP), addrStr(b.SrcIP)),
			cmp.Compare(addrStr(a.DstIP), addrStr(b.DstIP)), cmp.Compare(a.SignatureID.V, b.SignatureID.V), a.TS.Compare(b.TS),
			cmp.Compare(a.Src.File, b.Src.File), cmp.Compare(a.Src.Line, b.Src.Line))
	})
	return out
}

// AlertData returns alerts of two signatures between a few hosts over two
// days, with and without metadata.
func AlertData() *event.Batch {
	t0 := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	b := &event.Batch{}
	for i := range 40 {
		a := event.Alert{TS: t0.Add(time.Duration(i) * 73 * time.Minute), FlowID: fmt.Sprint(1000 + i),
			SrcIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(5 + i%3)}), SrcPort: uint16(50000 + i),
			DstIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(7 + i%2)}), DstPort: []uint16{443, 80}[i%2], Proto: "tcp",
			AppProto: []string{"tls", "http"}[i%2], Action: "allowed", SignatureID: event.Some(uint64(2030000 + i%2)), Rev: event.Some(uint64(2)),
			Signature: []string{"ET MALWARE Cobalt Strike Beacon", "ET POLICY curl User-Agent"}[i%2],
			Category:  []string{"A Network Trojan was detected", "Potential Corporate Privacy Violation"}[i%2],
			Severity:  event.Some(uint64(1 + 2*(i%2))), Src: event.Source{Sensor: []string{"edge", "core"}[i%5/4], File: "/eve/eve.json", Line: int64(i + 1)}}
		if i%2 == 0 {
			a.Attack = []string{"T1071.001"}
		}
		b.Alerts = append(b.Alerts, a)
	}
	return b
}

func testAlerts(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := AlertData()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, event.KindAlert); err != nil || n != int64(len(b.Alerts)) {
		t.Errorf("Count(alert) = %d, %v; want %d", n, err, len(b.Alerts))
	}
	t0 := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	for _, w := range []store.Window{{}, {Since: t0.Add(10 * time.Hour), Until: t0.Add(30 * time.Hour)}} {
		var got []event.Alert
		if err := s.Alerts(ctx, w, func(a *event.Alert) error { got = append(got, *a); return nil }); err != nil {
			t.Fatal(err)
		}
		same(t, fmt.Sprintf("Alerts(%v)", w), got, refAlerts(b, w))
	}
}
