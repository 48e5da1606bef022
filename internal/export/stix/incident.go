package stix

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
)

// MaxHypotheses is how many attribution hypotheses an incident bundle
// carries.
const MaxHypotheses = 5

// Incident returns the STIX 2.1 bundle of an incident's answers to the
// prosecutors' questions (docs/attribution.md), marked at level (an
// event.TLP* level; default TLP:AMBER):
//
//   - a campaign for the intrusion (dwell start to last seen), which uses
//   - an infrastructure that consists of the outside addresses and
//     domains, each address belonging to its autonomous system and, with
//     a known country, the infrastructure located at that country;
//   - observed-data for the first contact and for each transfer of data
//     taken that names a file or a request (network-traffic, file);
//   - an intrusion set per attribution hypothesis, the campaign
//     attributed to it at the hypothesis's score as confidence, its
//     evidence for and against in the relationship's description.
func Incident(inc *correlate.Incident, level string, opt Options) ([]byte, error) {
	producer := cmp.Or(opt.Producer, "dwell")
	created := ts(opt.Created)
	if opt.Created.IsZero() {
		created = ts(time.Unix(0, 0))
	}
	level = cmp.Or(level, event.TLPAmber)
	marking, ok := intel.TLPMarking(level)
	if !ok {
		return nil, fmt.Errorf("no TLP marking for %q", level)
	}
	me := dwellID("identity", "producer:"+producer)
	b := &builder{created: created, me: me, marking: marking, seen: map[string]bool{}}
	b.add(map[string]any{"type": "identity", "spec_version": "2.1", "id": me, "created": created, "modified": created,
		"name": producer, "identity_class": "organization"}, false)
	b.add(markingDefinition(level), false)

	first := inc.DwellStart
	if c := inc.FirstContact; c != nil && c.At.Before(first) {
		first = c.At
	}
	campaign := b.sdo("campaign", "incident:"+inc.ID, map[string]any{"name": "dwell " + inc.ID + " (" + string(inc.Class) + ")",
		"description": inc.Summary, "first_seen": ts(first), "last_seen": ts(inc.LastSeen), "objective": objective(inc)})

	// The infrastructure and what it consists of.
	infra := b.sdo("infrastructure", "incident:"+inc.ID, map[string]any{"name": "attacker infrastructure of " + inc.ID,
		"infrastructure_types": infraTypes(inc), "first_seen": ts(first), "last_seen": ts(inc.LastSeen)})
	b.rel(campaign, "uses", infra, nil)
	countries := map[string]bool{}
	for _, x := range inc.Infrastructure {
		var sco string
		switch x.Kind {
		case "ip":
			a, err := netip.ParseAddr(x.Value)
			if err != nil {
				continue
			}
			props := map[string]any{"value": a.String()}
			if o := x.Origin; o != nil && o.ASN != 0 {
				as := b.sco("autonomous-system", map[string]any{"number": o.ASN}, map[string]any{"name": cmp.Or(o.ASOrg, o.ISP)})
				props["belongs_to_refs"] = []string{as}
			}
			if o := x.Origin; o != nil && o.Country != "" {
				countries[o.Country] = true
			}
			sco = b.sco(addrType(a), map[string]any{"value": a.String()}, props)
		case "domain":
			sco = b.sco("domain-name", map[string]any{"value": x.Value}, map[string]any{"value": x.Value})
		default:
			continue
		}
		b.rel(infra, "consists-of", sco, map[string]any{"description": "seen by " + strings.Join(x.Detectors, ", ")})
	}
	for _, c := range slices.Sorted(maps.Keys(countries)) {
		loc := b.sdo("location", "country:"+c, map[string]any{"country": c})
		b.rel(infra, "located-at", loc, map[string]any{"description": "where the addresses' networks are registered (not where their users sit)"})
	}

	// What was observed: the first contact, and the transfers of data.
	if c := inc.FirstContact; c != nil {
		var seen []string
		if c.Log == "dns" {
			a := b.sco(addrType(c.Dst), map[string]any{"value": c.Dst.String()}, nil)
			seen = []string{b.sco("domain-name", map[string]any{"value": c.Name}, map[string]any{"resolves_to_refs": []string{a}}), a}
		} else {
			seen = []string{b.traffic(c.At, c.Src, c.Dst, c.Port, c.Proto, 0)}
		}
		b.sdo("observed-data", "first-contact:"+inc.ID, map[string]any{"first_observed": ts(c.At), "last_observed": ts(c.At),
			"number_observed": max(1, min(c.Conns, 999_999_999)), "object_refs": seen})
	}
	if ans := inc.Answers; ans != nil {
		for _, t := range ans.Taken {
			for _, x := range t.Transfers {
				if x.Name == "" && x.URI == "" {
					continue
				}
				refs := []string{b.traffic(x.At, x.Src, x.Dst, x.Port, "tcp", x.Bytes)}
				if x.Name != "" || x.SHA256 != "" {
					refs = append(refs, b.file(&x))
				}
				b.sdo("observed-data", fmt.Sprintf("taken:%s:%s:%d", inc.ID, x.File, x.Line), map[string]any{"first_observed": ts(x.At),
					"last_observed": ts(x.At), "number_observed": 1, "object_refs": refs})
			}
		}
		// Who: each hypothesis an intrusion set the campaign is
		// attributed to at its score.
		for i, h := range ans.Hypotheses {
			if i == MaxHypotheses {
				break
			}
			props := map[string]any{"name": h.Actor, "description": "attribution hypothesis of dwell " + inc.ID + ": " + ans.Caveat}
			if len(h.Aliases) > 0 {
				props["aliases"] = h.Aliases
			}
			if h.ID != "" {
				props["external_references"] = []map[string]string{{"source_name": "mitre-attack", "external_id": h.ID}}
			}
			set := b.sdo("intrusion-set", "actor:"+strings.ToLower(h.Actor), props)
			desc := fmt.Sprintf("score %.2f (intel %.2f, behaviour %.2f). For: %s. Against: %s.", h.Score, h.Intel, h.Behaviour,
				cmp.Or(strings.Join(h.For, "; "), "nothing"), cmp.Or(strings.Join(h.Against, "; "), "nothing"))
			b.rel(campaign, "attributed-to", set, map[string]any{"confidence": int(math.Round(100 * h.Score)), "description": desc})
			if h.Country != "" {
				loc := b.sdo("location", "country:"+h.Country, map[string]any{"country": h.Country})
				b.rel(set, "originates-from", loc, map[string]any{"description": "as the sources place it" + sponsor(h.Sponsor)})
			}
		}
	}
	var all []string
	for _, o := range b.objects {
		all = append(all, o["id"].(string))
	}
	bundle := map[string]any{"type": "bundle", "id": dwellID("bundle", strings.Join(all, ",")), "objects": b.objects}
	return json.MarshalIndent(bundle, "", "  ")
}

func sponsor(s string) string {
	if s == "" {
		return ""
	}
	return "; suspected state sponsor: " + s
}

func objective(inc *correlate.Incident) string {
	switch inc.Class {
	case correlate.ClassEspionage:
		return "espionage: access to and theft of information"
	case correlate.ClassDDoS:
		return "denial of service"
	}
	return string(inc.Class)
}

// infraTypes names the infrastructure's roles (STIX's
// infrastructure-type-ov) from the detectors that saw it.
func infraTypes(inc *correlate.Incident) []string {
	types := map[string]bool{}
	for _, x := range inc.Infrastructure {
		for _, d := range x.Detectors {
			switch d {
			case "beacon", "c2", "dnstunnel", "tlsanom", "longconn", "deadc2", "dga", "iocmatch", "rare":
				types["command-and-control"] = true
			case "exfil":
				types["exfiltration"] = true
			case "ddos":
				types["botnet"] = true
			case "httpanom":
				types["attack"] = true
			}
		}
	}
	if len(types) == 0 {
		return []string{"unknown"}
	}
	return slices.Sorted(maps.Keys(types))
}

func addrType(a netip.Addr) string {
	if a.Is4() || a.Is4In6() {
		return "ipv4-addr"
	}
	return "ipv6-addr"
}

// builder collects a bundle's objects, each once.
type builder struct {
	created, me, marking string
	objects              []map[string]any
	seen                 map[string]bool
}

func (b *builder) add(o map[string]any, marked bool) string {
	id := o["id"].(string)
	if b.seen[id] {
		return id
	}
	b.seen[id] = true
	if marked {
		o["object_marking_refs"] = []string{b.marking}
	}
	b.objects = append(b.objects, o)
	return id
}

// sdo adds a domain object of type typ named by key (its id is derived
// from them).
func (b *builder) sdo(typ, key string, props map[string]any) string {
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": dwellID(typ, key), "created": b.created, "modified": b.created,
		"created_by_ref": b.me}
	maps.Copy(o, props)
	return b.add(o, true)
}

// sco adds a cyber-observable whose id comes from idProps.
func (b *builder) sco(typ string, idProps, props map[string]any) string {
	id, err := SCOID(typ, idProps)
	if err != nil {
		id = dwellID(typ, fmt.Sprint(idProps))
	}
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": id}
	maps.Copy(o, idProps)
	maps.Copy(o, props)
	return b.add(o, false)
}

func (b *builder) rel(src, typ, dst string, props map[string]any) {
	o := map[string]any{"type": "relationship", "spec_version": "2.1", "id": dwellID("relationship", src+" "+typ+" "+dst),
		"created": b.created, "modified": b.created, "created_by_ref": b.me, "relationship_type": typ, "source_ref": src, "target_ref": dst}
	maps.Copy(o, props)
	b.add(o, true)
}

// traffic adds the network-traffic of one connection.
func (b *builder) traffic(at time.Time, src, dst netip.Addr, port uint16, proto string, sent int64) string {
	s := b.sco(addrType(src), map[string]any{"value": src.String()}, nil)
	d := b.sco(addrType(dst), map[string]any{"value": dst.String()}, nil)
	id := map[string]any{"start": ts(at), "src_ref": s, "dst_ref": d, "dst_port": port, "protocols": []string{cmp.Or(strings.ToLower(proto), "tcp")}}
	props := map[string]any{}
	if sent > 0 {
		props["src_byte_count"] = sent
	}
	return b.sco("network-traffic", id, props)
}

// file adds the file of a transfer.
func (b *builder) file(x *correlate.Transferred) string {
	hashes := map[string]any{}
	for alg, v := range map[string]string{"MD5": x.MD5, "SHA-1": x.SHA1, "SHA-256": x.SHA256} {
		if v != "" {
			hashes[alg] = v
		}
	}
	id := map[string]any{}
	if len(hashes) > 0 {
		id["hashes"] = hashes
	}
	if x.Name != "" {
		id["name"] = x.Name
	}
	props := map[string]any{}
	if x.Bytes > 0 {
		props["size"] = x.Bytes
	}
	if x.MIME != "" {
		props["mime_type"] = x.MIME
	}
	return b.sco("file", id, props)
}
