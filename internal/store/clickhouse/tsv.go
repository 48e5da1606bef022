package clickhouse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// tsvReader reads ClickHouse's TabSeparated output a row at a time.
// Fields are unescaped; \N (NULL) is reported by Null.
type tsvReader struct {
	rc     io.ReadCloser
	br     *bufio.Reader
	fields []string
	nulls  []bool
	// raw holds the current row's fields as received, still escaped:
	// arrays are parsed from it, since their elements carry the escapes
	// of their own quoted strings (['a\'b'] is the text of ['a''b']).
	raw  [][]byte
	line []byte
	row  int
	err  error
}

func newTSVReader(rc io.ReadCloser) *tsvReader {
	return &tsvReader{rc: rc, br: bufio.NewReaderSize(rc, 256<<10)}
}

// Next reads the next row; false at the end or on error.
func (r *tsvReader) Next() bool {
	if r.err != nil {
		return false
	}
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.line = append(r.line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(r.line) == 0 {
				return false
			}
			r.err = fmt.Errorf("clickhouse: result cut short after row %d", r.row)
			return false
		}
		if err != nil {
			r.err = err
			return false
		}
		break
	}
	r.row++
	r.split(r.line[:len(r.line)-1])
	return true
}

// split unescapes the tab-separated fields of line.
func (r *tsvReader) split(line []byte) {
	r.fields, r.nulls, r.raw = r.fields[:0], r.nulls[:0], r.raw[:0]
	for {
		i := 0
		for i < len(line) && line[i] != '\t' {
			i++
		}
		f := line[:i]
		r.raw = append(r.raw, f)
		if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
			r.fields, r.nulls = append(r.fields, ""), append(r.nulls, true)
		} else {
			r.fields, r.nulls = append(r.fields, unescape(f)), append(r.nulls, false)
		}
		if i == len(line) {
			return
		}
		line = line[i+1:]
	}
}

// unescape undoes TabSeparated escaping.
func unescape(f []byte) string {
	if !strings.ContainsRune(string(f), '\\') {
		return string(f)
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			b.WriteByte(c)
			continue
		}
		i++
		b.WriteByte(escaped(f[i]))
	}
	return b.String()
}

// escaped returns the byte that the escape sequence \c stands for.
func escaped(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case '0':
		return 0
	}
	return c
}

// Field returns field i of the current row ("" for NULL).
func (r *tsvReader) Field(i int) string {
	if i >= len(r.fields) {
		r.fail(fmt.Errorf("clickhouse: row %d has %d fields, wanted %d", r.row, len(r.fields), i+1))
		return ""
	}
	return r.fields[i]
}

// Strings returns field i, an Array(String) (or a nullable one), as
// strings: parsed from the raw field, whose elements carry their own
// escapes. NULL elements are "".
func (r *tsvReader) Strings(i int) ([]string, error) {
	if i >= len(r.raw) || r.nulls[i] {
		return nil, nil
	}
	items, err := parseArray(string(r.raw[i]))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: row %d field %d: %w", r.row, i+1, err)
	}
	out := make([]string, len(items))
	for j, it := range items {
		if it != nil {
			out[j] = *it
		}
	}
	return out, nil
}

// Null reports whether field i is NULL.
func (r *tsvReader) Null(i int) bool { return i < len(r.nulls) && r.nulls[i] }

func (r *tsvReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Int returns field i as an integer (0 for NULL).
func (r *tsvReader) Int(i int) int64 {
	f := r.Field(i)
	if r.Null(i) || f == "" {
		return 0
	}
	v, err := strconv.ParseInt(f, 10, 64)
	if err != nil {
		if u, uerr := strconv.ParseUint(f, 10, 64); uerr == nil {
			return int64(min(u, math.MaxInt64)) // a forged count saturates
		}
		fv, ferr := strconv.ParseFloat(f, 64)
		if ferr != nil {
			r.fail(fmt.Errorf("clickhouse: row %d field %d: %q is not a number", r.row, i+1, f))
		}
		return int64(fv)
	}
	return v
}

// Float returns field i as a float (0 for NULL).
func (r *tsvReader) Float(i int) float64 {
	f := r.Field(i)
	if r.Null(i) || f == "" {
		return 0
	}
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		r.fail(fmt.Errorf("clickhouse: row %d field %d: %q is not a number", r.row, i+1, f))
	}
	return v
}

// Time returns field i, microseconds since the Unix epoch, as a UTC time
// (the zero time for NULL).
func (r *tsvReader) Time(i int) time.Time {
	if r.Null(i) {
		return time.Time{}
	}
	return time.UnixMicro(r.Int(i)).UTC()
}

// Addr returns field i as an address (the zero Addr for NULL or text that
// is not one).
func (r *tsvReader) Addr(i int) netip.Addr {
	a, _ := netip.ParseAddr(r.Field(i))
	return a
}

// Seconds returns field i, seconds, as a duration rounded to the
// microsecond.
func (r *tsvReader) Seconds(i int) time.Duration {
	return seconds(r.Float(i))
}

// Err returns the error that ended reading.
func (r *tsvReader) Err() error { return r.err }

// Close releases the response.
func (r *tsvReader) Close() error { return r.rc.Close() }

// each runs query and calls fn for each row.
func (c *client) each(ctx context.Context, what, query string, fn func(r *tsvReader) error) error {
	r, err := c.query(ctx, query)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = r.Close() }()
	for r.Next() {
		if err := fn(r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// splitList splits a comma-joined list ("" is none).
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// quoteString returns s as a ClickHouse string literal.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// stringList returns a parenthesised list of string literals for IN; an
// empty list is (”) so that the SQL stays valid (no stored key is ”).
func stringList(ss []string) string {
	if len(ss) == 0 {
		return "('')"
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(quoteString(s))
	}
	b.WriteByte(')')
	return b.String()
}
