// Package mitigate turns DDoS attacks into mitigation: BGP remote-
// triggered black-hole routes and FlowSpec rules announced to routers,
// nftables set elements for local scrubbing, or a command of the
// operator's — and takes them back when the attack is over.
//
// Mitigation is off unless a protected network asks for it, and every
// announcement passes the safety rules first: the address must lie in a
// protected network that allows the action, never in the infrastructure
// listed as untouchable, and never beyond the cap on routes announced at
// once. In dry-run mode the actions are logged and audited, not taken.
// Routes are withdrawn a hold time after their attack ended, so an
// attack that pauses and resumes does not flap the routers.
package mitigate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kind is what a route does.
type Kind string

// Route kinds.
const (
	// Blackhole is a host route (/32 or /128) to the target with the
	// black-hole community: the routers drop all traffic to it.
	Blackhole Kind = "blackhole"
	// FlowSpec is a rule for the attack's traffic alone (destination,
	// protocol, source port, packet length) that routers discard or
	// rate-limit.
	FlowSpec Kind = "flowspec"
)

// Route is one mitigation.
type Route struct {
	Kind Kind
	// Dst is the destination: an attacked address as a host prefix, or a
	// network attacked as a whole (FlowSpec only).
	Dst netip.Prefix
	// For FlowSpec: Proto ("tcp", "udp", "icmp" or a number; empty: any),
	// SrcPort (0: any), SYN (match SYN without ACK: a SYN flood), SYNACK
	// (match SYN with ACK and nothing else: a SYN-ACK reflection),
	// MinLength/MaxLength (packet length; 0: any) and RateLimit (bytes/s;
	// 0 discards).
	Proto     string
	SrcPort   uint16
	SYN       bool
	SYNACK    bool
	MinLength uint16
	MaxLength uint16
	RateLimit float32
}

// String names the route in logs and the audit trail.
func (r Route) String() string {
	if r.Kind == Blackhole {
		return "blackhole " + r.Dst.String()
	}
	parts := []string{"flowspec destination " + r.Dst.String()}
	if r.Proto != "" {
		parts = append(parts, "protocol "+r.Proto)
	}
	if r.SYN {
		parts = append(parts, "tcp-flags syn !ack")
	}
	if r.SYNACK {
		parts = append(parts, "tcp-flags syn+ack")
	}
	if r.SrcPort != 0 {
		parts = append(parts, fmt.Sprintf("source-port %d", r.SrcPort))
	}
	switch {
	case r.MinLength > 0 && r.MaxLength > 0:
		parts = append(parts, fmt.Sprintf("packet-length %d-%d", r.MinLength, r.MaxLength))
	case r.MinLength > 0:
		parts = append(parts, fmt.Sprintf("packet-length >=%d", r.MinLength))
	case r.MaxLength > 0:
		parts = append(parts, fmt.Sprintf("packet-length <=%d", r.MaxLength))
	}
	if r.RateLimit > 0 {
		parts = append(parts, fmt.Sprintf("rate-limit %.0f bytes/s", r.RateLimit))
	} else {
		parts = append(parts, "discard")
	}
	return strings.Join(parts, " ")
}

// Announcer takes a route to the network and back: a BGP session, an
// nftables set, a command.
type Announcer interface {
	Name() string
	Announce(ctx context.Context, r Route) error
	Withdraw(ctx context.Context, r Route) error
}

// Protected is a network whose addresses may be mitigated, and how.
type Protected struct {
	Prefix    netip.Prefix
	Blackhole bool // announce black-hole host routes for its addresses
	FlowSpec  bool // announce FlowSpec rules for their attacks' vectors
	// RateLimit is the FlowSpec rules' rate in bytes/s; 0 discards.
	RateLimit float32
}

// Config is the safety rules and timing.
type Config struct {
	Protected []Protected
	// Infrastructure are addresses never mitigated, whatever attacks them
	// (routers, resolvers, the collector itself).
	Infrastructure []netip.Prefix
	// MaxRoutes is the most routes announced at once (default 10): past it
	// an attack is not mitigated, and the refusal is logged and audited.
	MaxRoutes int
	// Hold is how long after its attack ended a route stays (default
	// 10 min).
	Hold time.Duration
	// DryRun logs and audits what would be announced and announces
	// nothing.
	DryRun bool
}

// AuditFunc records an action in the audit trail.
type AuditFunc func(action, object, detail string)

// Mitigator applies the safety rules and keeps the routes announced.
// It is safe for concurrent use.
type Mitigator struct {
	cfg   Config
	ann   []Announcer
	log   *slog.Logger
	audit AuditFunc
	now   func() time.Time

	mu     sync.Mutex
	routes map[Route]*held
}

// held is an announced route and what keeps it.
type held struct {
	attacks map[string]bool // the attacks it mitigates
	until   time.Time       // withdrawal, once no attack keeps it
}

// New returns a mitigator announcing through ann.
func New(cfg Config, ann []Announcer, log *slog.Logger, audit AuditFunc) *Mitigator {
	if cfg.MaxRoutes <= 0 {
		cfg.MaxRoutes = 10
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 10 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if audit == nil {
		audit = func(string, string, string) {}
	}
	return &Mitigator{cfg: cfg, ann: ann, log: log, audit: audit, now: time.Now, routes: map[Route]*held{}}
}

// ErrRefused wraps the safety rules' refusals.
var ErrRefused = errors.New("mitigation refused")

// protection returns the most specific protected network holding dst.
func (m *Mitigator) protection(dst netip.Prefix) (Protected, bool) {
	var best Protected
	found := false
	for _, p := range m.cfg.Protected {
		if p.Prefix.Contains(dst.Addr()) && p.Prefix.Bits() <= dst.Bits() && (!found || p.Prefix.Bits() > best.Prefix.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// Vector is one of an attack's main vectors: its name (store.FloodVectorOf:
// "tcp-syn", "udp/53", ...) and the mean length of its packets in bytes
// (0: unknown).
type Vector struct {
	Name       string
	MeanLength int
}

// ampLength is the mean packet length from which a reflection's FlowSpec
// rule matches only packets of at least half that length: amplified
// responses are large, the service's ordinary answers mostly small (DNS
// over UDP: under 512 bytes), and those keep flowing.
const ampLength = 512

// Routes returns the routes for an attack on dst (an address as a host
// prefix, or a network attacked as a whole) by its main vectors, as its
// protected network allows them. A whole network is never black-holed:
// it gets FlowSpec rules only, and none when it holds listed
// infrastructure.
func (m *Mitigator) Routes(dst netip.Prefix, vectors []Vector) ([]Route, error) {
	dst = netip.PrefixFrom(dst.Addr().Unmap(), min(dst.Bits(), dst.Addr().Unmap().BitLen())).Masked()
	if !dst.IsValid() {
		return nil, fmt.Errorf("%w: no destination", ErrRefused)
	}
	p, ok := m.protection(dst)
	if !ok {
		return nil, fmt.Errorf("%w: %s is in no protected network", ErrRefused, dst)
	}
	for _, infra := range m.cfg.Infrastructure {
		if infra.Overlaps(dst) {
			return nil, fmt.Errorf("%w: %s holds listed infrastructure (%s)", ErrRefused, dst, infra)
		}
	}
	host := dst.IsSingleIP()
	var out []Route
	if p.Blackhole && host {
		out = append(out, Route{Kind: Blackhole, Dst: dst})
	}
	if p.FlowSpec {
		for _, vec := range vectors {
			v := vec.Name
			r := Route{Kind: FlowSpec, Dst: dst, RateLimit: p.RateLimit}
			switch {
			case v == "tcp-syn":
				r.Proto, r.SYN = "tcp", true
			case v == "tcp-synack":
				// Reflected SYN-ACKs, not all TCP: the target's own
				// connections go on.
				r.Proto, r.SYNACK = "tcp", true
			case v == "udp-fragment":
				r.Proto = "udp" // ports unknown: all UDP to the target
			case strings.HasPrefix(v, "udp/"):
				var port int
				if _, err := fmt.Sscanf(v, "udp/%d", &port); err != nil || port <= 0 || port > 65535 {
					continue
				}
				r.Proto, r.SrcPort = "udp", uint16(port)
				if vec.MeanLength >= ampLength {
					r.MinLength = uint16(min(vec.MeanLength/2, 65535))
				}
			default:
				r.Proto = v
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s's network %s allows no mitigation of it", ErrRefused, dst, p.Prefix)
	}
	return out, nil
}

// Start mitigates attack id on dst with the given vectors: each route the
// safety rules allow is announced (or, in dry-run mode, logged); a route
// already announced for another attack is kept for both.
func (m *Mitigator) Start(ctx context.Context, id string, dst netip.Prefix, vectors []Vector) error {
	routes, err := m.Routes(dst, vectors)
	if err != nil {
		m.audit("mitigation_refused", id, err.Error())
		m.log.Warn("mitigation refused", "attack", id, "err", err)
		return err
	}
	var errs []error
	for _, r := range routes {
		m.mu.Lock()
		h := m.routes[r]
		if h != nil {
			h.attacks[id], h.until = true, time.Time{}
			m.mu.Unlock()
			continue
		}
		if len(m.routes) >= m.cfg.MaxRoutes {
			m.mu.Unlock()
			err := fmt.Errorf("%w: %d routes announced already (max_routes)", ErrRefused, m.cfg.MaxRoutes)
			m.audit("mitigation_refused", id, r.String()+": "+err.Error())
			m.log.Warn("mitigation refused", "attack", id, "route", r.String(), "err", err)
			errs = append(errs, err)
			continue
		}
		m.routes[r] = &held{attacks: map[string]bool{id: true}}
		m.mu.Unlock()
		errs = append(errs, m.apply(ctx, "announce", id, r))
	}
	return errors.Join(errs...)
}

// End says attack id is over: its routes are withdrawn after the hold
// time, unless another attack keeps them.
func (m *Mitigator) End(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until := m.now().Add(m.cfg.Hold)
	for _, h := range m.routes {
		if h.attacks[id] {
			delete(h.attacks, id)
			if len(h.attacks) == 0 {
				h.until = until
			}
		}
	}
}

// Sweep withdraws the routes whose hold time has passed.
func (m *Mitigator) Sweep(ctx context.Context) {
	now := m.now()
	var due []Route
	m.mu.Lock()
	for r, h := range m.routes {
		if len(h.attacks) == 0 && !h.until.After(now) {
			due = append(due, r)
			delete(m.routes, r)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(due, func(a, b Route) int { return cmp.Compare(a.String(), b.String()) })
	for _, r := range due {
		_ = m.apply(ctx, "withdraw", "", r)
	}
}

// WithdrawAll withdraws every route at once (a clean stop).
func (m *Mitigator) WithdrawAll(ctx context.Context) {
	m.mu.Lock()
	var all []Route
	for r := range m.routes {
		all = append(all, r)
	}
	clear(m.routes)
	m.mu.Unlock()
	for _, r := range all {
		_ = m.apply(ctx, "withdraw", "", r)
	}
}

// Announced returns the routes held now.
func (m *Mitigator) Announced() []Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Route, 0, len(m.routes))
	for r := range m.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

// Run sweeps every second until ctx ends.
func (m *Mitigator) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep(ctx)
		}
	}
}

// apply announces or withdraws r through every announcer.
func (m *Mitigator) apply(ctx context.Context, op, id string, r Route) error {
	if m.cfg.DryRun {
		m.audit("mitigation_dry_run", id, op+" "+r.String())
		m.log.Info("mitigation (dry run: nothing announced)", "op", op, "route", r.String(), "attack", id)
		return nil
	}
	var errs []error
	for _, a := range m.ann {
		var err error
		if op == "announce" {
			err = a.Announce(ctx, r)
		} else {
			err = a.Withdraw(ctx, r)
		}
		detail := op + " " + r.String() + " by " + a.Name()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", detail, err))
			m.audit("mitigation_failed", id, detail+": "+err.Error())
			m.log.Error("mitigation failed", "op", op, "route", r.String(), "by", a.Name(), "err", err)
			continue
		}
		m.audit("mitigation_"+op, id, detail)
		m.log.Info("mitigation", "op", op, "route", r.String(), "by", a.Name(), "attack", id)
	}
	return errors.Join(errs...)
}
