package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// testHostEvents reads back the sample's Windows events: whole, in order,
// filtered by event id, carved ones only on request, within the window.
func testHostEvents(t *testing.T, s store.Store) {
	defer closeStore(t, s)
	ctx := context.Background()
	b := Sample()
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	read := func(w store.Window, f store.HostFilter) []event.HostEvent {
		var out []event.HostEvent
		if err := s.HostEvents(ctx, w, f, func(e *event.HostEvent) error {
			out = append(out, *e)
			return nil
		}); err != nil {
			t.Fatalf("HostEvents: %v", err)
		}
		return out
	}
	want := Sample().Host
	if got := read(store.Window{}, store.HostFilter{Carved: true}); !reflect.DeepEqual(got, want) {
		t.Errorf("all events:\n got %+v\nwant %+v", got, want)
	}
	if got := read(store.Window{}, store.HostFilter{}); len(got) != 1 || got[0].Carved {
		t.Errorf("without carved records: %+v", got)
	}
	if got := read(store.Window{}, store.HostFilter{EventIDs: []uint32{1, 4688}, Carved: true}); len(got) != 1 || got[0].EventID != 1 {
		t.Errorf("event ids 1 and 4688: %+v", got)
	}
	if got := read(store.Window{Since: t0.Add(time.Millisecond / 2)}, store.HostFilter{Carved: true}); len(got) != 1 || got[0].Computer != "ws042" {
		t.Errorf("window from t0+0.5ms: %+v", got)
	}
}
