package store

import (
	"context"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Threat intelligence in the store: the indicators imported, the state of
// their sources, and the summary that makes retro-hunting cheap. Every
// value an indicator could match (addresses, names, URLs, hashes,
// fingerprints, user agents) is recorded at ingest once per value, log,
// sensor, destination port and day, with its count, first and last time
// and a few peers (docs/intel.md). Matching ten thousand indicators then
// reads that summary, not the records: its cost grows with indicators and
// days, not with rows.

// IntelWriter keeps indicators, sightings and the state of intel sources.
type IntelWriter interface {
	// PutIndicators stores indicators: new keys are added, known ones
	// updated. It returns how many of each.
	PutIndicators(ctx context.Context, inds []event.Indicator) (added, updated int, err error)
	// PutSightings replaces the stored sightings.
	PutSightings(ctx context.Context, s []event.Sighting) error
	// SetState remembers a value for a source (a TAXII collection's cursor).
	SetState(ctx context.Context, key, value string) error
	// DeleteIndicators removes every indicator of a source and returns
	// how many there were; the sightings are the retro-hunt's to redo.
	DeleteIndicators(ctx context.Context, source string) (int, error)
}

// IntelReader reads what IntelWriter keeps.
type IntelReader interface {
	// Indicators streams the stored indicators in key order.
	Indicators(ctx context.Context, fn func(*event.Indicator) error) error
	// Sightings streams the stored sightings, by indicator key, sensor,
	// log and observed value.
	Sightings(ctx context.Context, fn func(*event.Sighting) error) error
	// State returns a value SetState stored, "" when none.
	State(ctx context.Context, key string) (string, error)
}

// Observed is one value that indicators can match, as recorded at ingest.
type Observed struct {
	Kind event.IOCType // IOCIP, IOCDomain, IOCURL, IOCMD5, IOCSHA1, IOCSHA256, IOCJA3, IOCJA3S, IOCJA4, IOCCertSHA1, IOCCertSHA256, IOCUserAgent
	// Value is the value, except for an address (IOCIP): Addr holds it,
	// unformatted, and Value is "" (String formats it).
	Value string
	Addr  netip.Addr
	Port  uint16 // the destination port, for a destination address; else 0
	Log   string // the log it was seen in
	// Peer is the other end: the client that asked for a name, fetched a
	// URL or file, or connected to an address; the server a source
	// address connected to.
	Peer   netip.Addr
	Sensor string
	TS     time.Time
}

// String returns the observed value as indicators hold theirs.
func (o *Observed) String() string {
	if o.Kind == event.IOCIP {
		return o.Addr.String()
	}
	return o.Value
}

// Observe calls fn for every observable value of a batch. o is reused
// between calls.
func Observe(b *event.Batch, fn func(o *Observed)) {
	var o Observed
	emit := func(kind event.IOCType, value string, port uint16, log string, peer netip.Addr, src event.Source, ts time.Time) {
		if value == "" {
			return
		}
		o = Observed{Kind: kind, Value: value, Port: port, Log: log, Peer: peer, Sensor: src.Sensor, TS: ts}
		fn(&o)
	}
	addr := func(a netip.Addr, port uint16, log string, peer netip.Addr, src event.Source, ts time.Time) {
		o = Observed{Kind: event.IOCIP, Addr: a.Unmap(), Port: port, Log: log, Peer: peer, Sensor: src.Sensor, TS: ts}
		fn(&o)
	}
	// Both ends of a connection or flow: the destination with its port.
	ends := func(src, dst netip.Addr, dport uint16, log string, s event.Source, ts time.Time) {
		if dst.IsValid() {
			addr(dst, dport, log, src, s, ts)
		}
		if src.IsValid() {
			addr(src, 0, log, dst, s, ts)
		}
	}
	for i := range b.Conns {
		c := &b.Conns[i]
		ends(c.SrcIP, c.DstIP, c.DstPort, "conn", c.Src, c.TS)
	}
	for i := range b.DNS {
		d := &b.DNS[i]
		if q := normName(d.Query); q != "" {
			emit(event.IOCDomain, q, 0, "dns", d.SrcIP, d.Src, d.TS)
		}
		for _, a := range d.Answers {
			if ip, err := netip.ParseAddr(a); err == nil {
				addr(ip, 0, "dns", d.SrcIP, d.Src, d.TS)
			} else if n := normName(a); n != "" {
				emit(event.IOCDomain, n, 0, "dns", d.SrcIP, d.Src, d.TS)
			}
		}
	}
	for i := range b.HTTP {
		h := &b.HTTP[i]
		if h.Host != "" {
			host := HostOnly(h.Host)
			if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
				addr(ip, 0, "http", h.SrcIP, h.Src, h.TS)
			} else if n := normName(host); n != "" {
				emit(event.IOCDomain, n, 0, "http", h.SrcIP, h.Src, h.TS)
			}
			emit(event.IOCURL, URLKey(h.Host, h.URI), 0, "http", h.SrcIP, h.Src, h.TS)
		}
		emit(event.IOCUserAgent, h.UserAgent, 0, "http", h.SrcIP, h.Src, h.TS)
	}
	for i := range b.TLS {
		t := &b.TLS[i]
		if n := normName(t.ServerName); n != "" {
			emit(event.IOCDomain, n, 0, "ssl", t.SrcIP, t.Src, t.TS)
		}
		emit(event.IOCJA3, strings.ToLower(t.JA3), 0, "ssl", t.SrcIP, t.Src, t.TS)
		emit(event.IOCJA3S, strings.ToLower(t.JA3S), 0, "ssl", t.SrcIP, t.Src, t.TS)
		emit(event.IOCJA4, strings.ToLower(t.JA4), 0, "ssl", t.SrcIP, t.Src, t.TS)
		if len(t.CertChainFPs) > 0 {
			if k, ok := certKind(t.CertChainFPs[0]); ok {
				emit(k, strings.ToLower(t.CertChainFPs[0]), 0, "ssl", t.SrcIP, t.Src, t.TS)
			}
		}
	}
	for i := range b.X509 {
		x := &b.X509[i]
		if k, ok := certKind(x.Fingerprint); ok {
			emit(k, strings.ToLower(x.Fingerprint), 0, "x509", netip.Addr{}, x.Src, x.TS)
		}
	}
	for i := range b.Files {
		f := &b.Files[i]
		emit(event.IOCMD5, strings.ToLower(f.MD5), 0, "files", f.SrcIP, f.Src, f.TS)
		emit(event.IOCSHA1, strings.ToLower(f.SHA1), 0, "files", f.SrcIP, f.Src, f.TS)
		emit(event.IOCSHA256, strings.ToLower(f.SHA256), 0, "files", f.SrcIP, f.Src, f.TS)
	}
	// Flows: where a router exports NetFlow and no Zeek sensor sits, they
	// are the only trace of an address.
	for i := range b.Flows {
		f := &b.Flows[i]
		ends(f.SrcIP, f.DstIP, f.DstPort, "flow", f.Src, f.TS)
	}
}

// certKind tells a certificate fingerprint's hash by its length (Zeek's
// X509::hash_function is SHA-256 by default, SHA-1 in older setups).
func certKind(fp string) (event.IOCType, bool) {
	switch len(fp) {
	case 64:
		return event.IOCCertSHA256, true
	case 40:
		return event.IOCCertSHA1, true
	}
	return "", false
}

func normName(s string) string {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if !strings.Contains(s, ".") {
		return ""
	}
	return s
}

// HostOnly strips a port from an HTTP Host header value ("a.example:8080",
// "[2001:db8::1]:8080").
func HostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i > 0 {
			return h[:i+1]
		}
	}
	if i := strings.LastIndexByte(h, ':'); i > 0 && strings.Count(h, ":") == 1 {
		return h[:i]
	}
	return h
}

// URLKey is the matching form of a URL seen in an HTTP log: the host (no
// port, lower-case) and the path without query or fragment, as
// intel.Normalize makes an IOCURL indicator's value.
func URLKey(host, uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if uri == "" || uri[0] != '/' {
		uri = "/" + uri
	}
	return strings.ToLower(HostOnly(host)) + uri
}

// ValueID identifies an observed value: a hash of its kind and value.
func ValueID(kind event.IOCType, value string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(kind))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(value))
	return h.Sum64() >> 1 // fits a signed 64-bit column too
}

// NameKeys returns the keys a domain is matched on: its registered domain
// (by the public suffix list) and its public suffix. A domain indicator
// matches names with the same registered domain that are it or end in
// "."+it; an indicator that is itself a public suffix (a dynamic-DNS
// zone) matches names whose suffix is it.
func NameKeys(name string) (registered, suffix string) {
	suffix, _ = publicsuffix.PublicSuffix(name)
	registered, err := publicsuffix.EffectiveTLDPlusOne(name)
	if err != nil {
		registered = name
	}
	return registered, suffix
}

// BucketKey is the key of an address's bucket of 65,536 addresses (a /16
// of IPv4): the high half of its 128 bits and the bucket folded into one
// integer, as SQL computes it too (xor(hi, lo >> 16)). A network
// indicator lists the keys of the buckets it spans; equal keys are
// candidates, which the full comparison then decides.
func BucketKey(hi, lo uint64) uint64 { return hi ^ lo>>16 }

// AddrKey returns an address as 128 bits (IPv4 as ::ffff:a.b.c.d).
func AddrKey(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// PrefixRange returns the first and last address of a prefix as 128 bits.
func PrefixRange(p netip.Prefix) (loHi, loLo, hiHi, hiLo uint64) {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	loHi, loLo = AddrKey(p.Addr())
	var hostHi, hostLo uint64
	switch {
	case bits >= 128:
		hostHi, hostLo = 0, 0
	case bits >= 64:
		hostHi, hostLo = 0, ^uint64(0)>>(bits-64)
	default:
		hostHi, hostLo = ^uint64(0)>>bits, ^uint64(0)
	}
	return loHi, loLo, loHi | hostHi, loLo | hostLo
}

// Matches reports whether indicator ind matches observed value o (its
// kind and value), as every backend must decide it.
func Matches(ind *event.Indicator, kind event.IOCType, value string, port uint16) bool {
	switch ind.Type {
	case event.IOCIP:
		return kind == event.IOCIP && value == ind.Value && (ind.Port == 0 || port == ind.Port)
	case event.IOCCIDR:
		if kind != event.IOCIP {
			return false
		}
		p, err1 := netip.ParsePrefix(ind.Value)
		a, err2 := netip.ParseAddr(value)
		return err1 == nil && err2 == nil && p.Contains(a)
	case event.IOCDomain:
		if kind != event.IOCDomain {
			return false
		}
		// On the keys the stores join on: the registered domain, or the
		// suffix when the indicator is a public suffix itself.
		reg, suffix := NameKeys(value)
		if r := IndicatorRegDomain(ind.Value); r != "" {
			return reg == r && (value == ind.Value || strings.HasSuffix(value, "."+ind.Value))
		}
		return suffix == ind.Value
	}
	return kind == ind.Type && value == ind.Value
}

// MergePeers adds peers to a list of at most max distinct addresses.
func MergePeers(list []netip.Addr, max int, peers ...netip.Addr) []netip.Addr {
	for _, p := range peers {
		if len(list) >= max {
			break
		}
		if p.IsValid() && !slices.Contains(list, p) {
			list = append(list, p)
		}
	}
	return list
}

// MaxPeers is how many peers a sighting keeps.
const MaxPeers = 32

// WindowDays returns the first and last UTC day a window touches (an open
// bound reaches far out).
func WindowDays(w Window) (first, last time.Time) {
	first, last = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	if !w.Since.IsZero() {
		first = w.Since.UTC().Truncate(24 * time.Hour)
	}
	if !w.Until.IsZero() {
		last = w.Until.UTC().Add(-time.Microsecond).Truncate(24 * time.Hour)
	}
	return first, last
}

// InWindowDays reports whether t falls on a day the window touches.
func InWindowDays(w Window, t time.Time) bool {
	first, last := WindowDays(w)
	d := t.UTC().Truncate(24 * time.Hour)
	return !d.Before(first) && !d.After(last)
}
