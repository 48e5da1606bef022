// Package misp writes indicators and their sightings as one MISP event in
// MISP's core JSON format ({"Event": {...}}), as MISP's "Add event from
// JSON" import and dwell's own importer read it.
//
// Each indicator becomes an attribute: its type mapped to MISP's, to_ids
// from Actionable, deleted from Revoked, its name as the comment, its
// validity window as first_seen/last_seen, its TLP level and confidence
// as tlp: and osint:certainty tags, its other tags as tags and its ATT&CK
// techniques as mitre-attack-pattern galaxy clusters. Each sighting adds
// MISP sightings (type 0, "seen") on its attribute at the first and last
// time seen, with the sensor as their source. The event is not published
// and its distribution is "your organisation only": sharing is decided in
// MISP.
//
// The output is a pure function of its input.
package misp

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Options shape the event.
type Options struct {
	// Producer names the creating organisation (default "dwell").
	Producer string
	// MaxTLP leaves out indicators marked more restrictively, counting
	// unmarked ones as TLP:AMBER ("" keeps all).
	MaxTLP string
	// Info is the event's title (default: a count of what it holds).
	Info string
	// Created dates the event (default the latest indicator change, so
	// that the output depends on its input only).
	Created time.Time
}

// Namespace is dwell's namespace for the name-based ids of what it
// exports to MISP.
var Namespace = uuid.MustParse("4f1f4a7e-2b0a-5d39-9a3b-6d77656c6c01")

// attrType maps an indicator to MISP's attribute type, category and value.
func attrType(i event.Indicator) (typ, category, value string, ok bool) {
	net, payload := "Network activity", "Payload delivery"
	switch i.Type {
	case event.IOCIP, event.IOCCIDR:
		if i.Port != 0 {
			return "ip-dst|port", net, i.Value + "|" + strconv.Itoa(int(i.Port)), true
		}
		return "ip-dst", net, i.Value, true
	case event.IOCDomain:
		return "domain", net, i.Value, true
	case event.IOCURL:
		return "url", net, "http://" + i.Value, true
	case event.IOCMD5, event.IOCSHA1, event.IOCSHA256:
		return string(i.Type), payload, i.Value, true
	case event.IOCJA3:
		return "ja3-fingerprint-md5", net, i.Value, true
	case event.IOCCertSHA1:
		return "x509-fingerprint-sha1", net, i.Value, true
	case event.IOCCertSHA256:
		return "x509-fingerprint-sha256", net, i.Value, true
	case event.IOCUserAgent:
		return "user-agent", net, i.Value, true
	case event.IOCEmail:
		return "email", payload, i.Value, true
	case event.IOCFilename:
		return "filename", payload, i.Value, true
	}
	return "", "", "", false
}

type tag struct {
	Name string `json:"name"`
}

type cluster struct {
	Value string `json:"value"`
	Meta  struct {
		ExternalID []string `json:"external_id"`
	} `json:"meta"`
}

type galaxy struct {
	Name          string    `json:"name"`
	Type          string    `json:"type"`
	GalaxyCluster []cluster `json:"GalaxyCluster"`
}

type sighting struct {
	Type        string `json:"type"`
	DateSighted string `json:"date_sighting"`
	Source      string `json:"source"`
	Org         struct {
		Name string `json:"name"`
	} `json:"Organisation"`
}

type attribute struct {
	UUID      string     `json:"uuid"`
	Type      string     `json:"type"`
	Category  string     `json:"category"`
	Value     string     `json:"value"`
	ToIDs     bool       `json:"to_ids"`
	Deleted   bool       `json:"deleted"`
	Comment   string     `json:"comment"`
	Timestamp string     `json:"timestamp"`
	FirstSeen string     `json:"first_seen,omitempty"`
	LastSeen  string     `json:"last_seen,omitempty"`
	Tag       []tag      `json:"Tag,omitempty"`
	Galaxy    []galaxy   `json:"Galaxy,omitempty"`
	Sighting  []sighting `json:"Sighting,omitempty"`
}

type org struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type mispEvent struct {
	UUID          string      `json:"uuid"`
	Info          string      `json:"info"`
	Date          string      `json:"date"`
	Timestamp     string      `json:"timestamp"`
	ThreatLevelID string      `json:"threat_level_id"`
	Analysis      string      `json:"analysis"`
	Distribution  string      `json:"distribution"`
	Published     bool        `json:"published"`
	Orgc          org         `json:"Orgc"`
	Attribute     []attribute `json:"Attribute"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Skipped counts indicators left out of an event, by the reason.
type Skipped map[string]int

// Event returns the MISP event of inds and their sightings, and what it
// left out: indicator types MISP has no attribute type for.
func Event(inds []event.Indicator, sightings []event.Sighting, opt Options) ([]byte, Skipped, error) {
	producer := cmp.Or(opt.Producer, "dwell")
	sorted := slices.Clone(inds)
	slices.SortFunc(sorted, func(a, b event.Indicator) int { return strings.Compare(a.Key(), b.Key()) })
	refs := map[string]int{}
	for _, i := range sorted {
		refs[i.Ref]++
	}
	bySighting := map[string][]event.Sighting{}
	for _, s := range sightings {
		bySighting[s.Key] = append(bySighting[s.Key], s)
	}
	skipped := Skipped{}
	var attrs []attribute
	var latest time.Time
	var keys []string
	for _, i := range sorted {
		if opt.MaxTLP != "" && event.TLPRank(cmp.Or(i.TLP, event.TLPAmber)) > event.TLPRank(opt.MaxTLP) {
			skipped["marked above TLP:"+strings.ToUpper(opt.MaxTLP)]++
			continue
		}
		typ, category, value, ok := attrType(i)
		if !ok {
			skipped[fmt.Sprintf("%s: no MISP attribute type", i.Type)]++
			continue
		}
		keys = append(keys, i.Key())
		if i.Modified.After(latest) {
			latest = i.Modified
		}
		// A MISP attribute keeps its uuid unless it became several of
		// dwell's indicators (domain|ip).
		id := strings.ToLower(i.Ref)
		if !uuidRE.MatchString(id) || refs[i.Ref] > 1 {
			id = uuid.NewSHA1(Namespace, []byte("attribute\x00"+i.Key())).String()
		}
		a := attribute{UUID: id, Type: typ, Category: category, Value: value, ToIDs: i.Actionable, Deleted: i.Revoked,
			Comment: cmp.Or(i.Name, string(i.Type)+" "+i.Value), Timestamp: unix(i.Modified)}
		if !i.ValidFrom.IsZero() {
			a.FirstSeen = isoTime(i.ValidFrom)
		}
		if !i.ValidUntil.IsZero() {
			a.LastSeen = isoTime(i.ValidUntil)
		}
		if i.TLP != "" {
			a.Tag = append(a.Tag, tag{"tlp:" + i.TLP})
		}
		if i.Confidence >= 0 {
			a.Tag = append(a.Tag, tag{fmt.Sprintf("osint:certainty=\"%d\"", i.Confidence)})
		}
		for _, t := range i.Tags {
			a.Tag = append(a.Tag, tag{t})
		}
		if len(i.Attack) > 0 {
			g := galaxy{Name: "Attack Pattern", Type: "mitre-attack-pattern"}
			for _, t := range i.Attack {
				c := cluster{Value: t}
				c.Meta.ExternalID = []string{t}
				g.GalaxyCluster = append(g.GalaxyCluster, c)
			}
			a.Galaxy = []galaxy{g}
		}
		ss := bySighting[i.Key()]
		slices.SortFunc(ss, func(a, b event.Sighting) int {
			return cmp.Or(a.First.Compare(b.First), strings.Compare(a.Sensor, b.Sensor), strings.Compare(a.Log, b.Log),
				strings.Compare(a.Observed, b.Observed))
		})
		for _, s := range ss {
			src := fmt.Sprintf("%s %s: %s (%d records, %d days)", cmp.Or(s.Sensor, "default"), s.Log, s.Observed, s.Count, s.Days)
			for _, t := range []time.Time{s.First, s.Last} {
				x := sighting{Type: "0", DateSighted: unix(t), Source: src}
				x.Org.Name = producer
				a.Sighting = append(a.Sighting, x)
				if s.Last.Equal(s.First) {
					break
				}
			}
		}
		attrs = append(attrs, a)
	}
	created := opt.Created
	if created.IsZero() {
		created = latest
	}
	if created.IsZero() {
		created = time.Unix(0, 0)
	}
	info := opt.Info
	if info == "" {
		info = fmt.Sprintf("%s: %d indicator(s), %d sighted", producer, len(attrs), countSighted(attrs))
	}
	ev := mispEvent{
		UUID: uuid.NewSHA1(Namespace, []byte("event\x00"+producer+"\x00"+strings.Join(keys, "\x01"))).String(),
		Info: info, Date: created.UTC().Format(time.DateOnly), Timestamp: unix(created),
		ThreatLevelID: "2", Analysis: "2", Distribution: "0",
		Orgc:      org{Name: producer, UUID: uuid.NewSHA1(Namespace, []byte("org\x00"+producer)).String()},
		Attribute: attrs,
	}
	out, err := json.MarshalIndent(map[string]any{"Event": ev}, "", "  ")
	return out, skipped, err
}

func countSighted(attrs []attribute) int {
	n := 0
	for _, a := range attrs {
		if len(a.Sighting) > 0 {
			n++
		}
	}
	return n
}

func unix(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatInt(t.Unix(), 10)
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }
