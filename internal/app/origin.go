package app

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/attribution"
	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/geo"
	"github.com/dwell-nsm/dwell/internal/store"
)

// answerer answers the prosecutors' three questions for the incidents one
// command shows. The configuration's networks, its .mmdb files and its
// group catalogue are read once per command, not once per incident (a
// report shows them all; an ATT&CK catalogue is megabytes of JSON).
type answerer struct {
	cfg     *config.Config
	isLocal func(netip.Addr) bool
	geo     *geo.DB                // nil: no origin.mmdb
	cat     *attribution.Catalogue // read at first use
}

// newAnswerer opens what cfg names for the answers; a database that
// cannot be read is an error naming it.
func newAnswerer(cfg *config.Config) (*answerer, error) {
	env, err := environment(cfg)
	if err != nil {
		return nil, err
	}
	x := &answerer{cfg: cfg, isLocal: env.IsLocal}
	if len(cfg.Origin.MMDB) > 0 {
		if x.geo, err = geo.Open(cfg.Origin.MMDB); err != nil {
			return nil, fmt.Errorf("origin.mmdb: %w", err)
		}
	}
	return x, nil
}

// Close releases the .mmdb files.
func (x *answerer) Close() error {
	if x.geo == nil {
		return nil
	}
	return x.geo.Close()
}

// catalogue returns the configured group catalogue, read at first use;
// nil when none is configured.
func (x *answerer) catalogue() (*attribution.Catalogue, error) {
	if x.cat == nil && len(x.cfg.Attribution.Groups) > 0 {
		cat, err := attribution.LoadCatalogue(x.cfg.Attribution.Groups)
		if err != nil {
			return nil, err
		}
		x.cat = cat
	}
	return x.cat, nil
}

// enrich answers the questions for the incidents about to be shown, with
// one answerer for them all.
func enrich(ctx context.Context, cfg *config.Config, r store.Reader, incs ...*correlate.Incident) error {
	x, err := newAnswerer(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = x.Close() }()
	for _, inc := range incs {
		if err := x.enrich(ctx, r, inc); err != nil {
			return err
		}
	}
	return nil
}

// enrich answers the questions for an incident about to be shown: the
// registration of its infrastructure, the pivots from it, the first
// contact with it, what was taken and who may be behind it.
func (x *answerer) enrich(ctx context.Context, r store.Reader, inc *correlate.Incident) error {
	var ans *correlate.Answers
	switch inc.Class {
	case correlate.ClassDDoS, correlate.ClassScanning, correlate.ClassBenign:
		// Nothing is taken by a flood, a sweep or a timer, and their
		// sources are spoofed, hired or benign: no pivots either.
	default:
		ans = &correlate.Answers{Taken: []correlate.Taken{}, Hypotheses: []correlate.Hypothesis{}, Caveat: attribution.Caveat}
		var err error
		if ans.PassiveDNS, ans.Notes, err = attribution.Pivot(ctx, r, inc, x.isLocal, attribution.Limits{}); err != nil {
			return err
		}
	}
	if err := x.origin(inc); err != nil {
		return err
	}
	var names []correlate.NameSeen
	if ans != nil {
		names = ans.PassiveDNS
	}
	if err := firstContact(ctx, r, inc, names); err != nil {
		return err
	}
	if ans == nil {
		return nil
	}
	return x.answer(ctx, r, inc, ans)
}

// origin adds what the configured geo databases (origin.mmdb) say of the
// incident's external addresses; none configured: nothing.
func (x *answerer) origin(inc *correlate.Incident) error {
	if x.geo == nil {
		return nil
	}
	for i := range inc.Infrastructure {
		in := &inc.Infrastructure[i]
		a, err := netip.ParseAddr(in.Value)
		if in.Kind != "ip" || err != nil {
			continue
		}
		info, ok, err := x.geo.Lookup(a)
		if err != nil {
			return err
		}
		if ok {
			in.Origin = &info
		}
	}
	return nil
}

// firstContact finds the first trace in all history of the incident's
// infrastructure addresses, which may precede the first finding by
// months: the earliest connection to or from one of them in the conn log
// or the flow records, or the earliest DNS answer naming one (names, the
// passive DNS of the infrastructure, when pivots gave it).
func firstContact(ctx context.Context, r store.Reader, inc *correlate.Incident, names []correlate.NameSeen) error {
	dsts := inc.Addrs()
	if len(dsts) == 0 {
		return nil
	}
	var first *correlate.Contact
	earlier := func(at time.Time, src netip.Addr) bool {
		return first == nil || at.Before(first.At) || (at.Equal(first.At) && src.Less(first.Src))
	}
	for _, conns := range []store.ConnSource{store.ConnLog, store.FlowSessions} {
		keep := func(p *store.PairStat) error {
			if earlier(p.First, p.Src) {
				first = &correlate.Contact{At: p.First, Log: conns.String(), Sensor: p.Sensor, Src: p.Src, Dst: p.Dst, Port: p.DstPort,
					Proto: p.Proto, Conns: p.Conns, Days: p.Days}
			}
			return nil
		}
		// To the infrastructure (beacons, downloads, exfiltration), and
		// from it (an exploit, a login, a scan before the intrusion).
		for _, f := range []store.PairFilter{{Dsts: dsts}, {Srcs: dsts}} {
			if err := r.Pairs(ctx, store.Window{Conns: conns}, f, keep); err != nil {
				return fmt.Errorf("first contact with the infrastructure (%s): %w", conns, err)
			}
		}
	}
	in := map[netip.Addr]bool{}
	for _, a := range dsts {
		in[a] = true
	}
	for _, n := range names {
		if n.Log == "dns" && in[n.Addr] && (first == nil || n.First.Before(first.At)) {
			first = &correlate.Contact{At: n.First, Log: "dns", Name: n.Name, Dst: n.Addr, Conns: n.Count}
		}
	}
	inc.FirstContact = first
	return nil
}

// answer fills the incident's answers to what was taken and who may be
// behind it (docs/attribution.md): the conn, http and files records
// between its hosts and its infrastructure over all history, what its
// computers' events show of collection, and the hypotheses from intel
// matches and the group catalogue (attribution.groups).
func (x *answerer) answer(ctx context.Context, r store.Reader, inc *correlate.Incident, ans *correlate.Answers) error {
	infra := inc.Addrs()
	names := map[netip.Addr][]string{}
	for _, t := range inc.BytesOut {
		if t.Domain != "" {
			names[t.Dst] = append(names[t.Dst], t.Domain)
		}
	}
	if len(infra) > 0 && len(inc.Hosts) > 0 {
		hosts := map[netip.Addr]bool{}
		for _, h := range inc.Hosts {
			hosts[h] = true
		}
		var ups []store.Upload
		keep := func(u *store.Upload) error {
			if hosts[u.Src] || hosts[u.Dst] {
				ups = append(ups, *u)
			}
			return nil
		}
		// To the infrastructure, and from it (its operator fetching).
		for _, sides := range []store.Sides{{Inside: infra, Src: store.Anywhere, Dst: store.Inside}, {Inside: infra, Src: store.Inside, Dst: store.Anywhere}} {
			if err := r.Uploads(ctx, store.Window{}, store.UploadFilter{Sides: sides}, keep); err != nil {
				return fmt.Errorf("what was taken: %w", err)
			}
		}
		ans.Taken, ans.TakenBytes = attribution.Taken(inc.Hosts, infra, names, ups)
	}
	if len(inc.HostNames) > 0 {
		scope := attribution.Scope{Computers: inc.HostNames, Accounts: inc.Accounts, Addrs: inc.Hosts}
		// From a day before the intrusion's first sign: what the
		// computers did before is their usual work.
		since := inc.DwellStart
		if c := inc.FirstContact; c != nil && c.At.Before(since) {
			since = c.At
		}
		var events []event.HostEvent
		w := store.Window{Since: since.Add(-24 * time.Hour)}
		err := r.HostEvents(ctx, w, store.HostFilter{EventIDs: attribution.CollectionEvents()}, func(e *event.HostEvent) error {
			if attribution.SameComputer(e.Computer, scope.Computers) {
				events = append(events, *e)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("collection on the incident's computers: %w", err)
		}
		ans.HostActions = attribution.Collection(events, scope)
	}
	cat, err := x.catalogue()
	if err != nil {
		return err
	}
	if cat != nil {
		with := 0
		for _, g := range cat.Groups {
			if len(g.Techniques) > 0 {
				with++
			}
		}
		ans.Catalogue = fmt.Sprintf("%d groups (%d with ATT&CK techniques) from %s", len(cat.Groups), with, strings.Join(cat.Files, ", "))
	} else {
		ans.Notes = append(ans.Notes, "no group catalogue is configured (attribution.groups): behaviour was compared with no known group")
	}
	sightings := attribution.Sightings(inc.Findings)
	ans.Hypotheses = attribution.Who(inc.Attack, sightings, cat, attribution.Options{})
	if len(sightings) == 0 {
		ans.Notes = append(ans.Notes, "no intel indicator was matched in the incident")
	} else if !slices.ContainsFunc(sightings, func(s attribution.Sighting) bool { return len(s.Actors) > 0 }) {
		ans.Notes = append(ans.Notes, fmt.Sprintf("%d intel indicator(s) matched, none attributed to an actor by its source", len(sightings)))
	}
	inc.Answers = ans
	return nil
}
