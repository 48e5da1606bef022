package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Collect is dwell serve's flow collector: NetFlow v5/v9, IPFIX and
// sFlow v5 over UDP, stored in the flow table and watched for DDoS as
// they arrive (docs/ddos.md).
type Collect struct {
	// Listen are the UDP addresses ("0.0.0.0:2055", "[::]:4739",
	// "0.0.0.0:6343"); none: no collector.
	Listen []string `yaml:"listen"`
	// Sockets per address (SO_REUSEPORT); default the number of CPUs.
	Sockets int `yaml:"sockets"`
	// ReadBuffer is each socket's kernel receive buffer in bytes; default
	// 16 MiB.
	ReadBuffer int `yaml:"read_buffer"`
	// Exporters are the prefixes flows are accepted from; none: any.
	Exporters []string `yaml:"exporters"`
	// Sensor names the flows' site; default the configuration's sensor.
	Sensor string `yaml:"sensor"`
	// Queue is how many datagrams wait for the store at most; default
	// 8192. Beyond it flows wait on disk, in state_dir/flow-spool, until
	// the store has caught up; SpoolMax bounds that spool (bytes; default
	// 1 GiB), beyond which flows are dropped and counted.
	Queue    int   `yaml:"queue"`
	SpoolMax int64 `yaml:"spool_max"`
}

// DDoS is the streaming DDoS detector's protected networks and
// thresholds, and what mitigation each network allows.
type DDoS struct {
	Networks []DDoSNetwork `yaml:"networks"`
	// MinSources is the least distinct sources of an attack; default 20.
	MinSources int `yaml:"min_sources"`
	// EndAfter and EndRatio: an attack ends when its rates have stayed
	// under end_ratio of the thresholds for end_after; defaults 30s, 0.5.
	EndAfter Duration `yaml:"end_after"`
	EndRatio float64  `yaml:"end_ratio"`
	// MaxHold is the longest a flow record's rate counts toward its
	// destination's after it arrived (a record of a minute's traffic
	// counts for a minute); default 5m. Set it to the exporters' active
	// timeout when that is shorter.
	MaxHold Duration `yaml:"max_hold"`
}

// DDoSNetwork is a protected network.
type DDoSNetwork struct {
	// Prefix is the network (CIDR).
	Prefix string `yaml:"prefix"`
	// PPS, BPS and FPS are the per-address thresholds in packets, bits and
	// flows per second; all unset: 10,000 packets/s.
	PPS float64 `yaml:"pps"`
	BPS float64 `yaml:"bps"`
	FPS float64 `yaml:"fps"`
	// NetworkPPS, NetworkBPS and NetworkFPS are thresholds of the traffic
	// to the whole network: an attack spread over its addresses, each
	// under its own threshold (carpet bombing). Unset: not watched.
	NetworkPPS float64 `yaml:"network_pps"`
	NetworkBPS float64 `yaml:"network_bps"`
	NetworkFPS float64 `yaml:"network_fps"`
	// VectorPPS are packets/s thresholds of single vectors per address
	// ("tcp-syn", "tcp-synack", "icmp", "udp", "udp-fragment", "udp/53",
	// a protocol number): {tcp-syn: 5000, udp/123: 2000}.
	VectorPPS map[string]float64 `yaml:"vector_pps"`
	// Baseline, above zero, raises the thresholds to this many times the
	// network's usual peak, learned from its traffic.
	Baseline float64 `yaml:"baseline"`
	// Blackhole and FlowSpec allow the mitigation of attacks on the
	// network's addresses (off by default); RateLimit makes the FlowSpec
	// rules rate-limit to this many bytes/s instead of discarding.
	Blackhole bool    `yaml:"blackhole"`
	FlowSpec  bool    `yaml:"flowspec"`
	RateLimit float64 `yaml:"rate_limit"`
}

// Mitigation is how attacks are mitigated, and the safety rules.
type Mitigation struct {
	// DryRun logs and audits what would be announced, and announces
	// nothing.
	DryRun bool `yaml:"dry_run"`
	// MaxRoutes is the most routes announced at once; default 10.
	MaxRoutes int `yaml:"max_routes"`
	// Hold is how long routes stay after their attack ended; default 10m.
	Hold Duration `yaml:"hold"`
	// Infrastructure are prefixes never mitigated (routers, resolvers,
	// the collector).
	Infrastructure []string `yaml:"infrastructure"`
	// BGP are the sessions routes are announced by.
	BGP []BGPPeer `yaml:"bgp"`
	// NFTables adds attacked addresses to local nftables sets.
	NFTables *NFTables `yaml:"nftables"`
	// Exec is a command run for each announcement and withdrawal.
	Exec []string `yaml:"exec"`
}

// BGPPeer is a BGP session to a router.
type BGPPeer struct {
	Peer      string   `yaml:"peer"`       // host[:port]
	LocalAddr string   `yaml:"local_addr"` // source address; default any
	LocalAS   uint32   `yaml:"local_as"`
	PeerAS    uint32   `yaml:"peer_as"`
	RouterID  string   `yaml:"router_id"`
	NextHop   string   `yaml:"next_hop"`  // black-hole next hop; default 192.0.2.1
	NextHop6  string   `yaml:"next_hop6"` // default 100::1
	Community string   `yaml:"community"` // default 65535:666
	HoldTime  Duration `yaml:"hold_time"`
}

// NFTables names the sets attacked addresses are added to.
type NFTables struct {
	Family string `yaml:"family"` // default inet
	Table  string `yaml:"table"`
	Set4   string `yaml:"set4"`
	Set6   string `yaml:"set6"`
}

// validateDDoS checks serve.collect, serve.ddos and serve.mitigation.
func (c *Config) validateDDoS() []error {
	s := &c.Serve
	var errs []error
	for i, l := range s.Collect.Listen {
		if _, _, err := net.SplitHostPort(l); err != nil {
			errs = append(errs, fmt.Errorf("serve.collect.listen[%d]: %q is not host:port", i, l))
		}
	}
	if s.Collect.Sockets < 0 || s.Collect.ReadBuffer < 0 || s.Collect.Queue < 0 || s.Collect.SpoolMax < 0 {
		errs = append(errs, errors.New("serve.collect: sockets, read_buffer, queue and spool_max must not be negative"))
	}
	errs = append(errs, prefixes("serve.collect.exporters", s.Collect.Exporters)...)
	if len(s.DDoS.Networks) > 0 && len(s.Collect.Listen) == 0 {
		errs = append(errs, errors.New("serve.ddos: networks are watched in the flows serve.collect receives, and it listens nowhere"))
	}
	for i, n := range s.DDoS.Networks {
		where := fmt.Sprintf("serve.ddos.networks[%d]", i)
		if _, err := netip.ParsePrefix(n.Prefix); err != nil {
			errs = append(errs, fmt.Errorf("%s: prefix %q is not a CIDR prefix", where, n.Prefix))
		}
		if n.PPS < 0 || n.BPS < 0 || n.FPS < 0 || n.Baseline < 0 || n.RateLimit < 0 || n.NetworkPPS < 0 || n.NetworkBPS < 0 || n.NetworkFPS < 0 {
			errs = append(errs, fmt.Errorf("%s: thresholds, baseline and rate_limit must not be negative", where))
		}
		for v, pps := range n.VectorPPS {
			if !vectorName.MatchString(v) || pps <= 0 {
				errs = append(errs, fmt.Errorf("%s: vector_pps %q: %v (a vector is tcp-syn, tcp-synack, tcp, udp, udp-fragment, icmp, udp/PORT or a protocol number; its threshold above 0)", where, v, pps))
			}
		}
	}
	if r := s.DDoS.EndRatio; r < 0 || r >= 1 {
		errs = append(errs, errors.New("serve.ddos.end_ratio: must be between 0 and 1"))
	}
	if s.DDoS.EndAfter < 0 || s.DDoS.MinSources < 0 || s.DDoS.MaxHold < 0 {
		errs = append(errs, errors.New("serve.ddos: end_after, max_hold and min_sources must not be negative"))
	}
	m := &s.Mitigation
	errs = append(errs, prefixes("serve.mitigation.infrastructure", m.Infrastructure)...)
	if m.MaxRoutes < 0 || m.Hold < 0 {
		errs = append(errs, errors.New("serve.mitigation: max_routes and hold must not be negative"))
	}
	for i, b := range m.BGP {
		where := fmt.Sprintf("serve.mitigation.bgp[%d]", i)
		if strings.TrimSpace(b.Peer) == "" {
			errs = append(errs, fmt.Errorf("%s: peer is needed", where))
		}
		if b.LocalAS == 0 || b.PeerAS == 0 {
			errs = append(errs, fmt.Errorf("%s: local_as and peer_as are needed", where))
		}
		if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("%s: router_id %q is not an IPv4 address", where, b.RouterID))
		}
		for _, nh := range []string{b.NextHop, b.NextHop6, b.LocalAddr} {
			if _, err := netip.ParseAddr(nh); nh != "" && err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an address", where, nh))
			}
		}
		var hi, lo uint16
		if _, err := fmt.Sscanf(b.Community, "%d:%d", &hi, &lo); b.Community != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: community %q is not ASN:VALUE", where, b.Community))
		}
	}
	if n := m.NFTables; n != nil && (n.Table == "" || (n.Set4 == "" && n.Set6 == "")) {
		errs = append(errs, errors.New("serve.mitigation.nftables: table and set4 or set6 are needed"))
	}
	return errs
}

// vectorName matches store.FloodVectorOf's names.
var vectorName = regexp.MustCompile(`^(tcp-syn|tcp-synack|tcp|udp|udp-fragment|icmp|udp/[0-9]{1,5}|[0-9]{1,3})$`)

func prefixes(where string, ps []string) []error {
	var errs []error
	for i, p := range ps {
		if _, err := parsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a prefix or address", where, i, p))
		}
	}
	return errs
}

// ddosDefaults fills serve.ddos's and serve.mitigation's defaults.
func (s *Serve) ddosDefaults() {
	if s.DDoS.EndAfter == 0 {
		s.DDoS.EndAfter = Duration(30 * time.Second)
	}
	if s.DDoS.EndRatio == 0 {
		s.DDoS.EndRatio = 0.5
	}
	if s.Mitigation.Hold == 0 {
		s.Mitigation.Hold = Duration(10 * time.Minute)
	}
	if s.Mitigation.MaxRoutes == 0 {
		s.Mitigation.MaxRoutes = 10
	}
	if n := s.Mitigation.NFTables; n != nil && n.Family == "" {
		n.Family = "inet"
	}
}
