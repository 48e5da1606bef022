package detect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Several detectors often see one command-and-control channel: a rhythm
// (beacon), a long or heavy session (longconn), a channel judged by its
// other end (c2), a bad certificate (tlsanom), odd HTTP (httpanom), or
// nothing answering (deadc2). An analyst reads one channel once: the
// findings about the same two hosts from these detectors become one, the
// best scored standing for the others, which are kept in its evidence
// ("also"). Their agreement raises the score a little when the channel
// is supported (Corroborate); unsupported findings stay where the cap
// left them.

// channelDetectors are the detectors whose findings describe a channel.
var channelDetectors = map[string]bool{"beacon": true, "deadc2": true, "c2": true, "longconn": true, "tlsanom": true, "httpanom": true}

// Also is a finding merged into another one about the same channel.
type Also struct {
	Detector string   `json:"detector"`
	Score    float64  `json:"score"`
	Summary  string   `json:"summary"`
	Attack   []string `json:"attack"`
}

// MergeChannels merges the channel findings about the same two hosts (in
// either direction), sensor and port into the best of them (byPort).
// Findings of other detectors, and those without two ends or part of a
// peer network, are returned as they are.
func MergeChannels(fs []Finding) []Finding {
	type key struct {
		sensor string
		a, b   netip.Addr
	}
	groups := map[key][]int{}
	var order []key
	var out []Finding
	for i := range fs {
		f := &fs[i]
		kind, _ := f.Evidence["kind"].(string)
		if !channelDetectors[f.Detector] || !f.Src.IsValid() || !f.Dst.IsValid() || kind == "peers" || kind == "stager" {
			out = append(out, *f)
			continue
		}
		a, b := f.Src, f.Dst
		if b.Less(a) {
			a, b = b, a
		}
		k := key{f.Sensor, a, b}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	for _, k := range order {
		for _, cluster := range byPort(fs, groups[k]) {
			out = append(out, mergeCluster(fs, cluster))
		}
	}
	return out
}

// byPort splits the findings about one pair by the port their evidence
// names: two services between the same hosts (a beacon over HTTP, a long
// SSH session) stay two findings. Findings that name no port (a
// certificate, HTTP requests) join the best scored cluster.
func byPort(fs []Finding, idx []int) [][]int {
	slices.SortFunc(idx, func(x, y int) int {
		return cmp.Or(cmp.Compare(fs[y].Score, fs[x].Score), cmp.Compare(fs[x].Detector, fs[y].Detector))
	})
	var clusters [][]int
	at := map[uint16]int{}
	var portless []int
	for _, i := range idx {
		port, _ := evidencePort(&fs[i])
		if port == 0 {
			portless = append(portless, i)
			continue
		}
		c, ok := at[port]
		if !ok {
			c = len(clusters)
			at[port] = c
			clusters = append(clusters, nil)
		}
		clusters[c] = append(clusters[c], i)
	}
	if len(clusters) == 0 {
		return [][]int{portless}
	}
	best := 0
	for c := range clusters {
		if fs[clusters[c][0]].Score > fs[clusters[best][0]].Score {
			best = c
		}
	}
	clusters[best] = append(clusters[best], portless...)
	slices.SortFunc(clusters[best], func(x, y int) int {
		return cmp.Or(cmp.Compare(fs[y].Score, fs[x].Score), cmp.Compare(fs[x].Detector, fs[y].Detector))
	})
	return clusters
}

// mergeCluster makes one finding of findings about one channel, the best
// first.
func mergeCluster(fs []Finding, idx []int) Finding {
	top := fs[idx[0]]
	if len(idx) == 1 {
		return top
	}
	top.Evidence = cloneMap(top.Evidence)
	top.Components = cloneFloats(top.Components)
	attack := map[string]bool{}
	for _, t := range top.Attack {
		attack[t] = true
	}
	var also []Also
	others := map[string]bool{}
	var names []string
	for _, i := range idx[1:] {
		f := &fs[i]
		also = append(also, Also{Detector: f.Detector, Score: Round(f.Score, 3), Summary: f.Summary, Attack: f.Attack})
		for _, t := range f.Attack {
			attack[t] = true
		}
		top.FirstSeen = event.Earliest(top.FirstSeen, f.FirstSeen)
		if f.LastSeen.After(top.LastSeen) {
			top.LastSeen = f.LastSeen
		}
		if f.Detector != top.Detector && !others[f.Detector] {
			others[f.Detector] = true
			names = append(names, f.Detector)
		}
	}
	top.Attack = top.Attack[:0:0]
	for t := range attack {
		top.Attack = append(top.Attack, t)
	}
	slices.Sort(top.Attack)
	top.Evidence["also"] = also
	if support, ok := top.Components["support"]; ok && support >= supportFloor && len(others) > 0 {
		boost := 0.1 * float64(min(len(others), 2)) * (1 - top.Score)
		top.Score += boost
		top.Severity = SeverityOf(top.Score)
		top.Components["agreement"] = Round(boost, 3)
	}
	if len(names) > 0 {
		top.Summary = strings.TrimSuffix(top.Summary, ".") + fmt.Sprintf(". Also seen by %s.", strings.Join(names, ", "))
	}
	return top
}

// Detectors returns the detector of a finding and those merged into it.
func (f *Finding) Detectors() []string {
	out := []string{f.Detector}
	switch also := f.Evidence["also"].(type) {
	case []Also:
		for _, a := range also {
			out = append(out, a.Detector)
		}
	case []any: // read back from JSON
		for _, a := range also {
			if m, ok := a.(map[string]any); ok {
				if d, ok := m["detector"].(string); ok {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneFloats(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
