package app

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dwell-nsm/dwell/internal/store"
)

func queryCommand() command {
	return command{
		name:    "query",
		summary: "run a read-only SQL query over the store",
		usage:   "query [--db FILE] [--format table|json|csv] SQL",
		example: `  dwell query "SELECT id_orig_h, count(*) AS n FROM conn GROUP BY ALL ORDER BY n DESC LIMIT 10"
  dwell query --format csv "SELECT ts, query FROM dns WHERE query LIKE '%.example.com'" > dns.csv
  dwell query "DESCRIBE conn"

Tables are named after Zeek's logs (conn, open_conn, dns, http, ssl, x509,
files) with Zeek's field names, dots replaced by underscores (docs/schema.md).
Only reading is allowed: INSERT, DELETE, COPY, ATTACH and the like are refused.
`,
		run: runQuery,
	}
}

func runQuery(ctx context.Context, a *App, args []string) error {
	var co common
	c := queryCommand()
	fs := a.newFlags(c, &co)
	format := fs.String("format", "table", "output `format`: table, json (one array of objects) or csv")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("no SQL given")
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return usagef("unknown format %q: use table, json or csv", *format)
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	st, err := co.openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // read-only: nothing to flush
	rows, err := st.Query(ctx, strings.Join(pos, " "))
	if err != nil {
		if errors.Is(err, store.ErrReadOnly) {
			return fmt.Errorf("refused: %w", err)
		}
		return err
	}
	defer func() { _ = rows.Close() }() // errors surface through rows.Err
	switch *format {
	case "json":
		err = writeJSON(a.Stdout, rows)
	case "csv":
		err = writeCSV(a.Stdout, rows)
	default:
		err = writeTable(a.Stdout, rows)
	}
	if err != nil {
		return err
	}
	return rows.Err()
}

// cell renders a value as text for table and CSV output.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000000Z")
	case []byte:
		return string(x)
	case *big.Int:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i := range x {
			parts[i] = cell(x[i])
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case float64:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

// jsonValue renders a value for JSON output.
func jsonValue(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case *big.Int:
		return json.Number(x.String())
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonValue(x[i])
		}
		return out
	}
	return v
}

func writeJSON(w io.Writer, rows store.Rows) error {
	cols := rows.Columns()
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	first := true
	for rows.Next() {
		obj := make(map[string]any, len(cols))
		for i, v := range rows.Values() {
			obj[cols[i]] = jsonValue(v)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		sep := ",\n"
		if first {
			sep, first = "\n", false
		}
		if _, err := fmt.Fprintf(w, "%s%s", sep, b); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}

func writeCSV(w io.Writer, rows store.Rows) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(rows.Columns()); err != nil {
		return err
	}
	rec := make([]string, len(rows.Columns()))
	for rows.Next() {
		for i, v := range rows.Values() {
			rec[i] = cell(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeTable prints aligned columns. Widths come from the first 1000 rows;
// longer cells later are cut. Cells are sanitised: logs hold attacker text.
func writeTable(w io.Writer, rows store.Rows) error {
	const sample, maxWidth = 1000, 60
	cols := rows.Columns()
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c)
	}
	var buf [][]string
	n := 0
	flush := func(r []string) error {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			if utf8.RuneCountInString(c) > widths[i] {
				c = sanitize(c, widths[i]-1)
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		b.WriteByte('\n')
		_, err := io.WriteString(w, b.String())
		return err
	}
	writeHead := func() error {
		if err := flush(cols); err != nil {
			return err
		}
		dashes := make([]string, len(cols))
		for i := range cols {
			dashes[i] = strings.Repeat("-", widths[i])
		}
		return flush(dashes)
	}
	for rows.Next() {
		r := make([]string, len(cols))
		for i, v := range rows.Values() {
			r[i] = sanitize(cell(v), 0)
		}
		n++
		if n <= sample {
			for i, c := range r {
				widths[i] = min(max(widths[i], utf8.RuneCountInString(c)), maxWidth)
			}
			buf = append(buf, r)
			if n == sample {
				if err := writeHead(); err != nil {
					return err
				}
				for _, b := range buf {
					if err := flush(b); err != nil {
						return err
					}
				}
				buf = nil
			}
			continue
		}
		if err := flush(r); err != nil {
			return err
		}
	}
	if n < sample {
		if err := writeHead(); err != nil {
			return err
		}
		for _, b := range buf {
			if err := flush(b); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "(%d row%s)\n", n, plural(n))
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
