package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// A table with coded columns (store.Column.Codes: proto, conn_state) is
// stored in the schema storedSchema, each coded column as an ENUM of its
// codes with a text column beside it (otherName) for any value outside
// them, and read through a view of the table's own name in main, which
// gives Zeek's names and text values (decision 0018). Strings cost
// DuckDB's writer far more than one-byte codes: the hand-off copies each
// through a cgo call, and every commit analyses and compresses them.
//
// The view has two forms per coded column. While no value outside the
// codes has been stored, it passes the ENUM through: DuckDB compares,
// groups and sorts it as its one-byte code (the codes are sorted, so
// text order is kept), and string functions cast it to text. Once one
// has, the view reads coalesce(code::VARCHAR, other) for that column:
// right for every row, a little slower. The write that stores the
// first such value replaces the view in its own transaction, and
// dwell_meta records the columns in that form (othersKey).

// storedSchema is the schema of the coded tables' stored form.
const storedSchema = "stored"

// otherName names the column that keeps a coded column's other values.
func otherName(col string) string { return col + "_other" }

// othersKey is the dwell_meta key listing t's columns that hold values
// outside their codes, comma-separated.
func othersKey(t string) string { return "others:" + t }

// physical returns the name writes use for table t.
func physical(t store.TableInfo) string {
	if t.Coded() {
		return storedSchema + "." + quote(t.Name)
	}
	return quote(t.Name)
}

// stored returns the name of the stored form of the table called name,
// which has the rowid a view lacks.
func (s *Store) stored(name string) string {
	for _, t := range s.schema.Tables() {
		if t.Name == name {
			return physical(t)
		}
	}
	return quote(name)
}

// enumType returns the DuckDB type of a column with these codes.
func enumType(codes []string) string {
	q := make([]string, len(codes))
	for i, c := range codes {
		q[i] = "'" + strings.ReplaceAll(c, "'", "''") + "'"
	}
	return "ENUM(" + strings.Join(q, ", ") + ")"
}

// tableDDL returns the statements that create table t: for a coded table
// its schema, its stored form and the view in the form without others.
func tableDDL(t store.TableInfo) []string {
	if !t.Coded() {
		return []string{createTable(t)}
	}
	return []string{"CREATE SCHEMA IF NOT EXISTS " + storedSchema, createTable(t), viewDDL(t, nil)}
}

// viewDDL returns the view of coded table t whose columns in others read
// their other values.
func viewDDL(t store.TableInfo, others []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE OR REPLACE VIEW main.%s AS SELECT ", quote(t.Name))
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		if len(c.Codes) > 0 && slices.Contains(others, c.Name) {
			fmt.Fprintf(&b, "coalesce(%s::VARCHAR, %s) AS %s", quote(c.Name), quote(otherName(c.Name)), quote(c.Name))
		} else {
			b.WriteString(quote(c.Name))
		}
	}
	fmt.Fprintf(&b, " FROM %s", physical(t))
	return b.String()
}

// viewOthers returns the columns of coded table t whose view reads their
// other values, as dwell_meta records them.
func viewOthers(ctx context.Context, tx *sql.Tx, t string) ([]string, error) {
	var v string
	err := tx.QueryRowContext(ctx, `SELECT value FROM dwell_meta WHERE key = ?`, othersKey(t)).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the view of %s: %w", t, err)
	}
	return strings.Split(v, ","), nil
}

// widenView makes coded table t's view read the other values of cols too,
// inside tx, unless it does already.
func widenView(ctx context.Context, tx *sql.Tx, t store.TableInfo, cols []string) error {
	have, err := viewOthers(ctx, tx, t.Name)
	if err != nil {
		return err
	}
	want := have
	for _, c := range cols {
		if !slices.Contains(want, c) {
			want = append(slices.Clip(want), c)
		}
	}
	if len(want) == len(have) {
		return nil
	}
	slices.Sort(want)
	if _, err := tx.ExecContext(ctx, viewDDL(t, want)); err != nil {
		return fmt.Errorf("replacing the view %s: %w", t.Name, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO dwell_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		othersKey(t.Name), strings.Join(want, ","))
	if err != nil {
		return fmt.Errorf("recording the view of %s: %w", t.Name, err)
	}
	return nil
}

// codeTables moves every coded table of a store made before schema 9
// from main into its stored form, value by value (schema 9). A table
// already in that form (a store made new) is left.
func (s *Store) codeTables(ctx context.Context, tx *sql.Tx) error {
	for _, t := range s.schema.Tables() {
		if !t.Coded() {
			continue
		}
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?`, t.Name).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if err := s.codeTable(ctx, tx, t); err != nil {
			return fmt.Errorf("storing %s with codes: %w", t.Name, err)
		}
	}
	return nil
}

// codeTable copies main's table t into its stored form and replaces it
// with the view.
func (s *Store) codeTable(ctx context.Context, tx *sql.Tx, t store.TableInfo) error {
	var rows int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM main.`+quote(t.Name)).Scan(&rows); err != nil {
		return err
	}
	s.notice(fmt.Sprintf("store %s: moving %s (%d rows) to the coded layout of schema %d, once", s.path, t.Name, rows, schemaVersion))
	// The table's columns, then the other values of its coded ones.
	var names, sel, otherNames, otherSel, check, coded []string
	for _, c := range t.Columns {
		names = append(names, quote(c.Name))
		if len(c.Codes) == 0 {
			sel = append(sel, quote(c.Name))
			continue
		}
		cast := "TRY_CAST(" + quote(c.Name) + " AS " + enumType(c.Codes) + ")"
		sel = append(sel, cast)
		otherNames = append(otherNames, quote(otherName(c.Name)))
		otherSel = append(otherSel, "CASE WHEN "+cast+" IS NULL THEN "+quote(c.Name)+" END")
		check = append(check, "count("+quote(otherName(c.Name))+")")
		coded = append(coded, c.Name)
	}
	names, sel = append(names, otherNames...), append(sel, otherSel...)
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + storedSchema,
		createTable(t),
		"INSERT INTO " + physical(t) + " (" + strings.Join(names, ", ") + ") SELECT " + strings.Join(sel, ", ") + " FROM main." + quote(t.Name),
		"DROP TABLE main." + quote(t.Name),
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.120s: %w", q, err)
		}
	}
	counts := make([]int64, len(check))
	ptrs := make([]any, len(check))
	for i := range counts {
		ptrs[i] = &counts[i]
	}
	if err := tx.QueryRowContext(ctx, "SELECT "+strings.Join(check, ", ")+" FROM "+physical(t)).Scan(ptrs...); err != nil {
		return err
	}
	var others []string
	for i, n := range counts {
		if n > 0 {
			others = append(others, coded[i])
		}
	}
	if len(others) > 0 {
		return widenView(ctx, tx, t, others) // makes the view and records it
	}
	_, err := tx.ExecContext(ctx, viewDDL(t, nil))
	return err
}
