package app

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/geo"
	"github.com/dwell-nsm/dwell/internal/store"
)

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

// firstContact finds the earliest connection in all history to or from
// any of the incident's infrastructure addresses (the conn log), which
// may precede the first finding by months.
func firstContact(ctx context.Context, r store.Reader, inc *correlate.Incident) error {
	var dsts []netip.Addr
	for _, x := range inc.Infrastructure {
		if a, err := netip.ParseAddr(x.Value); x.Kind == "ip" && err == nil {
			dsts = append(dsts, a)
		}
	}
	if len(dsts) == 0 {
		return nil
	}
	var first *correlate.Contact
	keep := func(p *store.PairStat) error {
		if first == nil || p.First.Before(first.At) || (p.First.Equal(first.At) && p.Src.Less(first.Src)) {
			first = &correlate.Contact{At: p.First, Sensor: p.Sensor, Src: p.Src, Dst: p.Dst, Port: p.DstPort, Proto: p.Proto,
				Conns: p.Conns, Days: p.Days}
		}
		return nil
	}
	// To the infrastructure (beacons, downloads, exfiltration), and from
	// it (an exploit, a login, a scan before the intrusion).
	for _, f := range []store.PairFilter{{Dsts: dsts}, {Srcs: dsts}} {
		if err := r.Pairs(ctx, store.Window{}, f, keep); err != nil {
			return fmt.Errorf("first contact with the infrastructure: %w", err)
		}
	}
	inc.FirstContact = first
	return nil
}
