package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

// scan is a DuckDB table function that yields the pending rows of one
// table, a vector at a time: INSERT INTO t (columns) SELECT columns FROM
// dwell_scan_t_TAG(). Columns are named: a column added by a migration comes
// last in a store made before it. A coded column (layout.go) is an ENUM,
// NULL for a value outside its codes, and the function's columns after
// the table's hold those values, one for each coded column.
type scan[R any] struct {
	fn    string
	table *store.Table[R]
	info  store.TableInfo
	infos []duckdb.ColumnInfo
	// codes is, per column, the set of a coded column's codes (nil for
	// the others); others are the coded columns' indexes, in order.
	codes  []map[string]bool
	others []int
	rows   []R
	// skip marks columns the INSERT supplies itself (all NULL, or the same
	// sensor and file for every row): FillChunk leaves them out.
	skip  []bool
	next  atomic.Int64 // next row to hand out; DuckDB fills vectors on several threads
	errMu sync.Mutex
	err   error
}

var _ duckdb.ParallelChunkTableSource = (*scan[event.Conn])(nil)

// localScan is one DuckDB thread's scratch space.
type localScan struct {
	text []byte // addresses as text
}

// newScan returns the scan of table t, named dwell_scan_TABLE_TAG. The
// names are per Store: table functions are registered in the database
// instance, which every Store of one file in a process shares, and a
// second Store registering dwell_scan_conn made the first one's inserts
// read its rows.
func newScan[R any](t *store.Table[R], tag string) (*scan[R], error) {
	sc := &scan[R]{fn: "dwell_scan_" + t.Name() + "_" + tag, table: t, info: t.Info(), codes: make([]map[string]bool, len(t.Columns))}
	for i, c := range t.Columns {
		ti, err := typeInfo(c.Type)
		if len(c.Codes) > 0 {
			ti, err = duckdb.NewEnumInfo(c.Codes[0], c.Codes[1:]...)
			sc.codes[i] = map[string]bool{}
			for _, v := range c.Codes {
				sc.codes[i][v] = true
			}
			sc.others = append(sc.others, i)
		}
		if err != nil {
			return nil, fmt.Errorf("column %s.%s: %w", t.Name(), c.Name, err)
		}
		sc.infos = append(sc.infos, duckdb.ColumnInfo{Name: c.Name, T: ti})
	}
	for _, i := range sc.others {
		ti, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
		if err != nil {
			return nil, err
		}
		sc.infos = append(sc.infos, duckdb.ColumnInfo{Name: otherName(t.Columns[i].Name), T: ti})
	}
	return sc, nil
}

func typeInfo(t store.Type) (duckdb.TypeInfo, error) {
	switch t {
	case store.TypeTime:
		return duckdb.NewTypeInfo(duckdb.TYPE_TIMESTAMP)
	case store.TypeString, store.TypeAddr:
		return duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	case store.TypePort:
		return duckdb.NewTypeInfo(duckdb.TYPE_USMALLINT)
	case store.TypeCount:
		return duckdb.NewTypeInfo(duckdb.TYPE_UBIGINT)
	case store.TypeInterval:
		return duckdb.NewTypeInfo(duckdb.TYPE_DOUBLE)
	case store.TypeBool:
		return duckdb.NewTypeInfo(duckdb.TYPE_BOOLEAN)
	case store.TypeStrings, store.TypeIntervals:
		child := duckdb.TYPE_VARCHAR
		if t == store.TypeIntervals {
			child = duckdb.TYPE_DOUBLE
		}
		ci, err := duckdb.NewTypeInfo(child)
		if err != nil {
			return nil, err
		}
		return duckdb.NewListInfo(ci)
	}
	return nil, fmt.Errorf("BUG: no DuckDB type for %v", t)
}

func (sc *scan[R]) function() duckdb.ParallelChunkTableFunction {
	return duckdb.ParallelChunkTableFunction{
		BindArguments: func(map[string]any, ...any) (duckdb.ParallelChunkTableSource, error) { return sc, nil },
	}
}

// ColumnInfos implements duckdb.ChunkTableSource.
func (sc *scan[R]) ColumnInfos() []duckdb.ColumnInfo { return sc.infos }

// Cardinality implements duckdb.ChunkTableSource.
func (sc *scan[R]) Cardinality() *duckdb.CardinalityInfo {
	return &duckdb.CardinalityInfo{Cardinality: uint(len(sc.rows)), Exact: true}
}

// Init implements duckdb.ParallelChunkTableSource.
func (sc *scan[R]) Init() duckdb.ParallelTableSourceInfo {
	sc.next.Store(0)
	sc.err = nil
	return duckdb.ParallelTableSourceInfo{MaxThreads: runtime.GOMAXPROCS(0)}
}

// NewLocalState implements duckdb.ParallelChunkTableSource.
func (sc *scan[R]) NewLocalState() any { return &localScan{} }

// FillChunk implements duckdb.ParallelChunkTableSource: it claims the next
// vector of rows and copies it column by column.
func (sc *scan[R]) FillChunk(local any, c duckdb.DataChunk) error {
	size := int64(duckdb.GetDataChunkCapacity())
	end := sc.next.Add(size)
	start := end - size
	if start >= int64(len(sc.rows)) {
		return c.SetSize(0)
	}
	end = min(end, int64(len(sc.rows)))
	rows := sc.rows[start:end]
	ls := local.(*localScan)
	for ci := range sc.infos {
		if sc.skip[ci] {
			continue
		}
		if err := sc.fillColumn(c, ci, rows, ls); err != nil {
			err = fmt.Errorf("column %s: %w", sc.infos[ci].Name, err)
			sc.errMu.Lock()
			sc.err = err
			sc.errMu.Unlock()
			return err
		}
	}
	return c.SetSize(len(rows))
}

func (sc *scan[R]) fillColumn(c duckdb.DataChunk, ci int, rows []R, ls *localScan) error {
	if n := len(sc.table.Columns); ci >= n {
		return sc.fillOther(c, ci, sc.others[ci-n], rows)
	}
	col := &sc.table.Columns[ci]
	var err error
	if codes := sc.codes[ci]; codes != nil {
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.String(&rows[i]); codes[v] {
				err = duckdb.SetChunkValue(c, ci, i, v)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
		return err
	}
	switch col.Type {
	case store.TypeTime:
		for i := 0; i < len(rows) && err == nil; i++ {
			if t, ok := col.Time(&rows[i]); ok {
				err = duckdb.SetChunkValue(c, ci, i, t)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeString:
		// Text that is not UTF-8 (which ingest escapes, but a direct
		// Write may carry) is escaped here too: DuckDB made it NULL.
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.String(&rows[i]); v != "" || col.NotNull {
				v, _ = event.EscapeText(v)
				err = duckdb.SetChunkValue(c, ci, i, v)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeAddr:
		for i := 0; i < len(rows) && err == nil; i++ {
			if a := col.Addr(&rows[i]); a.IsValid() {
				ls.text = a.AppendTo(ls.text[:0])
				err = duckdb.SetChunkValue(c, ci, i, ls.text)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypePort:
		for i := 0; i < len(rows) && err == nil; i++ {
			if p, ok := col.Port(&rows[i]); ok {
				err = duckdb.SetChunkValue(c, ci, i, p)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeCount:
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.Count(&rows[i]); v.Valid {
				err = duckdb.SetChunkValue(c, ci, i, v.V)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeInterval:
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.Interval(&rows[i]); v.Valid {
				err = duckdb.SetChunkValue(c, ci, i, v.V.Seconds())
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeBool:
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.Bool(&rows[i]); v.Valid {
				err = duckdb.SetChunkValue(c, ci, i, v.V)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeStrings:
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.Strings(&rows[i]); len(v) > 0 {
				if e, changed := escapeArg(v); changed {
					v = e.([]string)
				}
				err = duckdb.SetChunkValue(c, ci, i, v)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	case store.TypeIntervals:
		for i := 0; i < len(rows) && err == nil; i++ {
			if v := col.Intervals(&rows[i]); len(v) > 0 {
				secs := make([]float64, len(v))
				for j, d := range v {
					secs[j] = d.Seconds()
				}
				err = duckdb.SetChunkValue(c, ci, i, secs)
			} else {
				err = c.SetValue(ci, i, nil)
			}
		}
	default:
		return fmt.Errorf("BUG: no writer for %v", col.Type)
	}
	return err
}

// fillOther fills function column ci with coded column col's values
// outside its codes, NULL for the rest.
func (sc *scan[R]) fillOther(c duckdb.DataChunk, ci, col int, rows []R) error {
	var err error
	get, codes := sc.table.Columns[col].String, sc.codes[col]
	for i := 0; i < len(rows) && err == nil; i++ {
		if v := get(&rows[i]); v != "" && !codes[v] {
			v, _ = event.EscapeText(v)
			err = duckdb.SetChunkValue(c, ci, i, v)
		} else {
			err = c.SetValue(ci, i, nil)
		}
	}
	return err
}

// hasOther reports whether coded column col holds a value outside its
// codes in any row.
func (sc *scan[R]) hasOther(col int, rows []R) bool {
	get, codes := sc.table.Columns[col].String, sc.codes[col]
	for i := range rows {
		if v := get(&rows[i]); v != "" && !codes[v] {
			return true
		}
	}
	return false
}

// scans holds one table function per table.
type scans struct {
	conn     *scan[event.Conn]
	openConn *scan[event.Conn]
	dns      *scan[event.DNS]
	http     *scan[event.HTTP]
	tls      *scan[event.TLS]
	x509     *scan[event.X509]
	files    *scan[event.File]
	flow     *scan[event.Flow]
	winlog   *scan[event.HostEvent]
	alert    *scan[event.Alert]
	held     *scan[event.Quarantined]
}

// prepareWriter opens the writer's connection and registers the table
// functions on it.
func (s *Store) prepareWriter(ctx context.Context) error {
	var sc scans
	var errs []error
	mk := func(err error) { errs = append(errs, err) }
	var err error
	tag := strings.ToLower(rand.Text()[:10])
	sc.conn, err = newScan(s.schema.Conn, tag)
	mk(err)
	sc.openConn, err = newScan(s.schema.OpenConn, tag)
	mk(err)
	sc.dns, err = newScan(s.schema.DNS, tag)
	mk(err)
	sc.http, err = newScan(s.schema.HTTP, tag)
	mk(err)
	sc.tls, err = newScan(s.schema.TLS, tag)
	mk(err)
	sc.x509, err = newScan(s.schema.X509, tag)
	mk(err)
	sc.files, err = newScan(s.schema.Files, tag)
	mk(err)
	sc.flow, err = newScan(s.schema.Flow, tag)
	mk(err)
	sc.winlog, err = newScan(s.schema.Winlog, tag)
	mk(err)
	sc.alert, err = newScan(s.schema.Alert, tag)
	mk(err)
	sc.held, err = newScan(s.schema.Quarantine, tag)
	mk(err)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	is, err := newIntelScans(s.intel, tag)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("opening the writer connection: %w", err)
	}
	for _, r := range []struct {
		name string
		fn   duckdb.ParallelChunkTableFunction
	}{
		{sc.conn.fn, sc.conn.function()}, {sc.openConn.fn, sc.openConn.function()},
		{sc.dns.fn, sc.dns.function()}, {sc.http.fn, sc.http.function()},
		{sc.tls.fn, sc.tls.function()}, {sc.x509.fn, sc.x509.function()},
		{sc.files.fn, sc.files.function()}, {sc.flow.fn, sc.flow.function()}, {sc.held.fn, sc.held.function()},
		{sc.winlog.fn, sc.winlog.function()}, {sc.alert.fn, sc.alert.function()},
		{is.daily.fn, is.daily.function()}, {is.indicators.fn, is.indicators.function()},
	} {
		if err := duckdb.RegisterTableUDF(conn, r.name, r.fn); err != nil {
			_ = conn.Close()
			return fmt.Errorf("registering %s: %w", r.name, err)
		}
	}
	s.wconn, s.scans, s.iscans = conn, &sc, is
	return s.loadSummaryState(ctx)
}

// isSrcColumn reports the provenance columns that are usually the same
// for a whole batch.
func isSrcColumn(name string) bool { return name == "sensor" || name == "source_file" }

// insert appends rows through sc inside tx. Columns that are NULL in every
// row, the sensor and file when all rows share them (the usual case), and
// any other text column with one value in every row become constants of
// the statement: no value is copied for them.
func insert[R any](ctx context.Context, tx *sql.Tx, sc *scan[R], rows []R) error {
	return insertWith(ctx, tx, sc, rows, "INSERT INTO", "")
}

// insertWith is insert with another verb ("INSERT OR REPLACE INTO") or a
// clause after the SELECT ("ON CONFLICT ... DO UPDATE ...").
func insertWith[R any](ctx context.Context, tx *sql.Tx, sc *scan[R], rows []R, verb, clause string) error {
	if len(rows) == 0 {
		return nil
	}
	var first *event.Source
	constSrc := sc.table.Source != nil
	if constSrc {
		first = sc.table.Source(&rows[0])
	}
	for i := 0; constSrc && i < len(rows); i++ {
		if s := sc.table.Source(&rows[i]); s.Sensor != first.Sensor || s.File != first.File {
			constSrc = false
		}
	}
	sc.skip = sc.skip[:0]
	var sel, names strings.Builder
	var args []any
	for i, c := range sc.table.Columns {
		if i > 0 {
			sel.WriteString(", ")
			names.WriteString(", ")
		}
		names.WriteString(quote(c.Name))
		switch {
		case constSrc && isSrcColumn(c.Name):
			sel.WriteString("?::VARCHAR")
			v := first.Sensor
			if c.Name == "source_file" {
				v = first.File
			}
			args = append(args, nullIfEmpty(v))
			sc.skip = append(sc.skip, true)
		case allNull(&c, rows):
			sel.WriteString("NULL")
			sc.skip = append(sc.skip, true)
		case c.Type == store.TypeString && sameString(&c, rows) && (sc.codes[i] == nil || sc.codes[i][c.String(&rows[0])]):
			// One value in every row (a log's kind and sensor in the intel
			// summary, a protocol): a constant, not a cgo call a row. A
			// coded column's is cast to its ENUM once; a value outside its
			// codes is copied with the rows, into the other column.
			sel.WriteString("?::VARCHAR")
			args = append(args, c.String(&rows[0]))
			sc.skip = append(sc.skip, true)
		default:
			sel.WriteString(quote(c.Name))
			sc.skip = append(sc.skip, false)
		}
	}
	var others []string
	for _, i := range sc.others {
		name := otherName(sc.table.Columns[i].Name)
		names.WriteString(", " + quote(name))
		if sc.hasOther(i, rows) {
			sel.WriteString(", " + quote(name))
			sc.skip = append(sc.skip, false)
			others = append(others, sc.table.Columns[i].Name)
		} else {
			sel.WriteString(", NULL")
			sc.skip = append(sc.skip, true)
		}
	}
	sc.rows = rows
	defer func() { sc.rows = nil }()
	res, err := tx.ExecContext(ctx, fmt.Sprintf("%s %s (%s) SELECT %s FROM %s() %s", verb, physical(sc.info), names.String(), sel.String(), sc.fn, clause), utf8Args(args)...)
	if err != nil {
		sc.errMu.Lock()
		if sc.err != nil {
			err = sc.err
		}
		sc.errMu.Unlock()
		return fmt.Errorf("inserting into %s: %w", sc.table.Name(), err)
	}
	if n, err := res.RowsAffected(); err == nil && clause == "" && n != int64(len(rows)) {
		return fmt.Errorf("BUG: inserted %d of %d rows into %s", n, len(rows), sc.table.Name())
	}
	if len(others) > 0 {
		return widenView(ctx, tx, sc.info, others)
	}
	return nil
}

// sameString reports whether string column c holds the same value, not
// empty, in every row. (An empty one is NULL, which allNull finds, or
// empty text in a NotNull column, which the rows copy.)
func sameString[R any](c *store.Column[R], rows []R) bool {
	v := c.String(&rows[0])
	if v == "" {
		return false
	}
	for i := 1; i < len(rows); i++ {
		if c.String(&rows[i]) != v {
			return false
		}
	}
	return true
}

// allNull reports whether column c is NULL in every row.
func allNull[R any](c *store.Column[R], rows []R) bool {
	for i := range rows {
		if !c.IsNull(&rows[i]) {
			return false
		}
	}
	return true
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Write implements store.Writer: the batch's rows and its progress commit
// in one transaction.
func (s *Store) Write(ctx context.Context, b *event.Batch) error {
	if s.ro {
		return s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	// The intel summary is computed while the records are written: both
	// only read b, and a sensor's ingest has a core to spare for it.
	summary := make(chan []store.DailyRow, 1)
	go func() { summary <- store.Summarize(b) }()
	daily := func() []store.DailyRow { return <-summary }
	sc := s.scans
	for _, err := range []error{
		insert(ctx, tx, sc.conn, b.Conns),
		insert(ctx, tx, sc.openConn, b.OpenConns),
		insert(ctx, tx, sc.dns, b.DNS),
		insert(ctx, tx, sc.http, b.HTTP),
		insert(ctx, tx, sc.tls, b.TLS),
		insert(ctx, tx, sc.x509, b.X509),
		insert(ctx, tx, sc.files, b.Files),
		insert(ctx, tx, sc.flow, b.Flows),
		insert(ctx, tx, sc.winlog, b.Host),
		insert(ctx, tx, sc.alert, b.Alerts),
		insert(ctx, tx, sc.held, b.Quarantine),
	} {
		if err != nil {
			daily() // wait for it: b is the caller's again after return
			return err
		}
	}
	if err := s.summarize(ctx, tx, daily()); err != nil {
		return err
	}
	if err := saveProgress(ctx, tx, b.Progress); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	if len(b.Flows) > 0 {
		s.flowWrites.Add(1) // the flow sessions kept are stale
	}
	if s.unmerged >= compactEvery {
		return s.compact(ctx)
	}
	return nil
}

// saveProgress upserts the ledger entries of a batch in one statement,
// keeping the last entry of each input (a merged batch may hold several).
func saveProgress(ctx context.Context, tx *sql.Tx, progress []event.Progress) error {
	if len(progress) == 0 {
		return nil
	}
	last := make(map[event.InputID]int, len(progress))
	for i, p := range progress {
		last[p.ID] = i
	}
	var values strings.Builder
	args := make([]any, 0, 14*len(last))
	for i, p := range progress {
		if last[p.ID] != i {
			continue
		}
		if p.Replaces != "" && p.Replaces != p.ID {
			if _, err := tx.ExecContext(ctx, `DELETE FROM ingest_ledger WHERE id = ?`, string(p.Replaces)); err != nil {
				return fmt.Errorf("updating the ingest ledger: %w", err)
			}
		}
		updated := p.Updated
		if updated.IsZero() {
			updated = time.Now().UTC()
		}
		if values.Len() > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, string(p.ID), p.HeadLen, toLedger(p.Path), toLedger(p.Sensor), toLedger(p.Format), toLedger(p.Header), p.Offset, p.Line,
			p.Check, p.Size, p.Rows, p.Bad, p.Complete, updated)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO ingest_ledger (`+ledgerColumns+`) VALUES `+values.String()+`
		ON CONFLICT (id) DO UPDATE SET head_len = excluded.head_len, path = excluded.path, sensor = excluded.sensor,
			format = excluded.format, header = excluded.header, "offset" = excluded."offset", line = excluded.line,
			"check" = excluded."check", size = excluded.size, rows = excluded.rows, bad = excluded.bad,
			complete = excluded.complete, updated = excluded.updated`, args...)
	if err != nil {
		return fmt.Errorf("updating the ingest ledger: %w", err)
	}
	return nil
}

const ledgerColumns = `id, head_len, path, sensor, format, header, "offset", line, "check", size, rows, bad, complete, updated`

// ledgerMark starts a ledger text stored as base64: DuckDB's VARCHAR
// holds UTF-8 only, and a file's path or a Zeek header read from it may
// hold any bytes, which a resumed read needs back exactly.
const ledgerMark = "\x01b64:"

// toLedger returns s as the ledger stores it: itself when it is UTF-8 and
// does not start with ledgerMark, else ledgerMark and its base64.
func toLedger(s string) string {
	if utf8.ValidString(s) && !strings.HasPrefix(s, ledgerMark) {
		return s
	}
	return ledgerMark + base64.StdEncoding.EncodeToString([]byte(s))
}

// fromLedger reverses toLedger.
func fromLedger(s string) string {
	if b64, ok := strings.CutPrefix(s, ledgerMark); ok {
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return string(b)
		}
	}
	return s
}

func scanProgress(rows *sql.Rows) ([]event.Progress, error) {
	defer func() { _ = rows.Close() }() // read errors surface through rows.Err
	var out []event.Progress
	for rows.Next() {
		var p event.Progress
		var id string
		var sensor, format, header, check sql.NullString
		var size sql.NullInt64
		var updated sql.NullTime
		if err := rows.Scan(&id, &p.HeadLen, &p.Path, &sensor, &format, &header, &p.Offset, &p.Line, &check, &size, &p.Rows, &p.Bad, &p.Complete, &updated); err != nil {
			return nil, err
		}
		p.ID = event.InputID(id)
		p.Path = fromLedger(p.Path)
		p.Sensor, p.Format, p.Header, p.Check = fromLedger(sensor.String), fromLedger(format.String), fromLedger(header.String), check.String
		p.Size, p.Updated = size.Int64, updated.Time
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeleteSensor implements store.Writer, in one transaction.
func (s *Store) DeleteSensor(ctx context.Context, sensor string) (int64, error) {
	if s.ro {
		return 0, s.readOnlyError()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	args := utf8Args([]any{sensor})
	var n int64
	for _, t := range s.schema.Tables() {
		res, err := tx.ExecContext(ctx, `DELETE FROM `+physical(t)+` WHERE coalesce(sensor, '') = ?`, args...) //nolint:gosec // G202: names from the schema
		if err != nil {
			return 0, fmt.Errorf("deleting sensor %s from %s: %w", sensor, t.Name, err)
		}
		if t.Kind != 0 { // records, not the quarantine
			k, _ := res.RowsAffected()
			n += k
		}
	}
	for _, t := range []string{"obs_daily", "obs_value"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE sensor = ?`, args...); err != nil { //nolint:gosec // G202: names from the schema
			return 0, fmt.Errorf("deleting sensor %s from %s: %w", sensor, t, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM ingest_ledger WHERE coalesce(sensor, '') = ?`, toLedger(sensor)); err != nil {
		return 0, fmt.Errorf("deleting sensor %s from the ingest ledger: %w", sensor, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	s.flowWrites.Add(1) // the flow sessions kept are stale
	s.matchMu.Lock()
	s.matchSt, s.matchInds = nil, nil // the summary changed
	s.matchMu.Unlock()
	return n, nil
}

// begin starts a transaction on the writer's connection. Its statements
// stop when ctx ends, but the transaction does not end with ctx:
// database/sql would roll it back from a goroutine of its own, after the
// method that began it returned, and a Close in that window found a
// write transaction still active and could not checkpoint. The method's
// deferred Rollback ends it before the method returns.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	return s.wconn.BeginTx(context.WithoutCancel(ctx), nil)
}

// Inputs implements store.Writer.
func (s *Store) Inputs(ctx context.Context, id event.InputID, path string) ([]event.Progress, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+ledgerColumns+` FROM ingest_ledger WHERE id = ? OR path = ?`, string(id), toLedger(path))
	if err != nil {
		return nil, fmt.Errorf("reading the ingest ledger: %w", err)
	}
	return scanProgress(rows)
}

// Ledger implements store.Reader.
func (s *Store) Ledger(ctx context.Context) ([]event.Progress, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+ledgerColumns+` FROM ingest_ledger ORDER BY path, id`)
	if err != nil {
		return nil, fmt.Errorf("reading the ingest ledger: %w", err)
	}
	return scanProgress(rows)
}
