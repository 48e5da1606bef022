// Package intel reads threat intelligence into indicators: MISP feeds and
// event JSON, STIX 2.1 bundles (their patterns parsed with the STIX
// patterning grammar), TAXII 2.1 collections, and CSV or plain lists of
// addresses, networks, names, URLs and hashes.
//
// Every importer returns what it took (event.Indicator, normalised for
// matching) and what it could not take, each with the reason: an
// indicator is never dropped silently. Nothing here panics on bad input:
// the parsers are fuzzed.
package intel

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Result is what an import read.
type Result struct {
	Format     string // "misp-feed", "misp-event", "stix", "csv", "list", "taxii"
	Indicators []event.Indicator
	// Skipped lists what was not taken, with the reason: patterns dwell
	// cannot evaluate, attribute types it does not know, bad values.
	Skipped []Skipped
	// Objects counts what the source held, by kind ("attribute",
	// "object", "indicator", "ipv4-addr", "relationship", ...).
	Objects map[string]int
	// Notes are facts worth telling the user (a hashes.csv that does not
	// match the events, a collection read in several pages).
	Notes []string
}

// Skipped is one thing an import did not take.
type Skipped struct {
	Ref    string // the object: a MISP attribute uuid, a STIX id, a line number
	What   string // its type and value, or its pattern
	Reason string
}

func (r *Result) count(kind string) {
	if r.Objects == nil {
		r.Objects = map[string]int{}
	}
	r.Objects[kind]++
}

func (r *Result) skip(ref, what, reason string) {
	r.Skipped = append(r.Skipped, Skipped{Ref: ref, What: what, Reason: reason})
}

// Merge appends o's content to r.
func (r *Result) Merge(o *Result) {
	r.Indicators = append(r.Indicators, o.Indicators...)
	r.Skipped = append(r.Skipped, o.Skipped...)
	r.Notes = append(r.Notes, o.Notes...)
	for k, v := range o.Objects {
		if r.Objects == nil {
			r.Objects = map[string]int{}
		}
		r.Objects[k] += v
	}
}

// Distinct returns the indicators with duplicates (same Key) merged: the
// later one wins, but actionable and the union of tags are kept.
func Distinct(in []event.Indicator) []event.Indicator {
	idx := map[string]int{}
	var out []event.Indicator
	for _, ind := range in {
		k := ind.Key()
		if i, ok := idx[k]; ok {
			prev := out[i]
			ind.Actionable = ind.Actionable || prev.Actionable
			ind.Tags = union(prev.Tags, ind.Tags)
			ind.Attack = union(prev.Attack, ind.Attack)
			out[i] = ind
			continue
		}
		idx[k] = len(out)
		out = append(out, ind)
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

var (
	hexOnly   = regexp.MustCompile(`^[0-9a-f]+$`)
	attackID  = regexp.MustCompile(`\bT[0-9]{4}(\.[0-9]{3})?\b`)
	labelChar = regexp.MustCompile(`^[a-z0-9_-]+$`)
)

// Normalize returns the canonical form of a value of type t, or why it is
// not one.
func Normalize(t event.IOCType, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("empty value")
	}
	switch t {
	case event.IOCIP:
		a, err := netip.ParseAddr(strings.Trim(v, "[]"))
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("%q is not an IP address", v)
		}
		return a.Unmap().String(), nil
	case event.IOCCIDR:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", fmt.Errorf("%q is not a network", v)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked().String(), nil
	case event.IOCDomain:
		return normDomain(v)
	case event.IOCURL:
		return normURL(v)
	case event.IOCMD5, event.IOCSHA1, event.IOCSHA256, event.IOCJA3, event.IOCJA3S, event.IOCCertSHA1, event.IOCCertSHA256:
		h := strings.ToLower(strings.ReplaceAll(v, ":", ""))
		want := map[event.IOCType]int{event.IOCMD5: 32, event.IOCSHA1: 40, event.IOCSHA256: 64, event.IOCJA3: 32, event.IOCJA3S: 32,
			event.IOCCertSHA1: 40, event.IOCCertSHA256: 64}[t]
		if len(h) != want || !hexOnly.MatchString(h) {
			return "", fmt.Errorf("%q is not a %s (%d hex digits)", v, t, want)
		}
		return h, nil
	case event.IOCJA4:
		return strings.ToLower(v), nil
	case event.IOCEmail:
		if !strings.Contains(v, "@") {
			return "", fmt.Errorf("%q is not an e-mail address", v)
		}
		return strings.ToLower(v), nil
	case event.IOCUserAgent, event.IOCFilename:
		return v, nil
	}
	return "", fmt.Errorf("unknown indicator type %q", t)
}

// normDomain lower-cases a name, drops a trailing dot and a leading "*.",
// and checks its labels.
func normDomain(v string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(v), ".")
	d = strings.TrimPrefix(d, "*.")
	if len(d) > 253 || !strings.Contains(d, ".") {
		return "", fmt.Errorf("%q is not a domain name", v)
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return "", fmt.Errorf("%q is an address, not a domain name", v)
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || !labelChar.MatchString(l) {
			return "", fmt.Errorf("%q is not a domain name", v)
		}
	}
	return d, nil
}

// normURL reduces a URL to host and path: what an HTTP log shows of it.
func normURL(v string) (string, error) {
	s := v
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("%q is not a URL", v)
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return host + path, nil
}

// TLPOf returns the TLP level a tag or marking name states ("tlp:amber",
// "TLP:AMBER+STRICT", "tlp:white"), and whether it states one.
func TLPOf(tag string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(tag))
	t, ok := strings.CutPrefix(t, "tlp:")
	if !ok {
		return "", false
	}
	switch t {
	case "white", "clear":
		return event.TLPClear, true
	case "green":
		return event.TLPGreen, true
	case "amber":
		return event.TLPAmber, true
	case "amber+strict":
		return event.TLPAmberStrict, true
	case "red":
		return event.TLPRed, true
	}
	return "", false
}

// AttackIDs returns the ATT&CK technique ids in a tag or galaxy name
// (`misp-galaxy:mitre-attack-pattern="Web Protocols - T1071.001"`).
func AttackIDs(s string) []string {
	return attackID.FindAllString(s, -1)
}

// stricter returns the more restrictive of two TLP levels.
func stricter(a, b string) string {
	rank := map[string]int{"": 0, event.TLPClear: 1, event.TLPGreen: 2, event.TLPAmber: 3, event.TLPAmberStrict: 4, event.TLPRed: 5}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
