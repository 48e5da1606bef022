package store

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Filters let a detector say which aggregates it has a use for, so that a
// backend drops the rest where the data is instead of sending millions of
// rows to be thrown away (decision 0004). Every filter's zero value keeps
// everything.

// Scope says on which side of the local addresses an address must be.
type Scope uint8

// Scopes.
const (
	Anywhere Scope = iota // no condition
	Inside                // one of the Sides' Inside addresses
	Outside               // not one of them
)

// Sides says where a conn record's two ends must be.
type Sides struct {
	// Inside are the addresses that count as inside: the window's local
	// addresses, from LocalAddrs. A list rather than networks, so that a
	// backend tests membership of a small set instead of prefixes on every
	// record.
	Inside   []netip.Addr
	Src, Dst Scope
}

// Set returns the Inside addresses as a set.
func (s Sides) Set() map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(s.Inside))
	for _, a := range s.Inside {
		m[a] = true
	}
	return m
}

// Keep reports whether a record from src to dst passes, given in = Set().
func (s Sides) Keep(in map[netip.Addr]bool, src, dst netip.Addr) bool {
	return s.Src.holds(in, src) && s.Dst.holds(in, dst)
}

func (sc Scope) holds(in map[netip.Addr]bool, a netip.Addr) bool {
	return sc == Anywhere || in[a] == (sc == Inside)
}

// InNets reports whether a is in one of nets (IPv4-mapped IPv6 addresses
// count as IPv4).
func InNets(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// PairFilter narrows Pairs.
type PairFilter struct {
	Sides
	// MinPairConns keeps (sensor, src, dst) with at least this many
	// records, all ports together.
	MinPairConns int64
	// MinDuration keeps pair stats whose longest or summed duration
	// reaches it.
	MinDuration time.Duration
	// Dsts, when not nil, keeps only these destinations; Srcs, when not
	// nil, only these sources.
	Dsts []netip.Addr
	Srcs []netip.Addr
	// SkipDsts drops these destinations.
	SkipDsts []netip.Addr
	// MinFailedShare keeps pair stats whose share of failed connections
	// reaches it (0 keeps all).
	MinFailedShare float64
}

// FlowFilter narrows DailyFlows and HostDays.
type FlowFilter struct {
	Sides
	// MinPairSrcBytes keeps (sensor, src, dst) to which src sent at least
	// this many bytes (orig_bytes) in the window, all days together.
	MinPairSrcBytes int64
}

// SeriesFilter narrows Series.
type SeriesFilter struct {
	// MinCount keeps keys with at least this many records.
	MinCount int
	// SkipDsts (SeriesConn, SeriesSessions) and SkipNames (SeriesTLSName,
	// SeriesHTTPHost) drop keys to these destinations.
	SkipDsts  []netip.Addr
	SkipNames []string
	// Dsts, when not nil, keeps only keys to these destinations
	// (SeriesConn, SeriesSessions).
	Dsts []netip.Addr
	// MinDuration keeps SeriesSessions keys whose durations add up to it.
	MinDuration time.Duration
}

// DstStat is what is known of one destination address.
type DstStat struct {
	Dst         netip.Addr
	Clients     int64 // distinct sources among the clients asked about
	Conns       int64
	First, Last time.Time
}

// HostDay is the bytes one source sent on one UTC day.
type HostDay struct {
	Sensor   string
	Src      netip.Addr
	Day      time.Time
	SrcBytes int64 // sum of orig_bytes
}

// DNSFilter narrows DNSNames.
type DNSFilter struct {
	// RCode keeps the records answered with this rcode name
	// ("NXDOMAIN"); "" keeps all.
	RCode string
	// Srcs, when not nil, keeps only the queries of these clients.
	Srcs []netip.Addr
}

// UploadFilter narrows Uploads.
type UploadFilter struct {
	// Sides says where the sender (Src) and receiver (Dst) must be.
	Sides
	// MinBytes is the least a transfer sends.
	MinBytes int64
}

// NameFilter selects PassiveDNS rows: those whose address is one of Addrs,
// whose name is one of Names or under one, or has one of Labels as one of
// its dot-separated labels (all lower-case); all empty keep every row.
type NameFilter struct {
	Addrs  []netip.Addr
	Names  []string
	Labels []string
}

// Keep reports whether a row of name and address passes.
func (f NameFilter) Keep(name string, a netip.Addr) bool {
	if len(f.Addrs) == 0 && len(f.Names) == 0 && len(f.Labels) == 0 || slices.Contains(f.Addrs, a) {
		return true
	}
	if len(f.Labels) > 0 && slices.ContainsFunc(strings.Split(name, "."), func(l string) bool { return slices.Contains(f.Labels, l) }) {
		return true
	}
	for _, n := range f.Names {
		if name == n || strings.HasSuffix(name, "."+n) {
			return true
		}
	}
	return false
}

// HTTPHostName reports whether an HTTP Host header is a name PassiveDNS
// keeps: not an address, without a port.
func HTTPHostName(h string) bool {
	return h != "" && !strings.Contains(h, ":") && strings.Trim(h, "0123456789.") != ""
}

// PrintFilter selects ServerPrints rows: those of an address in Addrs or
// with a value in Values; both empty keep every row.
type PrintFilter struct {
	Addrs  []netip.Addr
	Values []string
}

// Keep reports whether a row of value and address passes.
func (f PrintFilter) Keep(value string, a netip.Addr) bool {
	return len(f.Addrs) == 0 && len(f.Values) == 0 || slices.Contains(f.Addrs, a) || slices.Contains(f.Values, value)
}
