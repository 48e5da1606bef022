package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestGood(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Store: "/var/lib/dwell/dwell.db", MemoryLimit: "4GB", Threads: 8, Sensor: "brussels-dc1",
		Ingest: Ingest{Workers: 4, BatchRows: 100000, MemoryLimit: "640MB", Threads: 3, IdleAfter: Duration(5 * time.Minute), Earliest: Date(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)),
			ClockSkew: Duration(2 * time.Hour), MaxGap: Duration(10 * 24 * time.Hour), MaxDuration: Duration(7 * 24 * time.Hour)},
		Networks: Networks{Local: []string{"10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"}},
		Allow:    Allow{Nets: []string{"10.9.9.9"}, Domains: []string{"windowsupdate.com", "=ntp.example.org"}, Pairs: []string{"10.0.0.0/8->198.51.100.10"}},
		Hunt:     Hunt{Detectors: []string{"beacon", "exfil"}, MinScore: 0.5},
		Intel: Intel{WidestIPv4: 20, WidestIPv6: 40, TAXIITimeout: Duration(time.Minute), TAXIIMaxPages: 50, TAXIIMaxObjects: 9000,
			TAXIIMaxTime: Duration(10 * time.Minute)},
		Sigma: Sigma{Rules: []string{"/etc/dwell/sigma/windows"}, Logsources: "/etc/dwell/sigma/thor.yml",
			Placeholders: map[string][]string{"admins": {"alice.adm", "bob.adm"}}}}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got %+v, want %+v", *c, want)
	}
	c, err = Load(filepath.Join("testdata", "empty.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, *Default()) {
		t.Errorf("empty file: got %+v, want defaults %+v", *c, *Default())
	}
}

// TestBad checks that each bad file fails, naming every problem.
func TestBad(t *testing.T) {
	for file, wants := range map[string][]string{
		"unknown_key.bad.yml":  {"field worker not found"},
		"bad_duration.bad.yml": {`"soon" is not a duration`},
		"many_errors.bad.yml": {"memory_limit: \"lots\"", "sensor: must not be empty", "ingest.workers: 0", "ingest.batch_rows: 5",
			"threads: -1 is not between 0", "ingest.threads: 5000"},
		"two_docs.bad.yml": {"more than one YAML document"},
		"networks.bad.yml": {"networks.local[0]: \"10.0.0.0/33\"", "allow.nets[0]", "allow.domains[0]", "allow.pairs[0]: \"10.0.0.1\": want SRC->DST",
			"hunt.detectors[0]: unknown detector \"becaon\"", "hunt.min_score: 2"},
		"serve.bad.yml": {"serve.tls: off on 0.0.0.0:7878, which is not loopback", "serve.poll", "serve.follow[0]: path", "serve.intel[0]: every",
			"serve.alerts.min_severity: \"urgent\"", "serve.alerts.webhooks[0]: \"ftp://x\"", "serve.alerts.syslog[0]: address \"siem\"",
			"network \"sctp\"", "format \"leef\"", "tlp \"purple\"", "serve.alerts.email[0]: from", "serve.alerts.email[0]: to: no recipient",
			"serve.log_level: \"loud\""},
		"ddos.bad.yml": {"serve.ddos: networks are watched", "serve.ddos.networks[0]: prefix \"10.20.0.0/33\"", "must not be negative",
			"serve.ddos.end_ratio", `vector_pps "syn"`, "serve.mitigation.infrastructure[0]: \"somewhere\"", "serve.mitigation.bgp[0]: peer is needed",
			"local_as and peer_as are needed", "router_id \"2001:db8::1\"", "community \"blackhole\"", "serve.mitigation.nftables"},
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

// TestServeDefaults: a serve section gets its defaults from the store and
// the address: TLS off on loopback only, the state beside the DuckDB file.
func TestServeDefaults(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "serve.good.yml"))
	if err != nil {
		t.Fatal(err)
	}
	c.ServeDefaults()
	s := c.Serve
	if s.TLS != "auto" || s.StateDir != "/var/lib/dwell/serve" || s.Poll != Duration(5*time.Second) || s.Intel[0].Every != Duration(time.Hour) ||
		s.Alerts.Webhooks[0].TLP != "red" || s.Alerts.Email[0].TLP != "amber" || s.Alerts.Syslog[0].Network != "tls" ||
		s.Alerts.DeadLetter != "/var/lib/dwell/serve/dead-letter.jsonl" || s.LogFormat != "json" || s.LogLevel != "info" ||
		s.DDoS.EndAfter != Duration(30*time.Second) || s.Mitigation.Hold != Duration(10*time.Minute) || s.Mitigation.MaxRoutes != 20 ||
		s.Mitigation.NFTables.Family != "inet" || !s.DDoS.Networks[0].Blackhole || s.DDoS.Networks[1].BPS != 1e9 {
		t.Errorf("serve %+v", s)
	}
	d := Default()
	d.Store = "case42.db"
	d.ServeDefaults()
	if d.Serve.Listen != "127.0.0.1:7878" || d.Serve.TLS != "off" || d.Serve.StateDir != "case42.db.serve" || d.Serve.HuntEvery != Duration(time.Hour) ||
		d.Serve.HuntMemory != "512MB" {
		t.Errorf("defaults %+v", d.Serve)
	}
	if err := d.ValidateServe(); err != nil {
		t.Error(err)
	}
	d.Store = "clickhouse://ch1:9000/dwell"
	d.Serve = Serve{}
	d.ServeDefaults()
	if d.Serve.StateDir != "dwell-serve" {
		t.Errorf("ClickHouse state dir %q", d.Serve.StateDir)
	}
	for _, tc := range []struct {
		tlp  string
		rank int
	}{{"TLP:RED", 4}, {"white", 0}, {"Amber+Strict", 3}, {"pink", -1}} {
		if r := TLPRank(tc.tlp); r != tc.rank {
			t.Errorf("TLPRank(%q) = %d", tc.tlp, r)
		}
	}
}

// TestDocumentedExample: the example in docs/config.md is a valid file.
func TestDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/config.md has no YAML example")
	}
	path := filepath.Join(t.TempDir(), "dwell.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Serve.Follow) != 2 || len(c.Serve.Alerts.Email) != 1 {
		t.Errorf("serve section not read: %+v", c.Serve)
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

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{{"512MB", 512e6, true}, {"2 GiB", 2 << 30, true}, {"0", 0, true}, {"1024", 1024, true}, {" 3KiB ", 3072, true},
		{"", 0, false}, {"-1MB", 0, false}, {"1.5GB", 0, false}, {"12 parsecs", 0, false}, {"99999999999TB", 0, false}} {
		got, err := ParseBytes(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	c := Default()
	c.ServeDefaults()
	c.Serve.HuntMemory = "lots"
	if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "serve.hunt_memory") {
		t.Errorf("hunt_memory lots: %v", err)
	}
}
