package settled_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/settled"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestMem runs the conformance check of settled answers on the
// reference store; the backends run it in their conformance suites.
func TestMem(t *testing.T) { storetest.Settled(t, storetest.NewMem()) }

var cut = time.Date(2024, 4, 20, 0, 0, 0, 0, time.UTC) // of storetest.AnalyticsData

// hooked calls during once, in the middle of reading history before the
// cut: a write lands while the settled answer is read.
type hooked struct {
	*storetest.Mem
	during func()
	once   sync.Once
}

func (h *hooked) Pairs(ctx context.Context, w store.Window, f store.PairFilter, fn func(*store.PairStat) error) error {
	n := 0
	return h.Mem.Pairs(ctx, w, f, func(p *store.PairStat) error {
		if n++; n == 2 && !w.Until.IsZero() {
			h.once.Do(h.during)
		}
		return fn(p)
	})
}

// stored returns the memory store holding storetest.AnalyticsData, the
// data, and a Kept for it.
func stored(t *testing.T) (*storetest.Mem, *event.Batch, *settled.Kept) {
	t.Helper()
	mem := storetest.NewMem()
	b := storetest.AnalyticsData()
	if err := mem.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return mem, b, &settled.Kept{Now: func() time.Time { return cut.AddDate(1, 0, 0) }}
}

// pairs returns the pairs of r with 10 connections or more, or of any
// number with all.
func pairs(t *testing.T, r store.Reader, all ...bool) []store.PairStat {
	t.Helper()
	var out []store.PairStat
	f := store.PairFilter{MinPairConns: 10}
	if len(all) > 0 && all[0] {
		f = store.PairFilter{}
	}
	if err := r.Pairs(context.Background(), store.Window{}, f, func(p *store.PairStat) error {
		out = append(out, *p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// write writes b to mem as the server does, with between called after
// Before, while the batch is not yet stored.
func write(t *testing.T, mem *storetest.Mem, k *settled.Kept, b *event.Batch, between func()) {
	t.Helper()
	k.Before(b)
	if between != nil {
		between()
	}
	if err := mem.Write(context.Background(), b); err != nil {
		t.Error(err)
	}
	k.After(b)
}

// A record before the cut written while the settled history is read
// may or may not be in what was read: the answer is not kept.
func TestWriteWhileSettling(t *testing.T) {
	mem, b, k := stored(t)
	early := &event.Batch{Conns: []event.Conn{b.Conns[0]}}
	early.Conns[0].UID, early.Conns[0].Src.Line = "early", 50_000
	h := &hooked{Mem: mem, during: func() { write(t, mem, k, early, nil) }}
	pairs(t, settled.New(h, k))
	if c := k.Counts(); c.Settled != 0 || c.Dropped != 1 {
		t.Errorf("a settled answer read while a record before the cut was written: %+v; want it not kept", c)
	}
	if got, want := pairs(t, settled.New(h, k)), pairs(t, mem); !reflect.DeepEqual(got, want) {
		t.Errorf("after the write: %v; want %v", got, want)
	}
	if c := k.Counts(); c.Settled != 1 {
		t.Errorf("after the write: %+v; want the settled answer read again and kept", c)
	}
}

// A batch that moves the cut, from before the new cut's day to past it,
// is not yet stored when a query extends what is kept over the days the
// cut moved over: the cut stops at the batch's first day.
func TestCutMovedWhileWriting(t *testing.T) {
	mem, b, k := stored(t)
	pairs(t, settled.New(mem, k)) // kept, to the cut
	moving := &event.Batch{}
	for i, at := range []time.Time{cut.Add(30 * time.Hour), cut.Add(80 * time.Hour)} {
		c := b.Conns[i]
		c.TS, c.UID, c.Src.Line = at, fmt.Sprint("moving", i), int64(80_000+i)
		moving.Conns = append(moving.Conns, c)
	}
	write(t, mem, k, moving, func() {
		pairs(t, settled.New(mem, k)) // extends what is kept before the batch is stored
	})
	if got, want := pairs(t, settled.New(mem, k), true), pairs(t, mem, true); !reflect.DeepEqual(got, want) {
		t.Errorf("after a batch that moved the cut:\n%v\nwant\n%v", got, want)
	}
	if c := k.Counts(); c.Extended == 0 || c.Dropped != 0 {
		t.Errorf("counts %+v: want what was kept extended", c)
	}
}

// An ingest run that reads a log at a time writes newer records of one
// log before older ones of the next. Held, the cut stays until the run is
// over and then moves, not past its first record: nothing is dropped,
// and what was kept is extended. Unheld, the older records drop it.
func TestHeldRun(t *testing.T) {
	for _, hold := range []bool{true, false} {
		mem, b, k := stored(t)
		pairs(t, settled.New(mem, k)) // kept, to the cut
		batch := func(line int64, at ...time.Duration) *event.Batch {
			out := &event.Batch{}
			for i, d := range at {
				c := b.Conns[i]
				c.TS, c.UID, c.Src.Line = cut.Add(d), fmt.Sprint("run", line, i), line+int64(i)
				out.Conns = append(out.Conns, c)
			}
			return out
		}
		release := func() {}
		if hold {
			release = k.Hold()
		}
		write(t, mem, k, batch(100_000, 50*time.Hour, 80*time.Hour), nil) // the next days' conn logs
		pairs(t, settled.New(mem, k))                                     // a hunt during the run
		write(t, mem, k, batch(200_000, 30*time.Hour), nil)               // an older day's next log
		release()
		if got, want := pairs(t, settled.New(mem, k), true), pairs(t, mem, true); !reflect.DeepEqual(got, want) {
			t.Errorf("held %v: after the run:\n%v\nwant\n%v", hold, got, want)
		}
		c := k.Counts()
		switch {
		case hold && (c.Dropped != 0 || c.Extended == 0):
			t.Errorf("held: counts %+v; want nothing dropped and what was kept extended", c)
		case !hold && c.Dropped == 0:
			t.Errorf("unheld: counts %+v; want what was kept dropped by the older records", c)
		}
	}
}

// A batch written while the first query chooses the cut, with records
// before it, may or may not be in what that query reads: it keeps
// nothing, and the next query chooses the cut again.
func TestCutChosenWhileWriting(t *testing.T) {
	mem, b, k := stored(t)
	early := &event.Batch{Conns: []event.Conn{b.Conns[0]}}
	early.Conns[0].UID, early.Conns[0].Src.Line = "early", 90_000
	write(t, mem, k, early, func() { pairs(t, settled.New(mem, k), true) }) // no cut yet
	if c := k.Counts(); c.Settled != 0 || c.Passed != 1 {
		t.Errorf("counts %+v: want nothing kept while the batch was written", c)
	}
	if got, want := pairs(t, settled.New(mem, k), true), pairs(t, mem, true); !reflect.DeepEqual(got, want) {
		t.Errorf("after the batch:\n%v\nwant\n%v", got, want)
	}
	if c := k.Counts(); c.Settled != 1 {
		t.Errorf("counts %+v: want the settled history read once the batch was stored", c)
	}
}

// Hunts and writes at once (run under -race): when the writes stop, the
// answers are the store's.
func TestConcurrent(t *testing.T) {
	mem, b, k := stored(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pairs(t, settled.New(mem, k))
				k.Sweep()
			}
		})
	}
	for i := range 40 {
		c := b.Conns[i%len(b.Conns)]
		c.UID, c.Src.Line = "w"+c.UID, int64(60_000+i)
		if i%10 != 9 {
			c.TS = cut.Add(time.Duration(i) * time.Minute) // after the cut
		}
		write(t, mem, k, &event.Batch{Conns: []event.Conn{c}}, nil)
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if got, want := pairs(t, settled.New(mem, k)), pairs(t, mem); !reflect.DeepEqual(got, want) {
		t.Errorf("after concurrent writes: %v; want %v", got, want)
	}
	if c := k.Counts(); c.Merged == 0 || c.Dropped == 0 {
		t.Errorf("counts %+v: want answers merged and some dropped", c)
	}
}

// TestFanoutMixedPair: a pair whose originator sent nothing on some of
// its connections (backscatter among real ones) does not say when the
// others were; the fan-out then comes from the store, and is counted as
// passed.
func TestFanoutMixedPair(t *testing.T) {
	ctx := context.Background()
	mem, b, k := stored(t)
	fanout := func(r store.Reader) []store.Fanout {
		t.Helper()
		var out []store.Fanout
		if err := r.Fanout(ctx, store.Window{}, store.FanoutFilter{By: store.FanoutByHost, MinTargets: 1}, func(x *store.Fanout) error {
			out = append(out, *x)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := fanout(settled.New(mem, k)), fanout(mem); !reflect.DeepEqual(got, want) {
		t.Fatalf("fan-out through settled:\n%v\nwant\n%v", got, want)
	}
	if c := k.Counts(); c.Passed != 0 {
		t.Errorf("counts %+v: no pair is mixed yet", c)
	}
	// A silent connection of a pair with others, before any of them:
	// through the pairs alone the group would start with it.
	c := b.Conns[0]
	c.UID, c.TS, c.Src.Line = "Csilent", b.Conns[0].TS.Add(-time.Hour), 50_000
	c.SrcPkts, c.DstPkts = event.Some(uint64(0)), event.Some(uint64(1))
	write(t, mem, k, &event.Batch{Conns: []event.Conn{c}}, nil)
	if got, want := fanout(settled.New(mem, k)), fanout(mem); !reflect.DeepEqual(got, want) {
		t.Errorf("fan-out with a mixed pair through settled:\n%v\nwant\n%v", got, want)
	}
	if c := k.Counts(); c.Passed != 1 {
		t.Errorf("counts %+v: the mixed pair's fan-out should pass to the store", c)
	}
}
