package zeek

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// addSeeds adds the RITA parser edge cases (when the datasets are present)
// to a fuzz corpus; testdata/fuzz holds a small committed corpus besides.
func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join(datasets, "rita-parser-edgecases", pattern))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// Small seeds keep the fuzzer fast: the start of each file, with
		// its header, is what matters.
		f.Add(data[:min(len(data), 4<<10)], true)
	}
}

// fuzzDecode reads data in format and checks the invariants every input
// must keep: no panic, progress only at line starts within the input, and
// every record with a line number inside it.
func fuzzDecode(t *testing.T, data []byte, final bool, name, format string) {
	in := &ingest.Input{Path: name, Sensor: "f", Hint: ingest.KindHint(name), Final: final, Head: data[:min(len(data), event.HeadSize)]}
	src := newSource(bytes.NewReader(data), in, format, newSpecs())
	b := &event.Batch{}
	lines := int64(bytes.Count(data, []byte{'\n'})) + 1
	for i := 0; ; i++ {
		err := src.Next(context.Background(), b, 7)
		pos := src.Position()
		if pos.Offset < 0 || pos.Offset > int64(len(data)) || (pos.Offset > 0 && pos.Offset < int64(len(data)) && data[pos.Offset-1] != '\n') {
			t.Fatalf("position %d not at a line start (len %d)", pos.Offset, len(data))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i > len(data)+10 {
			t.Fatal("no progress")
		}
	}
	rep := src.Report()
	if rep.Rows != int64(b.Len()) {
		t.Fatalf("report says %d rows, batch has %d", rep.Rows, b.Len())
	}
	for _, c := range b.Conns {
		if c.Src.Line < 1 || c.Src.Line > lines || c.TS.IsZero() {
			t.Fatalf("record line %d of %d, ts %v", c.Src.Line, lines, c.TS)
		}
	}
	if int64(len(rep.Errors)) > rep.Bad || len(rep.Errors) > ingest.MaxParseErrors {
		t.Fatalf("%d errors kept for %d bad lines", len(rep.Errors), rep.Bad)
	}
}

func FuzzTSV(f *testing.F) {
	addSeeds(f, "*/*.log")
	f.Add([]byte(connHeader+"1.0\tC\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tS0\tT\tF\t0\tS\t1\t2\t3\t4\t(empty)\n"), false)
	f.Add([]byte("#separator \\x7c\n#set_separator|;\n#path|dns\n#fields|ts|answers|TTLs\n1|a;b|1;2\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, final bool) {
		fuzzDecode(t, data, final, "conn.log", FormatTSV)
	})
}

func FuzzJSON(f *testing.F) {
	addSeeds(f, "json_with_all_fields/*.log")
	addSeeds(f, "truncated/conn_json.log")
	f.Add([]byte(`{"ts":"2018-03-24T17:15:20.865716Z","id":{"orig_h":"::1","orig_p":1},"answers":["a"],"TTLs":[1.5]}`+"\n"), true)
	f.Add([]byte(`{"_path":"dns","ts":1e3,"query":"\ud83d\ude00\u0000"}`+"\n{"), false)
	f.Fuzz(func(t *testing.T, data []byte, final bool) {
		fuzzDecode(t, data, final, "conn.log", FormatJSON)
	})
}

// FuzzJSONShapes reads JSON under a name that says no log type, so that
// the type comes from _path, @stream or the fields (inferKind), seeded
// with every shape of testdata/shapes.
func FuzzJSONShapes(f *testing.F) {
	shapes, _ := filepath.Glob(filepath.Join("testdata", "shapes", "*"))
	for _, p := range shapes {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data, true)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, final bool) {
		fuzzDecode(t, data, final, "export.json", FormatJSON)
		fuzzDecode(t, data, final, "export.log", FormatTSV)
	})
}
