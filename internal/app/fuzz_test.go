package app

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/ingest/winlog"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// The whole path from bytes to stored rows: arbitrary input, decoded by
// the format dwell recognises, screened, and written to a real store. The
// decoders' own fuzz targets cannot see a value the store refuses (a time
// past year 294,000, a count beyond BIGINT); these can. The property: the
// run never fails and no input is refused by the store.

// fuzzIngest runs the property for inputs written under name, one DuckDB
// store (in memory) for the whole fuzz run.
func fuzzIngest(f *testing.F, name string, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, ":memory:", duckdb.Options{MemoryLimit: "512MB", Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	formats := slices.Concat(winlog.Formats(), zeek.Formats(), netflow.Formats(), evtx.Formats())
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cands, err := ingest.Discover([]string{path})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := ingest.New(st, ingest.Options{Formats: formats, Complete: true, Workers: 1, Sensor: "fuzz"}).Run(ctx, cands)
		if err != nil {
			t.Fatalf("the run failed: %v", err)
		}
		for _, r := range sum.Files {
			if r.Status == ingest.StatusFailed && strings.Contains(r.Err, "store refused") {
				t.Fatalf("%s", r.Err)
			}
		}
	})
}

// zeekSeeds returns the Zeek fixtures of the shapes test and a log of
// absurd values.
func zeekSeeds(f *testing.F, ext string) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("..", "ingest", "zeek", "testdata", "shapes", "*"+ext))
	var out [][]byte
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			out = append(out, data)
		}
	}
	if len(out) == 0 {
		f.Fatalf("no seeds *%s", ext)
	}
	return out
}

func FuzzStoreZeekTSV(f *testing.F) {
	seeds := zeekSeeds(f, ".log")
	seeds = append(seeds, []byte("#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\n"+
		"1.0\tC1\t10.0.0.1\t1\t10.0.0.2\t445\ttcp\t99999999999.5\t18446744073709551615\n"+
		"253402300799.999999\tC2\t10.0.0.1\t1\t10.0.0.2\t445\ttcp\t-5\t0\n"))
	fuzzIngest(f, "conn.log", seeds)
}

func FuzzStoreZeekJSON(f *testing.F) {
	seeds := zeekSeeds(f, ".json")
	seeds = append(seeds, []byte(`{"_path":"x509","ts":1713484800,"certificate.not_valid_after":1e300,"certificate.not_valid_before":-9e18}`+"\n"+
		`{"_path":"dns","ts":"9999-12-31T23:59:59Z","query":"a\xffb","TTLs":[1e308]}`+"\n"))
	fuzzIngest(f, "mixed.json", seeds)
}

func FuzzStoreFlows(f *testing.F) {
	now := time.Date(2024, 4, 19, 12, 0, 0, 0, time.UTC)
	ms := uint64(now.UnixMilli())
	seeds := [][]byte{ipfixCapture(now, []ipfixRecord{
		{src: [4]byte{10, 1, 0, 5}, dst: [4]byte{192, 0, 2, 9}, bytes: 5000, packets: 10, startMs: ms, endMs: ms + 2000, proto: 6},
		{src: [4]byte{10, 1, 0, 6}, dst: [4]byte{192, 0, 2, 9}, bytes: 1 << 63, packets: 1 << 63, startMs: 1<<63 - 1, endMs: 1 << 63, proto: 17},
	})}
	paths, _ := filepath.Glob(filepath.Join(datasets, "netflow-ipfix-sflow-akvorado", "*", "*.pcap"))
	for _, p := range paths[:min(len(paths), 8)] {
		if data, err := os.ReadFile(p); err == nil && len(data) < 1<<20 {
			seeds = append(seeds, data)
		}
	}
	fuzzIngest(f, "edge.pcap", seeds)
}

// FuzzStoreIntel: arbitrary intel (a list, CSV, a MISP event, a STIX
// bundle: intel.Parse tells which) vetted as imports vet it and stored in
// a DuckDB store: the store never refuses it, and what is stored is
// listed back.
func FuzzStoreIntel(f *testing.F) {
	for _, s := range []string{
		"198.51.100.7\n10.0.0.0/8\nevil.example\n",
		"value,type\nEvil\xffAgent,user-agent\n198.51.100.9,ip-dst\n",
		`{"Event":{"uuid":"5f","timestamp":"99999999999999","Attribute":[{"uuid":"a","type":"ip-dst","value":"203.0.113.9","to_ids":true}]}}`,
		`{"type":"bundle","id":"bundle--1","objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--1","created":"2024-01-01T00:00:00Z",` +
			`"modified":"2024-01-01T00:00:00Z","valid_from":"9999-12-31T23:59:59Z","pattern_type":"stix","pattern":"[domain-name:value = 'x.example']"}]}`,
	} {
		f.Add([]byte(s))
	}
	for _, dir := range []string{"misp-events-pymisp-tests", "stix21-oasis-examples"} {
		paths, _ := filepath.Glob(filepath.Join(datasets, dir, "*.json"))
		for _, p := range paths[:min(len(paths), 4)] {
			if data, err := os.ReadFile(p); err == nil && len(data) < 1<<18 {
				f.Add(data)
			}
		}
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, ":memory:", duckdb.Options{MemoryLimit: "512MB", Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	scope := intel.Scope{Local: detect.DefaultLocal()}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := intel.Parse(data, "fuzz")
		if err != nil {
			return
		}
		scope.Vet(r)
		inds := intel.Distinct(r.Indicators)
		if _, _, err := st.PutIndicators(ctx, inds); err != nil {
			t.Fatalf("the store refused %d indicators: %v", len(inds), err)
		}
		if err := st.Indicators(ctx, func(*event.Indicator) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzStoreHostJSON: JSON lines of Windows events, in every shape dwell
// reads, with absurd times, ids and counts.
func FuzzStoreHostJSON(f *testing.F) {
	fuzzIngest(f, "host.jsonl", [][]byte{
		[]byte(`{"EventTime":"2020-12-19 06:59:28","Hostname":"WS6","EventID":4624,"SourceName":"Microsoft-Windows-Security-Auditing",` +
			`"RecordNumber":52,"Channel":"Security","TargetUserName":"pgustavo","LogonType":"3","IpAddress":"172.18.39.5"}` + "\n"),
		[]byte(`{"@timestamp":"9999-12-31T23:59:59Z","winlog":{"channel":"Security","event_id":"4294967295","record_id":18446744073709551615,` +
			`"computer_name":"x","event_data":{"A":"\u0000\udfff"}}}` + "\n" +
			`{"TimeCreated":"0001-01-01T00:00:00Z","EventID":1,"Channel":"S","Keywords":"0xffffffffffffffffff"}` + "\n"),
		[]byte(`{"Event":{"System":{"EventID":{"#text":"7045","#attributes":{"Qualifiers":16384}},"TimeCreated":{"#attributes":` +
			`{"SystemTime":"2021-01-01T00:00:00Z"}},"Channel":"System","Computer":"h"},"EventData":{"ServiceName":"s","ImagePath":"c"}}}` + "\n"),
	})
}

// FuzzStoreEVTX: EVTX files, from the EVTX reader's test builder (a file
// of logon events) and the first chunk of the edge-case samples.
func FuzzStoreEVTX(f *testing.F) {
	var seeds [][]byte
	paths, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "datasets", "evtx-parser-edgecases", "*.evtx"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) > 4096+65536 {
			seeds = append(seeds, data[:4096+65536])
		}
	}
	if len(seeds) == 0 {
		// Without the datasets: an EVTX file header alone, so that the
		// fuzzer starts from the format's signature.
		head := make([]byte, 4096)
		copy(head, "ElfFile\x00")
		seeds = append(seeds, head)
	}
	fuzzIngest(f, "x.evtx", seeds)
}
