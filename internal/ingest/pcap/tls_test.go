package pcap

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// JA4 of the specification's example Chrome hello (FoxIO's README):
// t13d1516h2_8daaf6152771_e5627efa2ab1.
func TestJA4(t *testing.T) {
	h := &hello{
		version:  0x0303,
		versions: []uint16{0x0a0a, 0x0304, 0x0303},
		ciphers:  []uint16{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		exts:     []uint16{0x2a2a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d, 0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x4469, 0x0015},
		sni:      "example.com",
		alpn:     []string{"h2", "http/1.1"},
		sigAlgs:  []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
	}
	if got := ja4(h, protoTCP); got != "t13d1516h2_8daaf6152771_e5627efa2ab1" {
		t.Errorf("ja4 %s", got)
	}
	if got := ja4(&hello{version: 0x0301}, protoTCP); got != "t10i000000_000000000000_000000000000" {
		t.Errorf("ja4 of an empty hello %s", got)
	}
}

// JA3 and JA3S agree with tshark's on every hello of Zeek's TLS traces.
func TestJA3MatchesTshark(t *testing.T) {
	dir := filepath.Join(dataset(t, "zeek-btest-pcap-to-logs"), "traces/tls")
	f, err := os.Open("testdata/ja3-tshark.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]map[string]bool{} // trace -> fingerprints
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.Split(sc.Text(), "\t")
		if strings.HasPrefix(l[0], "#") || len(l) < 5 {
			continue
		}
		if want[l[0]] == nil {
			want[l[0]] = map[string]bool{}
		}
		for _, fp := range l[3:5] {
			for _, x := range strings.Split(fp, ",") {
				if x != "" {
					want[l[0]][x] = true
				}
			}
		}
	}
	checked := 0
	for trace, fps := range want {
		b, _ := readCapture(t, filepath.Join(dir, trace))
		got := map[string]bool{}
		for _, s := range b.TLS {
			got[s.JA3], got[s.JA3S] = true, true
		}
		for fp := range fps {
			checked++
			if !got[fp] {
				t.Errorf("%s: tshark's %s not among dwell's %v", trace, fp, got)
			}
		}
	}
	if checked < 40 {
		t.Errorf("only %d fingerprints checked", checked)
	}
}
