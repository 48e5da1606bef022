package clickhouse

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/dwell-nsm/dwell/internal/store"
)

// encoder writes rows of one table in ClickHouse's RowBinary format:
// values back to back, little-endian, strings and arrays prefixed with
// their length as a varint, a Nullable value with a byte that is 1 for
// NULL.
type encoder[R any] struct {
	table   *store.Table[R]
	notNull []bool
	buf     []byte
}

func newEncoder[R any](t *store.Table[R]) *encoder[R] {
	l := layouts()[t.Name()]
	e := &encoder[R]{table: t}
	for _, c := range t.Columns {
		e.notNull = append(e.notNull, slices.Contains(l.notNull, c.Name))
	}
	return e
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
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
