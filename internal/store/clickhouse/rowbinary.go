package clickhouse

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// encoder writes rows of one table in ClickHouse's RowBinary format:
// values back to back, little-endian, strings and arrays prefixed with
// their length as a varint, a Nullable value with a byte that is 1 for
// NULL.
type encoder[R any] struct {
	table   *store.Table[R]
	notNull []bool
	insert  string // the INSERT statement
	buf     []byte
}

// newEncoder returns the encoder of table t, whose rows are followed by
// the column extra (dwell_batch or version).
func newEncoder[R any](t *store.Table[R], lay map[string]layout, extra string) *encoder[R] {
	l := lay[t.Name()]
	e := &encoder[R]{table: t}
	names := make([]string, 0, len(t.Columns)+1)
	for _, c := range t.Columns {
		e.notNull = append(e.notNull, slices.Contains(l.notNull, c.Name))
		names = append(names, quote(c.Name))
	}
	e.insert = "INSERT INTO " + quote(t.Name()) + " (" + strings.Join(append(names, extra), ", ") + ") FORMAT RowBinary"
	return e
}

// encoders are a store's encoders, one per table it inserts into, made
// once: Write is called from one goroutine at a time, so their buffers
// are reused.
type encoders struct {
	conn, openConn *encoder[event.Conn]
	dns            *encoder[event.DNS]
	http           *encoder[event.HTTP]
	tls            *encoder[event.TLS]
	x509           *encoder[event.X509]
	files          *encoder[event.File]
	flow           *encoder[event.Flow]
	winlog         *encoder[event.HostEvent]
	alert          *encoder[event.Alert]
	held           *encoder[event.Quarantined]
	daily          *encoder[store.DailyRow]
	indicators     *encoder[store.IndicatorRow]
}

func newEncoders(s *store.Schema, in *store.IntelSchema) *encoders {
	lay := layouts()
	return &encoders{
		conn: newEncoder(s.Conn, lay, batchColumn), openConn: newEncoder(s.OpenConn, lay, batchColumn),
		dns: newEncoder(s.DNS, lay, batchColumn), http: newEncoder(s.HTTP, lay, batchColumn),
		tls: newEncoder(s.TLS, lay, batchColumn), x509: newEncoder(s.X509, lay, batchColumn),
		files: newEncoder(s.Files, lay, batchColumn), flow: newEncoder(s.Flow, lay, batchColumn),
		held: newEncoder(s.Quarantine, lay, batchColumn), winlog: newEncoder(s.Winlog, lay, batchColumn),
		alert: newEncoder(s.Alert, lay, batchColumn),
		daily: newEncoder(in.Daily, lay, batchColumn), indicators: newEncoder(in.Indicators, lay, "version"),
	}
}

// encode returns rows, each followed by extra (the batch or version
// column), as RowBinary. The buffer is reused by the next call.
func (e *encoder[R]) encode(rows []R, extra uint64) ([]byte, error) {
	b := e.buf[:0]
	for i := range rows {
		r := &rows[i]
		for ci := range e.table.Columns {
			var err error
			if b, err = e.column(b, ci, r); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", e.table.Name(), e.table.Columns[ci].Name, err)
			}
		}
		b = binary.LittleEndian.AppendUint64(b, extra)
	}
	e.buf = b
	return b, nil
}

func (e *encoder[R]) column(b []byte, ci int, r *R) ([]byte, error) {
	c := &e.table.Columns[ci]
	nullable := !e.notNull[ci]
	null := func() []byte { return append(b, 1) }
	set := func() {
		if nullable {
			b = append(b, 0)
		}
	}
	switch c.Type {
	case store.TypeTime:
		t, ok := c.Time(r)
		if !ok && nullable {
			return null(), nil
		}
		set()
		var v int64
		if ok {
			v = t.UnixMicro()
		}
		return binary.LittleEndian.AppendUint64(b, uint64(v)), nil // two's complement, as ClickHouse reads Int64
	case store.TypeString:
		v := c.String(r)
		if v == "" && !c.NotNull && nullable {
			return null(), nil
		}
		set()
		return appendString(b, v), nil
	case store.TypeAddr:
		a := c.Addr(r)
		if !a.IsValid() {
			if nullable {
				return null(), nil
			}
			return appendString(b, ""), nil
		}
		set()
		// The length of an address's text is below 128: one varint byte.
		at := len(b)
		b = append(b, 0)
		b = a.AppendTo(b)
		b[at] = byte(len(b) - at - 1) //nolint:gosec // G115: at most 39 bytes of text
		return b, nil
	case store.TypePort:
		p, ok := c.Port(r)
		if !ok && nullable {
			return null(), nil
		}
		set()
		return binary.LittleEndian.AppendUint16(b, p), nil
	case store.TypeCount:
		v := c.Count(r)
		if !v.Valid && nullable {
			return null(), nil
		}
		set()
		return binary.LittleEndian.AppendUint64(b, v.V), nil
	case store.TypeInterval:
		v := c.Interval(r)
		if !v.Valid && nullable {
			return null(), nil
		}
		set()
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.V.Seconds())), nil
	case store.TypeBool:
		v := c.Bool(r)
		if !v.Valid && nullable {
			return null(), nil
		}
		set()
		if v.V {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case store.TypeStrings:
		v := c.Strings(r)
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, s := range v {
			b = appendString(b, s)
		}
		return b, nil
	case store.TypeIntervals:
		v := c.Intervals(r)
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, d := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(d.Seconds()))
		}
		return b, nil
	}
	return b, fmt.Errorf("BUG: no RowBinary encoding for %v", c.Type)
}

func appendString(b []byte, s string) []byte {
	// ClickHouse keeps any bytes, but the stores answer alike: text that
	// is not UTF-8 is escaped \xNN, as DuckDB's store and ingest do.
	s, _ = event.EscapeText(s)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
