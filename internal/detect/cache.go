package detect

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Cache is a store.Reader for one hunt: it remembers values derived from
// the store that several detectors need (prevalence, the name index), so
// the store computes each once. The aggregates themselves are asked for
// with each detector's filters and not kept. Safe for concurrent use.
type Cache struct {
	store.Reader

	mu   sync.Mutex
	memo map[memoKey]*entry[any]
}

type memoKey struct {
	name string
	w    store.Window
}

// entry computes its value once.
type entry[T any] struct {
	once sync.Once
	v    T
	err  error
}

// NewCache wraps r.
func NewCache(r store.Reader) *Cache {
	return &Cache{Reader: r, memo: map[memoKey]*entry[any]{}}
}

// memoize computes a value once per name and window.
func memoize[T any](ctx context.Context, r store.Reader, name string, w store.Window, compute func(context.Context, store.Reader, store.Window) (T, error)) (T, error) {
	c, ok := r.(*Cache)
	if !ok {
		return compute(ctx, r, w)
	}
	c.mu.Lock()
	k := memoKey{name, w}
	e := c.memo[k]
	if e == nil {
		e = &entry[any]{}
		c.memo[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.v, e.err = compute(ctx, r, w) })
	if e.err != nil {
		if errors.Is(e.err, store.ErrOutOfMemory) {
			// Not kept: with the memory to itself (a detector run
			// again alone) it may pass.
			c.mu.Lock()
			if c.memo[k] == e {
				delete(c.memo, k)
			}
			c.mu.Unlock()
		}
		var zero T
		return zero, e.err
	}
	return e.v.(T), nil
}

// Prevalence says how common a destination is among internal hosts and
// since when it is seen: the rarity every detector weighs.
type Prevalence struct {
	// Hosts is the number of distinct internal addresses seen in conn.
	Hosts int
	dsts  map[netip.Addr]*DstInfo
}

// DstInfo is what is known of one destination.
type DstInfo struct {
	Clients     int // distinct internal hosts that connected to it
	First, Last time.Time
	Conns       int64
}

// Of returns what is known of dst (the zero DstInfo when never seen).
func (p *Prevalence) Of(dst netip.Addr) DstInfo {
	if d := p.dsts[dst]; d != nil {
		return *d
	}
	return DstInfo{}
}

// Share returns the fraction of internal hosts that talked to dst.
func (p *Prevalence) Share(dst netip.Addr) float64 {
	if p.Hosts == 0 {
		return 0
	}
	return float64(p.Of(dst).Clients) / float64(p.Hosts)
}

// Damp returns a factor in [0.3, 1] that lowers scores of traffic from an
// internal host to a destination many internal hosts use: 1 up to 5 % of
// hosts, falling to 0.3 at half of them. Traffic that is not internal to
// external, or networks of fewer than 10 hosts, are not damped.
func (p *Prevalence) Damp(env *Env, src, dst netip.Addr) float64 {
	if !env.IsLocal(src) || env.IsLocal(dst) {
		return 1
	}
	return p.damp(dst)
}

func (p *Prevalence) damp(dst netip.Addr) float64 {
	if p.Hosts < 10 {
		return 1
	}
	return 1 - 0.7*Ramp(p.Share(dst), 0.05, 0.5)
}

// PrevalenceOf returns the prevalence index of the window, computed once
// per hunt when r is a *Cache.
func PrevalenceOf(ctx context.Context, r store.Reader, w store.Window, env *Env) (*Prevalence, error) {
	return memoize(ctx, r, "prevalence", w, func(ctx context.Context, r store.Reader, w store.Window) (*Prevalence, error) {
		p := &Prevalence{dsts: map[netip.Addr]*DstInfo{}}
		local, err := LocalAddrsOf(ctx, r, w, env)
		if err != nil {
			return nil, err
		}
		p.Hosts = len(local)
		err = r.Destinations(ctx, w, local, func(d *store.DstStat) error {
			p.dsts[d.Dst] = &DstInfo{Clients: int(d.Clients), First: d.First, Last: d.Last, Conns: d.Conns}
			return nil
		})
		return p, err
	})
}

// LocalAddrsOf returns the addresses of the window inside env's local
// networks, computed once per hunt when r is a *Cache.
func LocalAddrsOf(ctx context.Context, r store.Reader, w store.Window, env *Env) ([]netip.Addr, error) {
	return memoize(ctx, r, "local addresses", w, func(ctx context.Context, r store.Reader, w store.Window) ([]netip.Addr, error) {
		return r.LocalAddrs(ctx, w, env.Local)
	})
}

// SidesOf returns the store filter for records from src's side to dst's:
// Inside is env's local addresses of the window.
func SidesOf(ctx context.Context, r store.Reader, w store.Window, env *Env, src, dst store.Scope) (store.Sides, error) {
	local, err := LocalAddrsOf(ctx, r, w, env)
	return store.Sides{Inside: local, Src: src, Dst: dst}, err
}

// Popular returns the destinations whose damping alone takes any score
// to at most limit: detectors that damp by prevalence need not look at
// them. Only destinations outside the local networks are damped.
func (p *Prevalence) Popular(env *Env, limit float64) []netip.Addr {
	var out []netip.Addr
	for a := range p.dsts {
		if !env.IsLocal(a) && p.damp(a) <= limit+1e-9 { // 1-0.7 is 0.30000000000000004
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// Rare returns the destinations outside the local networks that at most
// max internal hosts contact, in address order.
func (p *Prevalence) Rare(env *Env, maxClients int) []netip.Addr {
	var out []netip.Addr
	for a, d := range p.dsts {
		if !env.IsLocal(a) && d.Clients <= maxClients {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}
