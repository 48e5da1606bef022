// Package main is the duckdbload command, which times DuckDB's own bulk
// load of a Zeek conn.log (TSV, plain or gzip) into a table with dwell's
// conn columns: the peer that bench/ingest.sh measures dwell's ingest
// against. It uses DuckDB's CSV reader directly, so it does none of
// dwell's checking (escapes, bad lines, provenance, the ledger).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/dwell-nsm/dwell/bench/conncsv"
)

func main() {
	db := flag.String("db", "duckdb-load.db", "DuckDB file to create (removed first)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: duckdbload [-db FILE] conn.log[.gz]")
		os.Exit(2)
	}
	if err := run(*db, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(path, input string) error {
	_ = os.Remove(path)
	_ = os.Remove(path + ".wal")
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return err
	}
	d := sql.OpenDB(c)
	defer func() { _ = d.Close() }() // timing is done; nothing to flush
	ctx := context.Background()
	if _, err := d.ExecContext(ctx, `CREATE TABLE conn (ts TIMESTAMP, uid VARCHAR, id_orig_h VARCHAR, id_orig_p USMALLINT,
		id_resp_h VARCHAR, id_resp_p USMALLINT, proto VARCHAR, service VARCHAR, duration DOUBLE, orig_bytes UBIGINT,
		resp_bytes UBIGINT, conn_state VARCHAR, local_orig BOOLEAN, local_resp BOOLEAN, missed_bytes UBIGINT,
		history VARCHAR, orig_pkts UBIGINT, orig_ip_bytes UBIGINT, resp_pkts UBIGINT, resp_ip_bytes UBIGINT,
		tunnel_parents VARCHAR[])`); err != nil {
		return err
	}
	start := time.Now()
	// Zeek's '#' lines are comments; '-' is NULL; T/F are booleans.
	res, err := d.ExecContext(ctx, `INSERT INTO conn SELECT to_timestamp(ts), uid, id_orig_h, id_orig_p, id_resp_h, id_resp_p,
		proto, service, duration, orig_bytes, resp_bytes, conn_state, local_orig = 'T', local_resp = 'T', missed_bytes,
		history, orig_pkts, orig_ip_bytes, resp_pkts, resp_ip_bytes, NULL
		FROM `+conncsv.ReadCSV, input)
	if err != nil {
		return err
	}
	if _, err := d.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	n, _ := res.RowsAffected()
	el := time.Since(start)
	fmt.Printf("duckdb read_csv: %d rows in %.2fs = %.0f rows/s\n", n, el.Seconds(), float64(n)/el.Seconds())
	return nil
}
