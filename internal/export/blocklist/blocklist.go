// Package blocklist turns incidents into containment lists: an nftables
// set file, an ipset restore file, a DNS response-policy zone, CrowdSec
// decisions and CSV.
//
// What is blocked is the outside infrastructure strong findings of the
// incidents named: addresses, and the exact names seen (an RPZ also
// blocks their subdomains). Never blocked, and listed with the reason:
// internal and special-purpose addresses, allow-listed infrastructure,
// infrastructure that many internal hosts use, infrastructure only weak
// findings name, and incidents whose class is not worth blocking
// (scanning and DDoS sources are spoofable, benign periodic traffic is
// benign).
package blocklist

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// Entry is one thing to block.
type Entry struct {
	Kind     string // "ip" or "domain"
	Value    string
	Incident string // the incident's id
	Class    correlate.Class
	Score    float64 // the strongest finding naming it
}

// Skipped is something left out, with the reason.
type Skipped struct {
	Value  string
	Reason string
}

// Options shape the list.
type Options struct {
	// IsLocal tells internal addresses; they are never blocked.
	IsLocal func(netip.Addr) bool
	// Allow is the configured allow-list.
	Allow *detect.Allowlist
	// Incident keeps one incident only ("" all).
	Incident string
	// Strong is the score a finding must reach for what it names to be
	// blocked (default correlate.DefaultStrong).
	Strong float64
	// MaxHosts: infrastructure more internal hosts contact is shared, not
	// blocked (default correlate.DefaultMaxShared), as the findings'
	// evidence counts them.
	MaxHosts int
}

// blockable are the classes whose infrastructure is blocked.
var blockable = map[correlate.Class]bool{correlate.ClassEspionage: true, correlate.ClassCommodity: true, correlate.ClassSuspicious: true}

// Entries selects what to block from incidents, and says what it left out.
func Entries(incs []correlate.Incident, opt Options) ([]Entry, []Skipped) {
	if opt.Strong <= 0 {
		opt.Strong = correlate.DefaultStrong
	}
	if opt.MaxHosts <= 0 {
		opt.MaxHosts = correlate.DefaultMaxShared
	}
	local := opt.IsLocal
	if local == nil {
		local = func(netip.Addr) bool { return false }
	}
	allow := opt.Allow
	if allow == nil {
		allow = &detect.Allowlist{}
	}
	best := map[[2]string]*Entry{}
	skipped := map[string]string{}
	skip := func(v, why string) {
		if _, ok := skipped[v]; !ok {
			skipped[v] = why
		}
	}
	for i := range incs {
		inc := &incs[i]
		if opt.Incident != "" && !strings.EqualFold(inc.ID, opt.Incident) {
			continue
		}
		for j := range inc.Findings {
			f := &inc.Findings[j]
			var named [][2]string
			for _, a := range append([]netip.Addr{f.Src, f.Dst}, f.Infra...) {
				if a.IsValid() && !local(a) {
					named = append(named, [2]string{"ip", a.Unmap().String()})
				}
			}
			if f.Domain != "" {
				named = append(named, [2]string{"domain", strings.TrimSuffix(strings.ToLower(f.Domain), ".")})
			}
			for _, k := range named {
				switch reason := check(k, f, inc, allow, opt); {
				case reason != "":
					skip(k[1], reason)
				case best[k] == nil || f.Score > best[k].Score:
					best[k] = &Entry{Kind: k[0], Value: k[1], Incident: inc.ID, Class: inc.Class, Score: f.Score}
				}
			}
		}
	}
	var out []Entry
	for _, e := range best {
		delete(skipped, e.Value) // a strong finding elsewhere outweighs
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), compareValues(a, b))
	})
	var skips []Skipped
	for v, why := range skipped {
		skips = append(skips, Skipped{Value: v, Reason: why})
	}
	slices.SortFunc(skips, func(a, b Skipped) int {
		return cmp.Or(strings.Compare(a.Reason, b.Reason), strings.Compare(a.Value, b.Value))
	})
	return out, skips
}

// check returns why k, named by f in inc, is not blocked ("" to block it).
func check(k [2]string, f *detect.Finding, inc *correlate.Incident, allow *detect.Allowlist, opt Options) string {
	switch {
	case !blockable[inc.Class]:
		return fmt.Sprintf("incident %s is %s", inc.ID, inc.Class)
	case f.Score < opt.Strong:
		return fmt.Sprintf("only weak findings name it (score below %.1f)", opt.Strong)
	}
	if n, ok := f.Evidence["internal_hosts_contacting"].(float64); ok && int(n) > opt.MaxHosts {
		return fmt.Sprintf("shared: %d internal hosts contact it", int(n))
	}
	if n, ok := f.Evidence["internal_hosts_contacting"].(int); ok && n > opt.MaxHosts {
		return fmt.Sprintf("shared: %d internal hosts contact it", n)
	}
	if k[0] == "domain" {
		switch {
		case !validName(k[1]):
			return "not a name a zone file can hold"
		case allow.DomainAllowed(k[1]):
			return "allow-listed"
		}
		return ""
	}
	a, err := netip.ParseAddr(k[1])
	switch {
	case err != nil:
		return "not an address"
	case a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast():
		return "special-purpose address"
	case allow.AddrAllowed(a):
		return "allow-listed"
	}
	return ""
}

// validName reports a DNS name of letters, digits, hyphens and
// underscores in labels of 1 to 63 characters, at most 253 in all, with a
// dot: names come from traffic an attacker shapes, and go into zone
// files.
func validName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		if strings.IndexFunc(l, func(r rune) bool { return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' }) >= 0 {
			return false
		}
	}
	return true
}

func compareValues(a, b Entry) int {
	if a.Kind == "ip" {
		x, _ := netip.ParseAddr(a.Value)
		y, _ := netip.ParseAddr(b.Value)
		return x.Compare(y)
	}
	return strings.Compare(a.Value, b.Value)
}

func addrs(es []Entry, v6 bool) []Entry {
	var out []Entry
	for _, e := range es {
		if e.Kind != "ip" {
			continue
		}
		if a, err := netip.ParseAddr(e.Value); err == nil && a.Is6() == v6 {
			out = append(out, e)
		}
	}
	return out
}

func comment(e Entry) string { return fmt.Sprintf("dwell %s %s", e.Incident, e.Class) }

// duration writes a timeout as nft and CrowdSec read it ("24h", "90m").
func duration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// NFT writes an nftables script: a table inet dwell_block with address
// sets (elements time out) and forward and output chains that drop
// traffic to them. Load it with nft -f FILE.
func NFT(es []Entry, timeout time.Duration) []byte {
	var b strings.Builder
	b.WriteString("#!/usr/sbin/nft -f\n# dwell containment set: nft -f FILE (names are in the RPZ export)\n")
	b.WriteString("table inet dwell_block {\n")
	for _, s := range []struct {
		name, typ string
		v6        bool
	}{{"dwell_v4", "ipv4_addr", false}, {"dwell_v6", "ipv6_addr", true}} {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval, timeout\n", s.name, s.typ)
		var els []string
		for _, e := range addrs(es, s.v6) {
			els = append(els, fmt.Sprintf("%s timeout %s comment %q", e.Value, duration(timeout), comment(e)))
		}
		if len(els) > 0 {
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(els, ",\n\t\t\t"))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range []struct{ name, hook string }{{"forward", "forward"}, {"output", "output"}} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", c.name, c.hook)
		b.WriteString("\t\tip daddr @dwell_v4 counter drop\n\t\tip6 daddr @dwell_v6 counter drop\n\t}\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// IPSet writes an ipset restore file: hash:net sets dwell_v4 and dwell_v6
// with timeouts and comments (ipset restore < FILE; then, e.g.,
// iptables -I FORWARD -m set --match-set dwell_v4 dst -j DROP).
func IPSet(es []Entry, timeout time.Duration) []byte {
	var b strings.Builder
	secs := int(timeout / time.Second)
	for _, s := range []struct {
		name, family string
		v6           bool
	}{{"dwell_v4", "inet", false}, {"dwell_v6", "inet6", true}} {
		fmt.Fprintf(&b, "create %s hash:net family %s hashsize 1024 maxelem 65536 timeout %d comment\n", s.name, s.family, secs)
		for _, e := range addrs(es, s.v6) {
			fmt.Fprintf(&b, "add %s %s timeout %d comment %q\n", s.name, e.Value, secs, comment(e))
		}
	}
	return []byte(b.String())
}

// RPZ writes a DNS response-policy zone: each name and its subdomains
// answer NXDOMAIN, and so does any answer holding a blocked address
// (rpz-ip triggers, every octet written as BIND requires).
func RPZ(es []Entry, serial time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 300\n@\tIN SOA\tlocalhost. hostmaster.localhost. ( %s 3600 600 86400 300 )\n\tIN NS\tlocalhost.\n", serial.UTC().Format("2006010215"))
	b.WriteString("; dwell containment: names and their subdomains -> NXDOMAIN\n")
	for _, e := range es {
		if e.Kind != "domain" {
			continue
		}
		fmt.Fprintf(&b, "%s\tCNAME\t.\t; %s\n*.%s\tCNAME\t.\n", e.Value, comment(e), e.Value)
	}
	b.WriteString("; answers holding these addresses -> NXDOMAIN\n")
	for _, e := range es {
		if e.Kind != "ip" {
			continue
		}
		a, err := netip.ParseAddr(e.Value)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s.rpz-ip\tCNAME\t.\t; %s\n", rpzIP(a), comment(e))
	}
	return []byte(b.String())
}

// rpzIP writes an address as an rpz-ip owner name: the prefix length,
// then the octets (IPv4) or 16-bit groups (IPv6, the longest run of zero
// groups as "zz") from the last.
func rpzIP(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		o := a.As4()
		return fmt.Sprintf("32.%d.%d.%d.%d", o[3], o[2], o[1], o[0])
	}
	b := a.As16()
	groups := make([]string, 8)
	for i := range groups {
		groups[i] = fmt.Sprintf("%x", uint16(b[2*i])<<8|uint16(b[2*i+1]))
	}
	// The longest run of zeros (two or more) becomes "zz".
	start, length := -1, 0
	for i := 0; i < 8; {
		if groups[i] != "0" {
			i++
			continue
		}
		j := i
		for j < 8 && groups[j] == "0" {
			j++
		}
		if j-i > length && j-i >= 2 {
			start, length = i, j-i
		}
		i = j
	}
	if start >= 0 {
		groups = append(append(slices.Clone(groups[:start]), "zz"), groups[start+length:]...)
	}
	slices.Reverse(groups)
	return "128." + strings.Join(groups, ".")
}

// CrowdSec writes decisions for cscli decisions import -i FILE: a ban
// per address (CrowdSec has no decision on names).
func CrowdSec(es []Entry, timeout time.Duration) ([]byte, error) {
	type decision struct {
		Duration string `json:"duration"`
		Reason   string `json:"reason"`
		Scope    string `json:"scope"`
		Type     string `json:"type"`
		Value    string `json:"value"`
	}
	out := []decision{}
	for _, e := range es {
		if e.Kind == "ip" {
			out = append(out, decision{Duration: duration(timeout), Reason: "dwell:" + e.Incident + ":" + string(e.Class), Scope: "ip", Type: "ban", Value: e.Value})
		}
	}
	return json.MarshalIndent(out, "", "  ")
}

// CSV writes every entry: kind, value, incident, class, score.
func CSV(es []Entry) []byte {
	var b strings.Builder
	b.WriteString("kind,value,incident,class,score\n")
	for _, e := range es {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%.3f\n", e.Kind, csvField(e.Value), e.Incident, e.Class, e.Score)
	}
	return []byte(b.String())
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
