package detect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// A host that keeps channels with many outside peers on ports no
// everyday service uses is one thing: a peer-to-peer botnet, or a client
// of a peer-to-peer service, keeping its peers alive — some answer at a
// rhythm (beacon), some are gone (deadc2), some carry traffic (c2). It is
// one finding, not one per peer and detector, so that what else the host
// does is not buried under hundreds of lines.

// minPeers is the fewest peers that make a peer network.
const minPeers = 8

// peerDetectors are the detectors whose findings about one outside peer
// can be part of a peer network.
var peerDetectors = map[string]bool{"beacon": true, "deadc2": true, "c2": true}

// GroupPeers merges, per source, the channel findings (beacon, deadc2,
// c2) on unusual ports, when they are about at least minPeers distinct
// outside peers, into one finding: the best of them stands for the group,
// named beacon when any peer keeps a rhythm, with the number of peers,
// their ports and the best of them in its evidence. Other findings are
// returned as they are.
func GroupPeers(fs []Finding, env *Env) []Finding {
	type key struct {
		sensor string
		src    netip.Addr
	}
	bySrc := map[key][]int{}
	for i := range fs {
		f := &fs[i]
		if peerDetectors[f.Detector] && Unicast(f.Dst) && f.Evidence["kind"] != "stager" && f.Evidence["kind"] != "peers" &&
			env.IsLocal(f.Src) && !env.IsLocal(f.Dst) {
			k := key{f.Sensor, f.Src}
			bySrc[k] = append(bySrc[k], i)
		}
	}
	drop := map[int]bool{}
	var groups []Finding
	for _, idx := range bySrc {
		peers := map[netip.Addr]bool{}
		var odd []int
		for _, i := range idx {
			if port, proto := evidencePort(&fs[i]); port != 0 && PortOddity(port, proto) == 1 {
				odd = append(odd, i)
				peers[fs[i].Dst] = true
			}
		}
		if len(peers) < minPeers {
			continue
		}
		groups = append(groups, merge(fs, odd, len(peers)))
		for _, i := range odd {
			drop[i] = true
		}
	}
	if len(groups) == 0 {
		return fs
	}
	out := make([]Finding, 0, len(fs)-len(drop)+len(groups))
	for i := range fs {
		if !drop[i] {
			out = append(out, fs[i])
		}
	}
	return append(out, groups...)
}

// merge makes one finding of a peer network.
func merge(fs []Finding, members []int, peers int) Finding {
	slices.SortFunc(members, func(a, b int) int {
		return cmp.Or(cmp.Compare(fs[b].Score, fs[a].Score), fs[a].Dst.Compare(fs[b].Dst), cmp.Compare(fs[a].Detector, fs[b].Detector))
	})
	top := fs[members[0]]
	g := top
	g.Infra = slices.Clone(top.Infra)
	g.Components = map[string]float64{}
	for k, v := range top.Components {
		g.Components[k] = v
	}
	g.Evidence = map[string]any{}
	for k, v := range top.Evidence {
		g.Evidence[k] = v
	}
	ports := map[uint16]bool{}
	byDetector := map[string]int{}
	var shown []string
	seen := map[netip.Addr]bool{}
	attack := map[string]bool{"T1090.003": true}
	for _, i := range members {
		f := &fs[i]
		g.FirstSeen, g.LastSeen = event.Earliest(g.FirstSeen, f.FirstSeen), event.Latest(g.LastSeen, f.LastSeen)
		port, _ := evidencePort(f)
		ports[port] = true
		byDetector[f.Detector]++
		if f.Detector == "beacon" {
			g.Detector = "beacon"
		}
		for _, t := range f.Attack {
			attack[t] = true
		}
		if !seen[f.Dst] && len(shown) < 10 {
			seen[f.Dst] = true
			shown = append(shown, f.Dst.String())
			if f.Dst != g.Dst {
				g.Infra = append(g.Infra, f.Dst)
			}
		}
	}
	g.Attack = g.Attack[:0:0]
	for t := range attack {
		g.Attack = append(g.Attack, t)
	}
	slices.Sort(g.Attack)
	var parts []string
	for _, d := range []string{"beacon", "deadc2", "c2"} {
		if n := byDetector[d]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, map[string]string{"beacon": "at a rhythm", "deadc2": "gone or blocked", "c2": "carrying traffic"}[d]))
		}
	}
	g.Evidence["kind"] = "peers"
	g.Evidence["peers"] = peers
	g.Evidence["peer_ports"] = len(ports)
	g.Evidence["peer_findings"] = byDetector
	g.Evidence["top_peers"] = shown
	g.Summary = fmt.Sprintf("%s keeps channels with %d outside peers on %d unusual ports (%s): a peer-to-peer network kept alive. The strongest: %s",
		g.Src, peers, len(ports), strings.Join(parts, ", "), top.Summary)
	return g
}
