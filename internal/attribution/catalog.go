// Package attribution answers the prosecutors' questions for an incident
// beyond what correlation knows (docs/attribution.md): the infrastructure
// no finding names, found by pivots (passive DNS, shared certificates);
// what was taken; and who may be behind it.
//
// Who is a ranked list of hypotheses, never a verdict. Intel gives the
// first kind: indicators matched in the incident that their source
// attributes to an actor (a MISP threat-actor galaxy tag, a STIX
// indicator that indicates an intrusion set or threat actor). Behaviour
// gives the second: the incident's ATT&CK techniques against those each
// known group is reported to use, weighted by how rare each technique is
// among all groups. The groups come from a Catalogue the user supplies
// (ATT&CK's STIX bundles, MISP galaxy cluster files).
package attribution

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Group is one known threat group as the catalogue's sources describe it.
type Group struct {
	ID      string   // the ATT&CK group id ("G0027") when known
	Name    string   // the first name a source gave
	Aliases []string // every other name
	Country string   // ISO 3166 code the sources place it in
	Sponsor string   // the state the sources suspect of sponsoring it
	// Techniques are the ATT&CK technique ids it is reported to use,
	// directly or through campaigns attributed to it.
	Techniques []string
	Sources    []string // the files it was read from
}

// Names returns the group's name and aliases.
func (g *Group) Names() []string { return append([]string{g.Name}, g.Aliases...) }

// Catalogue is the known groups, merged across sources by ATT&CK id and
// by name.
type Catalogue struct {
	Groups []Group
	// Files are the files read, for the report.
	Files  []string
	byName map[string]int
	byID   map[string]int
}

// NewCatalogue returns an empty catalogue.
func NewCatalogue() *Catalogue {
	return &Catalogue{byName: map[string]int{}, byID: map[string]int{}}
}

// LoadCatalogue reads groups from files: STIX 2.0/2.1 bundles (ATT&CK's
// enterprise-attack.json, or its groups and techniques in separate
// bundles: relationships are resolved across all the files given) and
// MISP galaxy cluster files (threat-actor, mitre-intrusion-set,
// microsoft-activity-group, and mitre-attack-pattern to resolve the
// intrusion sets' techniques). A file of neither kind is an error naming
// it.
func LoadCatalogue(paths []string) (*Catalogue, error) {
	c := NewCatalogue()
	var bundles []stixBundle
	var galaxies []galaxyFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("attribution catalogue: %w", err)
		}
		var head struct {
			Type   string          `json:"type"`
			Values json.RawMessage `json:"values"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("attribution catalogue %s: not JSON: %w", p, err)
		}
		switch {
		case head.Type == "bundle":
			var b stixBundle
			if err := json.Unmarshal(data, &b); err != nil {
				return nil, fmt.Errorf("attribution catalogue %s: STIX bundle: %w", p, err)
			}
			b.path = p
			bundles = append(bundles, b)
		case len(head.Values) > 0:
			var g galaxyFile
			if err := json.Unmarshal(data, &g); err != nil {
				return nil, fmt.Errorf("attribution catalogue %s: MISP galaxy clusters: %w", p, err)
			}
			g.path = p
			galaxies = append(galaxies, g)
		default:
			return nil, fmt.Errorf("attribution catalogue %s: neither a STIX bundle nor a MISP galaxy cluster file", p)
		}
		c.Files = append(c.Files, p)
	}
	c.addSTIX(bundles)
	c.addGalaxies(galaxies)
	return c, nil
}

// Lookup finds a group by ATT&CK id, name or alias (case, spaces and
// punctuation ignored).
func (c *Catalogue) Lookup(name string) (*Group, bool) {
	if i, ok := c.byID[strings.ToUpper(name)]; ok {
		return &c.Groups[i], true
	}
	if i, ok := c.byName[nameKey(name)]; ok {
		return &c.Groups[i], true
	}
	return nil, false
}

// Add merges g into the catalogue: into the group with its ATT&CK id or
// one of its names when there is one, as a new group otherwise.
func (c *Catalogue) Add(g Group) {
	i := -1
	if g.ID != "" {
		if j, ok := c.byID[g.ID]; ok {
			i = j
		}
	}
	for _, n := range g.Names() {
		if i >= 0 {
			break
		}
		if j, ok := c.byName[nameKey(n)]; ok && (g.ID == "" || c.Groups[j].ID == "" || c.Groups[j].ID == g.ID) {
			i = j
		}
	}
	if i < 0 {
		i = len(c.Groups)
		c.Groups = append(c.Groups, Group{ID: g.ID, Name: g.Name})
	}
	x := &c.Groups[i]
	x.ID = cmpOr(x.ID, g.ID)
	x.Country = cmpOr(x.Country, g.Country)
	x.Sponsor = cmpOr(x.Sponsor, g.Sponsor)
	for _, n := range g.Names() {
		if n != "" && !slices.ContainsFunc(x.Names(), func(m string) bool { return nameKey(m) == nameKey(n) }) {
			x.Aliases = append(x.Aliases, n)
		}
	}
	x.Techniques = union(x.Techniques, g.Techniques)
	x.Sources = union(x.Sources, g.Sources)
	if x.ID != "" {
		c.byID[x.ID] = i
	}
	for _, n := range x.Names() {
		if k := nameKey(n); k != "" {
			if _, taken := c.byName[k]; !taken {
				c.byName[k] = i
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// union appends to a the elements of b it lacks, keeping a sorted.
func union(a, b []string) []string {
	for _, s := range b {
		if s != "" && !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	slices.Sort(a)
	return a
}

// nameKey folds a group name for matching: "APT 27", "apt27" and "APT-27"
// are one.
func nameKey(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	techniqueID = regexp.MustCompile(`\bT\d{4}(?:\.\d{3})?\b`)
	groupID     = regexp.MustCompile(`\bG\d{4}\b`)
)

// stixBundle is the part of a STIX 2.0/2.1 bundle the catalogue reads.
type stixBundle struct {
	path    string
	Objects []stixObject `json:"objects"`
}

type stixObject struct {
	Type               string   `json:"type"`
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Aliases            []string `json:"aliases"`
	Revoked            bool     `json:"revoked"`
	Deprecated         bool     `json:"x_mitre_deprecated"`
	RelationshipType   string   `json:"relationship_type"`
	SourceRef          string   `json:"source_ref"`
	TargetRef          string   `json:"target_ref"`
	ExternalReferences []struct {
		SourceName string `json:"source_name"`
		ExternalID string `json:"external_id"`
	} `json:"external_references"`
}

func (o *stixObject) attackID(re *regexp.Regexp) string {
	for _, e := range o.ExternalReferences {
		if strings.HasPrefix(e.SourceName, "mitre") && re.MatchString(e.ExternalID) {
			return e.ExternalID
		}
	}
	return ""
}

// addSTIX adds the intrusion sets and threat actors of the bundles, with
// the techniques they use and those of the campaigns attributed to them.
func (c *Catalogue) addSTIX(bundles []stixBundle) {
	objs := map[string]*stixObject{}
	from := map[string]string{}
	for _, b := range bundles {
		for i := range b.Objects {
			o := &b.Objects[i]
			objs[o.ID] = o
			from[o.ID] = b.path
		}
	}
	groups := map[string]*Group{}
	var order []string
	for _, b := range bundles {
		for i := range b.Objects {
			o := &b.Objects[i]
			if (o.Type != "intrusion-set" && o.Type != "threat-actor") || o.Revoked || o.Deprecated || groups[o.ID] != nil {
				continue
			}
			g := &Group{ID: o.attackID(groupID), Name: o.Name, Sources: []string{b.path}}
			for _, a := range o.Aliases {
				if nameKey(a) != nameKey(o.Name) {
					g.Aliases = append(g.Aliases, a)
				}
			}
			groups[o.ID] = g
			order = append(order, o.ID)
		}
	}
	// Campaigns attributed to a group lend it their techniques.
	owner := map[string][]string{}
	for _, o := range objs {
		if o.Type == "relationship" && o.RelationshipType == "attributed-to" && groups[o.TargetRef] != nil {
			owner[o.SourceRef] = append(owner[o.SourceRef], o.TargetRef)
		}
	}
	for _, o := range objs {
		if o.Type != "relationship" || o.RelationshipType != "uses" {
			continue
		}
		p := objs[o.TargetRef]
		if p == nil || p.Type != "attack-pattern" || p.Revoked || p.Deprecated {
			continue
		}
		t := p.attackID(techniqueID)
		if t == "" {
			continue
		}
		targets := owner[o.SourceRef]
		if groups[o.SourceRef] != nil {
			targets = append(targets, o.SourceRef)
		}
		for _, id := range targets {
			groups[id].Techniques = union(groups[id].Techniques, []string{t})
		}
	}
	for _, id := range order {
		c.Add(*groups[id])
	}
}

// galaxyFile is a MISP galaxy cluster file (misp-galaxy's clusters/*.json).
type galaxyFile struct {
	path   string
	Type   string          `json:"type"`
	Values []galaxyCluster `json:"values"`
}

type galaxyCluster struct {
	Value   string                     `json:"value"`
	UUID    string                     `json:"uuid"`
	Meta    map[string]json.RawMessage `json:"meta"`
	Related []struct {
		DestUUID string `json:"dest-uuid"`
		Type     string `json:"type"`
	} `json:"related"`
}

// strings returns a meta value that is a string or a list of strings.
func (g *galaxyCluster) strings(key string) []string {
	raw, ok := g.Meta[key]
	if !ok {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}

func (g *galaxyCluster) first(key string) string {
	if s := g.strings(key); len(s) > 0 {
		return strings.TrimSpace(s[0])
	}
	return ""
}

// addGalaxies adds the actor clusters of the galaxy files; attack-pattern
// clusters resolve the techniques intrusion-set clusters use.
func (c *Catalogue) addGalaxies(files []galaxyFile) {
	patterns := map[string]string{}
	for _, f := range files {
		if !strings.Contains(f.Type, "attack-pattern") {
			continue
		}
		for _, v := range f.Values {
			t := techniqueID.FindString(strings.Join(append(v.strings("external_id"), v.Value), " "))
			if t != "" {
				patterns[v.UUID] = t
			}
		}
	}
	for _, f := range files {
		if !actorGalaxy(f.Type) {
			continue
		}
		for i := range f.Values {
			v := &f.Values[i]
			name, id := v.Value, ""
			if m := groupID.FindString(strings.Join(v.strings("external_id"), " ")); m != "" {
				id = m
			}
			if n, g, ok := strings.Cut(name, " - "); ok && groupID.MatchString(g) {
				name, id = n, cmpOr(id, g)
			}
			g := Group{ID: id, Name: name, Aliases: v.strings("synonyms"), Country: strings.ToUpper(v.first("country")),
				Sources: []string{f.path}}
			if s := v.first("cfr-suspected-state-sponsor"); s != "" && !strings.EqualFold(s, "unknown") {
				g.Sponsor = s
			}
			for _, r := range v.Related {
				if t := patterns[r.DestUUID]; t != "" && r.Type == "uses" {
					g.Techniques = union(g.Techniques, []string{t})
				}
			}
			c.Add(g)
		}
	}
}

// actorGalaxy reports galaxy types whose clusters are actors.
func actorGalaxy(t string) bool {
	return strings.Contains(t, "threat-actor") || strings.Contains(t, "intrusion-set") || strings.Contains(t, "activity-group")
}
