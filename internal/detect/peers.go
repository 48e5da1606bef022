package detect

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Peers is what the data says about each address internal hosts reach,
// beyond the connections themselves: whether a DNS answer named it and
// when, the names clients used for it in TLS and HTTP, whether its TLS
// certificates validate for those names, and whether HTTP reached it
// without a name. Benign services are reached by names they resolved to,
// over TLS that validates; hastily built command and control often is
// not. Built once per hunt (PeersOf).
type Peers struct {
	peers map[netip.Addr]*Peer
	// dnsSeen is true when the window holds any DNS answer: only then
	// does an address that no answer names say something.
	dnsSeen bool
	names   *Names
}

// Peer is what is known of one address.
type Peer struct {
	// Resolved is when a DNS answer first named the address (zero if
	// never); Name is one name that did.
	Resolved time.Time
	Name     string
	// Names are the names clients used for it: TLS server names and HTTP
	// hosts that are not addresses (a few).
	Names []string
	// TLSValid is true when a handshake with it presented a certificate
	// that validated and covered the server name asked for; TLSBad holds
	// why another did not (self-signed, expired, invalid, name mismatch,
	// or an address sent as server name), "" when none failed.
	TLSValid bool
	TLSBad   string
	// HTTPBare is true when HTTP requests to it carried no Host header or
	// the bare address as Host.
	HTTPBare bool
}

// Of returns what is known of a (the zero Peer when nothing is).
func (p *Peers) Of(a netip.Addr) Peer {
	if x := p.peers[a]; x != nil {
		return *x
	}
	return Peer{}
}

// Naming says how src reached dst: 1 when nothing named dst although
// src's DNS queries are in the data (a bare address), 0.5 when DNS data
// exists but not src's own queries, 0 when something named it or there
// is no DNS data at all (nothing can be told).
func (p *Peers) Naming(src, dst netip.Addr) float64 {
	x := p.peers[dst]
	if x != nil && (!x.Resolved.IsZero() || len(x.Names) > 0) {
		return 0
	}
	switch {
	case p.names != nil && p.names.Queried(src):
		return 1
	case p.dnsSeen:
		return 0.5
	}
	return 0
}

// HasDNS reports whether the window holds any DNS answer that names an
// address: without any, that nothing named an address says nothing.
func (p *Peers) HasDNS() bool { return p.dnsSeen }

// Vetted reports whether dst is reached the way benign services are: by
// a name that a DNS answer or the client gave, over TLS whose
// certificate validated for it, and never by a failing certificate.
func (p *Peers) Vetted(dst netip.Addr) bool {
	x := p.peers[dst]
	return x != nil && x.TLSValid && x.TLSBad == "" && (!x.Resolved.IsZero() || len(x.Names) > 0)
}

func (p *Peers) get(a netip.Addr) *Peer {
	x := p.peers[a]
	if x == nil {
		x = &Peer{}
		p.peers[a] = x
	}
	return x
}

// PeersOf returns the peer index of the window, computed once per hunt
// when r is a *Cache. DNS, TLS and HTTP are Zeek logs: over flow
// sessions the index is the conn log's.
func PeersOf(ctx context.Context, r store.Reader, w store.Window, env *Env) (*Peers, error) {
	w.Conns = store.ConnLog
	return memoize(ctx, r, "peers", w, func(ctx context.Context, r store.Reader, w store.Window) (*Peers, error) {
		names, err := NamesOf(ctx, r, w, env)
		if err != nil {
			return nil, err
		}
		p := &Peers{peers: map[netip.Addr]*Peer{}, names: names}
		err = r.Resolved(ctx, w, func(res *store.Resolution) error {
			p.dnsSeen = true
			x := p.get(res.Addr)
			if x.Resolved.IsZero() || res.First.Before(x.Resolved) {
				x.Resolved, x.Name = res.First, res.Name
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		err = r.TLSSessions(ctx, w, func(s *store.TLSSession) error {
			x := p.get(s.Dst)
			sni := strings.ToLower(strings.TrimSuffix(s.ServerName, "."))
			named := sni != "" && !isAddr(sni)
			if named {
				x.addName(sni)
			}
			switch why := certProblem(s); {
			case why != "":
				x.TLSBad = why
			case sni != "" && !named:
				// RFC 6066 forbids an address as server name: clients
				// that send one are not browsers.
				x.TLSBad = "bare-address server name"
			case named && validated(s):
				x.TLSValid = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		err = r.HTTPRequests(ctx, w, func(h *store.HTTPRequest) error {
			host := strings.ToLower(store.HostOnly(h.Host))
			x := p.get(h.Dst)
			switch {
			case host == "" && h.Method != "CONNECT", isAddr(strings.Trim(host, "[]")):
				x.HTTPBare = true
			case host != "":
				x.addName(host)
			}
			return nil
		})
		return p, err
	})
}

func (x *Peer) addName(n string) {
	if len(x.Names) >= 3 {
		return
	}
	for _, m := range x.Names {
		if m == n {
			return
		}
	}
	x.Names = append(x.Names, n)
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// certProblem says what is wrong with a session's certificate: "self-signed",
// "expired", "invalid (STATUS)" or "name mismatch"; "" when nothing is or
// nothing is known.
func certProblem(s *store.TLSSession) string {
	status := strings.ToLower(s.ValidationStatus)
	switch {
	case strings.Contains(status, "self signed") || strings.Contains(status, "self-signed") || (s.Subject != "" && s.Subject == s.Issuer):
		return "self-signed"
	case strings.Contains(status, "expired") || (!s.NotAfter.IsZero() && s.NotAfter.Before(s.First)):
		return "expired"
	case status != "" && status != "ok":
		return "invalid (" + s.ValidationStatus + ")"
	case s.SNIMatchesCert == "F" || (s.ServerName != "" && len(s.CertNames) > 0 && !CertCovers(s.CertNames, s.ServerName)):
		return "name mismatch"
	}
	return ""
}

// validated reports whether a session's certificate is known to be good
// for its server name: Zeek validated the chain, or the certificate's
// names cover the server name.
func validated(s *store.TLSSession) bool {
	return strings.EqualFold(s.ValidationStatus, "ok") || s.SNIMatchesCert == "T" ||
		(s.ServerName != "" && len(s.CertNames) > 0 && CertCovers(s.CertNames, s.ServerName))
}

// CertCovers reports whether a certificate's names cover a server name,
// wildcards included ("*.example.com" covers "a.example.com").
func CertCovers(names []string, sni string) bool {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	for _, n := range names {
		n = strings.ToLower(n)
		if n == sni {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(sni, '.'); i > 0 && sni[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// Unicast reports whether a is an address a host can be a peer at: not
// multicast, broadcast, link-local, loopback or unspecified. Traffic to
// the others is discovery and announcements (SSDP, mDNS, DHCPv6, NetBIOS
// broadcasts), never a channel.
func Unicast(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsMulticast() && !a.IsLinkLocalUnicast() && !a.IsLoopback() && !a.IsUnspecified() &&
		!a.IsInterfaceLocalMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// PortOddity says how unusual a destination port is for outbound traffic:
// 0 for the services that hosts reach every day (web, mail, DNS, time,
// remote shells, push and messaging, VPN), 0.5 for alternative web ports,
// 1 for any other.
func PortOddity(port uint16, proto string) float64 {
	switch proto {
	case "udp":
		switch port {
		case 53, 67, 68, 123, 137, 138, 161, 162, 443, 500, 514, 853, 1194, 1900, 3478, 3479, 4500, 5353, 5355, 19302, 51820:
			return 0
		}
		return 1
	case "tcp", "":
		switch port {
		case 20, 21, 22, 25, 53, 80, 88, 110, 135, 139, 143, 389, 443, 445, 465, 587, 636, 853, 993, 995, 1723, 3268, 3269,
			5222, 5223, 5228, 5269, 9418:
			return 0
		case 8000, 8008, 8080, 8081, 8443, 8888:
			return 0.5
		}
		return 1
	}
	return 0.5 // ICMP and other protocols: no ports to judge
}

// ServicePrior lowers the score of protocols that poll on a timer by
// design: time sync (NTP polls at powers of two seconds, to the second)
// and network management. C2 over them is exotic; DNS has its own
// detector (dnstunnel).
func ServicePrior(port uint16, proto string) float64 {
	if proto != "udp" {
		return 1
	}
	switch port {
	case 123: // NTP
		return 0.3
	case 161, 162, 514: // SNMP, SNMP traps, syslog
		return 0.4
	case 53, 5353: // DNS: scored by dnstunnel
		return 0.5
	}
	return 1
}
