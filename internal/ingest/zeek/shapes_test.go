package zeek

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// TestShapes reads one fixture per shape of Zeek log that deployments
// write (testdata/shapes): JSON with dotted, underscored
// (Log::default_field_name_map) and nested names, JSON streaming logs
// with several types in one file (_path, @stream, _system_name),
// ISO 8601 times in TSV and JSON, the type from a file name with a sensor
// beside it, from the fields when nothing names it, and a file of no log
// dwell stores, which stores nothing and says why.
func TestShapes(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v.UTC() }
	type want struct {
		counts  map[event.Kind]int
		sensors []string // sensor of each record, in batch order of conn, dns, http, ssl, x509, files
		check   func(t *testing.T, b *event.Batch)
		skipped string // a skipped type that must be counted
	}
	conn := func(n int) map[event.Kind]int { return map[event.Kind]int{event.KindConn: n} }
	firstConn := func(uid, src string, port uint16, ts time.Time) func(*testing.T, *event.Batch) {
		return func(t *testing.T, b *event.Batch) {
			c := b.Conns[0]
			if c.UID != uid || c.SrcIP.String() != src || c.DstPort != port || !c.TS.Equal(ts) {
				t.Errorf("conn %+v; want uid %s from %s to port %d at %v", c, uid, src, port, ts)
			}
		}
	}
	cases := map[string]want{
		"conn-dotted.json": {counts: conn(2), check: func(t *testing.T, b *event.Batch) {
			firstConn("CdOt1", "10.1.0.5", 443, time.Unix(1713513601, 123456000).UTC())(t, b)
			if b.Conns[0].SrcBytes.V != 512 || b.Conns[0].DstIPBytes.V != 4568 || b.Conns[1].ConnState != "S0" {
				t.Errorf("conn fields %+v", b.Conns)
			}
		}},
		"conn-underscored.json": {counts: conn(1), check: func(t *testing.T, b *event.Batch) {
			firstConn("CuNd1", "10.1.0.5", 443, time.Unix(1713513601, 123456000).UTC())(t, b)
			c := b.Conns[0]
			if c.DstIP.String() != "198.51.100.7" || c.SrcPort != 51000 || !c.LocalSrc.V || c.CommunityID != "1:abc=" || c.SrcIPBytes.V != 932 {
				t.Errorf("underscored conn %+v", c)
			}
		}},
		"x509-underscored.json": {counts: map[event.Kind]int{event.KindX509: 1}, check: func(t *testing.T, b *event.Batch) {
			x := b.X509[0]
			if x.Subject != "CN=evil.example" || x.Issuer != x.Subject || x.Serial != "0A1B" || len(x.SANDNS) != 2 || !x.HostCert.V ||
				x.KeyLength.V != 2048 || !x.NotValidAfter.Valid || x.BasicConstraintCA.V {
				t.Errorf("x509 %+v", x)
			}
		}},
		"nested.json": {counts: conn(1), check: firstConn("CnEs1", "10.1.0.9", 8443, time.Unix(1713513601, 0).UTC())},
		"corelight-stream.log": {
			counts:  map[event.Kind]int{event.KindConn: 1, event.KindDNS: 1, event.KindTLS: 1, event.KindHTTP: 1},
			sensors: []string{"dmz-sensor", "dmz-sensor", "core-sensor", "dmz-sensor"},
			skipped: "weird",
			check: func(t *testing.T, b *event.Batch) {
				firstConn("CsTr1", "10.1.0.5", 443, at("2024-04-19T08:00:01.123456Z"))(t, b)
				if d := b.DNS[0]; d.Query != "www.example.com" || len(d.Answers) != 1 || !d.TS.Equal(at("2024-04-19T08:00:00.9Z")) {
					t.Errorf("dns %+v", d)
				}
				if s := b.TLS[0]; s.ServerName != "www.example.com" || !s.Established.V {
					t.Errorf("ssl %+v", s)
				}
				if h := b.HTTP[0]; h.Host != "example.org" || h.StatusCode.V != 200 {
					t.Errorf("http %+v", h)
				}
			},
		},
		"at-stream.json": {counts: map[event.Kind]int{event.KindConn: 1, event.KindFile: 1}, check: func(t *testing.T, b *event.Batch) {
			firstConn("CaSt1", "10.1.0.7", 22, time.Unix(1713513601, 0).UTC())(t, b)
			if f := b.Files[0]; f.Filename != "backup.7z" || f.SeenBytes.V != 52428800 || f.DstPort != 80 {
				t.Errorf("files %+v", f)
			}
		}},
		"conn-underscored-iso.log": {counts: conn(2), check: func(t *testing.T, b *event.Batch) {
			firstConn("CtSv1", "10.1.0.5", 443, at("2024-04-19T08:00:01.123456Z"))(t, b)
			if b.Conns[1].TS != time.Unix(1713513602, 500000000).UTC() || b.Conns[0].Duration.V != 1500*time.Millisecond {
				t.Errorf("conns %+v", b.Conns)
			}
		}},
		"dmz-sensor_conn.log":       {counts: conn(1)},
		"conn_brussels.log":         {counts: conn(1)},
		"json_streaming_conn.1.log": {counts: conn(1)},
		"export-0001.json": {counts: map[event.Kind]int{event.KindDNS: 1}, check: func(t *testing.T, b *event.Batch) {
			if d := b.DNS[0]; d.Query != "a.example" || d.RCodeName != "NXDOMAIN" {
				t.Errorf("dns %+v", d)
			}
		}},
		"mystery.json": {counts: map[event.Kind]int{}, skipped: UnknownType},
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "shapes"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(cases) {
		t.Errorf("%d fixtures, %d cases", len(entries), len(cases))
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "shapes", name))
			if err != nil {
				t.Fatal(err)
			}
			b, rep := decodeShape(t, name, string(data))
			if rep.Bad != 0 {
				t.Errorf("%d bad lines: %v", rep.Bad, rep.Errors)
			}
			for _, k := range event.Kinds {
				if got := b.Count(k); got != w.counts[k] {
					t.Errorf("%v: %d records, want %d", k, got, w.counts[k])
				}
			}
			if w.skipped != "" && rep.SkippedTypes[w.skipped] == 0 {
				t.Errorf("skipped types %v, want %q counted", rep.SkippedTypes, w.skipped)
			}
			if w.sensors != nil {
				var got []string
				for _, c := range b.Conns {
					got = append(got, c.Src.Sensor)
				}
				for _, d := range b.DNS {
					got = append(got, d.Src.Sensor)
				}
				for _, h := range b.HTTP {
					got = append(got, h.Src.Sensor)
				}
				for _, s := range b.TLS {
					got = append(got, s.Src.Sensor)
				}
				if len(got) != len(w.sensors) {
					t.Fatalf("sensors %v, want %v", got, w.sensors)
				}
				for i := range got {
					if got[i] != w.sensors[i] {
						t.Errorf("sensors %v, want %v", got, w.sensors)
						break
					}
				}
			}
			if w.check != nil && b.Len() > 0 {
				w.check(t, b)
			}
		})
	}
}

// decodeShape reads a fixture as an input with no sensor chosen.
func decodeShape(t *testing.T, name, data string) (*event.Batch, ingest.Report) {
	t.Helper()
	in := &ingest.Input{Path: name, Sensor: "default", DataSensor: true, Hint: ingest.KindHint(name), Final: true, Head: []byte(data)}
	return decodeInput(t, in, data)
}
