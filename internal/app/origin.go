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

// enrich answers the prosecutors' three questions for an incident about
// to be shown: the registration of its infrastructure, the first contact
// with it, what was taken and who may be behind it.
func enrich(ctx context.Context, cfg *config.Config, r store.Reader, inc *correlate.Incident) error {
	var ans *correlate.Answers
	switch inc.Class {
	case correlate.ClassDDoS, correlate.ClassScanning, correlate.ClassBenign:
		// Nothing is taken by a flood, a sweep or a timer, and their
		// sources are spoofed, hired or benign: no pivots either.
	default:
		env, err := environment(cfg)
		if err != nil {
			return err
		}
		ans = &correlate.Answers{Taken: []correlate.Taken{}, Hypotheses: []correlate.Hypothesis{}, Caveat: attribution.Caveat}
		if ans.PassiveDNS, ans.Notes, err = attribution.Pivot(ctx, r, inc, env.IsLocal, attribution.Limits{}); err != nil {
			return err
		}
	}
	if err := enrichOrigin(cfg, inc); err != nil {
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
	return answer(ctx, cfg, r, inc, ans)
}

// enrichOrigin adds what the configured geo databases (origin.mmdb) say
// of the incident's external addresses; none configured: nothing. A
// database that cannot be read is an error naming it.
func enrichOrigin(cfg *config.Config, inc *correlate.Incident) error {
	if len(cfg.Origin.MMDB) == 0 {
		return nil
	}
	db, err := geo.Open(cfg.Origin.MMDB)
	if err != nil {
		return fmt.Errorf("origin.mmdb: %w", err)
	}
	defer func() { _ = db.Close() }()
	for i := range inc.Infrastructure {
		x := &inc.Infrastructure[i]
		a, err := netip.ParseAddr(x.Value)
		if x.Kind != "ip" || err != nil {
			continue
		}
		info, ok, err := db.Lookup(a)
		if err != nil {
			return err
		}
		if ok {
			x.Origin = &info
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
	dsts := infraAddrs(inc)
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
func answer(ctx context.Context, cfg *config.Config, r store.Reader, inc *correlate.Incident, ans *correlate.Answers) error {
	infra := infraAddrs(inc)
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
	var cat *attribution.Catalogue
	if len(cfg.Attribution.Groups) > 0 {
		var err error
		if cat, err = attribution.LoadCatalogue(cfg.Attribution.Groups); err != nil {
			return err
		}
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

// infraAddrs returns an incident's outside addresses.
func infraAddrs(inc *correlate.Incident) []netip.Addr {
	var out []netip.Addr
	for _, x := range inc.Infrastructure {
		if a, err := netip.ParseAddr(x.Value); x.Kind == "ip" && err == nil {
			out = append(out, a)
		}
	}
	return out
}
