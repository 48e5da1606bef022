package intel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// TLP marking-definition ids: TLP 1.0 (STIX 2.1 §7.2.1.4) and TLP 2.0
// (the OASIS CTI TC's published objects). Exporters use the 2.0 ones.
const (
	TLP1White = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	TLP1Green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	TLP1Amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	TLP1Red   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"

	TLP2Clear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	TLP2Green       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	TLP2Amber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	TLP2AmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	TLP2Red         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
)

// tlpOfMarking returns the TLP level of a well-known marking id.
func tlpOfMarking(id string) (string, bool) {
	switch id {
	case TLP1White, TLP2Clear:
		return event.TLPClear, true
	case TLP1Green, TLP2Green:
		return event.TLPGreen, true
	case TLP1Amber, TLP2Amber:
		return event.TLPAmber, true
	case TLP2AmberStrict:
		return event.TLPAmberStrict, true
	case TLP1Red, TLP2Red:
		return event.TLPRed, true
	}
	return "", false
}

// TLPMarking returns the TLP 2.0 marking-definition id of a level.
func TLPMarking(level string) (string, bool) {
	switch level {
	case event.TLPClear:
		return TLP2Clear, true
	case event.TLPGreen:
		return TLP2Green, true
	case event.TLPAmber:
		return TLP2Amber, true
	case event.TLPAmberStrict:
		return TLP2AmberStrict, true
	case event.TLPRed:
		return TLP2Red, true
	}
	return "", false
}

// stixObject holds the properties of any STIX object dwell reads.
type stixObject struct {
	Type               string          `json:"type"`
	ID                 string          `json:"id"`
	Name               string          `json:"name"`
	Description        string          `json:"description"`
	Pattern            string          `json:"pattern"`
	PatternType        string          `json:"pattern_type"`
	ValidFrom          string          `json:"valid_from"`
	ValidUntil         string          `json:"valid_until"`
	Modified           string          `json:"modified"`
	Confidence         *int            `json:"confidence"`
	Revoked            bool            `json:"revoked"`
	Labels             []string        `json:"labels"`
	IndicatorTypes     []string        `json:"indicator_types"`
	ObjectMarkingRefs  []string        `json:"object_marking_refs"`
	ExternalReferences []stixExtRef    `json:"external_references"`
	KillChainPhases    []stixPhase     `json:"kill_chain_phases"`
	RelationshipType   string          `json:"relationship_type"`
	SourceRef          string          `json:"source_ref"`
	TargetRef          string          `json:"target_ref"`
	ObjectRefs         []string        `json:"object_refs"`
	Value              string          `json:"value"`
	Hashes             map[string]any  `json:"hashes"`
	DefinitionType     string          `json:"definition_type"`
	Definition         json.RawMessage `json:"definition"`
	Extensions         map[string]struct {
		TLP string `json:"tlp_2_0"`
	} `json:"extensions"`
}

type stixExtRef struct {
	SourceName string `json:"source_name"`
	ExternalID string `json:"external_id"`
}

type stixPhase struct {
	KillChainName string `json:"kill_chain_name"`
	PhaseName     string `json:"phase_name"`
}

// ParseSTIX reads a STIX 2.1 bundle, a TAXII envelope ({"objects": [...]})
// or a single object.
func ParseSTIX(data []byte, source string) (*Result, error) {
	var env struct {
		Type    string            `json:"type"`
		ID      string            `json:"id"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("not STIX: %w", jsonErr(data, err))
	}
	raws := env.Objects
	if env.Type != "bundle" && raws == nil {
		if env.Type == "" {
			return nil, fmt.Errorf("not STIX: no type and no objects")
		}
		raws = []json.RawMessage{data}
	}
	r := &Result{Format: "stix"}
	objs := make([]stixObject, 0, len(raws))
	for i, raw := range raws {
		var o stixObject
		if err := json.Unmarshal(raw, &o); err != nil {
			r.skip(fmt.Sprintf("object %d", i+1), shorten(string(raw), 60), "not a STIX object: "+err.Error())
			continue
		}
		if o.Type == "" || o.ID == "" {
			r.skip(fmt.Sprintf("object %d", i+1), shorten(string(raw), 60), "no type or id")
			continue
		}
		objs = append(objs, o)
		r.count(o.Type)
	}
	// A collection may hold several versions of an object: the latest
	// (by "modified") counts.
	latest := map[string]int{}
	kept := objs[:0]
	older := 0
	for _, o := range objs {
		if i, ok := latest[o.ID]; ok {
			older++
			if stixTime(o.Modified).After(stixTime(kept[i].Modified)) {
				kept[i] = o
			}
			continue
		}
		latest[o.ID] = len(kept)
		kept = append(kept, o)
	}
	objs = kept
	if older > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d older version(s) of objects ignored", older))
	}
	group := env.ID
	// Markings and attack patterns defined in the bundle, and what each
	// indicator indicates.
	markings := map[string]string{}
	techniques := map[string][]string{}
	for _, o := range objs {
		switch o.Type {
		case "marking-definition":
			if l, ok := markingLevel(o); ok {
				markings[o.ID] = l
			}
		case "attack-pattern":
			for _, e := range o.ExternalReferences {
				if strings.HasPrefix(e.SourceName, "mitre") {
					techniques[o.ID] = union(techniques[o.ID], AttackIDs(e.ExternalID))
				}
			}
		}
	}
	indicates, actorsOf := map[string][]string{}, map[string][]string{}
	observed := map[string]bool{}
	actors := stixActors(objs)
	for _, o := range objs {
		switch {
		case o.Type == "relationship" && o.RelationshipType == "indicates":
			indicates[o.SourceRef] = union(indicates[o.SourceRef], techniques[o.TargetRef])
			actorsOf[o.SourceRef] = union(actorsOf[o.SourceRef], actors[o.TargetRef])
		case o.Type == "observed-data":
			for _, ref := range o.ObjectRefs {
				observed[ref] = true
			}
		}
	}
	for _, o := range objs {
		base := event.Indicator{Source: source, Ref: o.ID, Group: group, Name: firstOf(o.Name, o.Description), Confidence: -1,
			Revoked: o.Revoked, Actionable: !o.Revoked}
		if o.Confidence != nil && *o.Confidence >= 0 && *o.Confidence <= 100 {
			base.Confidence = *o.Confidence
		}
		base.Modified = stixTime(o.Modified)
		for _, m := range o.ObjectMarkingRefs {
			if l, ok := tlpOfMarking(m); ok {
				base.TLP = stricter(base.TLP, l)
			} else if l, ok := markings[m]; ok {
				base.TLP = stricter(base.TLP, l)
			}
		}
		base.Tags = union(union(nil, o.Labels), actorsOf[o.ID])
		if len(o.IndicatorTypes) > 0 && !slices.ContainsFunc(o.IndicatorTypes, func(t string) bool { return t != "benign" }) {
			base.Actionable = false // "benign": known good, context only
		}
		base.Attack = indicates[o.ID]
		for _, e := range o.ExternalReferences {
			if strings.HasPrefix(e.SourceName, "mitre") {
				base.Attack = union(base.Attack, AttackIDs(e.ExternalID))
			}
		}
		for _, k := range o.KillChainPhases {
			base.Tags = union(base.Tags, []string{k.KillChainName + ":" + k.PhaseName})
		}
		switch o.Type {
		case "indicator":
			stixIndicator(r, base, o)
		case "ipv4-addr", "ipv6-addr", "domain-name", "url", "file", "x509-certificate", "email-addr":
			if observed[o.ID] {
				// What observed-data saw (a sighting's evidence) is
				// neither an indicator nor context about one.
				r.count("observation")
				continue
			}
			// Cyber observables are context, not detection content.
			base.Actionable = false
			stixSCO(r, base, o)
		}
	}
	return r, nil
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func stixTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// markingLevel reads the TLP level of a marking-definition object: TLP 1.0
// ("definition": {"tlp": "amber"}) or TLP 2.0 (the tlp_2_0 extension, or
// its name "TLP:AMBER").
func markingLevel(o stixObject) (string, bool) {
	if l, ok := tlpOfMarking(o.ID); ok {
		return l, true
	}
	for _, e := range o.Extensions {
		if l, ok := TLPOf("tlp:" + e.TLP); ok {
			return l, true
		}
	}
	if o.DefinitionType == "tlp" {
		var d struct {
			TLP string `json:"tlp"`
		}
		if json.Unmarshal(o.Definition, &d) == nil {
			if l, ok := TLPOf("tlp:" + d.TLP); ok {
				return l, true
			}
		}
	}
	return TLPOf(o.Name)
}

func stixIndicator(r *Result, base event.Indicator, o stixObject) {
	if o.PatternType != "" && o.PatternType != "stix" {
		r.skip(o.ID, shorten(o.Pattern, 80), "pattern type "+o.PatternType+" is not evaluated")
		return
	}
	base.ValidFrom, base.ValidUntil = stixTime(o.ValidFrom), stixTime(o.ValidUntil)
	tree, err := ParsePattern(o.Pattern)
	if err != nil {
		r.skip(o.ID, shorten(o.Pattern, 80), "bad pattern: "+err.Error())
		return
	}
	atoms, err := Atoms(tree)
	if err != nil {
		r.skip(o.ID, shorten(o.Pattern, 80), err.Error())
		return
	}
	for _, a := range atoms {
		v, err := Normalize(a.Type, a.Value)
		if err != nil {
			r.skip(o.ID, string(a.Type)+" "+shorten(a.Value, 60), err.Error())
			continue
		}
		ind := base
		ind.Type, ind.Value, ind.Port = a.Type, v, a.Port
		r.Indicators = append(r.Indicators, ind)
	}
}

func stixSCO(r *Result, base event.Indicator, o stixObject) {
	add := func(t event.IOCType, v string) {
		if t == event.IOCIP && strings.Contains(v, "/") {
			t = event.IOCCIDR
		}
		n, err := Normalize(t, v)
		if err != nil {
			r.skip(o.ID, o.Type+" "+shorten(v, 60), err.Error())
			return
		}
		ind := base
		ind.Type, ind.Value = t, n
		r.Indicators = append(r.Indicators, ind)
	}
	switch o.Type {
	case "ipv4-addr", "ipv6-addr":
		add(event.IOCIP, o.Value)
	case "domain-name":
		add(event.IOCDomain, o.Value)
	case "url":
		add(event.IOCURL, o.Value)
	case "email-addr":
		add(event.IOCEmail, o.Value)
	case "file", "x509-certificate":
		for alg, v := range o.Hashes {
			s, ok := v.(string)
			if !ok {
				continue
			}
			t, err := pathType(Path{Type: o.Type, Steps: []string{"hashes", alg}})
			if err != nil {
				r.skip(o.ID, o.Type+" hash "+alg, "hash algorithm not matched")
				continue
			}
			add(t, s)
		}
	}
}

// stixActors returns, for each intrusion set, threat actor and campaign of
// the bundle, the actors it stands for as tags (stix:intrusion-set="APT1",
// stix:threat-actor="Ugly Gorilla"): itself, and those it is attributed
// to, followed through attributed-to relationships (a campaign to its
// intrusion set, that to its threat actors). An indicator that indicates
// one of them is attributed to each (package attribution reads the tags).
func stixActors(objs []stixObject) map[string][]string {
	tag := map[string]string{}
	up := map[string][]string{}
	for _, o := range objs {
		switch {
		case (o.Type == "intrusion-set" || o.Type == "threat-actor") && o.Name != "" && !o.Revoked:
			tag[o.ID] = "stix:" + o.Type + "=" + strconv.Quote(o.Name)
		case o.Type == "relationship" && o.RelationshipType == "attributed-to":
			up[o.SourceRef] = append(up[o.SourceRef], o.TargetRef)
		}
	}
	out := map[string][]string{}
	for _, o := range objs {
		if o.Type != "intrusion-set" && o.Type != "threat-actor" && o.Type != "campaign" {
			continue
		}
		seen := map[string]bool{}
		var walk func(id string, depth int)
		walk = func(id string, depth int) {
			if seen[id] || depth > 4 {
				return
			}
			seen[id] = true
			if t := tag[id]; t != "" {
				out[o.ID] = union(out[o.ID], []string{t})
			}
			for _, next := range up[id] {
				walk(next, depth+1)
			}
		}
		walk(o.ID, 0)
	}
	return out
}
