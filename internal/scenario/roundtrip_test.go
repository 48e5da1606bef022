package scenario

import (
	"context"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
)

// keepSink is an ingest.Sink that keeps every record read.
type keepSink struct {
	mu sync.Mutex
	b  event.Batch
}

func (s *keepSink) Write(_ context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Append(b)
	return nil
}

func (s *keepSink) Inputs(context.Context, event.InputID, string) ([]event.Progress, error) {
	return nil, nil
}

func (s *keepSink) Ledger(context.Context) ([]event.Progress, error) { return nil, nil }

// readBack ingests dir's Zeek logs and returns what was read.
func readBack(t *testing.T, paths ...string) (*event.Batch, *ingest.Summary) {
	t.Helper()
	cands, err := ingest.Discover(paths)
	if err != nil {
		t.Fatal(err)
	}
	sink := &keepSink{}
	sum, err := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), Workers: 1}).Run(t.Context(), cands)
	if err != nil {
		t.Fatal(err)
	}
	return &sink.b, sum
}

// TestEncoderRoundTrip writes an hour of background and planted records,
// with hostile strings added, in both formats, and reads it back with
// dwell's Zeek reader: every field of every record must come back as it was.
func TestEncoderRoundTrip(t *testing.T) {
	for _, format := range []string{FormatTSV, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			cfg := Config{Days: 10, Hosts: 40, Format: format}.withDefaults()
			m := newModel(cfg)
			p := newPlan(m)
			h := int(p.truth.Campaign.FirstEvent.Sub(cfg.Start) / time.Hour)
			hb := &hourBufs{}
			gen := &hourGen{m: m, hour: h, start: cfg.Start.Add(time.Duration(h) * time.Hour), rng: p.rng, b: &hb.b, certs: map[string]bool{}}
			gen.background(3000)
			p.into(h, &hb.b, gen.certs)
			if len(hb.b.HTTP) == 0 || len(hb.b.TLS) == 0 || len(hb.b.DNS) == 0 || len(hb.b.Files) == 0 {
				t.Fatalf("hour %d lacks some logs: %d http, %d ssl, %d dns, %d files", h, len(hb.b.HTTP), len(hb.b.TLS), len(hb.b.DNS), len(hb.b.Files))
			}
			// Values an attacker controls, with everything an encoder must escape.
			c := gen.conn(gen.start.Add(time.Minute), netip.MustParseAddr("10.10.0.11"), netip.MustParseAddr("203.0.113.9"), 80, "tcp", "http", time.Second, 10, 20, "SF")
			gen.http(c, "POST", "tab\there.example", "/a,b\\x41\\b\"q\"\n-é✓", "-", 200, 1, 2, "text/html")
			gen.dns(gen.start.Add(2*time.Minute), netip.MustParseAddr("10.10.0.11"), "-", "TXT", "a,b", "(empty)", "x\ty", "\\x2d")
			gen.dns(gen.start.Add(3*time.Minute), netip.MustParseAddr("10.10.0.11"), "q\x01\x7f.example", "A")

			want := cloneBatch(&hb.b)
			dir := t.TempDir()
			if _, _, err := writeHour(dir, cfg, gen.start, hb); err != nil {
				t.Fatal(err)
			}
			got, sum := readBack(t, dir)
			if sum.Bad != 0 {
				t.Fatalf("%d bad lines: %+v", sum.Bad, sum.Files)
			}
			compare(t, "conn", want.Conns, got.Conns, func(r *event.Conn) { r.Src = event.Source{} })
			compare(t, "dns", want.DNS, got.DNS, func(r *event.DNS) { r.Src = event.Source{} })
			compare(t, "http", want.HTTP, got.HTTP, func(r *event.HTTP) { r.Src = event.Source{} })
			compare(t, "ssl", want.TLS, got.TLS, func(r *event.TLS) { r.Src = event.Source{} })
			compare(t, "x509", want.X509, got.X509, func(r *event.X509) { r.Src = event.Source{} })
			compare(t, "files", want.Files, got.Files, func(r *event.File) { r.Src = event.Source{} })
		})
	}
}

func cloneBatch(b *event.Batch) *event.Batch {
	out := &event.Batch{}
	out.Append(b)
	return out
}

// compare checks that got holds want's records in time order (stable, as
// the writer sorts them), ignoring provenance.
func compare[T any](t *testing.T, log string, want, got []T, clear func(*T)) {
	t.Helper()
	ts := func(r *T) time.Time { return reflect.ValueOf(r).Elem().FieldByName("TS").Interface().(time.Time) }
	slices.SortStableFunc(want, func(a, b T) int { return ts(&a).Compare(ts(&b)) })
	if len(want) != len(got) {
		t.Fatalf("%s: %d records read back, %d written", log, len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		clear(&w)
		clear(&g)
		normalise(&w)
		normalise(&g)
		if !reflect.DeepEqual(w, g) {
			t.Fatalf("%s record %d differs:\nwrote %+v\nread  %+v", log, i, w, g)
		}
	}
}

// normalise makes equal what the formats cannot tell apart: times in UTC,
// empty and missing slices (JSON leaves empty sets out).
func normalise(r any) {
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch x := f.Interface().(type) {
		case time.Time:
			f.Set(reflect.ValueOf(x.UTC()))
		case event.Opt[time.Time]:
			x.V = x.V.UTC()
			f.Set(reflect.ValueOf(x))
		}
		if f.Kind() == reflect.Slice && f.Len() == 0 {
			f.Set(reflect.Zero(f.Type()))
		}
	}
}

// TestHostileHourPath checks the rotated file name a worker writes.
func TestHostileHourPath(t *testing.T) {
	cfg := Config{Days: 4, Hosts: 20}.withDefaults()
	hb := &hourBufs{}
	m := newModel(cfg)
	start := cfg.Start.Add(23 * time.Hour)
	gen := &hourGen{m: m, hour: 23, start: start, rng: newPlan(m).rng, b: &hb.b, certs: map[string]bool{}}
	gen.background(10)
	files, _, err := writeHour(t.TempDir(), cfg, start, hb)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.ToSlash(filepath.Join(cfg.Start.Format(time.DateOnly), "conn.23:00:00-00:00:00.log.gz")); !slices.Contains(files, want) {
		t.Errorf("files %v lack %s", files, want)
	}
}
