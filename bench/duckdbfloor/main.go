// Package main is the duckdbfloor command, which measures what DuckDB's own
// storage work costs for Zeek conn rows in dwell's transactions, with no Go
// hand-off at all: the floor under dwell's ingest for a table layout
// (issue #21, docs/benchmarks.md).
//
// It loads a conn.log (TSV, plain or gzip) with DuckDB's CSV reader into an
// in-memory staging table in the chosen layout (not timed), then copies it
// into a new on-disk table in transactions of -batch rows, as dwell's
// writer commits them, timing the INSERTs and the COMMITs apart.
//
//	duckdbfloor [-layout L] [-batch N] [-threads N] [-db FILE] conn.log[.gz]
//	duckdbfloor -view [-db FILE] conn.log[.gz]
//
// The layouts:
//
//	dwell     dwell's conn table as it is (25 columns; addresses, uid, proto
//	          and state as text; sensor and file on every row)
//	uid       the same with the uid as a 128-bit integer
//	nosrc     the same with a batch number instead of the sensor and file
//	compact1  addresses as two 64-bit integers each, proto and state as
//	          small integers, a batch number instead of the sensor and file
//	compact2  compact1 with the uid as a 128-bit integer
//
// The integer columns of the compact layouts are computed from the text
// (hashes of the same values, so as many distinct values as the text has);
// the source line is the row number, as dwell's is.
//
// -view instead times queries over addresses stored as text beside the
// same addresses stored as integers (IPv4 as one integer), grouped and
// formatted back to text in three ways: what a compact layout's view costs
// the queries that read it.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/bench/conncsv"
	dwellduckdb "github.com/dwell-nsm/dwell/internal/store/duckdb"
)

func main() {
	name := flag.String("layout", "dwell", "table layout: dwell, uid, nosrc, compact1, compact2")
	batch := flag.Int("batch", 122880, "rows per transaction")
	threads := flag.Int("threads", 1, "DuckDB threads (dwell ingest uses half the cores)")
	view := flag.Bool("view", false, "time address queries over text and integer columns instead")
	db := flag.String("db", "duckdb-floor.db", "DuckDB file to create (removed first)")
	flag.Parse()
	if flag.NArg() != 1 || *batch <= 0 {
		fmt.Fprintln(os.Stderr, "usage: duckdbfloor [-layout L] [-batch N] [-threads N] [-view] [-db FILE] conn.log[.gz]")
		os.Exit(2)
	}
	var err error
	if *view {
		err = views(*db, flag.Arg(0))
	} else {
		err = floor(*db, flag.Arg(0), *name, *batch, *threads)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckdbfloor:", err)
		os.Exit(1)
	}
}

// compactConn is conn with integer addresses, proto and state, and a batch
// number for the provenance; UID is the uid's type.
const compactConn = `ts TIMESTAMP, uid UID, orig_hi UBIGINT, orig_lo UBIGINT, id_orig_p USMALLINT, resp_hi UBIGINT,
	resp_lo UBIGINT, id_resp_p USMALLINT, proto UTINYINT, service VARCHAR, duration DOUBLE, orig_bytes UBIGINT,
	resp_bytes UBIGINT, conn_state UTINYINT, local_orig BOOLEAN, local_resp BOOLEAN, missed_bytes UBIGINT,
	history VARCHAR, orig_pkts UBIGINT, orig_ip_bytes UBIGINT, resp_pkts UBIGINT, resp_ip_bytes UBIGINT,
	tunnel_parents VARCHAR[], community_id VARCHAR, batch UINTEGER, source_line UBIGINT`

// intUID is a uid's text as a 128-bit integer of as many distinct values.
const intUID = `(hash(uid)::UHUGEINT << 64) + hash(uid || '.')`

// layout returns the table columns of layout name and the SELECT over
// the staging table (stage, in dwell's layout) that fills it; dwellConn
// is dwell's conn columns, as its store creates them.
func layout(name, dwellConn string) (columns, fill string, err error) {
	switch name {
	case "dwell":
		return dwellConn, `SELECT * FROM stage`, nil
	case "uid":
		return strings.Replace(dwellConn, "uid VARCHAR", "uid UHUGEINT", 1), `SELECT * REPLACE (` + intUID + ` AS uid) FROM stage`, nil
	case "nosrc":
		return strings.Replace(strings.Replace(dwellConn, "sensor VARCHAR,", "", 1), "source_file VARCHAR,", "", 1) + ", batch UINTEGER",
			`SELECT * EXCLUDE (sensor, source_file), 7::UINTEGER AS batch FROM stage`, nil
	case "compact1":
		return strings.Replace(compactConn, "UID", "VARCHAR", 1), compactFill("uid"), nil
	case "compact2":
		return strings.Replace(compactConn, "UID", "UHUGEINT", 1), compactFill(intUID), nil
	}
	return "", "", fmt.Errorf("no layout %q", name)
}

// dwellConn creates a dwell store at path (removed first) and returns its
// conn table's columns: the layout measured is the one the store makes.
func dwellConn(ctx context.Context, path string) (string, error) {
	_ = os.Remove(path)
	_ = os.Remove(path + ".wal")
	st, err := dwellduckdb.Open(ctx, path, dwellduckdb.Options{})
	if err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return "", err
	}
	d := sql.OpenDB(c)
	defer func() { _ = d.Close() }() // read only
	var ddl string
	if err := d.QueryRowContext(ctx, `SELECT sql FROM duckdb_tables() WHERE table_name = 'conn'`).Scan(&ddl); err != nil {
		return "", fmt.Errorf("reading dwell's conn table: %w", err)
	}
	i, j := strings.Index(ddl, "("), strings.LastIndex(ddl, ")")
	if i < 0 || j < i {
		return "", fmt.Errorf("unexpected conn table: %s", ddl)
	}
	return ddl[i+1 : j], nil
}

func compactFill(uid string) string {
	return `SELECT ts, ` + uid + `, 0::UBIGINT, hash(id_orig_h) % 4294967296, id_orig_p, 0::UBIGINT, hash(id_resp_h) % 4294967296,
		id_resp_p, hash(proto) % 3, service, duration, orig_bytes, resp_bytes, hash(conn_state) % 13, local_orig, local_resp,
		missed_bytes, history, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes, tunnel_parents, community_id,
		7::UINTEGER, source_line FROM stage`
}

// readConn selects a Zeek conn.log's rows in dwell's layout from DuckDB's
// CSV reader; the source line is the row's number.
const readConn = `SELECT to_timestamp(ts)::TIMESTAMP AS ts, uid, id_orig_h, id_orig_p, id_resp_h, id_resp_p, proto, service,
	duration, orig_bytes, resp_bytes, conn_state, local_orig = 'T' AS local_orig, local_resp = 'T' AS local_resp,
	missed_bytes, history, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes, NULL::VARCHAR[] AS tunnel_parents,
	NULL::VARCHAR AS community_id, 'default' AS sensor, ? AS source_file, (row_number() OVER () + 8)::UBIGINT AS source_line
	FROM ` + conncsv.ReadCSV

// open creates a new DuckDB file with an attached in-memory database m.
func open(ctx context.Context, path string, threads int) (*sql.DB, error) {
	_ = os.Remove(path)
	_ = os.Remove(path + ".wal")
	c, err := duckdb.NewConnector(fmt.Sprintf("%s?threads=%d", path, threads), nil)
	if err != nil {
		return nil, err
	}
	d := sql.OpenDB(c)
	d.SetMaxOpenConns(1) // the attached database belongs to one connection
	if _, err := d.ExecContext(ctx, "ATTACH ':memory:' AS m"); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func floor(path, input, name string, batch, threads int) error {
	ctx := context.Background()
	conn, err := dwellConn(ctx, path)
	if err != nil {
		return err
	}
	columns, fill, err := layout(name, conn)
	if err != nil {
		return err
	}
	d, err := open(ctx, path, threads)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // timing is done; nothing to flush
	if _, err := d.ExecContext(ctx, `CREATE TABLE m.stage AS `+readConn, input, input); err != nil {
		return err
	}
	for _, q := range []string{
		`CREATE TABLE m.layout AS ` + strings.Replace(fill, "FROM stage", "FROM m.stage", 1),
		`DROP TABLE m.stage`,
		`CREATE TABLE conn (` + columns + `)`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	var rows int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM m.layout`).Scan(&rows); err != nil {
		return err
	}
	var inserting, committing time.Duration
	start := time.Now()
	for lo := 0; lo < rows; lo += batch {
		tx, err := d.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO conn SELECT * FROM m.layout WHERE rowid >= ? AND rowid < ?`, lo, lo+batch); err != nil {
			_ = tx.Rollback()
			return err
		}
		t1 := time.Now()
		if err := tx.Commit(); err != nil {
			return err
		}
		inserting += t1.Sub(t0)
		committing += time.Since(t1)
	}
	if _, err := d.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("layout %s, %d rows in transactions of %d, %d DuckDB thread(s): %.2f s (inserts %.2f s, commits %.2f s, checkpoint %.2f s), %.0f rows/s\n",
		name, rows, batch, threads, el.Seconds(), inserting.Seconds(), committing.Seconds(), (el - inserting - committing).Seconds(), float64(rows)/el.Seconds())
	return nil
}

// views times address queries over text columns (conn, dwell's layout)
// beside integer ones (connc: IPv4 addresses as one integer, IPv6 NULL).
func views(path, input string) error {
	ctx := context.Background()
	d, err := open(ctx, path, 2)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }() // read only from here
	v4 := func(c string) string {
		return fmt.Sprintf(`CASE WHEN %[1]s LIKE '%%.%%' THEN (split_part(%[1]s, '.', 1)::UBIGINT << 24) | (split_part(%[1]s, '.', 2)::UBIGINT << 16)
			| (split_part(%[1]s, '.', 3)::UBIGINT << 8) | split_part(%[1]s, '.', 4)::UBIGINT END`, c)
	}
	if _, err := d.ExecContext(ctx, `CREATE TABLE conn AS `+readConn, input, input); err != nil {
		return err
	}
	for _, q := range []string{
		`CREATE TABLE connc AS SELECT * EXCLUDE (id_orig_h, id_resp_h), ` + v4("id_orig_h") + ` AS orig, ` + v4("id_resp_h") + ` AS resp FROM conn`,
		`CREATE MACRO text4(x) AS concat_ws('.', (x >> 24) & 255, (x >> 16) & 255, (x >> 8) & 255, x & 255)`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for _, q := range []string{
		`SELECT id_orig_h, id_resp_h, count(*), sum(orig_bytes) FROM conn GROUP BY ALL`,
		`SELECT text4(orig), text4(resp), count(*), sum(orig_bytes) FROM connc GROUP BY ALL`,
		`SELECT text4(orig), text4(resp), n, b FROM (SELECT orig, resp, count(*) AS n, sum(orig_bytes) AS b FROM connc GROUP BY ALL)`,
		`SELECT orig, resp, count(*), sum(orig_bytes) FROM connc GROUP BY ALL`,
		`SELECT id_orig_h, id_resp_h, id_resp_p, ts FROM conn WHERE id_resp_p = 443`,
		`SELECT text4(orig), text4(resp), id_resp_p, ts FROM connc WHERE id_resp_p = 443`,
		`SELECT orig, resp, id_resp_p, ts FROM connc WHERE id_resp_p = 443`,
	} {
		best := time.Duration(1 << 62)
		n := 0
		for range 3 {
			start := time.Now()
			var err error
			if n, err = count(ctx, d, q); err != nil {
				return err
			}
			best = min(best, time.Since(start))
		}
		fmt.Printf("%7.3f s %9d rows  %s\n", best.Seconds(), n, q)
	}
	return nil
}

// count runs q and reads its rows, returning how many.
func count(ctx context.Context, d *sql.DB, q string) (int, error) {
	rows, err := d.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }() // read errors surface through rows.Err
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
