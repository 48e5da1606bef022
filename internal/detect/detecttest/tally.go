package detecttest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// Tally checks an incremental detector against its Detect: the host
// events and IDS alerts of b, stored (times to the microsecond, as the
// stores keep them) and hunted at once, must give the same findings as
// a tally fed the same records in another order — all added as batches,
// shuffled and cut at random; and half added first, the rest read from
// the store with those skipped, as dwell serve seeds a tally while
// writes go on. It returns the findings.
func Tally(t *testing.T, d detect.Incremental, b *event.Batch) []detect.Finding {
	t.Helper()
	ctx := context.Background()
	stored := &event.Batch{}
	stored.Append(b)
	for i := range stored.Host {
		stored.Host[i].TS = detect.StoredTime(stored.Host[i].TS)
	}
	for i := range stored.Alerts {
		stored.Alerts[i].TS = detect.StoredTime(stored.Alerts[i].TS)
	}
	m := storetest.NewMem()
	if err := m.Write(ctx, stored); err != nil {
		t.Fatal(err)
	}
	want, err := d.Detect(ctx, m, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	host, alerts := append([]event.HostEvent(nil), b.Host...), append([]event.Alert(nil), b.Alerts...)
	rng.Shuffle(len(host), func(i, j int) { host[i], host[j] = host[j], host[i] })
	rng.Shuffle(len(alerts), func(i, j int) { alerts[i], alerts[j] = alerts[j], alerts[i] })

	// added feeds the first n of each kind to tl in batches of random size.
	added := func(tl detect.Tally, frac float64) map[event.Source]bool {
		seen := map[event.Source]bool{}
		nh, na := int(frac*float64(len(host))), int(frac*float64(len(alerts)))
		for i, j := 0, 0; i < nh || j < na; {
			part := &event.Batch{}
			k := 1 + rng.IntN(50)
			for ; k > 0 && i < nh; k, i = k-1, i+1 {
				part.Host = append(part.Host, host[i])
				seen[host[i].Src] = true
			}
			for k = 1 + rng.IntN(50); k > 0 && j < na; k, j = k-1, j+1 {
				part.Alerts = append(part.Alerts, alerts[j])
				seen[alerts[j].Src] = true
			}
			tl.Add(part)
			clear(part.Host) // the batch is reused: the tally must have copied what it keeps
			clear(part.Alerts)
		}
		return seen
	}
	check := func(what string, tl detect.Tally) {
		t.Helper()
		got, err := d.Finish(ctx, m, store.Window{}, tl, tl.Findings())
		if err != nil {
			t.Fatal(err)
		}
		if g, w := findingsJSON(t, got), findingsJSON(t, want); g != w {
			t.Errorf("%s: the tally's findings differ from Detect's:\n got %s\nwant %s", what, g, w)
		}
	}
	all := d.Tally()
	added(all, 1)
	check("added in batches, shuffled", all)

	half := d.Tally()
	seen := added(half, 0.5)
	if err := half.Read(ctx, m, store.Window{}, func(s *event.Source) bool { return seen[*s] }); err != nil {
		t.Fatal(err)
	}
	check("half added, the rest read", half)
	// Findings leave the tally as it was.
	check("asked again", half)
	return want
}

func findingsJSON(t *testing.T, fs []detect.Finding) string {
	t.Helper()
	data, err := json.Marshal(fs)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
