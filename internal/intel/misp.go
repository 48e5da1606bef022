package intel

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // G501: MISP's hashes.csv is MD5 by its format, not for security
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// MISP's core format (the MISP core format RFC, and PyMISP's feed
// generator): an event with attributes, objects holding more attributes,
// tags and galaxies; a feed is manifest.json, one <uuid>.json per event
// and hashes.csv.

type mispEvent struct {
	UUID      string          `json:"uuid"`
	Info      string          `json:"info"`
	Date      string          `json:"date"`
	Timestamp flexString      `json:"timestamp"`
	Tag       []mispTag       `json:"Tag"`
	Galaxy    []mispGalaxy    `json:"Galaxy"`
	Attribute []mispAttribute `json:"Attribute"`
	Object    []mispObject    `json:"Object"`
	Orgc      struct {
		Name string `json:"name"`
	} `json:"Orgc"`
}

type mispTag struct {
	Name string `json:"name"`
}

type mispGalaxy struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	GalaxyCluster []struct {
		Value string `json:"value"`
		Meta  struct {
			ExternalID []string `json:"external_id"`
		} `json:"meta"`
	} `json:"GalaxyCluster"`
}

type mispAttribute struct {
	UUID      string       `json:"uuid"`
	Type      string       `json:"type"`
	Category  string       `json:"category"`
	Value     string       `json:"value"`
	ToIDs     flexBool     `json:"to_ids"`
	Deleted   flexBool     `json:"deleted"`
	Comment   string       `json:"comment"`
	Timestamp flexString   `json:"timestamp"`
	FirstSeen string       `json:"first_seen"`
	LastSeen  string       `json:"last_seen"`
	Tag       []mispTag    `json:"Tag"`
	Galaxy    []mispGalaxy `json:"Galaxy"`
}

type mispObject struct {
	UUID      string          `json:"uuid"`
	Name      string          `json:"name"`
	Deleted   flexBool        `json:"deleted"`
	Attribute []mispAttribute `json:"Attribute"`
}

// flexString accepts a JSON string or number (MISP writes timestamps both ways).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexString(n.String())
	return nil
}

// flexBool accepts true/false, "1"/"0" and 1/0.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(string(b), `"`) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("%s is not a boolean", b)
	}
	return nil
}

// mispTime reads MISP's first_seen/last_seen ("2019-04-17T08:12:00.000000+00:00").
func mispTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// time reads an epoch timestamp; zero when it is none, or beyond the
// years a store keeps (a forged 99999999999999 must not fail the import).
func (f flexString) time() time.Time {
	if n, err := strconv.ParseInt(string(f), 10, 64); err == nil && n > 0 {
		if t := time.Unix(n, 0).UTC(); event.Representable(t) {
			return t
		}
	}
	return time.Time{}
}

// mispType maps the MISP attribute types dwell takes to indicator types.
func mispType(t string) (event.IOCType, bool) {
	switch t {
	case "ip-src", "ip-dst":
		return event.IOCIP, true
	case "domain", "hostname":
		return event.IOCDomain, true
	case "url":
		return event.IOCURL, true
	case "md5":
		return event.IOCMD5, true
	case "sha1":
		return event.IOCSHA1, true
	case "sha256":
		return event.IOCSHA256, true
	case "ja3-fingerprint-md5":
		return event.IOCJA3, true
	case "x509-fingerprint-sha1":
		return event.IOCCertSHA1, true
	case "x509-fingerprint-sha256":
		return event.IOCCertSHA256, true
	case "user-agent":
		return event.IOCUserAgent, true
	case "email", "email-src", "email-dst":
		return event.IOCEmail, true
	case "filename":
		return event.IOCFilename, true
	}
	return "", false
}

var certainty = regexp.MustCompile(`^osint:certainty="?([0-9]+)"?$`)

// ParseMISPEvent reads one MISP event JSON, wrapped in {"Event": ...} or
// not, as from a feed or the MISP API. Events of a million attributes
// exist: a first pass reads what applies to all attributes (the event's
// uuid, info, tags and galaxies, which MISP may write after them) and
// skips the attributes without copying them; a second decodes the
// attributes one at a time into indicators, which share the event's tags
// until their attribute adds its own.
func ParseMISPEvent(data []byte, source string) (*Result, error) {
	var head struct {
		mispEvent
		Attribute, Object present
		Event             *struct {
			mispEvent
			Attribute, Object present
		}
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a MISP event: %w", jsonErr(data, err))
	}
	ev, found := &head.mispEvent, bool(head.Attribute || head.Object)
	if head.Event != nil {
		ev, found = &head.Event.mispEvent, bool(head.Event.Attribute || head.Event.Object)
	}
	if ev.UUID == "" && !found {
		return nil, fmt.Errorf("not a MISP event: no uuid, attributes or objects")
	}
	r := &Result{Format: "misp-event"}
	r.count("event")
	var tlp string
	var tags, attack []string
	for _, t := range ev.Tag {
		if l, ok := TLPOf(t.Name); ok {
			tlp = stricter(tlp, l)
			continue // kept as the TLP level, not as a tag
		}
		tags = append(tags, t.Name)
		attack = union(attack, AttackIDs(t.Name))
	}
	for _, g := range ev.Galaxy {
		attack = union(attack, galaxyAttack(g))
	}
	base := event.Indicator{Source: source, Group: ev.UUID, Name: ev.Info, TLP: tlp, Tags: tags, Attack: attack, Confidence: -1}
	attrs := streamOf(func(a mispAttribute) {
		r.count("attribute")
		mispAttr(r, base, a, false)
	})
	objs := streamOf(func(o mispObject) {
		r.count("object")
		for _, a := range o.Attribute {
			r.count("attribute")
			mispAttr(r, base, a, bool(o.Deleted))
		}
	})
	var body struct {
		Attribute *stream[mispAttribute]
		Object    *stream[mispObject]
		Event     *struct {
			Attribute *stream[mispAttribute]
			Object    *stream[mispObject]
		}
	}
	body.Attribute, body.Object = attrs, objs
	if head.Event != nil {
		body.Event = &struct {
			Attribute *stream[mispAttribute]
			Object    *stream[mispObject]
		}{attrs, objs}
		body.Attribute, body.Object = nil, nil
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("not a MISP event: %w", jsonErr(data, err))
	}
	return r, nil
}

// present is true when a JSON key is there; its value is neither decoded
// nor copied (encoding/json hands an Unmarshaler a slice of its input).
type present bool

// UnmarshalJSON implements json.Unmarshaler.
func (p *present) UnmarshalJSON([]byte) error { *p = true; return nil }

// stream decodes a JSON array one element at a time, handing each to fn:
// the array is never held decoded.
type stream[T any] struct{ fn func(T) }

func streamOf[T any](fn func(T)) *stream[T] { return &stream[T]{fn: fn} }

// UnmarshalJSON implements json.Unmarshaler.
func (s *stream[T]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	t, err := dec.Token()
	if err != nil || t == nil {
		return err // null: no elements
	}
	if t != json.Delim('[') {
		return fmt.Errorf("want an array, found %v", t)
	}
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		s.fn(v)
	}
	_, err = dec.Token()
	return err
}

func galaxyAttack(g mispGalaxy) []string {
	var out []string
	for _, c := range g.GalaxyCluster {
		for _, id := range c.Meta.ExternalID {
			out = union(out, AttackIDs(id))
		}
		if strings.Contains(g.Type, "attack") {
			out = union(out, AttackIDs(c.Value))
		}
	}
	return out
}

// mispAttr turns one attribute into indicators (two for composite types).
func mispAttr(r *Result, base event.Indicator, a mispAttribute, objectDeleted bool) {
	ind := base // its Tags and Attack are the event's, shared until changed: union copies
	ind.Ref = a.UUID
	if a.Comment != "" {
		ind.Name = a.Comment
	}
	ind.Modified = a.Timestamp.time()
	// MISP's first_seen/last_seen bound when the value was in use: the
	// window the source vouches for.
	ind.ValidFrom, ind.ValidUntil = mispTime(a.FirstSeen), mispTime(a.LastSeen)
	ind.Revoked = bool(a.Deleted) || objectDeleted
	ind.Actionable = bool(a.ToIDs) && !ind.Revoked
	for _, t := range a.Tag {
		// TLP and certainty tags are kept as the level and confidence.
		if l, ok := TLPOf(t.Name); ok {
			ind.TLP = l // the attribute's own marking
			continue
		}
		if m := certainty.FindStringSubmatch(t.Name); m != nil {
			if c, err := strconv.Atoi(m[1]); err == nil && c <= 100 {
				ind.Confidence = c
				continue
			}
		}
		ind.Tags = union(ind.Tags, []string{t.Name})
		ind.Attack = union(ind.Attack, AttackIDs(t.Name))
	}
	for _, g := range a.Galaxy {
		ind.Attack = union(ind.Attack, galaxyAttack(g))
	}
	typ, value := a.Type, a.Value
	add := func(t event.IOCType, v string, port uint16) {
		n, err := Normalize(t, v)
		if t == event.IOCIP && err != nil && strings.Contains(v, "/") {
			t = event.IOCCIDR
			n, err = Normalize(t, v)
		}
		if err != nil {
			r.skip(a.UUID, typ+" "+value, err.Error())
			return
		}
		i := ind
		i.Type, i.Value, i.Port = t, n, port
		r.Indicators = append(r.Indicators, i)
	}
	left, right, composite := strings.Cut(value, "|")
	switch {
	case typ == "ip-src|port" || typ == "ip-dst|port":
		p, err := strconv.ParseUint(right, 10, 16)
		if !composite || err != nil {
			r.skip(a.UUID, typ+" "+value, "want address|port")
			return
		}
		add(event.IOCIP, left, uint16(p))
	case typ == "domain|ip":
		if !composite {
			r.skip(a.UUID, typ+" "+value, "want domain|address")
			return
		}
		add(event.IOCDomain, left, 0)
		add(event.IOCIP, right, 0)
	case strings.HasPrefix(typ, "filename|"):
		t, ok := mispType(strings.TrimPrefix(typ, "filename|"))
		if !ok || !composite {
			r.skip(a.UUID, typ+" "+value, "not an attribute type dwell matches")
			return
		}
		ind.Name = strings.TrimSpace(left + " " + ind.Name)
		add(t, right, 0)
	default:
		t, ok := mispType(typ)
		if !ok {
			r.skip(a.UUID, typ+" "+shorten(value, 60), "not an attribute type dwell matches")
			return
		}
		add(t, value, 0)
	}
}

// ParseMISPManifest reads a feed's manifest.json: the event uuids.
func ParseMISPManifest(data []byte) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a MISP feed manifest: %w", jsonErr(data, err))
	}
	uuids := make([]string, 0, len(m))
	for u := range m {
		if !uuidLike.MatchString(u) {
			return nil, fmt.Errorf("not a MISP feed manifest: key %q is not an event uuid", shorten(u, 40))
		}
		uuids = append(uuids, u)
	}
	sort.Strings(uuids)
	return uuids, nil
}

var uuidLike = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ReadMISPFeed reads a feed through get (manifest.json, each event, and
// hashes.csv when there is one, checked against the events' values).
func ReadMISPFeed(ctx context.Context, get func(ctx context.Context, name string) ([]byte, error), source string) (*Result, error) {
	man, err := get(ctx, "manifest.json")
	if err != nil {
		return nil, err
	}
	uuids, err := ParseMISPManifest(man)
	if err != nil {
		return nil, err
	}
	r := &Result{Format: "misp-feed"}
	var values []string
	for _, u := range uuids {
		data, err := get(ctx, u+".json")
		if err != nil {
			return nil, err
		}
		er, err := ParseMISPEvent(data, source)
		if err != nil {
			return nil, fmt.Errorf("%s.json: %w", u, err)
		}
		r.Merge(er)
		values = append(values, eventValues(data)...)
	}
	if h, err := get(ctx, "hashes.csv"); err == nil {
		r.Notes = append(r.Notes, checkHashes(h, values))
	}
	return r, nil
}

// eventValues returns every attribute value of an event, composite ones
// split, as hashes.csv lists them.
func eventValues(data []byte) []string {
	var w struct {
		Event mispEvent `json:"Event"`
	}
	if json.Unmarshal(data, &w) != nil {
		return nil
	}
	var out []string
	each := func(as []mispAttribute) {
		for _, a := range as {
			out = append(out, strings.Split(a.Value, "|")...)
		}
	}
	each(w.Event.Attribute)
	for _, o := range w.Event.Object {
		each(o.Attribute)
	}
	return out
}

// checkHashes compares hashes.csv (md5 of each value, event uuid) with the
// values of the events read.
func checkHashes(csv []byte, values []string) string {
	want := map[string]bool{}
	for _, v := range values {
		s := md5.Sum([]byte(v)) //nolint:gosec // G401: the format's hash
		want[hex.EncodeToString(s[:])] = true
	}
	lines, unknown := 0, 0
	for l := range bytes.Lines(csv) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		lines++
		h, _, _ := bytes.Cut(l, []byte(","))
		if !want[string(bytes.ToLower(h))] {
			unknown++
		}
	}
	if unknown > 0 {
		return fmt.Sprintf("hashes.csv: %d lines, %d of them match no value of the events", lines, unknown)
	}
	return fmt.Sprintf("hashes.csv: %d lines, all match values of the events", lines)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonErr adds the line and column of a syntax error.
func jsonErr(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
	return fmt.Errorf("line %d (offset %d): %w", line, se.Offset, err)
}
