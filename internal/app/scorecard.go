package app

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// The demo's scorecard: the hunt's actual findings set against the
// scenario's ground truth. Nothing here knows what the detectors should
// say; it only matches entities and times.

// Finding classes on the scorecard.
const (
	classCampaign  = "campaign"  // about the planted intrusion
	classCommodity = "commodity" // about the commodity malware (a true, lesser lead)
	classDDoS      = "ddos"      // about the planted DDoS (true, another incident)
	classBenign    = "benign"    // about nothing planted: a false positive
)

// Technique results.
const (
	resultFound  = "found"  // by the expected detector or one citing the technique
	resultOther  = "found*" // its entity flagged, by another detector
	resultMissed = "MISSED" // nothing points at it
)

// techniqueScore is one planted technique's line.
type techniqueScore struct {
	Technique scenario.Technique
	Result    string
	Rank      int // 1-based rank of the finding that found it; 0 if none
	Finding   *detect.Finding
}

// scorecard is the whole comparison.
type scorecard struct {
	Techniques []techniqueScore
	Classes    []string // class of each finding, in rank order
	// LowestFound is the rank of the lowest-ranked finding credited with a
	// technique: how far down an analyst reads to see the whole intrusion.
	LowestFound int
	// FalsePositives are the ranks of benign findings above LowestFound.
	FalsePositives []int
	Top            int // how many top findings TopBenign looks at
	TopBenign      int // benign findings among them
	// DDoSRank is the rank of the best finding about the planted DDoS
	// (its target, during it), 0 when none.
	DDoSRank int
}

// networkTechniques counts the techniques that show on the network (those
// with an expected detector), and how many of them were found.
func (s *scorecard) networkTechniques() (found, total int) { return s.techniques(false) }

// hostTechniques counts the techniques that show only in host events, and
// how many of them were found.
func (s *scorecard) hostTechniques() (found, total int) { return s.techniques(true) }

func (s *scorecard) techniques(host bool) (found, total int) {
	for _, t := range s.Techniques {
		if (t.Technique.Detector == "") != host {
			continue
		}
		total++
		if t.Result != resultMissed {
			found++
		}
	}
	return found, total
}

// score compares findings (ranked, best first) with the truth.
func score(truth *scenario.Truth, findings []detect.Finding, top int) *scorecard {
	c := truth.Campaign
	sc := &scorecard{Top: min(top, len(findings))}
	hosts := addrSet(c.Hosts)
	external := addrSet(c.ExternalIPs)
	var comPeers []string
	var comDomains []string
	for _, inf := range truth.Commodity {
		comPeers = append(comPeers, inf.Peers...)
		comDomains = append(comDomains, inf.Domain)
	}
	commodity := addrSet(comPeers)
	target, _ := netip.ParseAddr(truth.DDoS.Target)
	for i := range findings {
		f := &findings[i]
		class := classBenign
		switch {
		case f.Dst == target && target.IsValid() && f.Detector == "ddos" && f.FirstSeen.Before(truth.DDoS.To) && f.LastSeen.After(truth.DDoS.From):
			class = classDDoS
			if sc.DDoSRank == 0 {
				sc.DDoSRank = i + 1
			}
		case external[f.Src] || external[f.Dst] || inDomains(f.Domain, c.Domains) || (hosts[f.Src] && hosts[f.Dst]):
			class = classCampaign
		case f.Detector == "iocmatch" && (hosts[f.Src] || hosts[f.Dst]):
			// The scenario's only intel is its CERT's event about the
			// campaign: a match on a campaign host (its implant's JA3) is
			// the campaign.
			class = classCampaign
		case commodity[f.Src] || commodity[f.Dst] || inDomains(f.Domain, comDomains):
			class = classCommodity
		}
		for _, t := range c.Techniques {
			if (t.Detector != "" && matches(f, t)) || hostMatches(f, t) {
				class = classCampaign
			}
		}
		sc.Classes = append(sc.Classes, class)
	}
	for _, t := range c.Techniques {
		ts := techniqueScore{Technique: t, Result: resultMissed}
		for i := range findings {
			f := &findings[i]
			if hostMatches(f, t) {
				ts.Result, ts.Rank, ts.Finding = resultFound, i+1, f
				break
			}
			if t.Detector == "" || !matches(f, t) {
				continue
			}
			if f.Detector == t.Detector || slices.Contains(f.Attack, t.ID) {
				ts.Result, ts.Rank, ts.Finding = resultFound, i+1, f
				break
			}
			if ts.Finding == nil {
				ts.Result, ts.Rank, ts.Finding = resultOther, i+1, f
			}
		}
		if ts.Rank > sc.LowestFound {
			sc.LowestFound = ts.Rank
		}
		sc.Techniques = append(sc.Techniques, ts)
	}
	for i, class := range sc.Classes {
		if class == classBenign && i+1 < sc.LowestFound {
			sc.FalsePositives = append(sc.FalsePositives, i+1)
		}
		if class == classBenign && i < sc.Top {
			sc.TopBenign++
		}
	}
	return sc
}

// matches reports whether f is about t: the same entities, at an
// overlapping time (a day of slack either side).
func matches(f *detect.Finding, t scenario.Technique) bool {
	const slack = 24 * time.Hour
	if !f.LastSeen.IsZero() && (f.LastSeen.Before(t.From.Add(-slack)) || f.FirstSeen.After(t.To.Add(slack))) {
		return false
	}
	hosts, peers := addrSet(t.Hosts), addrSet(t.Peers)
	switch {
	case len(t.Peers) > 0:
		return (hosts[f.Src] && peers[f.Dst]) || (peers[f.Src] && hosts[f.Dst]) ||
			((hosts[f.Src] || !f.Src.IsValid()) && t.Domain != "" && inDomains(f.Domain, []string{registered(t.Domain)}))
	case t.Domain != "":
		return (hosts[f.Src] || !f.Src.IsValid()) && inDomains(f.Domain, []string{registered(t.Domain)})
	default:
		return hosts[f.Src] && hosts[f.Dst]
	}
}

// hostMatches reports whether host finding f is about t: on one of its
// hosts, at an overlapping time, citing its technique (or its parent or a
// sub-technique).
func hostMatches(f *detect.Finding, t scenario.Technique) bool {
	const slack = 24 * time.Hour
	if f.Detector != "host" || f.LastSeen.Before(t.From.Add(-slack)) || f.FirstSeen.After(t.To.Add(slack)) {
		return false
	}
	hosts := addrSet(t.Hosts)
	if !hosts[f.Src] && !hosts[f.Dst] {
		return false
	}
	return slices.ContainsFunc(f.Attack, func(a string) bool {
		return a == t.ID || strings.HasPrefix(a, t.ID+".") || strings.HasPrefix(t.ID, a+".")
	})
}

// registered returns the last two labels of a .example name: the zone an
// attacker registers.
func registered(d string) string {
	labels := strings.Split(d, ".")
	if len(labels) <= 2 {
		return d
	}
	return strings.Join(labels[len(labels)-2:], ".")
}

// inDomains reports whether d is one of domains or under one of them.
func inDomains(d string, domains []string) bool {
	if d == "" {
		return false
	}
	d = strings.TrimSuffix(strings.ToLower(d), ".")
	for _, z := range domains {
		if d == z || strings.HasSuffix(d, "."+z) {
			return true
		}
	}
	return false
}

func addrSet(ss []string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			m[a] = true
		}
	}
	return m
}

// print writes the scorecard.
func (s *scorecard) print(w io.Writer, findings []detect.Finding) {
	fmt.Fprintf(w, "\n%-10s %-52s %-10s %-9s %5s %5s  %s\n", "technique", "planted", "expected", "result", "rank", "score", "finding")
	for _, t := range s.Techniques {
		name := t.Technique.Name
		if len(name) > 52 {
			name = name[:51] + "…"
		}
		expected := t.Technique.Detector
		if expected == "" {
			expected = "-"
		}
		line := fmt.Sprintf("%-10s %-52s %-10s %-9s", t.Technique.ID, name, expected, t.Result)
		switch {
		case t.Finding != nil:
			f := t.Finding
			peer := addr(f.Dst)
			if f.Domain != "" {
				peer = f.Domain
			}
			line += fmt.Sprintf(" %5d %5.2f  %s %s -> %s", t.Rank, f.Score, f.Detector, sanitize(addr(f.Src), 40), sanitize(peer, 50))
		default:
			line += "     -     -  no finding about " + strings.Join(t.Technique.Hosts, ", ")
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	found, total := s.networkTechniques()
	fmt.Fprintf(w, "\nnetwork techniques found: %d of %d", found, total)
	if found < total {
		fmt.Fprint(w, " (MISSED ones are listed above)")
	}
	fmt.Fprintln(w)
	if found, total := s.hostTechniques(); total > 0 {
		fmt.Fprintf(w, "host techniques found (Windows events): %d of %d\n", found, total)
	}
	if s.DDoSRank > 0 {
		f := findings[s.DDoSRank-1]
		fmt.Fprintf(w, "planted DDoS: found, rank %d, %s %.2f: %s\n", s.DDoSRank, f.Detector, f.Score, sanitize(f.Summary, 120))
	} else {
		fmt.Fprintln(w, "planted DDoS: MISSED (no ddos finding about its target during it)")
	}
	counts := map[string]int{}
	for _, c := range s.Classes[:s.Top] {
		counts[c]++
	}
	fmt.Fprintf(w, "top %d findings: %d campaign, %d DDoS, %d commodity malware, %d benign\n", s.Top, counts[classCampaign], counts[classDDoS],
		counts[classCommodity], counts[classBenign])
	if s.LowestFound > 0 {
		fmt.Fprintf(w, "false positives ranked above the lowest technique found (rank %d): %d\n", s.LowestFound, len(s.FalsePositives))
		for i, r := range s.FalsePositives {
			if i == 10 {
				fmt.Fprintf(w, "  ... and %d more\n", len(s.FalsePositives)-i)
				break
			}
			f := findings[r-1]
			fmt.Fprintf(w, "  %4d. %.2f %-9s %s -> %s  %s\n", r, f.Score, f.Detector, sanitize(addr(f.Src), 40), sanitize(peerOf(f), 50), sanitize(f.Summary, 120))
		}
	}
}

func peerOf(f detect.Finding) string {
	if f.Domain != "" {
		return f.Domain
	}
	return addr(f.Dst)
}
