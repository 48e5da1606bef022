package ingest

import (
	"reflect"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

func TestEscapeText(t *testing.T) {
	for in, want := range map[string]string{
		"example.com": "example.com", "a\xffb": `a\xffb`, "caf\xc3\xa9": "café", "caf\xc3": `caf\xc3`,
		"\xed\xa0\x80": `\xed\xa0\x80`, // a UTF-16 surrogate is not UTF-8
		"日本\xfe語":      `日本\xfe語`,
	} {
		if got, _ := event.EscapeText(in); got != want {
			t.Errorf("EscapeText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryTextEscaped sets every text field of every record kind (its
// provenance included) to a byte that is not UTF-8, through reflection,
// and checks that the screen escapes them all: a field added to a record
// and forgotten in text.go fails here.
func TestEveryTextEscaped(t *testing.T) {
	b := &event.Batch{Conns: make([]event.Conn, 1), OpenConns: make([]event.Conn, 1), DNS: make([]event.DNS, 1), HTTP: make([]event.HTTP, 1),
		TLS: make([]event.TLS, 1), X509: make([]event.X509, 1), Files: make([]event.File, 1), Flows: make([]event.Flow, 1)}
	var fields int
	each := func(fn func(v reflect.Value, path string)) {
		for _, rows := range []any{b.Conns, b.OpenConns, b.DNS, b.HTTP, b.TLS, b.X509, b.Files, b.Flows} {
			walkText(reflect.ValueOf(rows).Index(0), reflect.TypeOf(rows).Elem().Name(), fn)
		}
	}
	each(func(v reflect.Value, _ string) {
		fields++
		if v.Kind() == reflect.String {
			v.SetString("\xff")
		} else {
			v.Set(reflect.ValueOf([]string{"\xfe"}))
		}
	})
	if n := escapeBatch(b); n != int64(fields) {
		t.Errorf("escaped %d values of %d", n, fields)
	}
	each(func(v reflect.Value, path string) {
		if v.Kind() == reflect.String && v.String() != `\xff` || v.Kind() == reflect.Slice && v.Index(0).String() != `\xfe` {
			t.Errorf("%s not escaped: %q", path, v.Interface())
		}
	})
}

// walkText calls fn with every string and []string field of the struct
// v, nested structs included.
func walkText(v reflect.Value, path string, fn func(reflect.Value, string)) {
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.String:
			fn(f, name)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			fn(f, name)
		case f.Type() == reflect.TypeOf(event.Source{}):
			walkText(f, name, fn)
		}
	}
}

// BenchmarkScreen measures the screen on a batch of ordinary conn records
// (all of them kept): escaping and the clock checks, per batch of 122,880.
func BenchmarkScreen(b *testing.B) {
	const rows = 122880
	base := time.Date(2024, 4, 19, 0, 0, 0, 0, time.UTC)
	batch := &event.Batch{}
	for i := range rows {
		batch.Conns = append(batch.Conns, event.Conn{TS: base.Add(time.Duration(i) * 20 * time.Millisecond), UID: "CHhAvVGS1DHFjwGM9",
			Proto: "tcp", Service: "ssl", ConnState: "SF", History: "ShADadFf", Duration: event.Some(1500 * time.Millisecond),
			SrcBytes: event.Some[uint64](1200), DstBytes: event.Some[uint64](50000), SrcPkts: event.Some[uint64](12),
			Src: event.Source{Sensor: "bench", File: "/nsm/zeek/logs/2024-04-19/conn.00:00:00-01:00:00.log.gz", Line: int64(i + 9)}})
	}
	now := base.Add(24 * time.Hour)
	b.ReportAllocs()
	b.SetBytes(rows * 150) // about a Zeek TSV conn line per record
	for b.Loop() {
		s := newScreen(Clock{}, now)
		s.apply(batch)
		if len(batch.Conns) != rows {
			b.Fatalf("kept %d", len(batch.Conns))
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
