package intel

import (
	"fmt"
	"strings"
	"testing"
)

var benchPatterns = []string{
	"[ipv4-addr:value = '198.51.100.23']",
	"[domain-name:value = 'update-check.example.net' OR domain-name:value LIKE '%.update-check.example.net']",
	"[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.45' AND network-traffic:dst_port = 8443]",
	"[file:hashes.'SHA-256' = 'efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef' AND file:name = 'errorEE.aspx']",
	"[ipv4-addr:value ISSUBSET '203.0.113.0/24'] OR [url:value = 'http://a.example/x']",
}

// BenchmarkParsePattern measures the STIX pattern parser and the
// extraction of matchable values.
func BenchmarkParsePattern(b *testing.B) {
	n := 0
	for _, p := range benchPatterns {
		n += len(p)
	}
	b.ReportAllocs()
	b.SetBytes(int64(n))
	for b.Loop() {
		for _, p := range benchPatterns {
			e, err := ParsePattern(p)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Atoms(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkParseSTIX reads a bundle of 10,000 indicators, as a national
// CERT's daily collection may hold.
func BenchmarkParseSTIX(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"type":"bundle","id":"bundle--00000000-0000-4000-8000-000000000000","objects":[`)
	for i := range 10000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"type":"indicator","spec_version":"2.1","id":"indicator--%08x-0000-4000-8000-000000000000","created":"2024-01-01T00:00:00.000Z",`+
			`"modified":"2024-01-01T00:00:00.000Z","name":"c2 %d","pattern":"[ipv4-addr:value = '198.%d.%d.%d']","pattern_type":"stix",`+
			`"valid_from":"2024-01-01T00:00:00Z","object_marking_refs":["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]}`,
			i, i, 18+i%2, i/256%256, i%256)
	}
	sb.WriteString("]}")
	data := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := ParseSTIX(data, "bench")
		if err != nil || len(r.Indicators) != 10000 {
			b.Fatalf("%v, %d indicators", err, len(r.Indicators))
		}
	}
}

// BenchmarkParseList reads a plain list of 10,000 values of mixed types.
func BenchmarkParseList(b *testing.B) {
	var sb strings.Builder
	for i := range 10000 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&sb, "198.%d.%d.%d\n", 18+i%2, i/256%256, i%256)
		case 1:
			fmt.Fprintf(&sb, "c2-%d.example.net\n", i)
		case 2:
			fmt.Fprintf(&sb, "http://c2-%d.example.net/gate.php\n", i)
		default:
			fmt.Fprintf(&sb, "%064x\n", i)
		}
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := ParseList(data, "bench")
		if err != nil || len(r.Indicators) != 10000 {
			b.Fatalf("%v, %d indicators", err, len(r.Indicators))
		}
	}
}

// mispEventJSON builds a MISP event of n attributes (a few in objects)
// under 20 event tags, as a large OSINT event is.
func mispEventJSON(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"Event":{"uuid":"5f0c1a2b-0000-4000-8000-000000000001","info":"a large OSINT event","timestamp":"1700000000","Tag":[`)
	for i := range 20 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":"misp-galaxy:threat-actor=\"Actor %d\""}`, i)
	}
	b.WriteString(`,{"name":"tlp:amber"}],"Attribute":[`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"uuid":"5f0c1a2b-%04x-4000-8000-%012x","type":"ip-dst","category":"Network activity","value":"198.%d.%d.%d",`+
			`"to_ids":true,"timestamp":"1700000000","comment":"C2 server seen in the campaign"}`, i%65536, i, (i>>16)&255, (i>>8)&255, i&255)
	}
	b.WriteString(`],"Object":[{"uuid":"5f0c1a2b-0000-4000-8000-00000000ffff","name":"domain-ip","Attribute":[`)
	b.WriteString(`{"uuid":"5f0c1a2b-0000-4000-8000-00000000fffe","type":"domain","value":"evil.example","to_ids":true}]}]}}`)
	return []byte(b.String())
}

// BenchmarkParseMISPEvent reads a 100,000-attribute event; B/op against
// the event's size is what parsing costs in memory (issue #14: 16-27 times
// the file's size before streaming).
func BenchmarkParseMISPEvent(b *testing.B) {
	data := mispEventJSON(100_000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, err := Parse(data, "bench")
		if err != nil || len(r.Indicators) != 100_001 {
			b.Fatalf("%d indicators, %v", len(r.Indicators), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/event")
}
