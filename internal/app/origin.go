package app

import (
	"fmt"
	"net/netip"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/geo"
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
