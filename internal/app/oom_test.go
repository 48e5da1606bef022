package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// oomOnce is a store whose first query of each kind it names runs out of
// memory, as a month's TLS sessions did now and then beside another
// detector's aggregation; the same query passes when asked again.
type oomOnce struct {
	store.Reader
	mu     sync.Mutex
	failed map[string]int
}

func (o *oomOnce) fail(what string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed[what]++
	if o.failed[what] == 1 {
		return fmt.Errorf("%s: Out of Memory Error: could not allocate block: %w", what, store.ErrOutOfMemory)
	}
	return nil
}

func (o *oomOnce) Destinations(ctx context.Context, w store.Window, clients []netip.Addr, fn func(*store.DstStat) error) error {
	if err := o.fail("destinations"); err != nil {
		return err
	}
	return o.Reader.Destinations(ctx, w, clients, fn)
}

func (o *oomOnce) Pairs(ctx context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	if err := o.fail("pairs"); err != nil {
		return err
	}
	return o.Reader.Pairs(ctx, w, f, fn)
}

// TestHuntRunsOutOfMemoryAlone: a detector whose query runs out of the
// store's memory beside others is run again alone, and the hunt finds
// what it finds when memory is plenty; a value several detectors share
// (prevalence) is not kept as failed. Out of memory alone still fails
// the hunt.
func TestHuntRunsOutOfMemoryAlone(t *testing.T) {
	m := storetest.NewMem()
	t0 := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	var b event.Batch
	for i := range 400 { // a beacon every 10 minutes, give or take
		ts := t0.Add(time.Duration(i)*10*time.Minute + time.Duration(i%7)*time.Second)
		b.Conns = append(b.Conns, event.Conn{TS: ts, UID: fmt.Sprint("C", i), SrcIP: netip.MustParseAddr("10.1.0.5"), SrcPort: uint16(40000 + i),
			DstIP: netip.MustParseAddr("203.0.113.50"), DstPort: 443, Proto: "tcp", Service: "ssl", Duration: event.Some(time.Second),
			SrcBytes: event.Some[uint64](900), DstBytes: event.Some[uint64](1400), ConnState: "SF", Src: event.Source{Sensor: "s", File: "conn.log", Line: int64(i + 1)}})
	}
	if err := m.Write(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	env, _ := environment(config.Default())
	ds, err := detectors(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := runDetectors(t.Context(), m, env, ds, store.Window{})
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Findings) == 0 {
		t.Fatal("no finding to compare")
	}
	o := &oomOnce{Reader: m, failed: map[string]int{}}
	got, err := runDetectors(t.Context(), o, env, ds, store.Window{})
	if err != nil {
		t.Fatalf("hunt failed: %v", err)
	}
	if got.Alone == 0 || o.failed["destinations"] < 2 || o.failed["pairs"] < 2 {
		t.Errorf("%d detectors run again alone; queries asked %v", got.Alone, o.failed)
	}
	if len(got.Findings) != len(want.Findings) {
		t.Fatalf("%d findings, want %d", len(got.Findings), len(want.Findings))
	}
	for i := range got.Findings {
		g, w := got.Findings[i], want.Findings[i]
		if g.Detector != w.Detector || g.Src != w.Src || g.Dst != w.Dst || g.Score != w.Score {
			t.Errorf("finding %d: %s %v %v %.3f, want %s %v %v %.3f", i, g.Detector, g.Src, g.Dst, g.Score, w.Detector, w.Src, w.Dst, w.Score)
		}
	}

	// Alone, out of memory is the hunt's error.
	one := []detect.Detector{ds[0]}
	if _, err := runDetectors(t.Context(), &oomOnce{Reader: m, failed: map[string]int{}}, env, one, store.Window{}); !errors.Is(err, store.ErrOutOfMemory) {
		t.Errorf("one detector out of memory: %v", err)
	}
}
