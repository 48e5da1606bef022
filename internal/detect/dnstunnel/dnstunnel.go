// Package dnstunnel finds DNS used as a transport: data encoded into the
// names queried under one registered domain (iodine, dnscat2, DNSExfiltrator
// and the like), per registered domain by the public suffix list.
//
// Signals, each 0–1: unique names under the domain (RITA's signal, with
// its threshold of 100), length and entropy of the labels under it, record
// types that carry data (TXT, NULL, CNAME, MX, ANY), NXDOMAIN answers, query
// volume. Domains that many internal hosts resolve (content delivery,
// antivirus reputation lookups) are damped.
package dnstunnel

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct {
	// MinUnique is the fewest distinct names under a domain for it to be
	// scored (20).
	MinUnique int
}

// Detector is the DNS tunnelling detector.
type Detector struct {
	env *detect.Env
	cfg Config
}

var _ detect.SessionsToo = (*Detector)(nil)

// ConnsOnly implements detect.SessionsToo: over flow records, which carry
// no names, a tunnel shows only as DNS sessions that move far more than
// queries and answers do (flowVolume).
func (d *Detector) ConnsOnly() {}

// New returns a DNS tunnelling detector.
func New(env *detect.Env, cfg Config) *Detector {
	if cfg.MinUnique <= 0 {
		cfg.MinUnique = 20
	}
	return &Detector{env: env, cfg: cfg}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return "dnstunnel" }

type domainAgg struct {
	sensor      string
	names       map[string]bool
	queries     int64
	dataTypes   int64
	nx          int64
	labelLen    float64 // sum over distinct names of the subdomain part's length
	entropy     float64 // sum over distinct names of its entropy
	hosts       map[netip.Addr]int64
	servers     map[[2]netip.Addr]int64 // (client, server asked) -> queries
	first, last time.Time
}

// skip reports names that are not tunnels by construction.
func skip(name string) bool {
	return name == "" || strings.HasSuffix(name, ".arpa") || strings.HasSuffix(name, ".local") || !strings.Contains(name, ".")
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	if w.Conns == store.FlowSessions {
		return d.flowVolume(ctx, r, w)
	}
	names, err := detect.NamesOf(ctx, r, w, d.env)
	if err != nil {
		return nil, err
	}
	domains := map[string]*domainAgg{}
	err = r.DNSNames(ctx, w, store.DNSFilter{}, func(q *store.DNSName) error {
		name := strings.TrimSuffix(strings.ToLower(q.Query), ".")
		if skip(name) {
			return nil
		}
		reg := detect.RegisteredDomain(name)
		a := domains[reg]
		if a == nil {
			a = &domainAgg{sensor: q.Sensor, names: map[string]bool{}, hosts: map[netip.Addr]int64{}, servers: map[[2]netip.Addr]int64{},
				first: q.First, last: q.Last}
			domains[reg] = a
		}
		if !a.names[name] {
			a.names[name] = true
			sub := strings.TrimSuffix(strings.TrimSuffix(name, reg), ".")
			sub = strings.ReplaceAll(sub, ".", "")
			a.labelLen += float64(len(sub))
			a.entropy += detect.Entropy(sub)
		}
		a.queries += q.Count
		switch q.QType {
		case "TXT", "NULL", "CNAME", "MX", "ANY", "*", "SRV", "KEY", "PRIVATE":
			a.dataTypes += q.Count
		}
		if q.RCode == "NXDOMAIN" {
			a.nx += q.Count
		}
		a.hosts[q.Src] += q.Count
		if q.Dst.IsValid() {
			a.servers[[2]netip.Addr{q.Src, q.Dst}] += q.Count
		}
		if q.First.Before(a.first) {
			a.first = q.First
		}
		if q.Last.After(a.last) {
			a.last = q.Last
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for reg, a := range domains {
		unique := len(a.names)
		if unique < d.cfg.MinUnique || d.env.Allow.DomainAllowed(reg) {
			continue
		}
		n := float64(unique)
		avgLen, avgEnt := a.labelLen/n, a.entropy/n
		days := max(a.last.Sub(a.first).Hours()/24, 1)
		c := map[string]float64{
			"unique_names": detect.Ramp(logish(n), logish(50), logish(1000)),
			"label_length": detect.Ramp(avgLen, 10, 35),
			"entropy":      detect.Ramp(avgEnt, 2.8, 4.0),
			"record_types": detect.Ramp(float64(a.dataTypes)/float64(a.queries), 0.1, 0.6),
			"nxdomain":     detect.Ramp(float64(a.nx)/float64(a.queries), 0.2, 0.8),
			"volume":       detect.Ramp(logish(float64(a.queries)/days), logish(100), logish(5000)),
		}
		raw := 0.3*c["unique_names"] + 0.2*c["label_length"] + 0.2*c["entropy"] + 0.15*c["record_types"] + 0.05*c["nxdomain"] + 0.1*c["volume"]
		// Data in names needs both: many names and long random labels.
		raw *= 0.4 + 0.6*min(c["label_length"], c["entropy"])
		damp := names.DomainDamp(reg)
		score := raw * damp
		if score < 0.2 {
			continue
		}
		top, topN := netip.Addr{}, int64(0)
		for h, q := range a.hosts {
			if q > topN || (q == topN && h.Less(top)) {
				top, topN = h, q
			}
		}
		// The channel's other end on the network, when the top client
		// asked an outside server itself rather than an internal
		// resolver: the tunnel's own name server, infrastructure to block.
		// (An internal resolver is no party to the tunnel.)
		var server netip.Addr
		serverN := int64(0)
		for k, n := range a.servers {
			if k[0] == top && (n > serverN || (n == serverN && k[1].Less(server))) {
				server, serverN = k[1], n
			}
		}
		for k, v := range c {
			c[k] = detect.Round(v, 3)
		}
		c["prevalence_damping"] = detect.Round(damp, 3)
		f := detect.Finding{
			Detector: d.Name(), Sensor: a.sensor, Src: top, Domain: reg, Score: score, Severity: detect.SeverityOf(score),
			FirstSeen: a.first, LastSeen: a.last, Components: c,
			Attack: []string{"T1071.004", "T1572", "T1048.003"},
			Evidence: map[string]any{"unique_names": unique, "queries": a.queries, "hosts_asking": len(a.hosts),
				"internal_hosts_resolving_domain": names.DomainClients(reg), "mean_subdomain_length": detect.Round(avgLen, 1),
				"mean_subdomain_entropy": detect.Round(avgEnt, 2), "data_record_share": detect.Round(float64(a.dataTypes)/float64(a.queries), 3),
				"nxdomain_share": detect.Round(float64(a.nx)/float64(a.queries), 3), "top_host_queries": topN,
				"examples": examples(a.names, 3)},
		}
		f.Summary = fmt.Sprintf("%d distinct names (mean %.0f characters, entropy %.1f bits) were queried under %s by %d host(s), most by %s: data carried in DNS.",
			unique, avgLen, avgEnt, reg, len(a.hosts), top)
		if server.IsValid() && !d.env.IsLocal(server) {
			f.Dst = server
			f.Summary += fmt.Sprintf(" %s asked %s directly, not an internal resolver.", top, server)
		}
		out = append(out, f)
	}
	return out, nil
}

// logish is log10(1+x), so that zero is zero.
func logish(x float64) float64 {
	if x <= 0 {
		return 0
	}
	return log10(1 + x)
}

// examples returns up to n names, longest first (stable for equal lengths).
func examples(names map[string]bool, n int) []string {
	out := make([]string, 0, n)
	for name := range names {
		out = append(out, name)
	}
	sortByLength(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func log10(x float64) float64 { return math.Log10(x) }

func sortByLength(s []string) {
	sort.Slice(s, func(i, j int) bool {
		if len(s[i]) != len(s[j]) {
			return len(s[i]) > len(s[j])
		}
		return s[i] < s[j]
	})
}

// flowVolume judges DNS in flow sessions by volume: a query and its
// answer are a few hundred bytes, and clients take a new source port for
// each, so a DNS session that moves tens of kilobytes, or a client whose
// DNS moves megabytes a day, carries something else.
func (d *Detector) flowVolume(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	sides, err := detect.SidesOf(ctx, r, w, d.env, store.Inside, store.Anywhere)
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	err = r.Pairs(ctx, w, store.PairFilter{Sides: sides}, func(p *store.PairStat) error {
		if p.DstPort != 53 || (p.Proto != "udp" && p.Proto != "tcp") || p.Conns == 0 {
			return nil
		}
		total := p.SrcBytes + p.DstBytes
		perSession := detect.Ramp(math.Log10(float64(total)/float64(p.Conns)+1), 3.3, 5)
		perDay := detect.Ramp(math.Log10(float64(total)/float64(max(p.Days, 1))+1), 5, 7)
		score := 0.6*max(perSession, perDay) + 0.2*min(perSession, perDay)
		f := detect.Finding{Detector: d.Name(), Sensor: p.Sensor, Src: p.Src, Dst: p.Dst, Score: score, Severity: detect.SeverityOf(score),
			FirstSeen: p.First, LastSeen: p.Last.Add(p.MaxDuration), Attack: []string{"T1071.004", "T1572", "T1048.003"}}
		if score < 0.3 || d.env.Allowed(&f) {
			return nil
		}
		f.Components = map[string]float64{"bytes_per_session": detect.Round(perSession, 3), "bytes_per_day": detect.Round(perDay, 3)}
		f.Evidence = map[string]any{"port": p.DstPort, "proto": p.Proto, "sessions": p.Conns, "bytes_out": p.SrcBytes, "bytes_in": p.DstBytes,
			"days": p.Days}
		f.Summary = fmt.Sprintf("%s moved %s over DNS with %s in %d session(s) (%s a session): far more than queries and answers, data carried in DNS.",
			p.Src, detect.HumanBytes(uint64(max(total, 0))), p.Dst, p.Conns, detect.HumanBytes(uint64(max(total/p.Conns, 0))))
		out = append(out, f)
		return nil
	})
	return out, err
}
