package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/ingesttest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
)

// connLine is one conn record in the columns of header.
func connLine(ts float64, uid string, dur float64, origBytes string) string {
	return fmt.Sprintf("%.6f\t%s\t10.0.0.9\t5555\t192.0.2.7\t443\ttcp\tssl\t%.6f\t%s\t200\tSF\tT\tF\t0\tShADadFf\t10\t1000\t12\t5000\t-\n",
		ts, uid, dur, origBytes)
}

// ingestLog writes a conn log of the given data lines and ingests it.
func ingestLog(t *testing.T, lines string) (*ingest.Summary, *ingesttest.Sink) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "conn.log"), []byte(header+lines), true)
	sink := &ingesttest.Sink{}
	return run(t, sink, dir), sink
}

// TestAbsurdClocksAreHeld: a record dated 1970, one in year 9999 and one
// lasting 20 years among ordinary ones are quarantined with file, line and
// reason; one with a time no store can keep is a malformed line; the
// others are stored.
func TestAbsurdClocksAreHeld(t *testing.T) {
	data := rows(0, 200) + connLine(1.0, "Cepoch", 1, "10") + connLine(253402300799, "Cy9999", 1, "10") +
		connLine(1713484800-20*365*86400, "Clong", 20*365*86400, "10") + connLine(1e15, "Cmax", 1, "10") +
		connLine(1713484900, "Cbytes", 1, "18446744073709551615") + rows(200, 400)
	sum, sink := ingestLog(t, data)
	if sum.Rows != 400 || sum.Held != 4 || sum.Bad != 1 {
		t.Fatalf("rows %d, held %d, bad %d; want 400, 4, 1: %+v", sum.Rows, sum.Held, sum.Bad, sum.Files)
	}
	if n := sink.Rows(event.KindConn); n != 400 {
		t.Errorf("stored %d conn records, want 400", n)
	}
	want := map[string]string{"Cepoch": "before ingest.earliest", "Cy9999": "in the future", "Clong": "longer than ingest.max_duration",
		"Cbytes": "orig_bytes 18446744073709551615"}
	for _, q := range sink.Held() {
		uid := q.Record[strings.Index(q.Record, `"UID":"`)+7:]
		uid = uid[:strings.Index(uid, `"`)]
		if !strings.Contains(q.Reason, want[uid]) || want[uid] == "" || q.Kind != event.KindConn || q.Src.Line == 0 || q.Claimed == "" {
			t.Errorf("held %s: %+v", uid, q)
		}
		delete(want, uid)
	}
	if len(want) > 0 {
		t.Errorf("not held: %v", want)
	}
	f := sum.Files[0]
	if len(f.HeldNotes) != 4 || f.HeldNotes[0].Line != 209 || !strings.Contains(f.HeldNotes[0].Reason, "1970-01-01") {
		t.Errorf("held notes %+v", f.HeldNotes)
	}
	if len(f.Errors) != 1 || !strings.Contains(f.Errors[0].Reason, "out of range") {
		t.Errorf("errors %+v", f.Errors)
	}
}

// TestOutlierInItsInput: one record two years before the rest of its
// file is held; a long connection whose end lies with the others, and a
// capture that resumes after a pause of days, are not.
func TestOutlierInItsInput(t *testing.T) {
	base := 1713484800.0
	data := rows(0, 300) + connLine(base-2*365*86400, "Cold", 2, "10") + rows(300, 600) +
		connLine(base+600-3*86400, "Cthreeday", 3*86400, "10")
	sum, sink := ingestLog(t, data)
	if sum.Held != 1 || sum.Rows != 601 {
		t.Fatalf("held %d, rows %d; want 1, 601: %+v", sum.Held, sum.Rows, sink.Held())
	}
	if h := sink.Held()[0]; !strings.Contains(h.Record, "Cold") || !strings.Contains(h.Reason, "apart from the other records") {
		t.Errorf("held %+v", h)
	}

	// A pause of five days inside one batch: both sides are large.
	var b strings.Builder
	for i := range 500 {
		b.WriteString(connLine(base+float64(i), fmt.Sprintf("Ca%d", i), 1, "10"))
	}
	for i := range 500 {
		b.WriteString(connLine(base+5*86400+float64(i), fmt.Sprintf("Cb%d", i), 1, "10"))
	}
	if sum, _ := ingestLog(t, b.String()); sum.Held != 0 || sum.Rows != 1000 {
		t.Errorf("a capture with a pause: held %d, rows %d", sum.Held, sum.Rows)
	}
}

// TestOutlierFirst: a forged record first in its file, before the batch
// that shows where the input really lies, is still held.
func TestOutlierFirst(t *testing.T) {
	sum, sink := ingestLog(t, connLine(1713484800-400*86400, "Cfirst", 1, "10")+rows(0, 100))
	if sum.Held != 1 || sum.Rows != 100 || !strings.Contains(sink.Held()[0].Record, "Cfirst") {
		t.Errorf("held %d, rows %d: %+v", sum.Held, sum.Rows, sink.Held())
	}
}

// TestRefusedInputIsolated: when the store refuses the records of one
// input, the inputs written with them are stored all the same, the run
// goes on, and that input is reported failed.
func TestRefusedInputIsolated(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"a", "b", "c"} {
		write(t, filepath.Join(dir, name, "conn.log"), []byte(header+rows(i*1000, i*1000+50)), true)
	}
	sink := &ingesttest.Sink{Refuse: func(b *event.Batch) error {
		for _, c := range b.Conns {
			if strings.Contains(c.Src.File, "/b/") {
				return errors.New("Conversion Error: value out of range")
			}
		}
		return nil
	}}
	cands, err := ingest.Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	// One worker and a long linger: the three inputs reach the writer in
	// one merged batch.
	in := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), BatchRows: 1000, Workers: 1, Sensor: "s", Now: time.Now})
	sum, err := in.Run(context.Background(), cands)
	if err != nil {
		t.Fatalf("the run failed: %v", err)
	}
	if len(sum.Files) != 3 {
		t.Fatalf("%d inputs", len(sum.Files))
	}
	for _, f := range sum.Files {
		want := ingest.StatusIngested
		if strings.Contains(f.Path, "/b/") {
			want = ingest.StatusFailed
		}
		if f.Status != want {
			t.Errorf("%s: %s, want %s", f.Path, f.Status, want)
		}
	}
	if n := sink.Rows(event.KindConn); n != 100 {
		t.Errorf("stored %d records, want the 100 of a and c", n)
	}
	for _, p := range sink.Entries() {
		if strings.Contains(p.Path, "/b/") {
			t.Errorf("progress of the refused input stored: %+v", p)
		}
	}
}

// TestUnsetClockKept: an input whose records all lie in 1970 (a capture
// whose clock was never set, as some public datasets are) is kept, with
// a note, because its records agree; a record of another year among them
// is held.
func TestUnsetClockKept(t *testing.T) {
	var b strings.Builder
	for i := range 300 {
		b.WriteString(connLine(16+float64(i)*60, fmt.Sprintf("C%d", i), 1, "10"))
	}
	b.WriteString(connLine(1713484800, "Creal", 1, "10"))
	sum, sink := ingestLog(t, b.String())
	if sum.Rows != 300 || sum.Held != 1 || !strings.Contains(sink.Held()[0].Record, "Creal") {
		t.Fatalf("rows %d, held %d: %+v", sum.Rows, sum.Held, sink.Held())
	}
	if notes := strings.Join(sum.Files[0].Notes, "\n"); !strings.Contains(notes, "dated from 1970-01-01T00:00:16Z") {
		t.Errorf("notes %q", notes)
	}
}
