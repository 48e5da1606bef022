package duckdb_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the driver, for the raw connection

	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// BenchmarkWriteConnViaCSV measures the alternative write path issue
// #21 names: the rows of BenchmarkWriteConn written by Go as a TSV spool
// file, then loaded by DuckDB's own parallel reader (INSERT ... SELECT
// FROM read_csv) into the same table. It stores the rows only (no ledger
// or intel summary), so it bounds what the path could gain.
func BenchmarkWriteConnViaCSV(b *testing.B) {
	batch := connBatch()
	rows := len(batch.Conns)
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.db")
	s, err := duckdb.Open(context.Background(), path, duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	table := store.NewSchema().Conn
	var cols []string
	for _, c := range table.Columns {
		t := map[store.Type]string{store.TypeTime: "TIMESTAMP", store.TypeString: "VARCHAR", store.TypeAddr: "VARCHAR",
			store.TypePort: "USMALLINT", store.TypeCount: "UBIGINT", store.TypeInterval: "DOUBLE", store.TypeBool: "BOOLEAN",
			store.TypeStrings: "VARCHAR", store.TypeIntervals: "VARCHAR"}[c.Type]
		cols = append(cols, fmt.Sprintf("'%s': '%s'", c.Name, t))
	}
	spool := filepath.Join(dir, "spool.tsv")
	q := fmt.Sprintf(`INSERT INTO conn BY NAME SELECT * FROM read_csv('%s', delim='\t', header=false, quote='', escape='', nullstr='\N', columns={%s})`,
		spool, strings.Join(cols, ", "))
	b.ReportAllocs()
	b.SetBytes(int64(rows) * 150)
	var goTime, dbTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := writeTSV(spool, table, batch.Conns); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			b.Fatal(err)
		}
		goTime += t1.Sub(t0)
		dbTime += time.Since(t1)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(goTime.Nanoseconds())/float64(rows*b.N), "go-ns/row")
	b.ReportMetric(float64(dbTime.Nanoseconds())/float64(rows*b.N), "duckdb-ns/row")
}

// writeTSV writes rows as TSV: \N for NULL, lists as NULL (enough to
// measure).
func writeTSV[R any](path string, t *store.Table[R], rows []R) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var buf []byte
	for i := range rows {
		r := &rows[i]
		buf = buf[:0]
		for ci, c := range t.Columns {
			if ci > 0 {
				buf = append(buf, '\t')
			}
			switch c.Type {
			case store.TypeTime:
				if v, ok := c.Time(r); ok {
					buf = v.UTC().AppendFormat(buf, "2006-01-02 15:04:05.999999")
				} else {
					buf = append(buf, `\N`...)
				}
			case store.TypeString:
				v := c.String(r)
				if v == "" && !c.NotNull {
					buf = append(buf, `\N`...)
				} else {
					buf = append(buf, v...)
				}
			case store.TypeAddr:
				if a := c.Addr(r); a.IsValid() {
					buf = a.AppendTo(buf)
				} else {
					buf = append(buf, `\N`...)
				}
			case store.TypePort:
				if v, ok := c.Port(r); ok {
					buf = strconv.AppendUint(buf, uint64(v), 10)
				} else {
					buf = append(buf, `\N`...)
				}
			case store.TypeCount:
				if v := c.Count(r); v.Valid {
					buf = strconv.AppendUint(buf, v.V, 10)
				} else {
					buf = append(buf, `\N`...)
				}
			case store.TypeInterval:
				if v := c.Interval(r); v.Valid {
					buf = strconv.AppendFloat(buf, v.V.Seconds(), 'f', -1, 64)
				} else {
					buf = append(buf, `\N`...)
				}
			case store.TypeBool:
				if v := c.Bool(r); v.Valid {
					buf = strconv.AppendBool(buf, v.V)
				} else {
					buf = append(buf, `\N`...)
				}
			default:
				buf = append(buf, `\N`...)
			}
		}
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
