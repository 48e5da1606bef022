package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Serve configures dwell serve: the long-running process that owns the
// store (docs/serve.md).
type Serve struct {
	// Listen is the API's address, host:port; default "127.0.0.1:7878"
	// (loopback: only this machine's users reach it).
	Listen string `yaml:"listen"`
	// TLS is "off", "auto" (a self-signed certificate made at the first
	// start and kept in state_dir; clients that find the server through
	// state_dir pin it) or "files" (tls_cert and tls_key). Default: "off"
	// on a loopback address, "auto" on any other.
	TLS     string `yaml:"tls"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// StateDir keeps the server's token (readable by its owner only), its
	// generated certificate and the file through which commands find it.
	// Default: the DuckDB store's path with ".serve" appended, or
	// "dwell-serve" for a ClickHouse store.
	StateDir string `yaml:"state_dir"`
	// Follow are the directories (or files) ingested as they grow: Zeek
	// log directories (rotated files and current/), host event and EVE
	// directories. Each may name its sensor.
	Follow []Follow `yaml:"follow"`
	// Poll is how often followed inputs are read; default 2s.
	Poll Duration `yaml:"poll"`
	// HuntAfter is how long after new data arrived a hunt starts (new data
	// arriving meanwhile joins it); default 1m. HuntEvery is the longest
	// between two hunts even without new data (intel ages, windows move);
	// default 1h.
	HuntAfter Duration `yaml:"hunt_after"`
	HuntEvery Duration `yaml:"hunt_every"`
	// HuntMemory is about how much memory the hunts keep between them of
	// the aggregates over settled history (history before a cut a day or
	// two behind the newest record), so that a hunt reads only the
	// records after the cut for them (docs/serve.md); default 512MB, "0"
	// keeps none.
	HuntMemory string `yaml:"hunt_memory"`
	// Intel are threat-intel sources polled on a schedule, each imported as
	// dwell intel import does (TAXII cursors kept) and retro-hunted over
	// all history at once.
	Intel []Poll `yaml:"intel"`
	// Alerts are where new and escalated incidents are announced.
	Alerts Alerts `yaml:"alerts"`
	// Collect receives flow exports over UDP; DDoS watches them for
	// attacks on protected networks; Mitigation announces what the
	// protected networks allow (docs/ddos.md).
	Collect    Collect    `yaml:"collect"`
	DDoS       DDoS       `yaml:"ddos"`
	Mitigation Mitigation `yaml:"mitigation"`
	// OIDC offers the web console's login through an OpenID Connect
	// provider; the claim must name an existing account (dwell users add).
	OIDC OIDC `yaml:"oidc"`
	// LogFormat is "text" (default) or "json"; LogLevel "debug", "info"
	// (default), "warn" or "error".
	LogFormat string `yaml:"log_format"`
	LogLevel  string `yaml:"log_level"`
}

// OIDC is an OpenID Connect provider for the console's login.
type OIDC struct {
	// Issuer is the provider's issuer URL (its discovery document is
	// ISSUER/.well-known/openid-configuration); empty: no OIDC login.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret (never the configuration).
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is the console's /oidc/callback as browsers reach it
	// (https://dwell.ministry.example/oidc/callback).
	RedirectURL string `yaml:"redirect_url"`
	// Claim names the account: email (default) or another string claim.
	Claim string `yaml:"claim"`
	// Label is the provider's name on the login page.
	Label string `yaml:"label"`
}

// Follow is one input dwell serve ingests as it grows.
type Follow struct {
	// Path is a directory or a file.
	Path string `yaml:"path"`
	// Sensor names its site; default the configuration's sensor.
	Sensor string `yaml:"sensor"`
}

// Poll is one intel source polled on a schedule.
type Poll struct {
	// Source is what dwell intel import takes: a file, a MISP feed
	// directory, a taxii+https:// collection URL, a MISP server URL.
	Source string `yaml:"source"`
	// Every is how often it is polled; default 1h.
	Every Duration `yaml:"every"`
}

// Alerts are the channels new and escalated incidents go out by.
type Alerts struct {
	// Webhooks receive a JSON document per alert (POST, retried with
	// back-off; what cannot be delivered goes to dead_letter).
	Webhooks []Webhook `yaml:"webhooks"`
	// Syslog receivers get RFC 5424 messages, or CEF for SIEMs.
	Syslog []Syslog `yaml:"syslog"`
	// Email sends a message per alert through an SMTP server (STARTTLS
	// when the server offers it).
	Email []Email `yaml:"email"`
	// MinSeverity is the least severity of an incident that is announced:
	// low, medium (default), high or critical.
	MinSeverity string `yaml:"min_severity"`
	// Interval is the least time between two alerts about the same
	// incident (an incident that keeps growing is announced again at most
	// this often); default 1h.
	Interval Duration `yaml:"interval"`
	// DeadLetter is the file undeliverable alerts are appended to, as JSON
	// lines; default state_dir/dead-letter.jsonl.
	DeadLetter string `yaml:"dead_letter"`
}

// Channel is what every alert channel has: the highest TLP it is cleared
// for. An incident marked above it goes out by this channel without its
// details (its id and severity only).
type Channel struct {
	// TLP is "clear" (or "white"), "green", "amber", "amber+strict" or
	// "red"; default "amber".
	TLP string `yaml:"tlp"`
}

// Webhook is an HTTP(S) receiver of JSON alerts.
type Webhook struct {
	Channel `yaml:",inline"`
	URL     string `yaml:"url"`
	// Header values added to each request ("Authorization: Bearer ...").
	Headers map[string]string `yaml:"headers"`
}

// Syslog is a syslog receiver.
type Syslog struct {
	Channel `yaml:",inline"`
	// Address is host:port.
	Address string `yaml:"address"`
	// Network is "udp" (default), "tcp" or "tls".
	Network string `yaml:"network"`
	// Format is "rfc5424" (default) or "cef".
	Format string `yaml:"format"`
	// CAFile holds the certificates that sign the receiver's (tls);
	// default the system's.
	CAFile string `yaml:"ca_file"`
}

// Email is an SMTP route for alerts.
type Email struct {
	Channel `yaml:",inline"`
	// Server is host:port of the SMTP server.
	Server   string   `yaml:"server"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	Username string   `yaml:"username"`
	// PasswordFile holds the password (never the configuration itself).
	PasswordFile string `yaml:"password_file"`
	// RequireTLS refuses to send when the server does not offer STARTTLS.
	RequireTLS bool `yaml:"require_tls"`
	// CAFile holds the certificates that sign the server's; default the
	// system's.
	CAFile string `yaml:"ca_file"`
}

// TLPLevels are the TLP 2.0 labels dwell knows, least restrictive first.
func TLPLevels() []string { return []string{"clear", "green", "amber", "amber+strict", "red"} }

// TLPRank returns a label's place in TLPLevels (white is clear), -1 when
// unknown.
func TLPRank(tlp string) int {
	tlp = strings.ToLower(strings.TrimPrefix(strings.ToUpper(tlp), "TLP:"))
	if tlp == "white" {
		tlp = "clear"
	}
	return slices.Index(TLPLevels(), tlp)
}

// ServeDefaults fills what a configuration leaves unset in its serve
// section; the store must be known.
func (c *Config) ServeDefaults() {
	s := &c.Serve
	if s.Listen == "" {
		s.Listen = "127.0.0.1:7878"
	}
	if s.TLS == "" {
		s.TLS = "auto"
		if host, _, err := net.SplitHostPort(s.Listen); err == nil && isLoopback(host) {
			s.TLS = "off"
		}
	}
	if s.StateDir == "" {
		s.StateDir = "dwell-serve"
		if !strings.Contains(c.Store, "://") {
			s.StateDir = c.Store + ".serve"
		}
	}
	if s.Poll == 0 {
		s.Poll = Duration(2 * time.Second)
	}
	if s.HuntAfter == 0 {
		s.HuntAfter = Duration(time.Minute)
	}
	if s.HuntEvery == 0 {
		s.HuntEvery = Duration(time.Hour)
	}
	if s.HuntMemory == "" {
		s.HuntMemory = "512MB"
	}
	for i := range s.Intel {
		if s.Intel[i].Every == 0 {
			s.Intel[i].Every = Duration(time.Hour)
		}
	}
	a := &s.Alerts
	if a.MinSeverity == "" {
		a.MinSeverity = "medium"
	}
	if a.Interval == 0 {
		a.Interval = Duration(time.Hour)
	}
	if a.DeadLetter == "" {
		a.DeadLetter = filepath.Join(s.StateDir, "dead-letter.jsonl")
	}
	for i := range a.Webhooks {
		defTLP(&a.Webhooks[i].Channel)
	}
	for i := range a.Syslog {
		defTLP(&a.Syslog[i].Channel)
		if a.Syslog[i].Network == "" {
			a.Syslog[i].Network = "udp"
		}
		if a.Syslog[i].Format == "" {
			a.Syslog[i].Format = "rfc5424"
		}
	}
	for i := range a.Email {
		defTLP(&a.Email[i].Channel)
	}
	s.ddosDefaults()
	if s.LogFormat == "" {
		s.LogFormat = "text"
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
}

func defTLP(c *Channel) {
	if c.TLP == "" {
		c.TLP = "amber"
	}
}

// isLoopback reports whether host names this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ValidateServe checks the serve section (after ServeDefaults) and
// reports every problem found.
func (c *Config) ValidateServe() error {
	s := &c.Serve
	var errs []error
	host, _, err := net.SplitHostPort(s.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("serve.listen: %q is not host:port", s.Listen))
	}
	switch s.TLS {
	case "off":
		if err == nil && !isLoopback(host) {
			errs = append(errs, fmt.Errorf("serve.tls: off on %s, which is not loopback: tokens would cross the network in clear text (use auto or files)", s.Listen))
		}
	case "auto":
	case "files":
		if s.TLSCert == "" || s.TLSKey == "" {
			errs = append(errs, errors.New("serve.tls: files needs serve.tls_cert and serve.tls_key"))
		}
	default:
		errs = append(errs, fmt.Errorf("serve.tls: %q is not off, auto or files", s.TLS))
	}
	for i, f := range s.Follow {
		if strings.TrimSpace(f.Path) == "" {
			errs = append(errs, fmt.Errorf("serve.follow[%d]: path must not be empty", i))
		}
		if strings.ContainsAny(f.Sensor, "\x00\n\r\t") {
			errs = append(errs, fmt.Errorf("serve.follow[%d]: sensor must not contain control characters", i))
		}
	}
	if s.Poll < Duration(100*time.Millisecond) {
		errs = append(errs, errors.New("serve.poll: must be at least 100ms"))
	}
	if s.HuntAfter < 0 || s.HuntEvery < Duration(time.Minute) {
		errs = append(errs, errors.New("serve.hunt_after must not be negative and serve.hunt_every must be at least 1m"))
	}
	if _, err := ParseBytes(s.HuntMemory); s.HuntMemory != "" && err != nil {
		errs = append(errs, fmt.Errorf("serve.hunt_memory: %w", err))
	}
	for i, p := range s.Intel {
		if strings.TrimSpace(p.Source) == "" {
			errs = append(errs, fmt.Errorf("serve.intel[%d]: source must not be empty", i))
		}
		if p.Every < Duration(time.Minute) {
			errs = append(errs, fmt.Errorf("serve.intel[%d]: every must be at least 1m", i))
		}
	}
	a := &s.Alerts
	if !slices.Contains([]string{"low", "medium", "high", "critical"}, a.MinSeverity) {
		errs = append(errs, fmt.Errorf("serve.alerts.min_severity: %q is not low, medium, high or critical", a.MinSeverity))
	}
	for i, w := range a.Webhooks {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("serve.alerts.webhooks[%d]: %q is not an http(s) URL", i, w.URL))
		}
		errs = append(errs, checkTLP(fmt.Sprintf("serve.alerts.webhooks[%d]", i), w.TLP))
	}
	for i, l := range a.Syslog {
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			errs = append(errs, fmt.Errorf("serve.alerts.syslog[%d]: address %q is not host:port", i, l.Address))
		}
		if !slices.Contains([]string{"udp", "tcp", "tls"}, l.Network) {
			errs = append(errs, fmt.Errorf("serve.alerts.syslog[%d]: network %q is not udp, tcp or tls", i, l.Network))
		}
		if l.Format != "rfc5424" && l.Format != "cef" {
			errs = append(errs, fmt.Errorf("serve.alerts.syslog[%d]: format %q is not rfc5424 or cef", i, l.Format))
		}
		errs = append(errs, checkTLP(fmt.Sprintf("serve.alerts.syslog[%d]", i), l.TLP))
	}
	for i, e := range a.Email {
		if _, _, err := net.SplitHostPort(e.Server); err != nil {
			errs = append(errs, fmt.Errorf("serve.alerts.email[%d]: server %q is not host:port", i, e.Server))
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			errs = append(errs, fmt.Errorf("serve.alerts.email[%d]: from %q is not an address", i, e.From))
		}
		if len(e.To) == 0 {
			errs = append(errs, fmt.Errorf("serve.alerts.email[%d]: to: no recipient", i))
		}
		for _, t := range e.To {
			if _, err := mail.ParseAddress(t); err != nil {
				errs = append(errs, fmt.Errorf("serve.alerts.email[%d]: to %q is not an address", i, t))
			}
		}
		errs = append(errs, checkTLP(fmt.Sprintf("serve.alerts.email[%d]", i), e.TLP))
	}
	if o := s.OIDC; o.Issuer != "" {
		if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("serve.oidc.issuer: %q is not a URL", o.Issuer))
		}
		if o.ClientID == "" {
			errs = append(errs, errors.New("serve.oidc.client_id: needed with an issuer"))
		}
		if u, err := url.Parse(o.RedirectURL); err != nil || u.Host == "" || !strings.HasSuffix(u.Path, "/oidc/callback") {
			errs = append(errs, fmt.Errorf("serve.oidc.redirect_url: %q is not the console's /oidc/callback URL", o.RedirectURL))
		}
	}
	errs = append(errs, c.validateDDoS()...)
	if s.LogFormat != "text" && s.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("serve.log_format: %q is not text or json", s.LogFormat))
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, s.LogLevel) {
		errs = append(errs, fmt.Errorf("serve.log_level: %q is not debug, info, warn or error", s.LogLevel))
	}
	return errors.Join(errs...)
}

func checkTLP(where, tlp string) error {
	if TLPRank(tlp) < 0 {
		return fmt.Errorf("%s: tlp %q is not one of %s", where, tlp, strings.Join(TLPLevels(), ", "))
	}
	return nil
}

// ParseBytes reads a size: a whole number with an optional unit, B, KB,
// MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (of 1024), as in
// "512MB" or "2 GiB".
func ParseBytes(s string) (int64, error) {
	m := sizeText.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (512MB, 2GiB, 0)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	unit := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * unit, nil
}

var sizeText = regexp.MustCompile(`^([0-9]+) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)
