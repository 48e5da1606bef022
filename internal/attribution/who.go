package attribution

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// Caveat is said with every attribution.
const Caveat = "These are hypotheses, not findings of fact: infrastructure is rented, " +
	"shared and taken over, tools and techniques are shared, sold and copied (sometimes to mislead), " +
	"and the sources' own attributions are assessments. A hypothesis needs evidence beyond this " +
	"data — malware analysis, the intel source's reasoning, legal process — before it is a conclusion."

// Options bound the hypotheses.
type Options struct {
	// Top is how many behavioural hypotheses to keep (default 5); those
	// with intel behind them are always kept.
	Top int
	// MinTechniques is how many of the incident's techniques a group must
	// be known to use to be a behavioural hypothesis (default 2): one
	// common technique says nothing.
	MinTechniques int
}

// Sighting is an indicator matched in the incident, as the iocmatch
// finding's evidence gives it.
type Sighting struct {
	Value      string
	Source     string
	Event      string // the MISP event or STIX bundle's name
	Confidence float64
	Actors     []Actor
}

// Actor is an actor an indicator's source attributes it to.
type Actor struct {
	Name string
	ID   string // the ATT&CK id the tag gives ("G0027"), if any
	Via  string // the tag it was read from
}

// actorTag reads MISP galaxy tags of actor galaxies
// (misp-galaxy:threat-actor="APT27", misp-galaxy:mitre-intrusion-set="APT27 - G0027",
// misp-galaxy:microsoft-activity-group=...) and the tags dwell's STIX reader
// gives the actors an indicator indicates (stix:intrusion-set="...",
// stix:threat-actor="...").
var actorTag = regexp.MustCompile(`^(?:misp-galaxy:([a-z0-9-]+)|stix:(intrusion-set|threat-actor))="(.+)"$`)

// ActorOf returns the actor a tag names.
func ActorOf(tag string) (Actor, bool) {
	m := actorTag.FindStringSubmatch(strings.TrimSpace(tag))
	if m == nil || (m[1] != "" && !actorGalaxy(m[1])) {
		return Actor{}, false
	}
	a := Actor{Name: strings.TrimSpace(m[3]), Via: tag}
	if n, id, ok := strings.Cut(a.Name, " - "); ok && groupID.MatchString(id) {
		a.Name, a.ID = strings.TrimSpace(n), id
	}
	return a, a.Name != ""
}

// Sightings reads the intel matches among an incident's findings.
func Sightings(fs []detect.Finding) []Sighting {
	var out []Sighting
	for i := range fs {
		f := &fs[i]
		ind, ok := f.Evidence["indicator"].(map[string]any)
		if f.Detector != "iocmatch" || !ok {
			continue
		}
		s := Sighting{Value: str(ind["value"]), Source: str(ind["source"]), Event: str(ind["name"]), Confidence: 0.5}
		if c, ok := num(ind["confidence"]); ok && c >= 0 && c <= 100 {
			s.Confidence = c / 100
		}
		for _, t := range strs(ind["tags"]) {
			if a, ok := ActorOf(t); ok {
				s.Actors = append(s.Actors, a)
			}
		}
		out = append(out, s)
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func strs(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Who ranks the actors that may be behind an incident with techniques
// attack and intel matches sightings, against the catalogue cat (nil:
// intel only). Scores (docs/attribution.md):
//
//   - intel: a noisy-or over the distinct indicators attributed to the
//     actor, each counting half its confidence: 1 − Π(1 − c/2). One
//     indicator the source is sure of gives 0.5; it takes several to
//     approach 1, since one address proves little.
//   - behaviour: a weighted Tversky index of the incident's techniques I
//     and the group's G: w(I∩G) / (w(I∩G) + w(I∖G) + 0.1·w(G∖I)), each
//     technique weighted by its inverse group frequency ln(N/n), N the
//     catalogue's groups with techniques and n those known to use it
//     (sub-techniques count for their parent too). A technique every group
//     uses weighs nothing; one a single group uses weighs most. What the
//     incident shows and the group is not known for counts fully against
//     it; what the group is known for and the incident does not show counts
//     a tenth, since a network sees part of an intrusion.
//   - the hypothesis: intel + (1 − intel) × behaviour / 2, so behaviour
//     alone never exceeds 0.5 and intel ranks first.
func Who(attack []string, sightings []Sighting, cat *Catalogue, opt Options) []correlate.Hypothesis {
	opt.Top = cmp.Or(opt.Top, 5)
	opt.MinTechniques = cmp.Or(opt.MinTechniques, 2)
	hyp := map[string]*correlate.Hypothesis{}
	keyOf := func(name, id string) (string, *Group) {
		if cat != nil {
			for _, n := range []string{id, name} {
				if n == "" {
					continue
				}
				if g, ok := cat.Lookup(n); ok {
					return "g:" + nameKey(g.Name) + g.ID, g
				}
			}
		}
		return "n:" + nameKey(name), nil
	}
	get := func(name, id string) *correlate.Hypothesis {
		k, g := keyOf(name, id)
		h := hyp[k]
		if h == nil {
			h = &correlate.Hypothesis{Actor: name, ID: id, For: []string{}, Against: []string{}, Sources: []string{}}
			if g != nil {
				h.Actor, h.ID, h.Aliases, h.Country, h.Sponsor = g.Name, g.ID, g.Aliases, g.Country, g.Sponsor
			}
			hyp[k] = h
		}
		return h
	}
	// Intel: each actor's distinct indicators.
	type intel struct {
		values map[string]float64
	}
	byActor := map[*correlate.Hypothesis]*intel{}
	for _, s := range sightings {
		for _, a := range s.Actors {
			h := get(a.Name, a.ID)
			in := byActor[h]
			if in == nil {
				in = &intel{values: map[string]float64{}}
				byActor[h] = in
			}
			if c, seen := in.values[s.Value]; !seen || s.Confidence > c {
				if !seen {
					h.For = append(h.For, fmt.Sprintf("indicator %s, attributed to %s by %s%s (confidence %.0f%%)",
						s.Value, a.Name, s.Source, eventOf(s.Event), 100*s.Confidence))
				}
				in.values[s.Value] = s.Confidence
			}
			h.Sources = union(h.Sources, []string{s.Source})
		}
	}
	for h, in := range byActor {
		miss := 1.0
		for _, c := range in.values {
			miss *= 1 - c/2
		}
		h.Intel = detect.Round(1-miss, 3)
	}
	// Indicators of the incident attributed to others count against.
	for h := range byActor {
		for _, s := range sightings {
			if len(s.Actors) > 0 && !slices.ContainsFunc(s.Actors, func(a Actor) bool { return get(a.Name, a.ID) == h }) {
				line := fmt.Sprintf("indicator %s is attributed by %s to %s instead", s.Value, s.Source, s.Actors[0].Name)
				if !slices.Contains(h.Against, line) { // the same indicator sighted in several logs
					h.Against = append(h.Against, line)
				}
			}
		}
	}
	// Behaviour.
	if cat != nil && len(attack) > 0 {
		sims := cat.similar(attack, opt.MinTechniques)
		kept := 0
		for _, s := range sims {
			_, hasIntel := hyp["g:"+nameKey(s.group.Name)+s.group.ID]
			if !hasIntel && kept >= opt.Top {
				continue
			}
			if !hasIntel {
				kept++
			}
			h := get(s.group.Name, s.group.ID)
			h.Behaviour = detect.Round(s.score, 3)
			h.For = append(h.For, fmt.Sprintf("uses %d of the incident's %d techniques: %s", len(s.shared), len(s.incident), strings.Join(s.shared, ", ")))
			if len(s.related) > 0 {
				h.For = append(h.For, fmt.Sprintf("uses the parent technique of %s", strings.Join(s.related, ", ")))
			}
			if len(s.unknown) > 0 {
				h.Against = append(h.Against, fmt.Sprintf("not known to use %s", strings.Join(s.unknown, ", ")))
			}
			h.Sources = union(h.Sources, s.group.Sources)
		}
	}
	out := make([]correlate.Hypothesis, 0, len(hyp))
	for _, h := range hyp {
		h.Score = detect.Round(h.Intel+(1-h.Intel)*h.Behaviour/2, 3)
		if h.Score > 0 {
			out = append(out, *h)
		}
	}
	slices.SortFunc(out, func(a, b correlate.Hypothesis) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(b.Intel, a.Intel), strings.Compare(a.Actor, b.Actor))
	})
	return out
}

func eventOf(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", name)
}

// groupShare is how much a group's techniques the incident did not show
// count against it, relative to the incident's techniques the group is not
// known to use.
const groupShare = 0.1

// similarity is a group's behavioural match.
type similarity struct {
	group    *Group
	score    float64
	incident []string // the incident's techniques known to some group
	shared   []string // those the group uses, rarest first
	related  []string // those whose parent technique it uses
	unknown  []string // those it is not known to use
}

// expand adds each sub-technique's parent.
func expand(ts []string) map[string]bool {
	out := map[string]bool{}
	for _, t := range ts {
		out[t] = true
		if p, _, ok := strings.Cut(t, "."); ok {
			out[p] = true
		}
	}
	return out
}

// similar scores every group with techniques against the incident's.
func (c *Catalogue) similar(attack []string, minShared int) []similarity {
	sets := make([]map[string]bool, len(c.Groups))
	df := map[string]int{}
	n := 0
	for i := range c.Groups {
		if len(c.Groups[i].Techniques) == 0 {
			continue
		}
		n++
		sets[i] = expand(c.Groups[i].Techniques)
		for t := range sets[i] {
			df[t]++
		}
	}
	idf := func(t string) float64 {
		if df[t] == 0 {
			return 0
		}
		return math.Log(float64(n) / float64(df[t]))
	}
	inc := expand(attack)
	var incWeight float64
	for t := range inc {
		incWeight += idf(t)
	}
	if incWeight == 0 {
		return nil
	}
	// The incident's own techniques that some group is known to use.
	var own []string
	for _, t := range attack {
		parent, _, _ := strings.Cut(t, ".")
		if (df[t] > 0 || df[parent] > 0) && !slices.Contains(own, t) {
			own = append(own, t)
		}
	}
	slices.Sort(own)
	var out []similarity
	for i := range c.Groups {
		if sets[i] == nil {
			continue
		}
		// Weighted Tversky index: both, against both plus the incident's
		// techniques the group is not known to use (in full) plus the
		// group's the incident did not show (a tenth: a network sees part
		// of an intrusion).
		var both, onlyGroup float64
		for t := range sets[i] {
			if inc[t] {
				both += idf(t)
			} else {
				onlyGroup += idf(t)
			}
		}
		if both == 0 {
			continue
		}
		onlyIncident := incWeight - both
		s := similarity{group: &c.Groups[i], score: both / (both + onlyIncident + groupShare*onlyGroup), incident: own}
		// Said in the incident's own terms: its techniques the group uses,
		// those whose parent it uses, and the rest.
		for _, t := range own {
			parent, _, sub := strings.Cut(t, ".")
			switch {
			case sets[i][t]:
				s.shared = append(s.shared, t)
			case sub && sets[i][parent]:
				s.related = append(s.related, t)
			default:
				s.unknown = append(s.unknown, t)
			}
		}
		if len(s.shared) < minShared {
			continue
		}
		slices.SortStableFunc(s.shared, func(a, b string) int { return cmp.Compare(idf(b), idf(a)) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b similarity) int {
		return cmp.Or(cmp.Compare(b.score, a.score), strings.Compare(a.group.Name, b.group.Name))
	})
	return out
}
