package store

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// ValueKey identifies an observable value in one log of one sensor, with
// the keys indicators match it on.
type ValueKey struct {
	ID     uint64 // ValueID(Kind, Value)
	Kind   event.IOCType
	Value  string
	Log    string
	Sensor string
	Port   uint16
	// Match keys: RegDomain and Suffix of a name (NameKeys), the 128 bits
	// of an address (AddrKey).
	RegDomain, Suffix string
	AddrHi, AddrLo    event.Opt[uint64]
	// MatchKey is what a retro-hunt joins indicators on (IndicatorRow's
	// MatchKey): a name's registered domain as a ValueID, any other
	// value's ID. Bucket is an address's BucketKey, which networks join on.
	MatchKey uint64
	Bucket   event.Opt[uint64]
}

// DailyRow is a value's records of one UTC day in one ingest batch,
// aggregated (table obs_daily, append-only). Seq numbers the batch; the
// backend sets it.
type DailyRow struct {
	ValueKey
	Seq         int64
	Day         time.Time
	Count       uint64
	First, Last time.Time
	Peers       []string // the first MaxPeers peers in text order
}

// ObservedRow is a value's records over all time (table obs_value): the
// backend compacts daily rows into it.
type ObservedRow struct {
	ValueKey
	Count       uint64
	First, Last time.Time
	Days        []string // UTC days, "2006-01-02", sorted
	Peers       []string
}

// IndicatorRow is an indicator as stored, with its match keys.
type IndicatorRow struct {
	event.Indicator
	Key string
	// RegDomain of a domain indicator; "" when the value is itself a
	// public suffix (it then matches names whose suffix it is).
	RegDomain string
	// The range of a CIDR indicator (or an address) as 128-bit bounds.
	LoHi, LoLo, HiHi, HiLo event.Opt[uint64]
	// MatchKey equals the MatchKey of the values the indicator may match
	// (ValueKey): the registered domain of a name as a ValueID, the
	// ValueID of other values. None for networks (they join on the
	// buckets they span), public-suffix names and types never matched.
	MatchKey event.Opt[uint64]
	Imported time.Time
}

// NewIndicatorRow computes an indicator's stored form.
func NewIndicatorRow(i event.Indicator, imported time.Time) IndicatorRow {
	r := IndicatorRow{Indicator: i, Key: i.Key(), Imported: imported}
	switch i.Type {
	case event.IOCDomain:
		r.RegDomain = IndicatorRegDomain(i.Value)
		if r.RegDomain != "" {
			r.MatchKey = event.Some(ValueID(event.IOCDomain, r.RegDomain))
		}
	case event.IOCCIDR:
		if p, err := netip.ParsePrefix(i.Value); err == nil {
			a, b, c, d := PrefixRange(p)
			r.LoHi, r.LoLo, r.HiHi, r.HiLo = event.Some(a), event.Some(b), event.Some(c), event.Some(d)
		}
	default:
		if i.Type.Matchable() {
			r.MatchKey = event.Some(ValueID(i.Type, i.Value))
		}
	}
	return r
}

// IndicatorRows computes the stored form of indicators imported at
// imported, one row per key: of indicators with the same key, the last
// wins.
func IndicatorRows(inds []event.Indicator, imported time.Time) []IndicatorRow {
	rows := make([]IndicatorRow, 0, len(inds))
	seen := make(map[string]int, len(inds))
	for _, i := range inds {
		r := NewIndicatorRow(i, imported)
		if j, ok := seen[r.Key]; ok {
			rows[j] = r
			continue
		}
		seen[r.Key] = len(rows)
		rows = append(rows, r)
	}
	return rows
}

// IndicatorRegDomain returns the registered domain a domain indicator is
// matched under, or "" when the indicator is itself a public suffix (a
// dynamic-DNS zone on the list: it matches the names whose suffix it is).
func IndicatorRegDomain(name string) string {
	reg, suffix := NameKeys(name)
	if suffix == name {
		return ""
	}
	return reg
}

// Summarize aggregates a batch's observable values into daily summary rows.
//
// It runs on every ingested batch, so it does one map lookup per
// observation and formats an address once per distinct value and a peer
// once per batch.
func Summarize(b *event.Batch) []DailyRow {
	// Keys hold small indexes for the kind, log and sensor, and addresses
	// unformatted, so that hashing them is cheap: addresses, the bulk of
	// the observations, hash no string at all.
	type ipKey struct {
		addr   netip.Addr
		port   uint16
		log    uint8
		sensor uint16
	}
	type strKey struct {
		value  string
		kind   uint8
		log    uint8
		sensor uint16
	}
	ipAggs := map[ipKey][]*dayAgg{}
	strAggs := map[strKey][]*dayAgg{}
	var kinds, logs, sensors []string
	index := func(list *[]string, s string) int {
		for i, x := range *list {
			if x == s {
				return i
			}
		}
		*list = append(*list, s)
		return len(*list) - 1
	}
	// Peers are numbered in order of appearance; sets hold the numbers.
	var peers peerTable
	Observe(b, func(o *Observed) {
		log, sensor := uint8(index(&logs, o.Log)), uint16(index(&sensors, o.Sensor)) //nolint:gosec // G115: six logs, sensors per batch
		var d *dayAgg
		if o.Kind == event.IOCIP {
			d = dayOf(ipAggs, ipKey{addr: o.Addr, port: o.Port, log: log, sensor: sensor}, o.TS)
		} else {
			d = dayOf(strAggs, strKey{value: o.Value, kind: uint8(index(&kinds, string(o.Kind))), log: log, sensor: sensor}, o.TS) //nolint:gosec // G115: a dozen kinds
		}
		d.count++
		d.first, d.last = event.Earliest(d.first, o.TS), event.Latest(d.last, o.TS)
		if o.Peer.IsValid() {
			d.peers.add(peers.index(o.Peer), peers.names)
		}
	})
	n := 0
	for _, ds := range ipAggs {
		n += len(ds)
	}
	for _, ds := range strAggs {
		n += len(ds)
	}
	// Sized at once: a batch of varied traffic has tens of thousands of
	// rows, and growing the slice copied them over and over (a quarter
	// of the summary's time on the 5 M replayed conn records of
	// bench/ingest.sh).
	out := make([]DailyRow, 0, n)
	emit := func(kind event.IOCType, value string, addr netip.Addr, log, sensor string, port uint16, ds []*dayAgg) {
		k := ValueKey{ID: ValueID(kind, value), Kind: kind, Value: value, Log: log, Sensor: sensor, Port: port}
		k.MatchKey = k.ID
		switch kind {
		case event.IOCDomain:
			k.RegDomain, k.Suffix = NameKeys(value)
			k.MatchKey = ValueID(event.IOCDomain, k.RegDomain)
		case event.IOCIP:
			hi, lo := AddrKey(addr)
			k.AddrHi, k.AddrLo, k.Bucket = event.Some(hi), event.Some(lo), event.Some(BucketKey(hi, lo))
		}
		for _, d := range ds {
			out = append(out, DailyRow{ValueKey: k, Day: time.Unix(d.day*86400, 0).UTC(), Count: d.count, First: d.first, Last: d.last,
				Peers: d.peers.list(peers.names)})
		}
	}
	for k, ds := range ipAggs {
		emit(event.IOCIP, k.addr.String(), k.addr, logs[k.log], sensors[k.sensor], k.port, ds)
	}
	for k, ds := range strAggs {
		emit(event.IOCType(kinds[k.kind]), k.value, netip.Addr{}, logs[k.log], sensors[k.sensor], 0, ds)
	}
	return out
}

// dayAgg is a value's observations of one UTC day in a batch.
type dayAgg struct {
	day         int64 // days since the Unix epoch, UTC
	count       uint64
	first, last time.Time
	peers       peerSet
}

// dayOf returns the aggregate of key k on the day of ts, added if new.
func dayOf[K comparable](m map[K][]*dayAgg, k K, ts time.Time) *dayAgg {
	day := unixDay(ts)
	ds := m[k]
	for i := len(ds) - 1; i >= 0; i-- { // a batch spans a day or two
		if ds[i].day == day {
			return ds[i]
		}
	}
	d := &dayAgg{day: day, first: ts, last: ts}
	m[k] = append(ds, d)
	return d
}

// unixDay returns the UTC day of t as days since the Unix epoch.
func unixDay(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 86399) / 86400
	}
	return s / 86400
}

// peerTable numbers the peers of a batch and formats each once.
type peerTable struct {
	byAddr map[netip.Addr]int32
	names  []string
}

func (t *peerTable) index(a netip.Addr) int32 {
	if i, ok := t.byAddr[a]; ok {
		return i
	}
	if t.byAddr == nil {
		t.byAddr = map[netip.Addr]int32{}
	}
	i := int32(len(t.names)) //nolint:gosec // G115: peers of one batch
	t.byAddr[a] = i
	t.names = append(t.names, a.String())
	return i
}

// peerSet keeps the first MaxPeers distinct peers in text order, as
// numbers of a peerTable.
type peerSet struct {
	idx []int32 // sorted by names[idx]
}

// add adds peer i, whose name is names[i].
func (p *peerSet) add(i int32, names []string) {
	if slices.Contains(p.idx, i) {
		return
	}
	s := names[i]
	if len(p.idx) == MaxPeers && s >= names[p.idx[MaxPeers-1]] {
		return
	}
	at, _ := slices.BinarySearchFunc(p.idx, s, func(j int32, s string) int { return strings.Compare(names[j], s) })
	p.idx = slices.Insert(p.idx, at, i)
	if len(p.idx) > MaxPeers {
		p.idx = p.idx[:MaxPeers]
	}
}

// list returns the peers' names.
func (p *peerSet) list(names []string) []string {
	if len(p.idx) == 0 {
		return nil
	}
	out := make([]string, len(p.idx))
	for k, i := range p.idx {
		out[k] = names[i]
	}
	return out
}

// IntelSchema describes the intel and summary tables.
type IntelSchema struct {
	Values     *Table[ObservedRow]
	Daily      *Table[DailyRow]
	Indicators *Table[IndicatorRow]
}

// Tables returns their descriptions.
func (s *IntelSchema) Tables() []TableInfo {
	return []TableInfo{s.Values.Info(), s.Daily.Info(), s.Indicators.Info()}
}

func count64(v uint64) event.Opt[uint64] { return event.Some(v) }

func timeOf(t time.Time) (time.Time, bool) { return t, !t.IsZero() }

// rawCol marks c to be stored uncompressed.
func rawCol[T any](c Column[T]) Column[T] {
	c.Raw = true
	return c
}

// keyColumns are the columns of a ValueKey.
func keyColumns[T any](k func(*T) *ValueKey) []Column[T] {
	return []Column[T]{
		countCol("id", "", "hash of kind and value", func(r *T) event.Opt[uint64] { return count64(k(r).ID) }),
		{Name: "kind", Type: TypeString, Doc: "ip, domain, url, md5, sha1, sha256, ja3, ja3s, ja4, x509-sha1, x509-sha256, user-agent", NotNull: true,
			String: func(r *T) string { return string(k(r).Kind) }},
		{Name: "value", Type: TypeString, Doc: "the value, normalised as indicators are", NotNull: true, String: func(r *T) string { return k(r).Value }},
		{Name: "log", Type: TypeString, Doc: "the log it was seen in", NotNull: true, String: func(r *T) string { return k(r).Log }},
		{Name: "sensor", Type: TypeString, Doc: "the sensor ('' when none)", NotNull: true, String: func(r *T) string { return k(r).Sensor }},
		portCol("port", "", "destination port, for a destination address; else 0", func(r *T) (uint16, bool) { return k(r).Port, true }),
		strCol("regdom", "", "registered domain of a name (public suffix list)", func(r *T) string { return k(r).RegDomain }),
		strCol("suffix", "", "public suffix of a name", func(r *T) string { return k(r).Suffix }),
		countCol("addr_hi", "", "an address's first 64 bits (IPv4 as ::ffff:a.b.c.d)", func(r *T) event.Opt[uint64] { return k(r).AddrHi }),
		countCol("addr_lo", "", "an address's last 64 bits", func(r *T) event.Opt[uint64] { return k(r).AddrLo }),
	}
}

// mkeyCol and bkeyCol are a summary table's match key columns. They come
// last: stores made before them have them appended by a migration.
func mkeyCol[T any](k func(*T) *ValueKey) Column[T] {
	return countCol("mkey", "", "match key: a name's registered domain as an id, else id",
		func(r *T) event.Opt[uint64] { return count64(k(r).MatchKey) })
}

func bkeyCol[T any](k func(*T) *ValueKey) Column[T] {
	return countCol("bkey", "", "an address's bucket of 65,536 (a /16 of IPv4), xor(addr_hi, addr_lo >> 16): networks join on it",
		func(r *T) event.Opt[uint64] { return k(r).Bucket })
}

// NewIntelSchema returns the intel and summary tables.
func NewIntelSchema() *IntelSchema {
	type V = ObservedRow
	values := &Table[V]{SQLName: "obs_value",
		Doc: "Every value an indicator could match (addresses, names, URLs, hashes, fingerprints, user agents), per log, sensor and destination port, over all time: the summary retro-hunts read (docs/intel.md). Compacted from obs_daily up to the batch dwell_meta's summary_merged names.",
		Columns: append(keyColumns(func(r *V) *ValueKey { return &r.ValueKey }),
			countCol("count", "", "records", func(r *V) event.Opt[uint64] { return count64(r.Count) }),
			timeCol("first", "", "first seen", func(r *V) (time.Time, bool) { return timeOf(r.First) }),
			timeCol("last", "", "last seen", func(r *V) (time.Time, bool) { return timeOf(r.Last) }),
			// Uncompressed strings, not lists: a retro-hunt reads all of
			// them, and reading 42,000 rows of them took 2 ms, of a list
			// or a compressed string column 12 to 15 ms.
			rawCol(strCol("days", "", "UTC days seen (YYYY-MM-DD), comma-separated", func(r *V) string { return strings.Join(r.Days, ",") })),
			rawCol(strCol("peers", "", "the first peers in text order, comma-separated: clients of a name, URL or file; the other end of an address",
				func(r *V) string { return strings.Join(r.Peers, ",") })),
			mkeyCol(func(r *V) *ValueKey { return &r.ValueKey }),
			bkeyCol(func(r *V) *ValueKey { return &r.ValueKey }),
		)}
	type D = DailyRow
	daily := &Table[D]{SQLName: "obs_daily",
		Doc: "The same per UTC day and ingest batch, appended at ingest: windowed retro-hunts read it, and its batches not yet compacted into obs_value.",
		Columns: append(keyColumns(func(r *D) *ValueKey { return &r.ValueKey }),
			countCol("seq", "", "the ingest batch", func(r *D) event.Opt[uint64] { return count64(uint64(r.Seq)) }), //nolint:gosec // G115: positive
			timeCol("day", "", "the UTC day", func(r *D) (time.Time, bool) { return r.Day, true }),
			countCol("count", "", "records", func(r *D) event.Opt[uint64] { return count64(r.Count) }),
			timeCol("first", "", "first seen that day", func(r *D) (time.Time, bool) { return timeOf(r.First) }),
			timeCol("last", "", "last seen that day", func(r *D) (time.Time, bool) { return timeOf(r.Last) }),
			// One string, not a list: the driver writes a list element by
			// element, a string once per row.
			strCol("peers", "", "the first peers in text order, comma-separated", func(r *D) string { return strings.Join(r.Peers, ",") }),
			mkeyCol(func(r *D) *ValueKey { return &r.ValueKey }),
			bkeyCol(func(r *D) *ValueKey { return &r.ValueKey }),
		)}
	type I = IndicatorRow
	optInt := func(v int) event.Opt[uint64] {
		if v < 0 {
			return event.Opt[uint64]{}
		}
		return count64(uint64(v))
	}
	inds := &Table[I]{SQLName: "intel_indicator", Key: []string{"key"},
		Doc: "Imported indicators, one per source, type, value and port (docs/intel.md).",
		Columns: []Column[I]{
			{Name: "key", Type: TypeString, Doc: "source, type, value and port", NotNull: true, String: func(r *I) string { return r.Key }},
			strCol("source", "", "where it came from", func(r *I) string { return r.Source }),
			strCol("type", "", "ip, cidr, domain, url, md5, sha1, sha256, ja3, ja3s, ja4, x509-sha1, x509-sha256, user-agent, email, filename", func(r *I) string { return string(r.Type) }),
			strCol("value", "", "the normalised value", func(r *I) string { return r.Value }),
			portCol("port", "", "destination port of an address indicator (0: any)", func(r *I) (uint16, bool) { return r.Port, true }),
			strCol("ref", "", "the source object (MISP attribute uuid, STIX id)", func(r *I) string { return r.Ref }),
			strCol("grp", "", "its event or bundle", func(r *I) string { return r.Group }),
			strCol("name", "", "what the source says of it", func(r *I) string { return r.Name }),
			timeCol("valid_from", "", "valid from", func(r *I) (time.Time, bool) { return timeOf(r.ValidFrom) }),
			timeCol("valid_until", "", "valid until", func(r *I) (time.Time, bool) { return timeOf(r.ValidUntil) }),
			countCol("confidence", "", "0–100; NULL when none", func(r *I) event.Opt[uint64] { return optInt(r.Confidence) }),
			strCol("tlp", "", "clear, green, amber, amber+strict, red", func(r *I) string { return r.TLP }),
			strsCol("tags", "", "the source's tags", func(r *I) []string { return r.Tags }),
			strsCol("attack", "", "ATT&CK technique ids", func(r *I) []string { return r.Attack }),
			boolCol("actionable", "", "meant for detection (MISP to_ids)", func(r *I) event.Opt[bool] { return event.Some(r.Actionable) }),
			boolCol("revoked", "", "withdrawn by the source: never matched", func(r *I) event.Opt[bool] { return event.Some(r.Revoked) }),
			timeCol("modified", "", "last changed by the source", func(r *I) (time.Time, bool) { return timeOf(r.Modified) }),
			timeCol("imported", "", "last imported", func(r *I) (time.Time, bool) { return timeOf(r.Imported) }),
			strCol("regdom", "", "match key: registered domain of a domain indicator", func(r *I) string { return r.RegDomain }),
			countCol("lo_hi", "", "match key: first address of a network, high bits", func(r *I) event.Opt[uint64] { return r.LoHi }),
			countCol("lo_lo", "", "low bits", func(r *I) event.Opt[uint64] { return r.LoLo }),
			countCol("hi_hi", "", "match key: last address, high bits", func(r *I) event.Opt[uint64] { return r.HiHi }),
			countCol("hi_lo", "", "low bits", func(r *I) event.Opt[uint64] { return r.HiLo }),
			// Last, as in the summary tables: added by a migration.
			countCol("mkey", "", "match key: equals the mkey of the values it may match (none for networks and public suffixes)",
				func(r *I) event.Opt[uint64] { return r.MatchKey }),
		}}
	return &IntelSchema{Values: values, Daily: daily, Indicators: inds}
}
