package stix

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
)

func datasets(t *testing.T, dir string) string {
	t.Helper()
	root := os.Getenv("DWELL_DATASETS")
	if root == "" {
		root = "../../../../shared/datasets"
	}
	p := filepath.Join(root, dir)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("dataset %s not available (%v); set DWELL_DATASETS", dir, err)
	}
	return p
}

// TestSCOIDs checks deterministic ids against ids computed independently
// (Python's uuid.uuid5 over the canonical JSON, as cti-python-stix2 does;
// the address's is also the one in stix21-demo-export).
func TestSCOIDs(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		props map[string]any
		want  string
	}{
		{"ipv4-addr", map[string]any{"value": "198.51.100.23"}, "ipv4-addr--cec0294c-86c8-52cc-8448-ba43593736df"},
		{"ipv6-addr", map[string]any{"value": "2001:db8::1"}, "ipv6-addr--6469e3a9-b053-5e34-a025-9396ae051d26"},
		{"domain-name", map[string]any{"value": "update-check.example.net"}, "domain-name--c9134545-55cf-579b-b640-eb13c14ff2ef"},
		{"domain-name", map[string]any{"value": "bücher.example"}, "domain-name--dbf3aff2-b3cd-57d2-9616-0ddfde9d01ad"},
		{"url", map[string]any{"value": "http://update-check.example.net/api/v2/sync"}, "url--76ce1eb9-abfc-50bb-b452-6dd38f675617"},
		{"file", map[string]any{"hashes": map[string]any{"SHA-256": "c3b0c6b8e4b7ab8bdbcd7d4bd3a1d51d1a48d0d6b76a0d5e5e3d6b3a1e2fb6a4"}},
			"file--2d2d3230-6bf8-56cd-8cd3-4e6a7675b03f"},
		{"x509-certificate", map[string]any{"hashes": map[string]any{"SHA-1": "aabbccddeeff00112233445566778899aabbccdd"}},
			"x509-certificate--c0e0979f-194f-5081-97c3-ac816603350b"},
	} {
		got, err := SCOID(tc.typ, tc.props)
		if err != nil || got != tc.want {
			t.Errorf("%s %v: %s (%v), want %s", tc.typ, tc.props, got, err, tc.want)
		}
	}
}

// TestJCS checks the canonical form on RFC 8785's own examples.
func TestJCS(t *testing.T) {
	var v any
	in := `{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`
	if err := json.Unmarshal([]byte(in), &v); err != nil {
		t.Fatal(err)
	}
	got, err := JCS(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	if string(got) != want {
		t.Errorf("JCS\n got %s\nwant %s", got, want)
	}
	// Keys sort by UTF-16 code units: U+1F600 (a surrogate pair) before U+FB33.
	got, _ = JCS(map[string]any{"\U0001F600": 1, "\uFB33": 2, "1": 3, "\u0080": 4})
	if want := "{\"1\":3,\"\u0080\":4,\"\U0001F600\":1,\"\uFB33\":2}"; string(got) != want {
		t.Errorf("key order %s, want %s", got, want)
	}
}

var day = time.Date(2019, 4, 17, 0, 0, 0, 0, time.UTC)

// sample is intel as dwell holds it after imports: every exportable type,
// marked and unmarked, and context that is not shared as an indicator.
func sample() ([]event.Indicator, []event.Sighting) {
	ind := func(typ event.IOCType, v string, tlp string) event.Indicator {
		return event.Indicator{Source: "cert", Type: typ, Value: v, Name: "case-42 " + v, TLP: tlp, Confidence: 80,
			Actionable: true, ValidFrom: day, Modified: day.Add(time.Hour), Tags: []string{"apt"}, Attack: []string{"T1071.001"}}
	}
	inds := []event.Indicator{
		ind(event.IOCIP, "198.51.100.23", event.TLPAmber),
		ind(event.IOCIP, "2001:db8::1", event.TLPGreen),
		ind(event.IOCCIDR, "203.0.113.0/24", event.TLPGreen),
		ind(event.IOCDomain, "update-check.example.net", event.TLPAmber),
		ind(event.IOCURL, "update-check.example.net/api/v2/sync", event.TLPAmber),
		ind(event.IOCMD5, strings.Repeat("ab", 16), event.TLPClear),
		ind(event.IOCSHA1, strings.Repeat("cd", 20), event.TLPClear),
		ind(event.IOCSHA256, strings.Repeat("ef", 32), event.TLPRed),
		ind(event.IOCCertSHA1, "aabbccddeeff00112233445566778899aabbccdd", event.TLPAmberStrict),
		ind(event.IOCJA3, strings.Repeat("0f", 16), event.TLPGreen),
		ind(event.IOCUserAgent, "Mozilla/4.0 (compatible; it's \\ odd)", event.TLPGreen),
		ind(event.IOCFilename, "errorEE.aspx", event.TLPGreen),
		ind(event.IOCEmail, "ops@update-check.example.net", event.TLPGreen),
	}
	port := ind(event.IOCIP, "203.0.113.45", event.TLPAmber)
	port.Port = 8443
	port.ValidUntil = day.AddDate(1, 0, 0)
	port.Confidence = -1
	inds = append(inds, port)
	unmarked := ind(event.IOCDomain, "cdn-metrics.example.org", "")
	unmarked.Name = ""
	inds = append(inds, unmarked)
	revoked := ind(event.IOCIP, "192.0.2.66", event.TLPGreen)
	revoked.Revoked, revoked.Actionable = true, false
	inds = append(inds, revoked)
	context := ind(event.IOCDomain, "www.example.com", event.TLPClear)
	context.Actionable = false
	inds = append(inds, context)

	peer := netip.MustParseAddr("10.1.2.3")
	sightings := []event.Sighting{
		{Key: inds[0].Key(), Sensor: "dmz", Log: "conn", Observed: "198.51.100.23", First: day, Last: day.AddDate(1, 10, 0), Count: 41233, Days: 690,
			Peers: []netip.Addr{peer}},
		{Key: inds[3].Key(), Sensor: "dmz", Log: "dns", Observed: "a1.update-check.example.net", First: day.Add(time.Hour), Last: day.AddDate(0, 0, 3),
			Count: 12, Days: 4, Peers: []netip.Addr{peer}},
		{Key: inds[7].Key(), Sensor: "core", Log: "files", Observed: strings.Repeat("ef", 32), First: day, Last: day, Count: 1, Days: 1},
		{Key: inds[4].Key(), Sensor: "dmz", Log: "http", Observed: "update-check.example.net/api/v2/sync", First: day, Last: day, Count: 3, Days: 1},
		{Key: "other\x00ip\x00192.0.2.1", Sensor: "dmz", Log: "conn", Observed: "192.0.2.1", First: day, Last: day, Count: 1, Days: 1},
	}
	return inds, sightings
}

func objects(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var b struct {
		Type    string           `json:"type"`
		ID      string           `json:"id"`
		Objects []map[string]any `json:"objects"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "bundle" || !strings.HasPrefix(b.ID, "bundle--") {
		t.Fatalf("not a bundle: %s %s", b.Type, b.ID)
	}
	return b.Objects
}

// TestRoundTrip: what dwell exports, dwell imports as the same indicators.
func TestRoundTrip(t *testing.T) {
	inds, sightings := sample()
	data, err := Bundle(inds, sightings, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := intel.ParseSTIX(data, "cert")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Skipped) > 0 {
		t.Errorf("skipped on re-import: %+v", r.Skipped)
	}
	got := map[string]event.Indicator{}
	for _, i := range intel.Distinct(r.Indicators) {
		got[i.Key()] = i
	}
	for _, want := range inds {
		g, ok := got[want.Key()]
		if !want.Actionable && !want.Revoked {
			if ok {
				t.Errorf("context indicator %s exported", want.Value)
			}
			continue
		}
		if !ok {
			t.Errorf("%s %s not re-imported", want.Type, want.Value)
			continue
		}
		delete(got, want.Key())
		if want.TLP == "" {
			want.TLP = event.TLPAmber // Options.Unmarked
		}
		if want.Name == "" {
			want.Name = indicatorName(want)
		}
		g.Ref, g.Group = "", ""
		if diff := compare(want, g); diff != "" {
			t.Errorf("%s %s changed: %s", want.Type, want.Value, diff)
		}
	}
	for k := range got {
		t.Errorf("re-import added %q", k)
	}
	// The source's own ids are kept.
	inds[0].Ref = "indicator--22e45be5-47fa-5ad1-881f-6e5cc69b205e"
	data, _ = Bundle(inds[:1], nil, Options{})
	if !bytes.Contains(data, []byte(inds[0].Ref)) {
		t.Error("the source's indicator id is not kept")
	}
}

func compare(a, b event.Indicator) string {
	var diffs []string
	check := func(name string, x, y any) {
		xs, _ := json.Marshal(x)
		ys, _ := json.Marshal(y)
		if !bytes.Equal(xs, ys) {
			diffs = append(diffs, name+": "+string(xs)+" → "+string(ys))
		}
	}
	check("type", a.Type, b.Type)
	check("port", a.Port, b.Port)
	check("name", a.Name, b.Name)
	check("tlp", a.TLP, b.TLP)
	check("confidence", a.Confidence, b.Confidence)
	check("valid_from", a.ValidFrom, b.ValidFrom)
	check("valid_until", a.ValidUntil, b.ValidUntil)
	check("modified", a.Modified, b.Modified)
	check("tags", a.Tags, b.Tags)
	check("attack", a.Attack, b.Attack)
	check("actionable", a.Actionable, b.Actionable)
	check("revoked", a.Revoked, b.Revoked)
	return strings.Join(diffs, "; ")
}

func TestDeterministicAndFiltered(t *testing.T) {
	inds, sightings := sample()
	a, err := Bundle(inds, sightings, Options{})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(inds)
	slices.Reverse(sightings)
	b, _ := Bundle(inds, sightings, Options{})
	if !bytes.Equal(a, b) {
		t.Error("the bundle depends on the order of its input")
	}
	green, _ := Bundle(inds, sightings, Options{MaxTLP: event.TLPGreen})
	for _, o := range objects(t, green) {
		for _, m := range refs(o["object_marking_refs"]) {
			if m != "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487" && m != "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb" {
				t.Errorf("%s marked %s in a TLP:GREEN export", o["id"], m)
			}
		}
		if o["type"] == "sighting" {
			t.Errorf("sighting of an amber or red indicator in a green export: %v", o["sighting_of_ref"])
		}
	}
}

func refs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestSightingsAndObservations checks the evidence objects: each sighting
// refers to its indicator, our sensor's identity and observed data of the
// value seen, an SCO with its deterministic id.
func TestSightingsAndObservations(t *testing.T) {
	inds, sightings := sample()
	data, err := Bundle(inds, sightings, Options{Producer: "CERT.be"})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, o := range objects(t, data) {
		byID[o["id"].(string)] = o
	}
	n := 0
	for _, o := range byID {
		if o["type"] != "sighting" {
			continue
		}
		n++
		ind := byID[o["sighting_of_ref"].(string)]
		if ind == nil || ind["type"] != "indicator" {
			t.Errorf("%s: sighting_of_ref %v is not in the bundle", o["id"], o["sighting_of_ref"])
			continue
		}
		where := refs(o["where_sighted_refs"])
		if len(where) != 1 || byID[where[0]]["identity_class"] != "system" {
			t.Errorf("%s: where_sighted_refs %v", o["id"], where)
		}
		if me := byID[o["created_by_ref"].(string)]; me["name"] != "CERT.be" {
			t.Errorf("%s: created by %v", o["id"], me)
		}
		for _, od := range refs(o["observed_data_refs"]) {
			for _, sco := range refs(byID[od]["object_refs"]) {
				if byID[sco] == nil {
					t.Errorf("%s: observed %s is not in the bundle", o["id"], sco)
				}
			}
		}
	}
	if n != 4 {
		t.Errorf("%d sightings, want 4 (the fifth is of an indicator not exported)", n)
	}
	for id, want := range map[string]string{
		"ipv4-addr--cec0294c-86c8-52cc-8448-ba43593736df":          "198.51.100.23",
		"url--76ce1eb9-abfc-50bb-b452-6dd38f675617":                "http://update-check.example.net/api/v2/sync",
		"domain-name--" + mustID(t, "a1.update-check.example.net"): "a1.update-check.example.net",
	} {
		if o := byID[id]; o == nil || o["value"] != want {
			t.Errorf("SCO %s: %v", id, o)
		}
	}
}

func mustID(t *testing.T, domain string) string {
	id, err := SCOID("domain-name", map[string]any{"value": domain})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(id, "domain-name--")
}

var (
	stixID    = regexp.MustCompile(`^[a-z0-9-]+--[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	stixStamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)
)

// TestSchemas validates an export against the OASIS interoperability
// schemas of stix21-oasis-examples with a small JSON Schema validator, and
// against the STIX 2.1 core rules those schemas refer to (the files of
// cti-stix2-json-schemas/schemas are not shipped, so their rules that
// matter here are written out).
func TestSchemas(t *testing.T) {
	dir := datasets(t, "stix21-oasis-examples")
	schemas := map[string]map[string]any{}
	for _, name := range []string{"core", "indicator", "sighting"} {
		data, err := os.ReadFile(filepath.Join(dir, "interop-"+name+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		schemas[name+".json"] = s
	}
	inds, sightings := sample()
	data, err := Bundle(inds, sightings, Options{Created: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	v := &validator{schemas: schemas}
	counts := map[string]int{}
	for _, o := range objects(t, data) {
		typ, _ := o["type"].(string)
		counts[typ]++
		var errs []string
		if s, ok := schemas[typ+".json"]; ok {
			errs = v.validate(s, o, typ)
		}
		errs = append(errs, coreRules(o)...)
		for _, e := range errs {
			t.Errorf("%s: %s", o["id"], e)
		}
	}
	if counts["indicator"] != 16 || counts["sighting"] != 4 || counts["marking-definition"] != 5 {
		t.Errorf("objects: %v", counts)
	}
	// The validator must reject what the profile forbids.
	bad := map[string]any{"type": "indicator", "object_marking_refs": []any{
		"marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}}
	if errs := v.validate(schemas["indicator.json"], bad, "indicator"); len(errs) < 4 {
		t.Errorf("two TLP 1.0 markings and no name/indicator_types/created_by_ref gave only %v", errs)
	}
}

// coreRules are the rules of the STIX 2.1 schemas the interop profile
// refers to (common/core.json, sdos/indicator.json, sros/sighting.json,
// common/marking-definition.json, the SCO schemas) that an export can
// break.
func coreRules(o map[string]any) []string {
	var errs []string
	typ, _ := o["type"].(string)
	id, _ := o["id"].(string)
	if !stixID.MatchString(id) || !strings.HasPrefix(id, typ+"--") {
		errs = append(errs, "id "+id+" is not "+typ+"--<UUID>")
	}
	if o["spec_version"] != "2.1" {
		errs = append(errs, "spec_version is not 2.1")
	}
	sco := map[string]bool{"ipv4-addr": true, "ipv6-addr": true, "domain-name": true, "url": true, "file": true, "x509-certificate": true,
		"autonomous-system": true, "network-traffic": true}[typ]
	stamps := []string{"created", "modified", "valid_from", "valid_until", "first_seen", "last_seen", "first_observed", "last_observed"}
	if !sco {
		if _, ok := o["created"]; !ok {
			errs = append(errs, "no created")
		}
		if _, ok := o["modified"]; !ok && typ != "marking-definition" {
			errs = append(errs, "no modified")
		}
	}
	for _, k := range stamps {
		if v, ok := o[k]; ok {
			if s, _ := v.(string); !stixStamp.MatchString(s) {
				errs = append(errs, k+" is not a STIX timestamp: "+s)
			}
		}
	}
	for k, v := range o {
		if strings.HasSuffix(k, "_ref") {
			if s, _ := v.(string); !stixID.MatchString(s) {
				errs = append(errs, k+" is not an identifier")
			}
		}
		if strings.HasSuffix(k, "_refs") {
			l := refs(v)
			if len(l) == 0 {
				errs = append(errs, k+" is empty")
			}
			for _, s := range l {
				if !stixID.MatchString(s) {
					errs = append(errs, k+" holds "+s)
				}
			}
		}
	}
	need := map[string][]string{
		"indicator":          {"pattern", "pattern_type", "valid_from"},
		"sighting":           {"sighting_of_ref"},
		"observed-data":      {"first_observed", "last_observed", "number_observed", "object_refs"},
		"identity":           {"name"},
		"marking-definition": {"extensions"},
		"relationship":       {"relationship_type", "source_ref", "target_ref"},
		"campaign":           {"name"},
		"infrastructure":     {"name"},
		"intrusion-set":      {"name"},
		"network-traffic":    {"protocols"},
		"autonomous-system":  {"number"},
	}[typ]
	for _, k := range need {
		if _, ok := o[k]; !ok {
			errs = append(errs, "no "+k)
		}
	}
	if c, ok := o["confidence"].(float64); ok && (c < 0 || c > 100) {
		errs = append(errs, "confidence out of 0–100")
	}
	for _, k := range []string{"count", "number_observed"} {
		if c, ok := o[k].(float64); ok && (c < 0 || c > 999999999) {
			errs = append(errs, k+" out of range")
		}
	}
	if typ == "indicator" {
		if p, _ := o["pattern"].(string); p != "" {
			if _, err := intel.ParsePattern(p); err != nil {
				errs = append(errs, "pattern: "+err.Error())
			}
		}
		if f, u := o["valid_from"], o["valid_until"]; u != nil && f.(string) >= u.(string) {
			errs = append(errs, "valid_until not after valid_from")
		}
	}
	return errs
}

// validator checks the JSON Schema keywords the interop schemas use:
// $ref, allOf, type, required, properties, items, pattern, minItems,
// contains with minContains/maxContains. A $ref outside the interop files
// is left to coreRules.
type validator struct {
	schemas map[string]map[string]any
}

func (v *validator) validate(s map[string]any, x any, at string) []string {
	var errs []string
	if ref, ok := s["$ref"].(string); ok {
		if sub, ok := v.schemas[ref]; ok {
			errs = append(errs, v.validate(sub, x, at)...)
		}
	}
	for _, sub := range list(s["allOf"]) {
		if m, ok := sub.(map[string]any); ok {
			errs = append(errs, v.validate(m, x, at)...)
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(x, typ) {
		return append(errs, at+": not of type "+typ)
	}
	obj, _ := x.(map[string]any)
	for _, r := range list(s["required"]) {
		if _, ok := obj[r.(string)]; !ok && obj != nil {
			errs = append(errs, at+": required property "+r.(string)+" missing")
		}
	}
	if props, ok := s["properties"].(map[string]any); ok && obj != nil {
		for k, sub := range props {
			if val, ok := obj[k]; ok {
				errs = append(errs, v.validate(sub.(map[string]any), val, at+"."+k)...)
			}
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := x.(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, at+": "+str+" does not match "+p)
		}
	}
	arr, isArr := x.([]any)
	if !isArr {
		return errs
	}
	if n, ok := s["minItems"].(float64); ok && float64(len(arr)) < n {
		errs = append(errs, at+": fewer than minItems")
	}
	if items, ok := s["items"].(map[string]any); ok {
		for _, e := range arr {
			errs = append(errs, v.validate(items, e, at+"[]")...)
		}
	}
	if c, ok := s["contains"].(map[string]any); ok {
		n := 0
		for _, e := range arr {
			if len(v.validate(c, e, at)) == 0 {
				n++
			}
		}
		lo, hi := 1.0, float64(len(arr))
		if m, ok := s["minContains"].(float64); ok {
			lo = m
		}
		if m, ok := s["maxContains"].(float64); ok {
			hi = m
		}
		if float64(n) < lo || float64(n) > hi {
			errs = append(errs, at+": contains-count out of bounds")
		}
	}
	return errs
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func hasType(x any, typ string) bool {
	switch typ {
	case "object":
		_, ok := x.(map[string]any)
		return ok
	case "array":
		_, ok := x.([]any)
		return ok
	case "string":
		_, ok := x.(string)
		return ok
	case "integer":
		f, ok := x.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := x.(float64)
		return ok
	case "boolean":
		_, ok := x.(bool)
		return ok
	}
	return true
}
