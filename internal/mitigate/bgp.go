package mitigate

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// BGPConfig is a BGP session to a router (or a route server) that takes
// dwell's mitigation routes.
type BGPConfig struct {
	// Peer is the router's address, host:port (port 179 by default).
	Peer string
	// LocalAddr is the address dwell connects from; empty: any.
	LocalAddr string
	// LocalAS and PeerAS are the two autonomous systems (equal for iBGP).
	LocalAS, PeerAS uint32
	// RouterID is dwell's BGP identifier (an IPv4 address).
	RouterID netip.Addr
	// NextHop is the black-hole routes' next hop (the address routers
	// map to their discard interface); default 192.0.2.1 and 100::1
	// (RFC 5635's discard prefixes).
	NextHop, NextHop6 netip.Addr
	// Community is the black-hole community; default 65535:666 (RFC 7999).
	Community string
	// HoldTime is the session's hold time; default 90 s.
	HoldTime time.Duration
}

// Speaker is a BGP speaker that only announces: it keeps one session to
// its peer up (reconnecting with back-off), sends its routes when the
// session is established, and ignores what the peer sends but keepalives
// and notifications. The messages are GoBGP's encoder's
// (github.com/osrg/gobgp/v3/pkg/packet/bgp); docs/decisions/0014 says why
// the session is dwell's own.
type Speaker struct {
	cfg       BGPConfig
	community uint32
	log       *slog.Logger

	mu      sync.Mutex
	routes  map[Route]bool
	conn    net.Conn // the established session; nil when down
	wmu     sync.Mutex
	changed chan struct{}
	up      chan struct{} // closed and replaced on each establishment
}

var _ Announcer = (*Speaker)(nil)

// NewSpeaker returns a speaker for cfg; Run keeps its session.
func NewSpeaker(cfg BGPConfig, log *slog.Logger) (*Speaker, error) {
	if _, _, err := net.SplitHostPort(cfg.Peer); err != nil {
		cfg.Peer = net.JoinHostPort(cfg.Peer, "179")
	}
	if !cfg.RouterID.Is4() {
		return nil, errors.New("bgp: router_id must be an IPv4 address")
	}
	if cfg.LocalAS == 0 || cfg.PeerAS == 0 {
		return nil, errors.New("bgp: local_as and peer_as are needed")
	}
	if !cfg.NextHop.IsValid() {
		cfg.NextHop = netip.MustParseAddr("192.0.2.1")
	}
	if !cfg.NextHop6.IsValid() {
		cfg.NextHop6 = netip.MustParseAddr("100::1")
	}
	if cfg.HoldTime <= 0 {
		cfg.HoldTime = 90 * time.Second
	}
	comm := cmp.Or(cfg.Community, "65535:666")
	var hi, lo uint16
	if _, err := fmt.Sscanf(comm, "%d:%d", &hi, &lo); err != nil {
		return nil, fmt.Errorf("bgp: community %q is not ASN:VALUE", comm)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{cfg: cfg, community: uint32(hi)<<16 | uint32(lo), log: log, routes: map[Route]bool{},
		changed: make(chan struct{}, 1), up: make(chan struct{})}, nil
}

// Name implements Announcer.
func (s *Speaker) Name() string { return "bgp " + s.cfg.Peer }

// Announce implements Announcer: the route is sent now if the session is
// up, and at every establishment after.
func (s *Speaker) Announce(ctx context.Context, r Route) error {
	s.mu.Lock()
	s.routes[r] = true
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return nil // sent when the session comes up
	}
	return s.send(conn, r, false)
}

// Withdraw implements Announcer.
func (s *Speaker) Withdraw(ctx context.Context, r Route) error {
	s.mu.Lock()
	delete(s.routes, r)
	conn := s.conn
	s.mu.Unlock()
	if conn == nil {
		return nil
	}
	return s.send(conn, r, true)
}

// Established returns a channel closed once the session is up (the
// current one, or the next).
func (s *Speaker) Established() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// Run keeps the session up until ctx ends, then closes it (the peer then
// drops dwell's routes, as BGP does for a closed session).
func (s *Speaker) Run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("bgp: session down", "peer", s.cfg.Peer, "err", err)
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// session runs one BGP session until it fails or ctx ends.
func (s *Speaker) session(ctx context.Context) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	if s.cfg.LocalAddr != "" {
		la, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(s.cfg.LocalAddr, "0"))
		if err != nil {
			return err
		}
		d.LocalAddr = la
	}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Peer)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		s.wmu.Lock()
		_ = s.write(conn, bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, nil))
		s.wmu.Unlock()
		_ = conn.Close()
	})
	defer stop()
	defer func() { _ = conn.Close() }()

	hold := uint16(min(s.cfg.HoldTime/time.Second, 65535)) //nolint:gosec // G115: capped above
	as2 := uint16(bgp.AS_TRANS)
	if s.cfg.LocalAS <= 0xffff {
		as2 = uint16(s.cfg.LocalAS)
	}
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC),
		bgp.NewCapMultiProtocol(bgp.RF_FS_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_FS_IPv6_UC),
		bgp.NewCapFourOctetASNumber(s.cfg.LocalAS),
	}
	open := bgp.NewBGPOpenMessage(as2, hold, s.cfg.RouterID.String(), []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	if err := s.writeLocked(conn, open); err != nil {
		return err
	}
	rd := bufio.NewReader(conn)
	established := false
	keepalive := time.NewTicker(max(s.cfg.HoldTime/3, time.Second))
	defer keepalive.Stop()
	msgs := make(chan *bgp.BGPMessage)
	readErr := make(chan error, 1)
	go func() {
		for {
			_ = conn.SetReadDeadline(time.Now().Add(max(s.cfg.HoldTime, 3*time.Second)))
			m, err := readMessage(rd)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		s.mu.Lock()
		if s.conn == conn {
			s.conn = nil
		}
		s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return err
		case <-keepalive.C:
			if err := s.writeLocked(conn, bgp.NewBGPKeepAliveMessage()); err != nil {
				return err
			}
		case m := <-msgs:
			switch body := m.Body.(type) {
			case *bgp.BGPOpen:
				if uint32(body.MyAS) != s.cfg.PeerAS && (body.MyAS != bgp.AS_TRANS || s.cfg.PeerAS <= 0xffff) {
					_ = s.writeLocked(conn, bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_BAD_PEER_AS, nil))
					return fmt.Errorf("peer says AS %d, configured %d", body.MyAS, s.cfg.PeerAS)
				}
				if err := s.writeLocked(conn, bgp.NewBGPKeepAliveMessage()); err != nil {
					return err
				}
			case *bgp.BGPKeepAlive:
				if !established {
					established = true
					if err := s.establish(conn); err != nil {
						return err
					}
				}
			case *bgp.BGPNotification:
				return fmt.Errorf("notification from peer: code %d subcode %d", body.ErrorCode, body.ErrorSubcode)
			}
		}
	}
}

// establish marks the session up and sends every route held.
func (s *Speaker) establish(conn net.Conn) error {
	s.mu.Lock()
	s.conn = conn
	routes := make([]Route, 0, len(s.routes))
	for r := range s.routes {
		routes = append(routes, r)
	}
	close(s.up)
	s.up = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("bgp: session established", "peer", s.cfg.Peer, "routes", len(routes))
	for _, r := range routes {
		if err := s.send(conn, r, false); err != nil {
			return err
		}
	}
	return nil
}

// readMessage reads one BGP message. A message the parser cannot take
// is an error, whatever the parser does with it.
func readMessage(r *bufio.Reader) (m *bgp.BGPMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("bgp: unparsable message: %v", p)
		}
	}()
	head := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(head[16:]))
	if n < bgp.BGP_HEADER_LENGTH || n > 65535 {
		return nil, fmt.Errorf("bgp: message length %d", n)
	}
	buf := make([]byte, n)
	copy(buf, head)
	if _, err := io.ReadFull(r, buf[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(buf)
}

func (s *Speaker) writeLocked(conn net.Conn, m *bgp.BGPMessage) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.write(conn, m)
}

func (s *Speaker) write(conn net.Conn, m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write(b)
	return err
}

// send announces or withdraws r on conn.
func (s *Speaker) send(conn net.Conn, r Route, withdraw bool) error {
	m, err := s.update(r, withdraw)
	if err != nil {
		return err
	}
	return s.writeLocked(conn, m)
}

// update makes the UPDATE message of r.
func (s *Speaker) update(r Route, withdraw bool) (*bgp.BGPMessage, error) {
	var nlri bgp.AddrPrefixInterface
	v6 := r.Dst.Addr().Is6()
	bitsLen := uint8(r.Dst.Bits()) //nolint:gosec // G115: a prefix length, 0 to 128
	switch r.Kind {
	case Blackhole:
		if v6 {
			nlri = bgp.NewIPv6AddrPrefix(bitsLen, r.Dst.Addr().String())
		} else {
			nlri = bgp.NewIPAddrPrefix(bitsLen, r.Dst.Addr().String())
		}
	case FlowSpec:
		rf, spec := bgp.RF_FS_IPv4_UC, "destination "+r.Dst.String()
		if v6 {
			rf = bgp.RF_FS_IPv6_UC
		}
		if r.Proto != "" {
			spec += " protocol " + flowProto(r.Proto)
		}
		if r.SYN {
			spec += " tcp-flags ==S"
		}
		if r.SYNACK {
			spec += " tcp-flags ==SA"
		}
		if r.SrcPort != 0 {
			spec += fmt.Sprintf(" source-port ==%d", r.SrcPort)
		}
		switch {
		case r.MinLength > 0 && r.MaxLength > 0:
			spec += fmt.Sprintf(" packet-length >=%d&<=%d", r.MinLength, r.MaxLength)
		case r.MinLength > 0:
			spec += fmt.Sprintf(" packet-length >=%d", r.MinLength)
		case r.MaxLength > 0:
			spec += fmt.Sprintf(" packet-length <=%d", r.MaxLength)
		}
		comps, err := bgp.ParseFlowSpecComponents(rf, spec)
		if err != nil {
			return nil, fmt.Errorf("bgp: flowspec %q: %w", spec, err)
		}
		if v6 {
			nlri = bgp.NewFlowSpecIPv6Unicast(comps)
		} else {
			nlri = bgp.NewFlowSpecIPv4Unicast(comps)
		}
	default:
		return nil, fmt.Errorf("bgp: unknown route kind %q", r.Kind)
	}
	unicast4 := r.Kind == Blackhole && !v6
	if withdraw {
		if unicast4 {
			return bgp.NewBGPUpdateMessage([]*bgp.IPAddrPrefix{nlri.(*bgp.IPAddrPrefix)}, nil, nil), nil
		}
		return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeMpUnreachNLRI([]bgp.AddrPrefixInterface{nlri})}, nil), nil
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if s.cfg.LocalAS == s.cfg.PeerAS {
		attrs = append(attrs, bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100))
	} else {
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{s.cfg.LocalAS})}))
	}
	switch {
	case unicast4:
		attrs = append(attrs, bgp.NewPathAttributeNextHop(s.cfg.NextHop.String()), bgp.NewPathAttributeCommunities([]uint32{s.community}))
		return bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{nlri.(*bgp.IPAddrPrefix)}), nil
	case r.Kind == Blackhole:
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(s.cfg.NextHop6.String(), []bgp.AddrPrefixInterface{nlri}),
			bgp.NewPathAttributeCommunities([]uint32{s.community}))
	default:
		nh := "0.0.0.0"
		if v6 {
			nh = "::"
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}),
			bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{bgp.NewTrafficRateExtended(0, r.RateLimit)}))
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nil), nil
}

// flowProto is a protocol as GoBGP's FlowSpec syntax names it.
func flowProto(p string) string {
	switch strings.ToLower(p) {
	case "tcp", "udp", "icmp", "igmp", "gre", "ospf", "pim", "sctp":
		return "==" + strings.ToLower(p)
	}
	return "==" + p
}
