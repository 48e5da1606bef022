package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGood(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Store: "/var/lib/dwell/dwell.db", Sensor: "brussels-dc1",
		Ingest: Ingest{Workers: 4, BatchRows: 100000, IdleAfter: Duration(5 * time.Minute)}}
	if *c != want {
		t.Errorf("got %+v, want %+v", *c, want)
	}
	c, err = Load(filepath.Join("testdata", "empty.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if *c != *Default() {
		t.Errorf("empty file: got %+v, want defaults %+v", *c, *Default())
	}
}

// TestBad checks that each bad file fails, naming every problem.
func TestBad(t *testing.T) {
	for file, wants := range map[string][]string{
		"unknown_key.bad.yml":  {"field worker not found"},
		"bad_duration.bad.yml": {`"soon" is not a duration`},
		"many_errors.bad.yml":  {"sensor: must not be empty", "ingest.workers: 0", "ingest.batch_rows: 5"},
		"two_docs.bad.yml":     {"more than one YAML document"},
	} {
		_, err := Load(filepath.Join("testdata", file))
		if err == nil {
			t.Errorf("%s: accepted", file)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", file, err, w)
			}
		}
		if !strings.Contains(err.Error(), file) {
			t.Errorf("%s: error %q does not name the file", file, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"sensor: a\n", "ingest:\n  workers: 3\n", "ingest: {idle_after: 1m}", "[", "a: &a [*a]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Default()
		if err := c.decode(data); err == nil {
			_ = c.Validate()
		}
	})
}
