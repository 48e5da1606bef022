package event

import (
	"testing"
	"time"
)

func TestKinds(t *testing.T) {
	for _, k := range Kinds {
		got, ok := ParseKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := ParseKind("weird"); ok {
		t.Error("weird is not a stored kind")
	}
	if Kind(99).String() != "Kind(99)" {
		t.Error(Kind(99).String())
	}
}

func TestBatch(t *testing.T) {
	a := &Batch{Conns: make([]Conn, 2), DNS: make([]DNS, 1), Progress: []Progress{{ID: "x"}}}
	b := &Batch{Conns: make([]Conn, 1), Files: make([]File, 3), TLS: make([]TLS, 1), Progress: []Progress{{ID: "y"}}}
	a.Append(b)
	if a.Len() != 8 || a.Count(KindConn) != 3 || a.Count(KindFile) != 3 || len(a.Progress) != 2 || b.Len() != 5 {
		t.Fatalf("after Append: len %d conns %d files %d progress %d", a.Len(), a.Count(KindConn), a.Count(KindFile), len(a.Progress))
	}
	c := cap(a.Conns)
	a.Reset()
	if a.Len() != 0 || len(a.Progress) != 0 || cap(a.Conns) != c {
		t.Fatal("Reset must empty and keep capacity")
	}
}

func TestOptAndMicro(t *testing.T) {
	var o Opt[int]
	if o.Or(7) != 7 || Some(3).Or(7) != 3 {
		t.Error("Or")
	}
	if v, ok := Some("x").Get(); !ok || v != "x" {
		t.Error("Get")
	}
	ts := time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.FixedZone("x", 3600))
	if got := Micro(ts); got.Nanosecond() != 123456000 || got.Location() != time.UTC {
		t.Errorf("Micro = %v", got)
	}
	// Micro is Truncate to the microsecond, before 1970 and after, for
	// instants with and without a monotonic reading.
	for _, ts := range []time.Time{
		time.Unix(-1, 999), time.Unix(-86401, 1), time.Unix(0, 0), time.Unix(1, 999999999), time.Unix(1<<40, 123456789),
		time.Date(1, 1, 1, 0, 0, 0, 1500, time.UTC), {}, time.Now(),
	} {
		if got, want := Micro(ts), ts.Truncate(time.Microsecond).UTC(); got != want {
			t.Errorf("Micro(%v) = %v, want %v", ts, got, want)
		}
	}
}
