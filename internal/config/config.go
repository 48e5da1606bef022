// Package config is dwell's typed configuration: defaults, strict YAML
// decoding (an unknown key is an error, so a typo never silently does
// nothing) and validation that reports every problem at once.
//
// The field comments below are the reference for dwell.yaml; docs/config.md
// shows a complete example.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration.
type Config struct {
	// Store is where telemetry is kept: a DuckDB file path (default
	// "dwell.db") or, for a ClickHouse cluster, a clickhouse:// URL.
	Store string `yaml:"store"`
	// MemoryLimit caps the memory the embedded store (DuckDB) uses for
	// queries, writes and its cache, e.g. "1GB", "512MB", "25%"; beyond it
	// DuckDB evicts and spills where it can. Default "1GB": a 30-day,
	// 31-million-connection hunt runs within it (docs/benchmarks.md).
	MemoryLimit string `yaml:"memory_limit"`
	// Threads caps the embedded store's (DuckDB's) threads; default 0, one
	// per core.
	Threads int `yaml:"threads"`
	// Sensor names the site whose telemetry is ingested. It is stored on
	// every record so that two sites using the same private addresses stay
	// apart. Default "default".
	Sensor string `yaml:"sensor"`
	// Ingest tunes reading.
	Ingest Ingest `yaml:"ingest"`
	// Networks describes the defended network.
	Networks Networks `yaml:"networks"`
	// Allow lists known-good infrastructure whose findings are dropped.
	Allow Allow `yaml:"allow"`
	// Hunt tunes dwell hunt.
	Hunt Hunt `yaml:"hunt"`
	// Intel tunes the import of threat intelligence.
	Intel Intel `yaml:"intel"`
	// Sigma configures the Sigma rules dwell hunt runs over Windows events.
	Sigma Sigma `yaml:"sigma"`
	// Origin names the offline databases that tell an incident's
	// addresses' AS, ISP and country (docs/attribution.md).
	Origin Origin `yaml:"origin"`
	// Attribution names the catalogues of known threat groups incidents
	// are compared with (docs/attribution.md).
	Attribution Attribution `yaml:"attribution"`
	// Serve configures dwell serve (docs/serve.md); other commands read
	// it to find a server that holds the store.
	Serve Serve `yaml:"serve"`
}

// Sigma configures the sigma detector (docs/sigma.md).
type Sigma struct {
	// Rules are directories (or files) of Sigma rules; none: the detector
	// has nothing to run.
	Rules []string `yaml:"rules"`
	// Logsources is a log-source configuration in SigmaHQ's CI format
	// (thor.yml); empty: dwell's own mapping of the Windows categories
	// and services.
	Logsources string `yaml:"logsources"`
	// Placeholders give the values of %name% placeholders (the expand
	// modifier).
	Placeholders map[string][]string `yaml:"placeholders"`
}

// Intel tunes the import of threat intelligence. Indicators that would
// match the network's own traffic are refused at import, with the reason
// (docs/intel.md): addresses in networks.local or in the special-purpose
// ranges of RFC 6890, public suffixes, hashes of empty content, and
// networks wider than these.
type Intel struct {
	// WidestIPv4 is the shortest prefix length of an IPv4 network an
	// indicator may name; default 16.
	WidestIPv4 int `yaml:"widest_ipv4"`
	// WidestIPv6 is the same for IPv6; default 32.
	WidestIPv6 int `yaml:"widest_ipv6"`
	// TAXIITimeout bounds one request to a TAXII server; default 5m.
	TAXIITimeout Duration `yaml:"taxii_timeout"`
	// TAXIIMaxPages, TAXIIMaxObjects and TAXIIMaxTime bound what one
	// import reads from one collection (defaults 1000 pages, 200000
	// objects, 30m): a server that pages forever stops there, what was
	// read is kept, and the next import goes on from it.
	TAXIIMaxPages   int      `yaml:"taxii_max_pages"`
	TAXIIMaxObjects int      `yaml:"taxii_max_objects"`
	TAXIIMaxTime    Duration `yaml:"taxii_max_time"`
}

// Networks describes the defended network.
type Networks struct {
	// Local lists the networks inside the perimeter (CIDR prefixes or
	// addresses). Hosts in them are "internal": detectors count their
	// prevalence, exfiltration leaves them, lateral movement stays among
	// them. Default: RFC 1918, 100.64.0.0/10, loopback, link-local and
	// fc00::/7. Setting it replaces the default.
	Local []string `yaml:"local"`
}

// Allow lists known-good infrastructure.
type Allow struct {
	// Nets are addresses or prefixes: findings whose other end is in one
	// are dropped (a vulnerability scanner, a backup service).
	Nets []string `yaml:"nets"`
	// Domains drop findings about a name and all its subdomains
	// ("example.com" allows "cdn.example.com"); a leading "=" allows the
	// name only ("=updates.example.com").
	Domains []string `yaml:"domains"`
	// Pairs are "SRC->DST", each side an address or prefix: traffic from
	// SRC to DST is allowed ("10.0.0.0/8->192.0.2.10").
	Pairs []string `yaml:"pairs"`
}

// Hunt tunes dwell hunt.
type Hunt struct {
	// Detectors to run; empty runs them all. Names: beacon, deadc2, c2,
	// longconn, dnstunnel, dga, exfil, scan, rare, tlsanom, httpanom,
	// lateral, iocmatch, ddos.
	Detectors []string `yaml:"detectors"`
	// MinScore drops findings scored below it (0 keeps all a detector
	// reports; detectors have their own floors).
	MinScore float64 `yaml:"min_score"`
}

// Origin configures the enrichment of incidents' infrastructure.
type Origin struct {
	// MMDB are MaxMind-format databases (.mmdb: GeoLite2/GeoIP2 ASN,
	// ISP, Country or City; DB-IP; IPinfo), consulted together, the first
	// that gives a field winning. A file replaced on disk is read again
	// without a restart.
	MMDB []string `yaml:"mmdb"`
}

// Attribution configures the hypotheses of who is behind an incident.
type Attribution struct {
	// Groups are catalogues of known threat groups: STIX bundles (MITRE
	// ATT&CK's enterprise-attack.json, or its groups and techniques in
	// separate bundles) and MISP galaxy cluster files (threat-actor,
	// mitre-intrusion-set, microsoft-activity-group, mitre-attack-pattern).
	// Without them, only intel attributes.
	Groups []string `yaml:"groups"`
}

// Ingest tunes how inputs are read.
type Ingest struct {
	// Workers is how many files are decoded in parallel; default one per
	// core. Files of different Zeek logs are read one after another.
	Workers int `yaml:"workers"`
	// BatchRows is how many records are committed to the store at a time
	// (one transaction); default 122880, one DuckDB row group.
	BatchRows int `yaml:"batch_rows"`
	// MemoryLimit is the embedded store's memory limit while dwell ingest
	// runs, in place of memory_limit (writing needs less than hunting);
	// default "640MB" (512MB halves a many-table ingest's speed). dwell
	// ingest also asks Go's collector to keep its heap under 512 MiB
	// unless GOMEMLIMIT says otherwise (docs/benchmarks.md: the peaks).
	MemoryLimit string `yaml:"memory_limit"`
	// Threads is the embedded store's threads while dwell ingest runs, in
	// place of threads; default half the cores, at least one. Readers and
	// the intel summary use the other half: on two cores one DuckDB thread
	// ingested as fast as two with a quarter less CPU (docs/benchmarks.md).
	Threads int `yaml:"threads"`
	// IdleAfter is how long a plain (uncompressed) file must go unmodified
	// before its unterminated last line counts as complete; before that the
	// line is left for the next run, as Zeek may still be writing it.
	// Default 2m.
	IdleAfter Duration `yaml:"idle_after"`
	// Earliest is the earliest time a record may claim (a date: records
	// before it are held out of the hunt, in the quarantine table, as
	// clocks gone wrong or forged). Default 1995-01-01.
	Earliest Date `yaml:"earliest"`
	// ClockSkew is how far past now a record may lie before it is held
	// out the same way (docs/security.md). Default 24h.
	ClockSkew Duration `yaml:"clock_skew"`
	// MaxGap is how far apart from every other record of its input file
	// a record may lie before it is held out (a lone record years before
	// the rest); a group of records a tenth of their batch or more is
	// never held for it. Default 30d.
	MaxGap Duration `yaml:"max_gap"`
	// MaxDuration is the longest a connection, flow or file transfer may
	// last before it is held out. Default 30d.
	MaxDuration Duration `yaml:"max_duration"`
}

// Date is a UTC date written 2006-01-02.
type Date time.Time

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a date like 1995-01-01", n.Line, s)
	}
	*d = Date(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Date) MarshalYAML() (any, error) { return time.Time(d).Format(time.DateOnly), nil }

// Duration is a time.Duration written as in Go ("90s", "2m", "1h30m").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s, 2m, 24h or 30d", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// parseDuration is time.ParseDuration with days ("30d") as well.
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("bad number of days %q", n)
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// DetectorNames returns the detectors dwell has, in the order hunts run them.
func DetectorNames() []string {
	return []string{"beacon", "deadc2", "c2", "longconn", "dnstunnel", "dga", "exfil", "scan", "rare", "tlsanom", "httpanom", "lateral", "iocmatch", "ddos", "host", "sigma", "suricata"}
}

// parsePrefix reads an address or a CIDR prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// memoryLimit is what DuckDB's memory_limit accepts (and dwell allows).
var memoryLimit = regexp.MustCompile(`^[0-9]+(\.[0-9]+)? ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)$`)

// Default returns the configuration used when no file is given.
func Default() *Config {
	return &Config{
		Store:       "dwell.db",
		MemoryLimit: "1GB",
		Sensor:      "default",
		Intel: Intel{WidestIPv4: 16, WidestIPv6: 32, TAXIITimeout: Duration(5 * time.Minute), TAXIIMaxPages: 1000,
			TAXIIMaxObjects: 200_000, TAXIIMaxTime: Duration(30 * time.Minute)},
		Ingest: Ingest{
			Workers:     runtime.GOMAXPROCS(0),
			BatchRows:   122880,
			MemoryLimit: "640MB",
			Threads:     max(1, runtime.GOMAXPROCS(0)/2),
			IdleAfter:   Duration(2 * time.Minute),
			Earliest:    Date(time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC)),
			ClockSkew:   Duration(24 * time.Hour),
			MaxGap:      Duration(30 * 24 * time.Hour),
			MaxDuration: Duration(30 * 24 * time.Hour),
		},
	}
}

// Load reads a configuration file over the defaults. An empty path returns
// the defaults.
func Load(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if err := c.decode(data); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// The serve section is checked with its defaults filled in, on a copy:
	// the store the defaults depend on may still be changed (--db).
	withServe := *c
	withServe.ServeDefaults()
	if err := errors.Join(c.Validate(), withServe.ValidateServe()); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// decode applies YAML over c, refusing unknown keys.
func (c *Config) decode(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}

// Validate checks the configuration and reports every problem found.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Store) == "" {
		errs = append(errs, errors.New("store: must not be empty"))
	}
	if !memoryLimit.MatchString(c.MemoryLimit) {
		errs = append(errs, fmt.Errorf("memory_limit: %q is not a size (1GB, 512MB) or a share of memory (25%%)", c.MemoryLimit))
	}
	if c.Threads < 0 || c.Threads > 1024 {
		errs = append(errs, fmt.Errorf("threads: %d is not between 0 (one per core) and 1024", c.Threads))
	}
	if c.Ingest.Threads < 0 || c.Ingest.Threads > 1024 {
		errs = append(errs, fmt.Errorf("ingest.threads: %d is not between 0 (threads) and 1024", c.Ingest.Threads))
	}
	if c.Ingest.MemoryLimit != "" && !memoryLimit.MatchString(c.Ingest.MemoryLimit) {
		errs = append(errs, fmt.Errorf("ingest.memory_limit: %q is not a size (1GB, 512MB) or a share of memory (25%%)", c.Ingest.MemoryLimit))
	}
	for i, p := range c.Origin.MMDB {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, fmt.Errorf("origin.mmdb[%d]: must not be empty", i))
		}
	}
	for i, p := range c.Attribution.Groups {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, fmt.Errorf("attribution.groups[%d]: must not be empty", i))
		}
	}
	if strings.TrimSpace(c.Sensor) == "" {
		errs = append(errs, errors.New("sensor: must not be empty"))
	} else if strings.ContainsAny(c.Sensor, "\x00\n\r\t") {
		errs = append(errs, errors.New("sensor: must not contain control characters"))
	}
	if c.Ingest.Workers < 1 || c.Ingest.Workers > 256 {
		errs = append(errs, fmt.Errorf("ingest.workers: %d is not between 1 and 256", c.Ingest.Workers))
	}
	if c.Ingest.BatchRows < 1000 || c.Ingest.BatchRows > 10_000_000 {
		errs = append(errs, fmt.Errorf("ingest.batch_rows: %d is not between 1000 and 10000000", c.Ingest.BatchRows))
	}
	if c.Ingest.IdleAfter < 0 {
		errs = append(errs, errors.New("ingest.idle_after: must not be negative"))
	}
	if c.Ingest.ClockSkew < Duration(time.Minute) {
		errs = append(errs, errors.New("ingest.clock_skew: must be at least 1m"))
	}
	if c.Intel.WidestIPv4 < 0 || c.Intel.WidestIPv4 > 32 {
		errs = append(errs, fmt.Errorf("intel.widest_ipv4: %d is not a prefix length (0 to 32)", c.Intel.WidestIPv4))
	}
	if c.Intel.WidestIPv6 < 0 || c.Intel.WidestIPv6 > 128 {
		errs = append(errs, fmt.Errorf("intel.widest_ipv6: %d is not a prefix length (0 to 128)", c.Intel.WidestIPv6))
	}
	if c.Intel.TAXIITimeout < Duration(time.Second) || c.Intel.TAXIIMaxTime < Duration(time.Second) {
		errs = append(errs, errors.New("intel.taxii_timeout and intel.taxii_max_time: must be at least 1s"))
	}
	if c.Intel.TAXIIMaxPages < 1 || c.Intel.TAXIIMaxObjects < 1 {
		errs = append(errs, errors.New("intel.taxii_max_pages and intel.taxii_max_objects: must be at least 1"))
	}
	if c.Ingest.MaxGap < Duration(time.Hour) {
		errs = append(errs, errors.New("ingest.max_gap: must be at least 1h"))
	}
	if c.Ingest.MaxDuration < Duration(time.Hour) {
		errs = append(errs, errors.New("ingest.max_duration: must be at least 1h"))
	}
	if e := time.Time(c.Ingest.Earliest); e.Year() < 1970 || e.After(time.Now()) {
		errs = append(errs, fmt.Errorf("ingest.earliest: %s is not between 1970-01-01 and today", e.Format(time.DateOnly)))
	}
	for i, n := range c.Networks.Local {
		if _, err := parsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("networks.local[%d]: %w", i, err))
		}
	}
	for i, n := range c.Allow.Nets {
		if _, err := parsePrefix(n); err != nil {
			errs = append(errs, fmt.Errorf("allow.nets[%d]: %w", i, err))
		}
	}
	for i, d := range c.Allow.Domains {
		if strings.TrimSpace(strings.TrimPrefix(d, "=")) == "" || strings.ContainsAny(d, " /\t") {
			errs = append(errs, fmt.Errorf("allow.domains[%d]: %q is not a domain name", i, d))
		}
	}
	for i, p := range c.Allow.Pairs {
		a, b, ok := strings.Cut(p, "->")
		if !ok {
			errs = append(errs, fmt.Errorf("allow.pairs[%d]: %q: want SRC->DST", i, p))
			continue
		}
		for _, side := range []string{a, b} {
			if _, err := parsePrefix(strings.TrimSpace(side)); err != nil {
				errs = append(errs, fmt.Errorf("allow.pairs[%d]: %w", i, err))
			}
		}
	}
	for i, d := range c.Hunt.Detectors {
		if !slices.Contains(DetectorNames(), d) {
			errs = append(errs, fmt.Errorf("hunt.detectors[%d]: unknown detector %q (known: %s)", i, d, strings.Join(DetectorNames(), ", ")))
		}
	}
	if c.Hunt.MinScore < 0 || c.Hunt.MinScore > 1 {
		errs = append(errs, fmt.Errorf("hunt.min_score: %v is not between 0 and 1", c.Hunt.MinScore))
	}
	return errors.Join(errs...)
}
