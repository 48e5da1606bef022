package intel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Scope refuses indicators that would match what no attacker owns: the
// defended networks themselves, the special-purpose ranges of RFC 6890
// (loopback, private, link-local, multicast, "this network", reserved),
// networks wider than a country's allocation, public suffixes, and the
// hashes of empty content. One of them — 10.0.0.0/8 in a MISP event, ::/0
// in a STIX pattern, "com" in a plain list — turns every record into a
// sighting and every host into one incident. A careless or hostile feed
// must not do that: such indicators are skipped at import, with the
// reason, like any other the import cannot take.
//
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) and the benchmarking range 198.18.0.0/15
// are special-purpose too, but they are not refused: no traffic of a real
// network uses them, so an indicator naming them matches nothing there,
// while dwell's scenario and test suites use them for Internet addresses.
type Scope struct {
	// Local lists the defended networks (config networks.local).
	Local []netip.Prefix
	// WidestIPv4 and WidestIPv6 are the shortest prefix lengths an
	// indicator network may have; defaults 16 and 32.
	WidestIPv4, WidestIPv6 int
}

// reserved is a special-purpose range and its name.
type reserved struct {
	p    netip.Prefix
	name string
}

// specialPurpose are the ranges of RFC 6890 (and its updates) that no
// indicator may name or overlap.
var specialPurpose = func() []reserved {
	var out []reserved
	for _, r := range [][2]string{
		{"0.0.0.0/8", "\"this network\""}, {"10.0.0.0/8", "private-use"}, {"100.64.0.0/10", "shared address space (CGN)"},
		{"127.0.0.0/8", "loopback"}, {"169.254.0.0/16", "link-local"}, {"172.16.0.0/12", "private-use"},
		{"192.0.0.0/24", "IETF protocol assignments"}, {"192.168.0.0/16", "private-use"}, {"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"}, {"::/128", "unspecified"}, {"::1/128", "loopback"}, {"::ffff:0:0/96", "IPv4-mapped"},
		{"100::/64", "discard-only"}, {"fc00::/7", "unique-local"}, {"fe80::/10", "link-local"}, {"ff00::/8", "multicast"},
	} {
		out = append(out, reserved{netip.MustParsePrefix(r[0]), r[1]})
	}
	return out
}()

// emptyHashes are the digests of empty content: every empty file has them.
var emptyHashes = map[string]bool{
	"d41d8cd98f00b204e9800998ecf8427e":                                 true, // MD5
	"da39a3ee5e6b4b0d3255bfef95601890afd80709":                         true, // SHA-1
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": true, // SHA-256
}

// Vet moves the indicators of r that s refuses to r.Skipped, each with
// the reason. Revocations pass: they match nothing, and one must reach an
// indicator stored before it was refused. It also makes what is kept
// storable, as ingest does for telemetry: text that is not UTF-8 is
// escaped \xNN (and counted in a note), a time beyond the years a store
// keeps is dropped.
func (s Scope) Vet(r *Result) {
	kept := r.Indicators[:0]
	escaped := 0
	for _, ind := range r.Indicators {
		escaped += storable(&ind)
		if why := s.Refuse(ind); why != "" && !ind.Revoked {
			r.skip(ind.Ref, string(ind.Type)+" "+ind.Value, why)
			continue
		}
		kept = append(kept, ind)
	}
	r.Indicators = kept
	if escaped > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d text value(s) held bytes that are not UTF-8: kept with those bytes written \\xNN, "+
			"as telemetry is", escaped))
	}
}

// storable escapes an indicator's text and clears its times beyond
// years 1 to 9999; it returns how many values it escaped.
func storable(ind *event.Indicator) int {
	n := 0
	esc := func(p *string) {
		if v, changed := event.EscapeText(*p); changed {
			*p, n = v, n+1
		}
	}
	for _, p := range []*string{&ind.Source, &ind.Value, &ind.Ref, &ind.Group, &ind.Name, &ind.TLP} {
		esc(p)
	}
	// Tags and Attack may be shared with other indicators (a MISP event's
	// tags): copied before they change.
	for _, l := range []*[]string{&ind.Tags, &ind.Attack} {
		copied := false
		for i, v := range *l {
			if e, changed := event.EscapeText(v); changed {
				if !copied {
					*l, copied = slices.Clone(*l), true
				}
				(*l)[i], n = e, n+1
			}
		}
	}
	for _, t := range []*time.Time{&ind.ValidFrom, &ind.ValidUntil, &ind.Modified} {
		if !t.IsZero() && !event.Representable(*t) {
			*t = time.Time{}
		}
	}
	return n
}

// The beginnings of the reasons Vet gives.
const (
	TooBroad    = "too broad:"
	NotAttacker = "not an attacker's address:"
)

// Refuse says why an indicator is too broad to match on, or "".
func (s Scope) Refuse(ind event.Indicator) string {
	switch ind.Type {
	case event.IOCIP:
		a, err := netip.ParseAddr(ind.Value)
		if err != nil {
			return ""
		}
		return s.refusePrefix(netip.PrefixFrom(a, a.BitLen()))
	case event.IOCCIDR:
		p, err := netip.ParsePrefix(ind.Value)
		if err != nil {
			return ""
		}
		widest := s.WidestIPv4
		if widest <= 0 {
			widest = 16
		}
		if p.Addr().Is6() {
			widest = s.WidestIPv6
			if widest <= 0 {
				widest = 32
			}
		}
		if p.Bits() < widest {
			return fmt.Sprintf(TooBroad+" a /%d network matches whole providers; dwell takes networks of /%d or narrower "+
				"(intel.widest_ipv4, intel.widest_ipv6)", p.Bits(), widest)
		}
		return s.refusePrefix(p)
	case event.IOCDomain:
		if suffix, icann := publicsuffix.PublicSuffix(ind.Value); suffix == ind.Value {
			kind := "a public suffix"
			if icann {
				kind = "a top-level or public registry domain"
			}
			return fmt.Sprintf(TooBroad+" %s, under which anyone registers names", kind)
		}
	case event.IOCMD5, event.IOCSHA1, event.IOCSHA256:
		if emptyHashes[ind.Value] {
			return TooBroad + " the hash of empty content, which every empty file has"
		}
	}
	return ""
}

// refusePrefix says why an address or network is not an attacker's, or "".
func (s Scope) refusePrefix(p netip.Prefix) string {
	for _, sp := range specialPurpose {
		if sp.p.Overlaps(p) {
			return fmt.Sprintf(NotAttacker+" %s is in %s (%s, RFC 6890), which matches the network's own traffic", p, sp.p, sp.name)
		}
	}
	for _, l := range s.Local {
		if l.Overlaps(p) {
			return fmt.Sprintf(NotAttacker+" %s is in the defended networks (%s, networks.local)", p, l)
		}
	}
	return ""
}
