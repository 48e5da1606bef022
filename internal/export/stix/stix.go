// Package stix writes indicators and their sightings as a STIX 2.1 bundle
// for national and EU sharing: our identity and each sensor's, the TLP 2.0
// marking definitions used (the OASIS objects, fixed ids), an indicator
// per dwell indicator with a pattern dwell reads back the same, and per
// sighting a sighting of it with observed data referring to the observed
// value as a cyber-observable object whose id is the deterministic one the
// specification requires (UUIDv5 over the JSON Canonicalization Scheme
// form of its id-contributing properties).
//
// The output is a pure function of its input: the same indicators,
// sightings and options give the same bytes.
package stix

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
)

// Options shape a bundle.
type Options struct {
	// Producer names our identity (default "dwell").
	Producer string
	// MaxTLP leaves out what is marked more restrictively ("" keeps all).
	MaxTLP string
	// Unmarked is the TLP level given to indicators their source did not
	// mark (default TLP:AMBER: intel of unknown sensitivity is not shared
	// as if it were public).
	Unmarked string
	// Created stamps the objects dwell creates (default the Unix epoch, so
	// that the output depends on its input only).
	Created time.Time
}

// scoNamespace is the namespace of deterministic SCO ids (STIX 2.1 §2.9).
var scoNamespace = uuid.MustParse("00abedb4-aa42-466c-9c01-fed23315a9b7")

// Namespace is dwell's namespace for the name-based (UUIDv5) ids of the
// objects it exports, so that exporting the same thing twice gives the
// same ids.
var Namespace = uuid.MustParse("4f1f4a7e-2b0a-5d39-9a3b-6d77656c6c00")

// SCOID returns the deterministic id of a cyber-observable object from its
// id-contributing properties.
func SCOID(typ string, props map[string]any) (string, error) {
	c, err := JCS(props)
	if err != nil {
		return "", err
	}
	return typ + "--" + uuid.NewSHA1(scoNamespace, c).String(), nil
}

func dwellID(typ, name string) string {
	return typ + "--" + uuid.NewSHA1(Namespace, []byte(typ+"\x00"+name)).String()
}

const stamp = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string { return t.UTC().Format(stamp) }

// Bundle returns the STIX 2.1 bundle of inds and sightings (of those
// indicators; others are ignored).
func Bundle(inds []event.Indicator, sightings []event.Sighting, opt Options) ([]byte, error) {
	producer := opt.Producer
	if producer == "" {
		producer = "dwell"
	}
	created := ts(opt.Created)
	if opt.Created.IsZero() {
		created = ts(time.Unix(0, 0))
	}
	unmarked := opt.Unmarked
	if unmarked == "" {
		unmarked = event.TLPAmber
	}
	me := dwellID("identity", "producer:"+producer)
	var objects []map[string]any
	objects = append(objects, map[string]any{"type": "identity", "spec_version": "2.1", "id": me, "created": created, "modified": created,
		"name": producer, "identity_class": "organization"})

	// Only detection content is shared as STIX indicators: context
	// (MISP attributes without to_ids) stays out, revoked ones go out
	// revoked so that the recipient withdraws them too.
	var sorted []event.Indicator
	refs := map[string]int{}
	for _, i := range inds {
		if i.Actionable || i.Revoked {
			sorted = append(sorted, i)
			refs[i.Ref]++
		}
	}
	slices.SortFunc(sorted, func(a, b event.Indicator) int { return strings.Compare(a.Key(), b.Key()) })
	used := map[string]bool{}
	byKey := map[string]map[string]any{}
	var indicators []map[string]any
	for _, i := range sorted {
		tlp := i.TLP
		if tlp == "" {
			tlp = unmarked
		}
		if opt.MaxTLP != "" && event.TLPRank(tlp) > event.TLPRank(opt.MaxTLP) {
			continue
		}
		pattern, err := Pattern(i)
		if err != nil {
			continue // no STIX form (a type without an observable)
		}
		used[tlp] = true
		marking, _ := intel.TLPMarking(tlp)
		// The source's id is kept unless the source's indicator became
		// several of dwell's (an OR of values).
		id := i.Ref
		if !strings.HasPrefix(id, "indicator--") || refs[i.Ref] > 1 {
			id = dwellID("indicator", i.Key())
		}
		mod := created
		if !i.Modified.IsZero() {
			mod = ts(i.Modified)
		}
		from := mod
		if !i.ValidFrom.IsZero() {
			from = ts(i.ValidFrom)
		}
		o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": mod, "modified": mod, "created_by_ref": me,
			"name": cmp.Or(i.Name, indicatorName(i)), "indicator_types": []string{"malicious-activity"}, "pattern": pattern,
			"pattern_type": "stix", "pattern_version": "2.1", "valid_from": from, "object_marking_refs": []string{marking}}
		if !i.ValidUntil.IsZero() && i.ValidUntil.After(i.ValidFrom) {
			o["valid_until"] = ts(i.ValidUntil)
		}
		if i.Confidence >= 0 {
			o["confidence"] = i.Confidence
		}
		if len(i.Tags) > 0 {
			o["labels"] = i.Tags
		}
		if i.Revoked {
			o["revoked"] = true
		}
		var refs []map[string]string
		for _, t := range i.Attack {
			refs = append(refs, map[string]string{"source_name": "mitre-attack", "external_id": t})
		}
		if len(refs) > 0 {
			o["external_references"] = refs
		}
		indicators = append(indicators, o)
		byKey[i.Key()] = o
	}
	for _, l := range []string{event.TLPClear, event.TLPGreen, event.TLPAmber, event.TLPAmberStrict, event.TLPRed} {
		if used[l] {
			objects = append(objects, markingDefinition(l))
		}
	}
	sensors := map[string]string{}
	var sensorObjs, observed, sightingObjs []map[string]any
	scos := map[string]map[string]any{}
	sightings = slices.Clone(sightings)
	slices.SortFunc(sightings, func(a, b event.Sighting) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
			strings.Compare(a.Observed, b.Observed))
	})
	for _, s := range sightings {
		ind, ok := byKey[s.Key]
		if !ok {
			continue
		}
		sensor := s.Sensor
		if sensor == "" {
			sensor = "default"
		}
		sid, ok := sensors[sensor]
		if !ok {
			sid = dwellID("identity", "sensor:"+producer+":"+sensor)
			sensors[sensor] = sid
			sensorObjs = append(sensorObjs, map[string]any{"type": "identity", "spec_version": "2.1", "id": sid, "created": created,
				"modified": created, "name": sensor, "identity_class": "system", "created_by_ref": me})
		}
		name := s.Key + "\x00" + s.Sensor + "\x00" + s.Log + "\x00" + s.Observed
		count := max(s.Count, 1)
		o := map[string]any{"type": "sighting", "spec_version": "2.1", "id": dwellID("sighting", name), "created": created, "modified": created,
			"created_by_ref": me, "sighting_of_ref": ind["id"], "first_seen": ts(s.First), "last_seen": ts(s.Last), "count": min(count, 999_999_999),
			"where_sighted_refs": []string{sid}, "object_marking_refs": ind["object_marking_refs"],
			"description": fmt.Sprintf("%s matched in %s on %d day(s)", s.Observed, s.Log, s.Days)}
		if sco, ok := observable(s.Observed, ind); ok {
			scos[sco["id"].(string)] = sco
			od := map[string]any{"type": "observed-data", "spec_version": "2.1", "id": dwellID("observed-data", name), "created": created,
				"modified": created, "created_by_ref": me, "first_observed": ts(s.First), "last_observed": ts(s.Last),
				"number_observed": min(count, 999_999_999), "object_refs": []string{sco["id"].(string)}, "object_marking_refs": ind["object_marking_refs"]}
			observed = append(observed, od)
			o["observed_data_refs"] = []string{od["id"].(string)}
		}
		sightingObjs = append(sightingObjs, o)
	}
	objects = append(objects, sensorObjs...)
	objects = append(objects, indicators...)
	for _, id := range slices.Sorted(maps.Keys(scos)) {
		objects = append(objects, scos[id])
	}
	objects = append(objects, observed...)
	objects = append(objects, sightingObjs...)
	var all []string
	for _, o := range objects {
		all = append(all, o["id"].(string))
	}
	bundle := map[string]any{"type": "bundle", "id": dwellID("bundle", strings.Join(all, ",")), "objects": objects}
	return json.MarshalIndent(bundle, "", "  ")
}

func indicatorName(i event.Indicator) string {
	v := string(i.Type) + " " + i.Value
	if i.Port != 0 {
		v += fmt.Sprintf(" port %d", i.Port)
	}
	return v
}

func markingDefinition(level string) map[string]any {
	id, _ := intel.TLPMarking(level)
	return map[string]any{"type": "marking-definition", "spec_version": "2.1", "id": id, "created": "2022-10-01T00:00:00.000Z",
		"name": "TLP:" + strings.ToUpper(level), "extensions": map[string]any{
			"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": map[string]any{"extension_type": "property-extension", "tlp_2_0": level}}}
}

// quote writes a STIX pattern string literal.
func quote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// Pattern returns the STIX pattern of an indicator, which dwell's importer
// turns back into the same indicator. Domains match their subdomains in
// dwell, so the pattern says so.
func Pattern(i event.Indicator) (string, error) {
	v := quote(i.Value)
	switch i.Type {
	case event.IOCIP:
		a, err := netip.ParseAddr(i.Value)
		if err != nil {
			return "", err
		}
		t := "ipv4-addr"
		if a.Is6() {
			t = "ipv6-addr"
		}
		if i.Port != 0 {
			return fmt.Sprintf("[network-traffic:dst_ref.type = '%s' AND network-traffic:dst_ref.value = %s AND network-traffic:dst_port = %d]", t, v, i.Port), nil
		}
		return fmt.Sprintf("[%s:value = %s]", t, v), nil
	case event.IOCCIDR:
		p, err := netip.ParsePrefix(i.Value)
		if err != nil {
			return "", err
		}
		t := "ipv4-addr"
		if p.Addr().Is6() {
			t = "ipv6-addr"
		}
		return fmt.Sprintf("[%s:value ISSUBSET %s]", t, v), nil
	case event.IOCDomain:
		return fmt.Sprintf("[domain-name:value = %s OR domain-name:value LIKE %s]", v, quote("%."+i.Value)), nil
	case event.IOCURL:
		return fmt.Sprintf("[url:value = %s]", quote("http://"+i.Value)), nil
	case event.IOCMD5:
		return fmt.Sprintf("[file:hashes.MD5 = %s]", v), nil
	case event.IOCSHA1:
		return fmt.Sprintf("[file:hashes.'SHA-1' = %s]", v), nil
	case event.IOCSHA256:
		return fmt.Sprintf("[file:hashes.'SHA-256' = %s]", v), nil
	case event.IOCCertSHA1:
		return fmt.Sprintf("[x509-certificate:hashes.'SHA-1' = %s]", v), nil
	case event.IOCCertSHA256:
		return fmt.Sprintf("[x509-certificate:hashes.'SHA-256' = %s]", v), nil
	case event.IOCJA3, event.IOCJA3S, event.IOCJA4:
		return fmt.Sprintf("[x-%s:value = %s]", i.Type, v), nil
	case event.IOCUserAgent:
		return fmt.Sprintf("[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = %s]", v), nil
	case event.IOCEmail:
		return fmt.Sprintf("[email-addr:value = %s]", v), nil
	case event.IOCFilename:
		return fmt.Sprintf("[file:name = %s]", v), nil
	}
	return "", fmt.Errorf("no STIX pattern for %s", i.Type)
}

// observable returns the SCO of an observed value, when STIX has one.
func observable(observed string, ind map[string]any) (map[string]any, bool) {
	pattern, _ := ind["pattern"].(string)
	var typ string
	var props map[string]any
	switch {
	case strings.Contains(pattern, "ipv4-addr") || strings.Contains(pattern, "ipv6-addr"):
		a, err := netip.ParseAddr(observed)
		if err != nil {
			return nil, false
		}
		typ = "ipv4-addr"
		if a.Is6() {
			typ = "ipv6-addr"
		}
		props = map[string]any{"value": observed}
	case strings.HasPrefix(pattern, "[domain-name:"):
		typ, props = "domain-name", map[string]any{"value": observed}
	case strings.HasPrefix(pattern, "[url:"):
		typ, props = "url", map[string]any{"value": "http://" + observed}
	case strings.HasPrefix(pattern, "[file:hashes."):
		alg := map[int]string{32: "MD5", 40: "SHA-1", 64: "SHA-256"}[len(observed)]
		typ, props = "file", map[string]any{"hashes": map[string]any{alg: observed}}
	case strings.HasPrefix(pattern, "[x509-certificate:hashes."):
		alg := map[int]string{40: "SHA-1", 64: "SHA-256"}[len(observed)]
		typ, props = "x509-certificate", map[string]any{"hashes": map[string]any{alg: observed}}
	default:
		return nil, false
	}
	id, err := SCOID(typ, props)
	if err != nil {
		return nil, false
	}
	o := map[string]any{"type": typ, "spec_version": "2.1", "id": id}
	for k, v := range props {
		o[k] = v
	}
	return o, true
}
