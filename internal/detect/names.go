package detect

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Names says how many internal hosts resolve each name and each registered
// domain, and how many reach each name as a TLS server name or HTTP host:
// the rarity of names, as Prevalence is the rarity of addresses. Both
// matter: hosts behind a caching resolver, or with the address pinned,
// reach a popular service without asking DNS for it.
type Names struct {
	Hosts   int // distinct internal hosts that made DNS queries
	queried map[netip.Addr]bool
	names   map[string]int
	domains map[string]int
	// Users is the number of distinct internal TLS and HTTP clients.
	Users int
	used  map[string]int
}

// Queried reports whether the internal host src made DNS queries that
// are in the data.
func (n *Names) Queried(src netip.Addr) bool { return n.queried[src] }

// Clients returns how many internal hosts queried name.
func (n *Names) Clients(name string) int { return n.names[normName(name)] }

// UsedBy returns how many internal hosts reached name as a TLS server name
// or an HTTP host.
func (n *Names) UsedBy(name string) int { return n.used[normName(name)] }

// UseShare returns the larger of the shares of hosts that resolve name and
// that reach it as a server name.
func (n *Names) UseShare(name string) float64 {
	s := n.Share(name)
	if n.Users > 0 {
		s = max(s, float64(n.UsedBy(name))/float64(n.Users))
	}
	return s
}

// DomainClients returns how many internal hosts queried any name under the
// registered domain.
func (n *Names) DomainClients(domain string) int { return n.domains[normName(domain)] }

// Share returns the fraction of querying hosts that asked for name.
func (n *Names) Share(name string) float64 {
	if n.Hosts == 0 {
		return 0
	}
	return float64(n.Clients(name)) / float64(n.Hosts)
}

// Damp is Prevalence.Damp for names: 1 up to 5 % of hosts resolving or
// using the name, 0.3 from half of them; small networks are not damped.
func (n *Names) Damp(name string) float64 {
	if n.Hosts < 10 && n.Users < 10 {
		return 1
	}
	return 1 - 0.7*Ramp(n.UseShare(name), 0.05, 0.5)
}

// Popular returns the names (TLS server names, HTTP hosts, DNS queries)
// whose damping alone takes any score to at most limit, sorted.
func (n *Names) Popular(limit float64) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]int{n.names, n.used} {
		for name := range m {
			if !seen[name] && n.Damp(name) <= limit+1e-9 { // 1-0.7 is 0.30000000000000004
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// DomainDamp damps a registered domain by the share of querying hosts that
// resolve names under it: 1 up to 5 %, 0.3 from 30 % (content delivery,
// antivirus and telemetry lookups). Small networks are not damped.
func (n *Names) DomainDamp(domain string) float64 {
	if n.Hosts < 10 {
		return 1
	}
	return 1 - 0.7*Ramp(float64(n.DomainClients(domain))/float64(n.Hosts), 0.05, 0.3)
}

func normName(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

// RegisteredDomain returns the registered domain of a name by the public
// suffix list ("a.b.example.co.uk" -> "example.co.uk"); names that have
// none (a bare suffix, a single label) are returned as they are.
func RegisteredDomain(name string) string {
	name = normName(name)
	d, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		return name
	}
	return d
}

// NamesOf returns the name index of the window, computed once per hunt
// when r is a *Cache.
func NamesOf(ctx context.Context, r store.Reader, w store.Window, env *Env) (*Names, error) {
	return memoize(ctx, r, "names", w, func(ctx context.Context, r store.Reader, w store.Window) (*Names, error) {
		n := &Names{names: map[string]int{}, domains: map[string]int{}}
		hosts := map[netip.Addr]bool{}
		seenName := map[string]map[netip.Addr]bool{}
		seenDomain := map[string]map[netip.Addr]bool{}
		mark := func(m map[string]map[netip.Addr]bool, counts map[string]int, key string, src netip.Addr) {
			s := m[key]
			if s == nil {
				s = map[netip.Addr]bool{}
				m[key] = s
			}
			if !s[src] {
				s[src] = true
				counts[key]++
			}
		}
		err := r.DNSNames(ctx, w, store.DNSFilter{}, func(d *store.DNSName) error {
			if !env.IsLocal(d.Src) {
				return nil
			}
			hosts[d.Src] = true
			name := normName(d.Query)
			mark(seenName, n.names, name, d.Src)
			mark(seenDomain, n.domains, RegisteredDomain(name), d.Src)
			return nil
		})
		n.Hosts, n.queried = len(hosts), hosts
		if err != nil {
			return n, err
		}
		n.used = map[string]int{}
		users := map[netip.Addr]bool{}
		seenUse := map[string]map[netip.Addr]bool{}
		use := func(src netip.Addr, name string) {
			if name == "" || !env.IsLocal(src) {
				return
			}
			users[src] = true
			mark(seenUse, n.used, normName(name), src)
		}
		err = r.ServerNames(ctx, w, func(s *store.ServerName) error {
			use(s.Src, store.HostOnly(s.Name))
			return nil
		})
		n.Users = len(users)
		return n, err
	})
}

// HostLiteral returns the address a host name is when it is an IP
// literal, as HTTP Host headers and TLS names to bare addresses are
// ("192.0.2.7", "192.0.2.7:8888", "[2001:db8::1]:443"); false for names.
func HostLiteral(name string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(name); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
