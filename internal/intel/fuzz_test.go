package intel

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// seeds adds the dataset files of dir (when present) to a fuzz corpus.
func seeds(f *testing.F, dir, pattern string) {
	root := os.Getenv("DWELL_DATASETS")
	if root == "" {
		root = "../../../shared/datasets"
	}
	files, _ := filepath.Glob(filepath.Join(root, dir, pattern))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil && len(data) < 1<<20 {
			f.Add(data)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, p := range []string{`[ipv4-addr:value = '198.51.100.1']`, `[a:b.'c'[*].d IN (1, 2.5, 'x', true, b'AA==', h'ff')] WITHIN 5 SECONDS`,
		`([x:y = t'2020-01-01T00:00:00Z'] OR [x:z LIKE '%.a']) FOLLOWEDBY [x:q MATCHES '\\d'] START t'2020-01-01T00:00:00Z' STOP t'2021-01-01T00:00:00Z'`,
		`[network-traffic:dst_ref.value = '1.2.3.4' AND network-traffic:dst_port = 80]`, `[ EXISTS a:b ]`, `[a:b NOT != -1e5]`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tree, err := ParsePattern(p)
		if err != nil {
			return
		}
		atoms, err := Atoms(tree)
		if err == nil && atoms == nil {
			t.Fatalf("%q: no atoms and no reason", p)
		}
	})
}

func FuzzParse(f *testing.F) {
	seeds(f, "misp-feed-demo-espionage", "*.json")
	seeds(f, "misp-events-pymisp-tests", "*.json")
	seeds(f, "stix21-oasis-examples", "*.json")
	seeds(f, "stix21-demo-export", "*.json")
	f.Add([]byte("value,type\n1.2.3.4,ip-dst\n"))
	f.Add([]byte("1.2.3.4\nexample.com\n# comment\n"))
	f.Add([]byte(`[{"Event":{"uuid":"x","Attribute":[{"type":"ip-dst|port","value":"1.2.3.4|99999"}]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		for _, i := range r.Indicators {
			if !i.Type.Valid() || i.Value == "" {
				t.Fatalf("invalid indicator %+v", i)
			}
			if n, err := Normalize(i.Type, i.Value); err != nil || n != i.Value {
				t.Fatalf("indicator %s %q not normalised: %q, %v", i.Type, i.Value, n, err)
			}
		}
	})
}

func FuzzMISPFeed(f *testing.F) {
	seeds(f, "misp-feed-demo-espionage", "manifest.json")
	f.Add([]byte(`{"b96dba13-7445-5828-b61a-676c603f2a8b": {}}`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		get := func(_ context.Context, name string) ([]byte, error) {
			if name == "manifest.json" {
				return manifest, nil
			}
			return []byte(`{"Event":{"uuid":"u","Attribute":[{"type":"domain","value":"a.example"}]}}`), nil
		}
		_, _ = ReadMISPFeed(context.Background(), get, "fuzz")
	})
}

// fuzzTransport answers every request with the same body.
type fuzzTransport struct{ body []byte }

func (ft fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(ft.body)), Header: http.Header{
		"X-Taxii-Date-Added-Last": []string{"2020-01-01T00:00:00Z"}}, Request: r}, nil
}

func FuzzTAXII(f *testing.F) {
	f.Add([]byte(`{"more": false, "objects": [{"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '1.2.3.4']"}]}`))
	f.Add([]byte(`{"api_roots": ["/a/"], "collections": [{"id": "c", "can_read": true}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &TAXII{HTTP: &http.Client{Transport: fuzzTransport{body}}, PageSize: 10}
		ctx := context.Background()
		cols, err := c.Collections(ctx, "http://taxii.invalid/taxii2/")
		if err != nil || len(cols) == 0 {
			return
		}
		rd, err := c.Read(ctx, cols[0], "", nil)
		if err != nil {
			return
		}
		_, _ = ParseTAXII([]*TAXIIRead{rd}, func(Collection) string { return "fuzz" })
	})
}
