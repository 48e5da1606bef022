package attribution

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Looker is what pivoting reads from the store.
type Looker interface {
	PassiveDNS(ctx context.Context, w store.Window, f store.NameFilter, fn func(*store.NameAddr) error) error
	ServerPrints(ctx context.Context, w store.Window, f store.PrintFilter, fn func(*store.ServerPrint) error) error
}

// Limits bound how far pivots reach: past them a name, an address or a
// fingerprint is shared (a hosting provider's address, a CDN's name, a
// stock TLS stack) and leads to other people's servers, not the
// attacker's.
type Limits struct {
	// NamesPerAddr: an address that had more names than this is shared
	// hosting; its names are not followed (default 20).
	NamesPerAddr int
	// AddrsPerName: a name that had more addresses than this is a CDN or
	// fast flux; its addresses are not followed (default 20).
	AddrsPerName int
	// CertServers: a certificate on more server addresses than this is a
	// shared one (default 10).
	CertServers int
	// PrintServers: a JA3S or JA4S on more server addresses than this is a
	// stock TLS stack (default 3: the server's answer depends on the
	// client's hello, so only a rare one points at one operator).
	PrintServers int
	// BannerServers: an HTTP Server header on more server addresses than
	// this is a stock one (default 3). A bare product name without a
	// version ("nginx", "Microsoft-IIS": what servers configured to hide
	// their version send) is never followed.
	BannerServers int
	// MinLabel: a domain's registrable name shorter than this ("mail",
	// "cdn") is too ordinary for its namesakes under other suffixes to be
	// followed (default 6).
	MinLabel int
	// LookAlikes: a name registered under more suffixes than this is a
	// common word (default 5).
	LookAlikes int
}

func (l Limits) withDefaults() Limits {
	l.NamesPerAddr = cmp.Or(l.NamesPerAddr, 20)
	l.AddrsPerName = cmp.Or(l.AddrsPerName, 20)
	l.CertServers = cmp.Or(l.CertServers, 10)
	l.PrintServers = cmp.Or(l.PrintServers, 3)
	l.BannerServers = cmp.Or(l.BannerServers, 3)
	l.MinLabel = cmp.Or(l.MinLabel, 6)
	l.LookAlikes = cmp.Or(l.LookAlikes, 5)
	return l
}

// Pivot expands an incident's infrastructure over all stored history and
// appends what it finds to inc.Infrastructure, each with the pivot that
// brought it:
//
//   - passive DNS: the names its addresses had, and the other addresses
//     those names and its domains had (DNS answers, TLS server names, HTTP
//     hosts);
//   - a name pattern: the registrable name of one of its domains under
//     another suffix (cdn-update.example, cdn-update.test), and where those
//     names pointed;
//   - the same TLS certificate, JA3S or JA4S, or the same HTTP Server
//     header, on another server.
//
// Internal addresses are never added. It returns the name-address pairs
// behind the infrastructure (passive DNS) and notes on what was not
// followed.
func Pivot(ctx context.Context, r Looker, inc *correlate.Incident, isLocal func(netip.Addr) bool, lim Limits) ([]correlate.NameSeen, []string, error) {
	lim = lim.withDefaults()
	addrs := inc.Addrs()
	var domains []string
	have := map[string]bool{}
	for _, x := range inc.Infrastructure {
		have[x.Kind+":"+x.Value] = true
		if x.Kind == "domain" {
			domains = append(domains, strings.ToLower(x.Value))
		}
	}
	if len(addrs) == 0 && len(domains) == 0 {
		return nil, nil, nil
	}
	var notes []string
	rows := map[string]correlate.NameSeen{}
	keep := func(x *store.NameAddr) error {
		k := x.Log + "\x00" + x.Name + "\x00" + x.Addr.String()
		rows[k] = correlate.NameSeen{Log: x.Log, Name: x.Name, Addr: x.Addr, Count: x.Count, First: x.First, Last: x.Last}
		return nil
	}
	// Round one: the names of the addresses, the addresses of the domains.
	if err := r.PassiveDNS(ctx, store.Window{}, store.NameFilter{Addrs: addrs, Names: domains}, keep); err != nil {
		return nil, nil, fmt.Errorf("passive DNS: %w", err)
	}
	namesOf := map[netip.Addr]map[string]bool{}
	for _, x := range rows {
		if namesOf[x.Addr] == nil {
			namesOf[x.Addr] = map[string]bool{}
		}
		namesOf[x.Addr][x.Name] = true
	}
	var follow []string
	for _, a := range addrs {
		ns := namesOf[a]
		if len(ns) > lim.NamesPerAddr {
			notes = append(notes, fmt.Sprintf("%s had %d names: shared hosting, its names were not followed", a, len(ns)))
			// Nor listed: they are other people's.
			maps.DeleteFunc(rows, func(_ string, x correlate.NameSeen) bool { return x.Addr == a && !under(x.Name, domains) })
			continue
		}
		for n := range ns {
			if !under(n, domains) {
				follow = append(follow, n)
			}
		}
	}
	// Round two: the other addresses of those names.
	if len(follow) > 0 {
		slices.Sort(follow)
		follow = slices.Compact(follow)
		if err := r.PassiveDNS(ctx, store.Window{}, store.NameFilter{Names: follow}, keep); err != nil {
			return nil, nil, fmt.Errorf("passive DNS: %w", err)
		}
	}
	addrsOf := map[string]map[netip.Addr]bool{}
	for _, x := range rows {
		if addrsOf[x.Name] == nil {
			addrsOf[x.Name] = map[netip.Addr]bool{}
		}
		addrsOf[x.Name][x.Addr] = true
	}
	known := map[netip.Addr]bool{}
	for _, a := range addrs {
		known[a] = true
	}
	var added []correlate.Infra
	addIP := func(a netip.Addr, why string) {
		if known[a] || (isLocal != nil && isLocal(a)) || !a.IsGlobalUnicast() {
			return
		}
		known[a] = true
		added = append(added, correlate.Infra{Kind: "ip", Value: a.String(), Detectors: []string{}, Pivot: why})
	}
	for _, name := range slices.Sorted(maps.Keys(addrsOf)) {
		as := addrsOf[name]
		if !under(name, domains) && !slices.Contains(follow, name) {
			continue
		}
		if len(as) > lim.AddrsPerName {
			notes = append(notes, fmt.Sprintf("%s had %d addresses: a CDN or fast flux, its addresses were not followed", name, len(as)))
			continue
		}
		for _, a := range slices.SortedFunc(maps.Keys(as), netip.Addr.Compare) {
			addIP(a, fmt.Sprintf("passive DNS: %s pointed at it", name))
		}
		if d := detect.RegisteredDomain(name); d != "" && !have["domain:"+d] {
			have["domain:"+d] = true
			var from []string
			for a := range as {
				if slices.Contains(addrs, a) {
					from = append(from, a.String())
				}
			}
			if len(from) > 0 {
				slices.Sort(from)
				added = append(added, correlate.Infra{Kind: "domain", Value: d, Detectors: []string{},
					Pivot: fmt.Sprintf("passive DNS: %s pointed at %s", name, strings.Join(from, ", "))})
			}
		}
	}
	// Name patterns: the same registrable name under another suffix
	// (cdn-update.example and cdn-update.test), as actors register them.
	labelOf := map[string]string{}
	for _, d := range domains {
		if l, _, _ := strings.Cut(d, "."); len(l) >= lim.MinLabel {
			labelOf[l] = d
		}
	}
	if len(labelOf) > 0 {
		like := map[string]map[string][]store.NameAddr{} // label -> registered domain -> rows
		err := r.PassiveDNS(ctx, store.Window{}, store.NameFilter{Labels: slices.Sorted(maps.Keys(labelOf))}, func(x *store.NameAddr) error {
			rd := detect.RegisteredDomain(x.Name)
			l, _, _ := strings.Cut(rd, ".")
			if src, ok := labelOf[l]; ok && rd != src && !slices.Contains(domains, rd) {
				if like[l] == nil {
					like[l] = map[string][]store.NameAddr{}
				}
				like[l][rd] = append(like[l][rd], *x)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("passive DNS: %w", err)
		}
		for _, l := range slices.Sorted(maps.Keys(like)) {
			if len(like[l]) > lim.LookAlikes {
				notes = append(notes, fmt.Sprintf("%q is the name of %d registered domains: too common a name to follow", l, len(like[l])))
				continue
			}
			for _, rd := range slices.Sorted(maps.Keys(like[l])) {
				if !have["domain:"+rd] {
					have["domain:"+rd] = true
					added = append(added, correlate.Infra{Kind: "domain", Value: rd, Detectors: []string{},
						Pivot: fmt.Sprintf("name pattern: %s under another suffix than %s", l, labelOf[l])})
				}
				for _, x := range like[l][rd] {
					_ = keep(&x)
					addIP(x.Addr, fmt.Sprintf("name pattern: %s (like %s) pointed at it", x.Name, labelOf[l]))
				}
			}
		}
	}
	// The servers' fingerprints, then the other servers that show them.
	prints := map[string][]store.ServerPrint{}
	var values []string
	err := r.ServerPrints(ctx, store.Window{}, store.PrintFilter{Addrs: addrs}, func(p *store.ServerPrint) error {
		values = append(values, p.Value)
		return nil
	})
	if err == nil && len(values) > 0 {
		slices.Sort(values)
		err = r.ServerPrints(ctx, store.Window{}, store.PrintFilter{Values: slices.Compact(values)}, func(p *store.ServerPrint) error {
			prints[p.Kind+"\x00"+p.Value] = append(prints[p.Kind+"\x00"+p.Value], *p)
			return nil
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("server fingerprints: %w", err)
	}
	for _, k := range slices.Sorted(maps.Keys(prints)) {
		ps := prints[k]
		kind, value, _ := strings.Cut(k, "\x00")
		limit := lim.PrintServers
		switch kind {
		case store.PrintCert:
			limit = lim.CertServers
		case store.PrintServer:
			limit = lim.BannerServers
		}
		var seeds []string
		for _, p := range ps {
			if slices.Contains(addrs, p.Addr) {
				seeds = append(seeds, p.Addr.String())
			}
		}
		if len(seeds) == 0 {
			continue
		}
		if kind == store.PrintServer && bareProduct.MatchString(value) {
			notes = append(notes, fmt.Sprintf("HTTP Server header %q names a product without a version: too common to follow", value))
			continue
		}
		if len(ps) > limit {
			notes = append(notes, fmt.Sprintf("%s %s is on %d servers: too common to follow", printName(kind), short(value), len(ps)))
			continue
		}
		for _, p := range ps {
			addIP(p.Addr, fmt.Sprintf("same %s %s as %s (%d record(s), %s to %s)", printName(kind), short(value), strings.Join(seeds, ", "),
				p.Count, p.First.UTC().Format("2006-01-02"), p.Last.UTC().Format("2006-01-02")))
		}
	}
	inc.Infrastructure = append(inc.Infrastructure, added...)
	out := slices.Collect(maps.Values(rows))
	slices.SortFunc(out, func(x, y correlate.NameSeen) int {
		return cmp.Or(strings.Compare(x.Name, y.Name), x.Addr.Compare(y.Addr), strings.Compare(x.Log, y.Log))
	})
	return out, notes, nil
}

// bareProduct matches a Server header that names a product and nothing
// else: no version, no build, no comment.
var bareProduct = regexp.MustCompile(`^[A-Za-z][A-Za-z_.-]*$`)

// under reports whether name is one of domains or below one.
func under(name string, domains []string) bool {
	return slices.ContainsFunc(domains, func(d string) bool { return name == d || strings.HasSuffix(name, "."+d) })
}

func printName(kind string) string {
	switch kind {
	case store.PrintCert:
		return "certificate"
	case store.PrintJA3S:
		return "JA3S"
	case store.PrintJA4S:
		return "JA4S"
	case store.PrintServer:
		return "HTTP Server header"
	}
	return kind
}

func short(v string) string {
	if len(v) > 16 {
		return v[:16] + "…"
	}
	return v
}
