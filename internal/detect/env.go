package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Env is what detectors know about the network they watch. It is built
// once per hunt from configuration and is read-only afterwards.
type Env struct {
	// Local lists the networks inside the defended perimeter. Hosts in them
	// are "internal": prevalence counts them and exfiltration leaves them.
	Local []netip.Prefix
	// Allow suppresses findings about known-good infrastructure.
	Allow Allowlist
	// Sigma names the rules the sigma detector runs.
	Sigma SigmaSetup
}

// SigmaSetup names the Sigma rules to run and how to read them.
type SigmaSetup struct {
	Rules        []string            // directories or files of rules
	Logsources   string              // a log-source configuration file; "" for the built-in mapping
	Placeholders map[string][]string // values of %name% placeholders
}

// DefaultLocal are the networks counted as internal unless configured:
// RFC 1918, carrier-grade NAT, loopback, link-local and unique-local.
func DefaultLocal() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
		"169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128"} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// IsLocal reports whether a is inside one of the local networks.
func (e *Env) IsLocal(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range e.Local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allowlist names infrastructure whose findings are dropped.
//
// Domains match themselves and every subdomain ("example.com" allows
// "example.com" and "cdn.example.com", not "badexample.com"); a leading
// "=" matches the name only ("=example.com"). Names compare without case
// and without a trailing dot.
type Allowlist struct {
	Nets    []netip.Prefix
	Domains []string
	Pairs   []Pair
}

// Pair allows traffic from any address in Src to any address in Dst.
type Pair struct {
	Src, Dst netip.Prefix
}

// ParsePair reads "SRC->DST" where each side is an address or a prefix.
func ParsePair(s string) (Pair, error) {
	a, b, ok := strings.Cut(s, "->")
	if !ok {
		return Pair{}, fmt.Errorf("pair %q: want SRC->DST", s)
	}
	src, err := parsePrefix(strings.TrimSpace(a))
	if err != nil {
		return Pair{}, fmt.Errorf("pair %q: %w", s, err)
	}
	dst, err := parsePrefix(strings.TrimSpace(b))
	if err != nil {
		return Pair{}, fmt.Errorf("pair %q: %w", s, err)
	}
	return Pair{Src: src, Dst: dst}, nil
}

// ParsePrefix reads an address (as a single-host prefix) or a prefix.
func ParsePrefix(s string) (netip.Prefix, error) { return parsePrefix(s) }

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// AddrAllowed reports whether a is in an allowed network.
func (l *Allowlist) AddrAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range l.Nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PairAllowed reports whether traffic from src to dst is allowed, by pair
// or because dst is in an allowed network.
func (l *Allowlist) PairAllowed(src, dst netip.Addr) bool {
	if l.AddrAllowed(dst) {
		return true
	}
	src, dst = src.Unmap(), dst.Unmap()
	for _, p := range l.Pairs {
		if p.Src.Contains(src) && p.Dst.Contains(dst) {
			return true
		}
	}
	return false
}

// DomainAllowed reports whether name is allowed.
func (l *Allowlist) DomainAllowed(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" {
		return false
	}
	for _, d := range l.Domains {
		d = strings.TrimSuffix(strings.ToLower(d), ".")
		if exact, ok := strings.CutPrefix(d, "="); ok {
			if name == exact {
				return true
			}
			continue
		}
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

// Allowed reports whether a finding is about allowed infrastructure.
func (e *Env) Allowed(f *Finding) bool {
	if f.Dst.IsValid() && e.Allow.PairAllowed(f.Src, f.Dst) {
		return true
	}
	// Inbound (a web shell driven from outside): the other end is the
	// source, and every outside address the finding names must be allowed.
	if f.Src.IsValid() && !e.IsLocal(f.Src) && e.Allow.AddrAllowed(f.Src) &&
		!slices.ContainsFunc(f.Infra, func(a netip.Addr) bool { return !e.IsLocal(a) && !e.Allow.AddrAllowed(a) }) {
		return true
	}
	return f.Domain != "" && e.Allow.DomainAllowed(f.Domain)
}
