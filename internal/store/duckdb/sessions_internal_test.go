package duckdb

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

// TestSessionsOutliveWrites: a query over flow sessions keeps its table
// while flows are written and another query stitches them again, as a
// served hunt's detectors do while live ingest writes; the table is
// dropped once the last query reading it is done, and a write of other
// records leaves the sessions as they are.
func TestSessionsOutliveWrites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	flows := storetest.SessionFlows()
	if err := s.Write(ctx, &event.Batch{Flows: flows[:len(flows)/2]}); err != nil {
		t.Fatal(err)
	}
	w := store.Window{Conns: store.FlowSessions}
	count := func(q string) int64 {
		t.Helper()
		var n int64
		if err := s.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	tables := func() int64 {
		return count("SELECT count(*) FROM duckdb_tables() WHERE database_name = '" + sessionsDB + "'")
	}
	first, done1, err := s.withConns(ctx, w, "SELECT count(*) FROM conn")
	if err != nil {
		t.Fatal(err)
	}
	before := count(first)

	// Conn records written: the sessions stand.
	conn := event.Conn{TS: time.Date(2024, 4, 19, 6, 0, 0, 0, time.UTC), UID: "C1", SrcIP: netip.MustParseAddr("10.0.0.1"),
		DstIP: netip.MustParseAddr("192.0.2.1"), Proto: "tcp"}
	if err := s.Write(ctx, &event.Batch{Conns: []event.Conn{conn}}); err != nil {
		t.Fatal(err)
	}
	same, doneSame, err := s.withConns(ctx, w, "SELECT count(*) FROM conn")
	if err != nil {
		t.Fatal(err)
	}
	doneSame()
	if same != first {
		t.Errorf("a write of conn records stitched the sessions again:\n%s\n%s", first, same)
	}

	// Flows written, and another query stitches them again: the first
	// query's table is still there, with what it held.
	if err := s.Write(ctx, &event.Batch{Flows: flows[len(flows)/2:]}); err != nil {
		t.Fatal(err)
	}
	second, done2, err := s.withConns(ctx, w, "SELECT count(*) FROM conn")
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("a write of flows left the sessions as they were")
	}
	if got := count(first); got != before {
		t.Errorf("the first query's sessions: %d after the write, %d before", got, before)
	}
	if after := count(second); after <= before {
		t.Errorf("sessions after the write: %d, before it %d", after, before)
	}
	if n := tables(); n != 2 {
		t.Errorf("%d session tables while both are read, want 2", n)
	}
	done1()
	done1() // a second call does nothing
	if n := tables(); n != 1 {
		t.Errorf("%d session tables once the stale one is no longer read, want 1", n)
	}
	done2()
	if n := tables(); n != 1 {
		t.Errorf("%d session tables: the current one should stay for the next query", n)
	}
	if _, err := s.db.ExecContext(ctx, first); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("the stale table was not dropped: %v", err)
	}
}
