package detect

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Cache is a store.Reader for one hunt: it remembers the conn pair
// aggregates (which several detectors need) and values derived from them,
// so the store computes each once. Safe for concurrent use.
type Cache struct {
	store.Reader

	mu    sync.Mutex
	pairs map[store.Window]*entry[[]store.PairStat]
	memo  map[memoKey]*entry[any]
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
	return &Cache{Reader: r, pairs: map[store.Window]*entry[[]store.PairStat]{}, memo: map[memoKey]*entry[any]{}}
}

// Pairs implements store.Analytics from memory after the first call for a
// window.
func (c *Cache) Pairs(ctx context.Context, w store.Window, fn func(*store.PairStat) error) error {
	c.mu.Lock()
	e := c.pairs[w]
	if e == nil {
		e = &entry[[]store.PairStat]{}
		c.pairs[w] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		e.err = c.Reader.Pairs(ctx, w, func(p *store.PairStat) error {
			e.v = append(e.v, *p)
			return nil
		})
	})
	if e.err != nil {
		return e.err
	}
	for i := range e.v {
		p := e.v[i]
		if err := fn(&p); err != nil {
			return err
		}
	}
	return nil
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
	if p.Hosts < 10 || !env.IsLocal(src) || env.IsLocal(dst) {
		return 1
	}
	return 1 - 0.7*Ramp(p.Share(dst), 0.05, 0.5)
}

// PrevalenceOf returns the prevalence index of the window, computed once
// per hunt when r is a *Cache.
func PrevalenceOf(ctx context.Context, r store.Reader, w store.Window, env *Env) (*Prevalence, error) {
	return memoize(ctx, r, "prevalence", w, func(ctx context.Context, r store.Reader, w store.Window) (*Prevalence, error) {
		p := &Prevalence{dsts: map[netip.Addr]*DstInfo{}}
		hosts := map[netip.Addr]bool{}
		clients := map[netip.Addr]map[netip.Addr]bool{}
		err := r.Pairs(ctx, w, func(s *store.PairStat) error {
			if env.IsLocal(s.Src) {
				hosts[s.Src] = true
			}
			if env.IsLocal(s.Dst) {
				hosts[s.Dst] = true
			}
			d := p.dsts[s.Dst]
			if d == nil {
				d = &DstInfo{First: s.First, Last: s.Last}
				p.dsts[s.Dst] = d
				clients[s.Dst] = map[netip.Addr]bool{}
			}
			if s.First.Before(d.First) {
				d.First = s.First
			}
			if s.Last.After(d.Last) {
				d.Last = s.Last
			}
			d.Conns += s.Conns
			if env.IsLocal(s.Src) && !clients[s.Dst][s.Src] {
				clients[s.Dst][s.Src] = true
				d.Clients++
			}
			return nil
		})
		p.Hosts = len(hosts)
		return p, err
	})
}
