package store

import (
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Type is the logical type of a column. Each backend maps it to its own SQL
// type; docs/schema.md gives both.
type Type uint8

// Column types.
const (
	TypeTime      Type = iota + 1 // Zeek time: UTC timestamp, microseconds
	TypeString                    // Zeek string or enum
	TypeAddr                      // Zeek addr: IPv4 or IPv6 address, stored as text
	TypePort                      // Zeek port: 0..65535
	TypeCount                     // Zeek count: unsigned 64-bit
	TypeInterval                  // Zeek interval: seconds, with microseconds
	TypeBool                      // Zeek bool
	TypeStrings                   // Zeek set/vector of string, enum or addr
	TypeIntervals                 // Zeek vector of interval
)

var typeNames = [...]string{
	TypeTime: "time", TypeString: "string", TypeAddr: "addr", TypePort: "port",
	TypeCount: "count", TypeInterval: "interval", TypeBool: "bool",
	TypeStrings: "list of string", TypeIntervals: "list of interval",
}

// String returns the Zeek-style name of t.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Column is one column of a table of records of type R. Exactly the getter
// that matches Type is set. Unset values (Zeek's "-") are NULL: an empty
// string, an invalid address, an unset Opt, or an empty list (Zeek's "-"
// and "(empty)" alike: a set with nothing in it and no set are one to an
// analyst).
type Column[R any] struct {
	Name string // SQL column name: Zeek's field name with '.' replaced by '_'
	Zeek string // Zeek's field name, "" for dwell's own provenance columns
	Type Type
	Doc  string
	// NotNull stores an empty string as '' rather than NULL (key columns).
	NotNull bool
	// Raw asks the backend to store the column without compression: long
	// strings that are read often (the intel summary's peers), where
	// decompressing costs more than reading.
	Raw bool
	// Codes lists, sorted, the values of a closed set (a Zeek enum such
	// as proto or conn_state) in a string column. A backend may store
	// them as small codes and any other value as text beside them; the
	// column reads back as the same text either way, and sorts as text.
	Codes []string

	Time      func(*R) (time.Time, bool)
	String    func(*R) string
	Addr      func(*R) netip.Addr
	Port      func(*R) (uint16, bool)
	Count     func(*R) event.Opt[uint64]
	Interval  func(*R) event.Opt[time.Duration]
	Bool      func(*R) event.Opt[bool]
	Strings   func(*R) []string
	Intervals func(*R) []time.Duration
}

// IsNull reports whether the column's value in r is NULL.
func (c *Column[R]) IsNull(r *R) bool {
	switch c.Type {
	case TypeTime:
		_, ok := c.Time(r)
		return !ok
	case TypeString:
		return !c.NotNull && c.String(r) == ""
	case TypeAddr:
		return !c.Addr(r).IsValid()
	case TypePort:
		_, ok := c.Port(r)
		return !ok
	case TypeCount:
		return !c.Count(r).Valid
	case TypeInterval:
		return !c.Interval(r).Valid
	case TypeBool:
		return !c.Bool(r).Valid
	case TypeStrings:
		return len(c.Strings(r)) == 0
	case TypeIntervals:
		return len(c.Intervals(r)) == 0
	}
	return true
}

// Table describes how records of type R are stored.
type Table[R any] struct {
	Kind event.Kind
	// SQLName names a table that holds no record kind (the intel and
	// summary tables); it overrides Kind's name.
	SQLName string
	Doc     string
	Columns []Column[R]
	// Key lists the primary key's columns, if the table has one.
	Key []string
	// Rows returns the batch's records of this table.
	Rows func(*event.Batch) []R
	// Source returns a record's provenance.
	Source func(*R) *event.Source
	// Time returns a record's timestamp (the column "ts").
	Time func(*R) time.Time
}

// Name returns the table's SQL name: Zeek's log name for telemetry.
func (t *Table[R]) Name() string {
	if t.SQLName != "" {
		return t.SQLName
	}
	return t.Kind.String()
}

// Info returns the table's description without its getters.
func (t *Table[R]) Info() TableInfo {
	ti := TableInfo{Name: t.Name(), Kind: t.Kind, Doc: t.Doc, Key: t.Key}
	for _, c := range t.Columns {
		ti.Columns = append(ti.Columns, ColumnInfo{Name: c.Name, Zeek: c.Zeek, Type: c.Type, Doc: c.Doc, Raw: c.Raw, Codes: c.Codes})
	}
	return ti
}

// TableInfo describes a table for DDL and documentation.
type TableInfo struct {
	Name    string
	Kind    event.Kind
	Doc     string
	Columns []ColumnInfo
	Key     []string
}

// ColumnInfo describes a column for DDL and documentation.
type ColumnInfo struct {
	Name string
	Zeek string
	Type Type
	Doc  string
	Raw  bool // store uncompressed (Column.Raw)
	// Codes are the closed set's usual values (Column.Codes).
	Codes []string
}

// Coded reports whether any column of t stores a closed set as codes.
func (t *TableInfo) Coded() bool {
	for _, c := range t.Columns {
		if len(c.Codes) > 0 {
			return true
		}
	}
	return false
}

// Schema holds every table dwell stores. Obtain it with NewSchema; it is
// immutable and safe to share.
type Schema struct {
	Conn     *Table[event.Conn]
	OpenConn *Table[event.Conn]
	DNS      *Table[event.DNS]
	HTTP     *Table[event.HTTP]
	TLS      *Table[event.TLS]
	X509     *Table[event.X509]
	Files    *Table[event.File]
	Flow     *Table[event.Flow]
	Winlog   *Table[event.HostEvent]
	Alert    *Table[event.Alert]
	// Quarantine keeps the records held out of the hunt.
	Quarantine *Table[event.Quarantined]
}

// NewSchema returns the schema of dwell's tables.
func NewSchema() *Schema {
	return &Schema{
		Conn:       connTable(event.KindConn, "One row per finished connection (Zeek conn.log).", func(b *event.Batch) []event.Conn { return b.Conns }),
		OpenConn:   connTable(event.KindOpenConn, "Connections still open when Zeek reported them (open_conn.log, from the open-connections package); a long connection appears once per report.", func(b *event.Batch) []event.Conn { return b.OpenConns }),
		DNS:        dnsTable(),
		HTTP:       httpTable(),
		TLS:        tlsTable(),
		X509:       x509Table(),
		Files:      filesTable(),
		Flow:       flowTable(),
		Winlog:     winlogTable(),
		Alert:      alertTable(),
		Quarantine: quarantineTable(),
	}
}

// Tables returns the description of every table, in a fixed order.
func (s *Schema) Tables() []TableInfo {
	return []TableInfo{s.Conn.Info(), s.OpenConn.Info(), s.DNS.Info(), s.HTTP.Info(), s.TLS.Info(), s.X509.Info(), s.Files.Info(), s.Flow.Info(),
		s.Winlog.Info(), s.Alert.Info(), s.Quarantine.Info()}
}

// Column constructors keep the table definitions below to one line a field.

func timeCol[R any](name, zeek, doc string, f func(*R) (time.Time, bool)) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeTime, Doc: doc, Time: f}
}

func strCol[R any](name, zeek, doc string, f func(*R) string) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeString, Doc: doc, String: f}
}

// codeCol is strCol for a closed set whose usual values are codes.
func codeCol[R any](name, zeek, doc string, codes []string, f func(*R) string) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeString, Doc: doc, String: f, Codes: codes}
}

func addrCol[R any](name, zeek, doc string, f func(*R) netip.Addr) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeAddr, Doc: doc, Addr: f}
}

func portCol[R any](name, zeek, doc string, f func(*R) (uint16, bool)) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypePort, Doc: doc, Port: f}
}

func countCol[R any](name, zeek, doc string, f func(*R) event.Opt[uint64]) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeCount, Doc: doc, Count: f}
}

func intervalCol[R any](name, zeek, doc string, f func(*R) event.Opt[time.Duration]) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeInterval, Doc: doc, Interval: f}
}

func boolCol[R any](name, zeek, doc string, f func(*R) event.Opt[bool]) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeBool, Doc: doc, Bool: f}
}

func strsCol[R any](name, zeek, doc string, f func(*R) []string) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeStrings, Doc: doc, Strings: f}
}

func ivalsCol[R any](name, zeek, doc string, f func(*R) []time.Duration) Column[R] {
	return Column[R]{Name: name, Zeek: zeek, Type: TypeIntervals, Doc: doc, Intervals: f}
}

func tsCol[R any](f func(*R) time.Time) Column[R] {
	return timeCol("ts", "ts", "time of the first packet (UTC)", func(r *R) (time.Time, bool) { return f(r), true })
}

// provenance returns the three columns every table ends with.
func provenance[R any](src func(*R) *event.Source) []Column[R] {
	return []Column[R]{
		strCol("sensor", "", "sensor (site) that recorded the data", func(r *R) string { return src(r).Sensor }),
		strCol("source_file", "", "input file the row was read from", func(r *R) string { return src(r).File }),
		countCol("source_line", "", "line of the row in the decompressed input file", func(r *R) event.Opt[uint64] {
			return event.Some(uint64(max(src(r).Line, 0)))
		}),
	}
}

func addrsToStrings(as []netip.Addr) []string {
	if as == nil {
		return nil
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func some(p uint16) (uint16, bool) { return p, true }

// portIf reports a port only when its address is set (files.log before Zeek
// 5 has neither).
func portIf(p uint16, a netip.Addr) (uint16, bool) { return p, a.IsValid() }
