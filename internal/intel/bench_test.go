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
