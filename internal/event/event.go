// Package event defines dwell's canonical telemetry records: one struct per
// kind of record (connection, DNS query, HTTP request, TLS handshake,
// certificate, file transfer, exported flow, Windows event, IDS alert), the Batch that carries them from a source to a
// store, and the provenance every record keeps for evidence.
//
// Field names follow Zeek's semantics so that Zeek users recognise them:
// id.orig_h is SrcIP, orig_bytes is SrcBytes, conn_state is ConnState, and so
// on; docs/schema.md maps every field to its Zeek name and its store column.
// Timestamps are UTC with microsecond precision (Zeek's), addresses are
// netip.Addr, and values Zeek may leave unset are Opt values.
//
// The package is a leaf: it imports nothing else of dwell's.
package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind names a kind of record. Its String form is both the name of the Zeek
// log the records come from and the name of the store table that keeps them.
type Kind uint8

// The record kinds dwell stores.
const (
	KindConn     Kind = iota + 1 // Zeek conn.log: one finished connection
	KindOpenConn                 // open_conn.log: a still-open connection, re-reported while it lasts
	KindDNS                      // dns.log: one DNS query and its answer
	KindHTTP                     // http.log: one HTTP request/response pair
	KindTLS                      // ssl.log: one TLS/SSL handshake
	KindX509                     // x509.log: one certificate seen on the wire
	KindFile                     // files.log: one file transfer
	KindFlow                     // a NetFlow/IPFIX flow record from a router or probe
	KindWinlog                   // a Windows event (HostEvent), from EVTX or a JSON export
	KindAlert                    // an IDS alert (Suricata's EVE alert event)
)

// Kinds lists every record kind in a fixed order.
var Kinds = [...]Kind{KindConn, KindOpenConn, KindDNS, KindHTTP, KindTLS, KindX509, KindFile, KindFlow, KindWinlog, KindAlert}

var kindNames = [...]string{
	KindConn:     "conn",
	KindOpenConn: "open_conn",
	KindDNS:      "dns",
	KindHTTP:     "http",
	KindTLS:      "ssl",
	KindX509:     "x509",
	KindFile:     "files",
	KindFlow:     "flow",
	KindWinlog:   "winlog",
	KindAlert:    "alert",
}

// String returns the Zeek log name of k ("conn", "dns", "ssl", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind returns the kind whose Zeek log name is name.
func ParseKind(name string) (Kind, bool) {
	for _, k := range Kinds {
		if kindNames[k] == name {
			return k, true
		}
	}
	return 0, false
}

// Source is the provenance of a record: which sensor saw it and where in which
// input file it was read. Two sites may use the same private addresses; the
// sensor keeps them apart. File and Line let an investigator go back to the
// exact evidence.
type Source struct {
	Sensor string // name of the sensor (site) that recorded the data
	File   string // path of the input file, as given to dwell
	Line   int64  // 1-based line number in the (decompressed) input file
}

// Clone returns s with its strings copied: for what is kept after the
// record it came from is reused.
func (s Source) Clone() Source {
	return Source{Sensor: strings.Clone(s.Sensor), File: strings.Clone(s.File), Line: s.Line}
}

// Opt is a value that may be unset, as Zeek writes "-" for a field it has no
// value for. The zero Opt is unset.
type Opt[T any] struct {
	V     T
	Valid bool
}

// Some returns a set Opt holding v.
func Some[T any](v T) Opt[T] { return Opt[T]{V: v, Valid: true} }

// Get returns the value and whether it is set.
func (o Opt[T]) Get() (T, bool) { return o.V, o.Valid }

// MarshalJSON writes the value, or null when it is unset.
func (o Opt[T]) MarshalJSON() ([]byte, error) {
	if !o.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(o.V)
}

// Or returns the value, or def when it is unset.
func (o Opt[T]) Or(def T) T {
	if o.Valid {
		return o.V
	}
	return def
}

// Micro truncates t to Zeek's microsecond precision and returns it in UTC.
func Micro(t time.Time) time.Time {
	// Whole seconds since the zero time are whole microseconds too, so
	// this is t.Truncate(time.Microsecond) without Truncate's general
	// division, which a capture's analysis paid several times a
	// connection. UTC drops the monotonic reading, as Truncate did.
	if ns := t.Nanosecond() % 1000; ns != 0 {
		t = t.Add(-time.Duration(ns))
	}
	return t.UTC()
}

// Earliest returns the earlier of two record times.
func Earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Latest returns the later of two record times.
func Latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
