package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/internal/store"
)

// Query implements store.Reader. It prepares the statement alone (several
// statements are refused) and lets DuckDB's own parser say what it is: a
// SELECT, or an EXPLAIN [ANALYZE] of one (EXPLAIN ANALYZE runs what it
// explains: its inner statement is judged, not the EXPLAIN). The
// functions a query calls and the tables it names are read from DuckDB's
// syntax tree (json_serialize_sql): a table function outside
// tableFunctions (which checkpoint, log to files, run SQL from a string or
// read files) is refused, and so is any mention of store.StateTable. It runs on a connection that reaches no file and no extension,
// with the configuration locked (lock_configuration), on a store opened
// read-only by dwell query: the checks are a second wall, not the only
// one.
func (s *Store) Query(ctx context.Context, query string) (store.Rows, error) {
	if strings.TrimSpace(query) == "" {
		return nil, fmt.Errorf("empty query")
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.judge(ctx, conn, query); err != nil {
		_ = conn.Close()
		return nil, err
	}
	s.lockOnce.Do(func() {
		_, s.lockErr = s.db.ExecContext(ctx, "SET lock_configuration = true")
	})
	if s.lockErr != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("locking the store's configuration: %w", s.lockErr)
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

// judge returns nil when query is a SELECT, or an EXPLAIN [ANALYZE] of
// one, that calls no table function but the harmless ones.
func (s *Store) judge(ctx context.Context, conn *sql.Conn, query string) error {
	typ, err := statementType(conn, query)
	if err != nil {
		if notSelect(ctx, conn, query) {
			// A write to a table read through a view (layout.go) fails
			// to bind before its type is known: still a write.
			return fmt.Errorf("%w: only a query (SELECT) reads the store", store.ErrReadOnly)
		}
		return err
	}
	inner := query
	switch typ {
	case duckdb.STATEMENT_TYPE_SELECT:
	case duckdb.STATEMENT_TYPE_EXPLAIN:
		var ok bool
		if inner, ok = explained(query); !ok {
			return fmt.Errorf("%w: EXPLAIN takes a query (EXPLAIN [ANALYZE] SELECT)", store.ErrReadOnly)
		}
		t, err := statementType(conn, inner)
		if err != nil {
			return err
		}
		if t != duckdb.STATEMENT_TYPE_SELECT {
			return fmt.Errorf("%w: this explains a %s statement, which EXPLAIN ANALYZE would run", store.ErrReadOnly, stmtName(t))
		}
	default:
		return fmt.Errorf("%w: this is a %s statement", store.ErrReadOnly, stmtName(typ))
	}
	tree, err := syntaxTree(ctx, conn, inner)
	if err != nil {
		return fmt.Errorf("reading the query: %w", err)
	}
	names, refs, err := treeNames(tree)
	if err != nil {
		return err
	}
	for _, t := range refs {
		if t == store.StateTable {
			return store.ErrState
		}
	}
	tables, err := s.tableFunctions(ctx, conn)
	if err != nil {
		return err
	}
	for _, n := range names {
		if tables[n] && !harmlessTableFunction(n) {
			return fmt.Errorf("%w: the table function %s() changes the store or reads beyond it", store.ErrReadOnly, n)
		}
	}
	return nil
}

// syntaxTree returns json_serialize_sql's tree of query: DuckDB's parse,
// without binding, or the parser's error as a JSON object.
func syntaxTree(ctx context.Context, conn *sql.Conn, query string) (string, error) {
	var tree string
	err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", query).Scan(&tree)
	return tree, err
}

// notSelect reports whether DuckDB's parser, which json_serialize_sql
// runs without binding, finds a statement other than a SELECT in query.
func notSelect(ctx context.Context, conn *sql.Conn, query string) bool {
	tree, err := syntaxTree(ctx, conn, query)
	if err != nil {
		return false
	}
	var doc struct {
		Error   bool   `json:"error"`
		Message string `json:"error_message"`
	}
	return json.Unmarshal([]byte(tree), &doc) == nil && doc.Error && strings.Contains(doc.Message, "Only SELECT")
}

// statementType prepares query alone and returns its type.
func statementType(conn *sql.Conn, query string) (duckdb.StmtType, error) {
	var stmt driver.Stmt
	err := rawConn(conn, func(c *duckdb.Conn) error {
		var err error
		// Prepare, unlike PrepareContext, refuses more than one statement
		// instead of running all but the last.
		stmt, err = c.Prepare(query)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "context") || strings.Contains(err.Error(), "multiple") {
			return 0, fmt.Errorf("%w: one statement at a time", store.ErrReadOnly)
		}
		return 0, fmt.Errorf("preparing query: %w", err)
	}
	defer func() { _ = stmt.Close() }()
	st, ok := stmt.(*duckdb.Stmt)
	if !ok {
		return 0, fmt.Errorf("BUG: unexpected statement %T", stmt)
	}
	return st.StatementType()
}

// explained returns the statement an EXPLAIN statement explains: the text
// after EXPLAIN and an optional ANALYZE, comments and blanks skipped. ok
// is false for any other form (options in parentheses): refused.
func explained(query string) (string, bool) {
	q := store.SkipComments(query)
	word, rest := firstWord(q)
	if !strings.EqualFold(word, "EXPLAIN") {
		return "", false
	}
	q = store.SkipComments(rest)
	if w, r := firstWord(q); strings.EqualFold(w, "ANALYZE") || strings.EqualFold(w, "ANALYSE") {
		q = store.SkipComments(r)
	}
	return q, q != ""
}

// firstWord splits q at the end of its leading letters.
func firstWord(q string) (word, rest string) {
	i := 0
	for i < len(q) && (q[i] >= 'a' && q[i] <= 'z' || q[i] >= 'A' && q[i] <= 'Z') {
		i++
	}
	return q[:i], q[i:]
}

// treeNames returns every function name and every table name in a
// json_serialize_sql tree, lower-cased (DuckDB matches names without
// regard to case, quoted or not). A table is named by a table_name key
// wherever it is referred to (FROM, JOIN, SUMMARIZE, PIVOT), whatever
// schema or catalog qualifies it.
func treeNames(tree string) (funcs, tables []string, err error) {
	var doc any
	if err := json.Unmarshal([]byte(tree), &doc); err != nil {
		return nil, nil, fmt.Errorf("reading the query's syntax tree: %w", err)
	}
	if m, ok := doc.(map[string]any); ok && m["error"] == true {
		return nil, nil, fmt.Errorf("preparing query: %v", m["error_message"])
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if name, ok := c.(string); ok {
					switch k {
					case "function_name":
						funcs = append(funcs, strings.ToLower(name))
					case "table_name":
						tables = append(tables, strings.ToLower(name))
					}
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	return funcs, tables, nil
}

// tableFunctions returns the names of DuckDB's table functions, read once.
func (s *Store) tableFunctions(ctx context.Context, conn *sql.Conn) (map[string]bool, error) {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	if s.tables != nil {
		return s.tables, nil
	}
	rows, err := conn.QueryContext(ctx, "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE function_type = 'table'")
	if err != nil {
		return nil, fmt.Errorf("listing table functions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	m := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		m[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.tables = m
	return m, nil
}

// harmlessTableFunction reports the table functions an analyst's query
// may call: generators, unnesting, JSON walks and the catalog. Deny by
// default: a table function DuckDB adds later is refused until listed.
func harmlessTableFunction(name string) bool {
	switch name {
	case "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree", "summary",
		"duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies", "duckdb_functions", "duckdb_indexes",
		"duckdb_keywords", "duckdb_schemas", "duckdb_sequences", "duckdb_settings", "duckdb_tables", "duckdb_types", "duckdb_views",
		"pragma_table_info", "pragma_show", "pragma_version", "pragma_database_size", "pg_timezone_names", "icu_calendar_names":
		return true
	}
	return false
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
