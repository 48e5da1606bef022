package beacon

import (
	"context"
	"math"
	"net/netip"
	"strings"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// sameChannel merges a server-name series (TLS, HTTP) into the address
// series of the same host when the address was reached by that name at
// the same period: one channel seen twice is one finding, with both the
// address and the name. The better scored of the two stands.
func (d *Detector) sameChannel(ctx context.Context, r store.Reader, w store.Window, fs []detect.Finding) ([]detect.Finding, error) {
	peers, err := detect.PeersOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	type key struct {
		sensor string
		src    netip.Addr
	}
	byAddr := map[key][]int{}
	for i := range fs {
		if fs[i].Dst.IsValid() {
			k := key{fs[i].Sensor, fs[i].Src}
			byAddr[k] = append(byAddr[k], i)
		}
	}
	drop := map[int]bool{}
	for i := range fs {
		named := &fs[i]
		if named.Dst.IsValid() || named.Domain == "" {
			continue
		}
		for _, j := range byAddr[key{named.Sensor, named.Src}] {
			addr := &fs[j]
			if drop[j] || addr.Domain != "" || !reachedBy(peers.Of(addr.Dst), named.Domain) || !samePeriod(addr, named) {
				continue
			}
			if named.Score > addr.Score {
				// The name's series stands, with the address's port.
				named.Dst = addr.Dst
				for _, k := range []string{"main_port", "proto", "answered_share", "main_port_share"} {
					if v, ok := addr.Evidence[k]; ok {
						named.Evidence[k] = v
					}
				}
				named.Evidence["also_seen_as"] = addr.Evidence["kind"]
				drop[j] = true
			} else {
				addr.Domain = named.Domain
				addr.Evidence["also_seen_as"] = named.Evidence["kind"]
				drop[i] = true
			}
			break
		}
	}
	out := fs[:0]
	for i := range fs {
		if !drop[i] {
			out = append(out, fs[i])
		}
	}
	return out, nil
}

// reachedBy reports whether a peer was reached by name.
func reachedBy(p detect.Peer, name string) bool {
	name = strings.ToLower(store.HostOnly(name))
	for _, n := range p.Names {
		if n == name {
			return true
		}
	}
	return false
}

// samePeriod reports whether two findings check in at periods within 15 %.
func samePeriod(a, b *detect.Finding) bool {
	pa, _ := a.Evidence["period_seconds"].(float64)
	pb, _ := b.Evidence["period_seconds"].(float64)
	return pa > 0 && pb > 0 && math.Abs(pa-pb) <= 0.15*math.Max(pa, pb)
}
