package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Query implements store.Reader. It prepares the statement alone (several
// statements are refused), checks that DuckDB classifies it as a query, and
// runs it on a connection that cannot reach files or extensions.
func (s *Store) Query(ctx context.Context, query string) (store.Rows, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("empty query")
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var stmt driver.Stmt
	err = rawConn(conn, func(c *duckdb.Conn) error {
		var err error
		// Prepare, unlike PrepareContext, refuses more than one statement
		// instead of running all but the last.
		stmt, err = c.Prepare(query)
		return err
	})
	if err != nil {
		_ = conn.Close()
		if strings.Contains(err.Error(), "context") || strings.Contains(err.Error(), "multiple") {
			return nil, fmt.Errorf("%w: one statement at a time", store.ErrReadOnly)
		}
		return nil, fmt.Errorf("preparing query: %w", err)
	}
	st, ok := stmt.(*duckdb.Stmt)
	if !ok {
		_ = stmt.Close()
		_ = conn.Close()
		return nil, fmt.Errorf("BUG: unexpected statement %T", stmt)
	}
	typ, err := st.StatementType()
	if err == nil && typ != duckdb.STATEMENT_TYPE_SELECT && typ != duckdb.STATEMENT_TYPE_EXPLAIN {
		err = fmt.Errorf("%w: this is a %s statement", store.ErrReadOnly, stmtName(typ))
	}
	_ = st.Close()
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, query) // queryRows checks Err and closes rows
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("running query: %w", err)
	}
	cols, err := rows.Columns()
	if err != nil {
		return nil, errors.Join(err, closeRows(rows), conn.Close())
	}
	r := &queryRows{rows: rows, conn: conn, cols: cols, vals: make([]any, len(cols)), ptrs: make([]any, len(cols))}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
	return r, nil
}

func stmtName(t duckdb.StmtType) string {
	names := map[duckdb.StmtType]string{
		duckdb.STATEMENT_TYPE_INSERT: "INSERT", duckdb.STATEMENT_TYPE_UPDATE: "UPDATE",
		duckdb.STATEMENT_TYPE_DELETE: "DELETE", duckdb.STATEMENT_TYPE_CREATE: "CREATE",
		duckdb.STATEMENT_TYPE_DROP: "DROP", duckdb.STATEMENT_TYPE_ALTER: "ALTER",
		duckdb.STATEMENT_TYPE_COPY: "COPY", duckdb.STATEMENT_TYPE_ATTACH: "ATTACH",
		duckdb.STATEMENT_TYPE_DETACH: "DETACH", duckdb.STATEMENT_TYPE_PRAGMA: "PRAGMA",
		duckdb.STATEMENT_TYPE_SET: "SET", duckdb.STATEMENT_TYPE_VARIABLE_SET: "SET",
		duckdb.STATEMENT_TYPE_TRANSACTION: "transaction", duckdb.STATEMENT_TYPE_EXPORT: "EXPORT",
		duckdb.STATEMENT_TYPE_LOAD: "LOAD", duckdb.STATEMENT_TYPE_CALL: "CALL",
		duckdb.STATEMENT_TYPE_VACUUM: "VACUUM", duckdb.STATEMENT_TYPE_ANALYZE: "ANALYZE",
		duckdb.STATEMENT_TYPE_CREATE_FUNC: "CREATE FUNCTION", duckdb.STATEMENT_TYPE_EXTENSION: "extension",
		duckdb.STATEMENT_TYPE_PREPARE: "PREPARE", duckdb.STATEMENT_TYPE_EXECUTE: "EXECUTE",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("non-query (type %d)", t)
}

func closeRows(r *sql.Rows) error { return r.Close() }

// queryRows adapts sql.Rows to store.Rows and releases the connection.
type queryRows struct {
	rows *sql.Rows
	conn *sql.Conn
	cols []string
	vals []any
	ptrs []any
	err  error
}

func (r *queryRows) Columns() []string { return r.cols }

func (r *queryRows) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	return true
}

func (r *queryRows) Values() []any { return r.vals }

func (r *queryRows) Err() error {
	if r.err != nil {
		return r.err
	}
	if err := r.rows.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (r *queryRows) Close() error {
	return errors.Join(r.rows.Close(), r.conn.Close())
}
