package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/suricata"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// hookedAlerts is a store whose alert reads let writes happen at their
// start (visible to the read) and in their middle (after its snapshot).
type hookedAlerts struct {
	*storetest.Mem
	start, mid func()
}

func (h hookedAlerts) Alerts(ctx context.Context, w store.Window, fn func(*event.Alert) error) error {
	h.start()
	n := 0
	return h.Mem.Alerts(ctx, w, func(a *event.Alert) error {
		if n++; n == 10 {
			h.mid()
		}
		return fn(a)
	})
}

// TestTallyWhileWriting: a tally that reads history while batches are
// written counts each record once, whether its read saw the batch or not;
// batches written later are added; a deleted sensor starts it anew.
func TestTallyWhileWriting(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	line := int64(0)
	alerts := func(n int, sensor string) *event.Batch {
		b := &event.Batch{}
		for range n {
			line++
			b.Alerts = append(b.Alerts, event.Alert{TS: t0.Add(time.Duration(line) * time.Second), SrcIP: netip.MustParseAddr("10.0.0.1"),
				DstIP: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", line%4)), SignatureID: event.Some(uint64(line % 3)),
				Signature: fmt.Sprint("sig ", line%3), Severity: event.Some(uint64(1 + line%2)),
				Src: event.Source{Sensor: sensor, File: "eve.json", Line: line}})
		}
		return b
	}
	mem := storetest.NewMem()
	var m memo
	var writeMu sync.Mutex
	shared := sharedStore{Store: mem, mu: &writeMu, gens: &m.gens, tallies: &m.tallies, settled: &m.settled, changed: func() {}}
	write := func(b *event.Batch) {
		t.Helper()
		if err := shared.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	write(alerts(30, "a"))
	r := hookedAlerts{Mem: mem, start: func() { write(alerts(20, "a")) }, mid: func() { write(alerts(25, "b")) }}
	d := suricata.New(&detect.Env{Local: detect.DefaultLocal()})
	same := func(what string) {
		t.Helper()
		got, _, err := m.tallies.findings(ctx, d, r, store.Window{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := d.Detect(ctx, mem, store.Window{})
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s: the kept tally finds\n%s\nhistory read at once\n%s", what, g, w)
		}
		n := int64(0)
		for _, f := range got {
			n += f.Evidence["alerts"].(int64)
		}
		if c, _ := mem.Count(ctx, event.KindAlert); n != c {
			t.Errorf("%s: the findings count %d alerts, the store holds %d", what, n, c)
		}
	}
	same("read while written")
	r.start, r.mid = func() { t.Error("history read again") }, func() {}
	write(alerts(15, "b"))
	same("written after")
	if _, err := shared.DeleteSensor(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	r.start = func() {}
	same("after a sensor was deleted")
}
