package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Query implements store.Reader. The statement must start as a query does
// and runs with readonly=1, under which ClickHouse refuses writes, DDL,
// setting changes and table functions (file, url, remote); it refuses
// several statements in one request itself. A query that names dwell's
// state (readsState) is refused before it is sent.
//
// Values are typed from ClickHouse's types, and the columns that are
// times in dwell's schema (Int64 microseconds here) come back as times
// and its booleans (UInt8) as bools when a result column has such a
// column's name; an empty array is NULL, as it is in the schema.
func (s *Store) Query(ctx context.Context, query string) (store.Rows, error) {
	q := strings.TrimSpace(query)
	q = strings.TrimSuffix(q, ";")
	if q == "" {
		return nil, fmt.Errorf("empty query")
	}
	words := strings.FieldsFunc(store.SkipComments(q), func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' || r == '\r' })
	first := ""
	if len(words) > 0 {
		first = strings.ToUpper(words[0])
	}
	switch first {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS":
	default:
		return nil, fmt.Errorf("%w: this is not a query (it starts %q)", store.ErrReadOnly, first)
	}
	if readsState(q) {
		return nil, store.ErrState
	}
	rc, err := s.c.retry(ctx, request{node: s.c.nodes[0], query: q + "\nFORMAT TabSeparatedWithNamesAndTypes",
		settings: map[string]string{"readonly": "1"}})
	if err != nil {
		var se *serverError
		if errors.As(err, &se) && (se.Code == codeReadOnly || (se.Code == codeSyntaxError && strings.Contains(se.Message, "Multi-statements"))) {
			return nil, fmt.Errorf("%w: %s", store.ErrReadOnly, se.Message)
		}
		return nil, fmt.Errorf("running query: %w", err)
	}
	r := newTSVReader(rc)
	rows := &queryRows{r: r}
	for _, dst := range []*[]string{&rows.cols, &rows.types} {
		if !r.Next() {
			err := r.Err()
			_ = r.Close()
			if err == nil {
				err = errors.New("clickhouse sent no column header")
			}
			return nil, fmt.Errorf("running query: %w", err)
		}
		*dst = append([]string(nil), r.fields...)
	}
	kinds := schemaKinds(s)
	for i, name := range rows.cols {
		rows.conv = append(rows.conv, converter(rows.types[i], kinds[name]))
		rows.array = append(rows.array, isArray(rows.types[i]))
	}
	rows.vals = make([]any, len(rows.cols))
	return rows, nil
}

// schemaKinds maps the column names of dwell's tables to their types,
// where a name has one type in all tables.
func schemaKinds(s *Store) map[string]store.Type {
	out := map[string]store.Type{}
	bad := map[string]bool{}
	infos := append(s.schema.Tables(), s.intel.Tables()...)
	for _, t := range infos {
		for _, c := range t.Columns {
			if k, ok := out[c.Name]; ok && k != c.Type {
				bad[c.Name] = true
			}
			out[c.Name] = c.Type
		}
	}
	for n := range bad {
		delete(out, n)
	}
	return out
}

// queryRows adapts a TabSeparatedWithNamesAndTypes result to store.Rows.
type queryRows struct {
	r     *tsvReader
	cols  []string
	types []string
	conv  []func(string) (any, error)
	array []bool // the column is an array: converted from its raw text
	vals  []any
	err   error
}

func (q *queryRows) Columns() []string { return q.cols }

func (q *queryRows) Next() bool {
	if q.err != nil || !q.r.Next() {
		return false
	}
	for i := range q.vals {
		if i >= len(q.r.fields) || q.r.nulls[i] {
			q.vals[i] = nil
			continue
		}
		f := q.r.fields[i]
		if q.array[i] {
			f = string(q.r.raw[i])
		}
		v, err := q.conv[i](f)
		if err != nil {
			q.err = fmt.Errorf("column %s (%s): %w", q.cols[i], q.types[i], err)
			return false
		}
		q.vals[i] = v
	}
	return true
}

func (q *queryRows) Values() []any { return q.vals }

func (q *queryRows) Err() error {
	if q.err != nil {
		return q.err
	}
	return q.r.Err()
}

func (q *queryRows) Close() error { return q.r.Close() }

// converter returns the function that turns a field of ClickHouse type typ
// into a Go value; kind is the schema's type of a column of that name.
func converter(typ string, kind store.Type) func(string) (any, error) {
	base := typ
	if inner, ok := strings.CutPrefix(typ, "Nullable("); ok {
		base = strings.TrimSuffix(inner, ")")
	}
	switch {
	case base == "Int64" && kind == store.TypeTime:
		return func(f string) (any, error) {
			v, err := strconv.ParseInt(f, 10, 64)
			return time.UnixMicro(v).UTC(), err
		}
	case base == "UInt8" && kind == store.TypeBool:
		return func(f string) (any, error) { return f == "1", nil }
	case strings.HasPrefix(base, "Int"):
		return func(f string) (any, error) { return strconv.ParseInt(f, 10, 64) }
	case strings.HasPrefix(base, "UInt"):
		return func(f string) (any, error) { return strconv.ParseUint(f, 10, 64) }
	case strings.HasPrefix(base, "Float"):
		return func(f string) (any, error) { return strconv.ParseFloat(f, 64) }
	case base == "DateTime":
		return func(f string) (any, error) { return time.ParseInLocation(time.DateTime, f, time.UTC) }
	case base == "Date":
		return func(f string) (any, error) { return time.ParseInLocation(time.DateOnly, f, time.UTC) }
	case strings.HasPrefix(typ, "Array("):
		elem := converter(strings.TrimSuffix(strings.TrimPrefix(typ, "Array("), ")"), 0)
		return func(f string) (any, error) {
			items, err := parseArray(f)
			if err != nil || len(items) == 0 {
				return nil, err
			}
			out := make([]any, len(items))
			for i, it := range items {
				if it == nil {
					continue
				}
				if out[i], err = elem(*it); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
	}
	return func(f string) (any, error) { return f, nil }
}

// isArray reports whether a ClickHouse type is an array (or a nullable one).
func isArray(typ string) bool {
	return strings.HasPrefix(strings.TrimPrefix(typ, "Nullable("), "Array(")
}

// parseArray splits ClickHouse's text form of an array ([1,2], ['a','b\'c'],
// with NULL for null elements) into its elements, unquoted.
func parseArray(f string) ([]*string, error) {
	if len(f) < 2 || f[0] != '[' || f[len(f)-1] != ']' {
		return nil, fmt.Errorf("not an array: %q", f)
	}
	f = f[1 : len(f)-1]
	var out []*string
	for i := 0; i < len(f); {
		var item string
		switch f[i] {
		case '\'':
			var b strings.Builder
			i++
			for ; i < len(f) && f[i] != '\''; i++ {
				if f[i] == '\\' && i+1 < len(f) {
					i++
					b.WriteByte(escaped(f[i]))
					continue
				}
				b.WriteByte(f[i])
			}
			if i >= len(f) {
				return nil, fmt.Errorf("unterminated string in array")
			}
			i++
			item = b.String()
			out = append(out, &item)
		default:
			j := i
			depth := 0
			for ; j < len(f) && (depth > 0 || f[j] != ','); j++ {
				switch f[j] {
				case '[', '(':
					depth++
				case ']', ')':
					depth--
				}
			}
			item = f[i:j]
			if item == "NULL" {
				out = append(out, nil)
			} else {
				out = append(out, &item)
			}
			i = j
		}
		if i < len(f) {
			if f[i] != ',' {
				return nil, fmt.Errorf("bad array element separator %q", f[i])
			}
			i++
		}
	}
	return out, nil
}
