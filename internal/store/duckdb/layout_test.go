package duckdb_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// queryAll runs q through Query (dwell query's path) and returns its rows
// as text.
func queryAll(t *testing.T, st *duckdb.Store, q string) [][]string {
	t.Helper()
	rows, err := st.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer func() { _ = rows.Close() }()
	var out [][]string
	for rows.Next() {
		var r []string
		for _, v := range rows.Values() {
			r = append(r, canon(v))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// canon writes a value as the tests compare it.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canon(e)
		}
		return "[" + strings.Join(parts, "|") + "]"
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i], _ = event.EscapeText(e)
		}
		return "[" + strings.Join(parts, "|") + "]"
	case []float64:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = canon(e)
		}
		return "[" + strings.Join(parts, "|") + "]"
	case string:
		s, _ := event.EscapeText(x)
		return s
	}
	return fmt.Sprint(v)
}

func conn(ts time.Time, line int64, proto, state string) event.Conn {
	return event.Conn{TS: ts, UID: fmt.Sprintf("C%d", line), SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("192.0.2.7"),
		SrcPort: 40000, DstPort: 443, Proto: proto, ConnState: state,
		Src: event.Source{Sensor: "s1", File: "/logs/conn.log", Line: line}}
}

// TestCodedColumns: proto and conn_state read back as written, values
// outside their codes included, through the view that dwell query reads;
// the view passes the codes through until such a value is stored.
func TestCodedColumns(t *testing.T) {
	ctx := context.Background()
	st, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	ts := time.Date(2021, 3, 1, 12, 0, 0, 0, time.UTC)
	typeOf := func(table string) string {
		return queryAll(t, st, "SELECT typeof(proto) || ' ' || typeof(conn_state) FROM "+table+" LIMIT 1")[0][0]
	}
	b := &event.Batch{Conns: []event.Conn{conn(ts, 1, "tcp", "SF"), conn(ts, 2, "udp", "S0"), conn(ts, 3, "", "")},
		OpenConns: []event.Conn{conn(ts, 4, "icmp", "OTH")}}
	if err := st.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := typeOf("conn"); !strings.HasPrefix(got, "ENUM") || !strings.Contains(got, " ENUM") {
		t.Errorf("before any other value, the view reads %s, not the codes", got)
	}
	// One batch of one value everywhere (once bound as a constant), then
	// values outside the codes: a protocol number, a state of a later Zeek,
	// text that is not UTF-8.
	b = &event.Batch{Conns: []event.Conn{conn(ts, 5, "tcp", "SF"), conn(ts, 6, "tcp", "SF")}}
	if err := st.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	b = &event.Batch{Conns: []event.Conn{conn(ts, 7, "132", "SF"), conn(ts, 8, "tcp", "S9"), conn(ts, 9, "TCP", "s\xffx")},
		OpenConns: []event.Conn{conn(ts, 10, "tcp", "NEW")}}
	if err := st.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	// One value outside the codes in every row of a batch: not bound as
	// a constant of the ENUM, which would refuse it.
	b = &event.Batch{OpenConns: []event.Conn{conn(ts, 11, "tcp", "NEW"), conn(ts, 12, "tcp", "NEW")}}
	if err := st.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	want := "1 tcp SF|2 udp S0|3 NULL NULL|5 tcp SF|6 tcp SF|7 132 SF|8 tcp S9|9 TCP s\\xffx"
	var got []string
	for _, r := range queryAll(t, st, "SELECT source_line, proto, conn_state FROM conn ORDER BY source_line") {
		got = append(got, strings.Join(r, " "))
	}
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("conn reads\n%s\nwant\n%s", g, want)
	}
	if got := typeOf("conn"); got != "VARCHAR VARCHAR" {
		t.Errorf("after other values, the view reads %s", got)
	}
	if got := typeOf("open_conn"); !strings.HasPrefix(got, "ENUM") || !strings.HasSuffix(got, "VARCHAR") {
		t.Errorf("open_conn's view reads %s: only its conn_state has another value", got)
	}
	// Filters, groups and order by the text, as before.
	for q, want := range map[string]string{
		"SELECT count(*) FROM conn WHERE proto = 'tcp'":                                  "4",
		"SELECT count(*) FROM conn WHERE conn_state IN ('S9', 'S0')":                     "2",
		"SELECT string_agg(proto, ',' ORDER BY proto) FROM conn":                         "132,TCP,tcp,tcp,tcp,tcp,udp",
		"SELECT string_agg(DISTINCT conn_state, ',' ORDER BY conn_state) FROM open_conn": "NEW,OTH",
	} {
		if got := queryAll(t, st, q)[0][0]; got != want {
			t.Errorf("%s = %s, want %s", q, got, want)
		}
	}
	if n, err := st.DeleteSensor(ctx, "s1"); err != nil || n != 12 {
		t.Errorf("DeleteSensor = %d, %v; want 12 records", n, err)
	}
}

// TestMigrateToCodes: a store of schema 8 (proto and conn_state as text
// in main's tables) is moved to the coded layout when opened for writing,
// every value kept.
func TestMigrateToCodes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	st, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2021, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := st.Write(ctx, &event.Batch{Conns: []event.Conn{conn(ts, 1, "tcp", "SF"), conn(ts, 2, "udp", "")}}); err != nil {
		t.Fatal(err)
	}
	before := queryAll(t, st, "SELECT * FROM conn ORDER BY source_line")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to schema 8's layout, as DuckDB's own SQL can.
	var stmts []string
	coded := 0
	for _, tbl := range store.NewSchema().Tables() {
		if !tbl.Coded() {
			continue
		}
		coded++
		var others, texts []string
		for _, c := range tbl.Columns {
			if len(c.Codes) > 0 {
				others = append(others, c.Name+"_other")
				texts = append(texts, fmt.Sprintf("%q::VARCHAR AS %q", c.Name, c.Name))
			}
		}
		stmts = append(stmts, `DROP VIEW main.`+tbl.Name,
			fmt.Sprintf(`CREATE TABLE main.%s AS SELECT * EXCLUDE (%s) REPLACE (%s) FROM stored.%s`, tbl.Name, strings.Join(others, ", "), strings.Join(texts, ", "), tbl.Name),
			`DROP TABLE stored.`+tbl.Name)
	}
	stmts = append(stmts, `DROP SCHEMA stored`,
		`INSERT INTO main.conn (ts, proto, conn_state, sensor, source_file, source_line) VALUES ('2021-03-01 12:00:00', 'sctp', 'S1', 's1', '/logs/conn.log', 3)`,
		`UPDATE dwell_meta SET value = '8' WHERE key = 'schema_version'`)
	execSQL(t, path, stmts...)
	var told []string
	st, err = duckdb.Open(ctx, path, duckdb.Options{Notice: func(s string) { told = append(told, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	if len(told) != coded || !strings.Contains(told[0], "moving conn (3 rows)") {
		t.Errorf("told %q, want one notice a table", told)
	}
	after := queryAll(t, st, "SELECT * FROM conn ORDER BY source_line")
	if len(after) != 3 || fmt.Sprint(after[:2]) != fmt.Sprint(before) {
		t.Errorf("after migrating:\n%v\nbefore:\n%v", after, before)
	}
	if got := queryAll(t, st, "SELECT proto, conn_state, typeof(proto), typeof(conn_state) FROM conn WHERE source_line = 3")[0]; strings.Join(got, " ") != "sctp S1 VARCHAR ENUM('OTH', 'REJ', 'RSTO', 'RSTOS0', 'RSTR', 'RSTRH', 'S0', 'S1', 'S2', 'S3', 'SF', 'SH', 'SHR')" {
		t.Errorf("the migrated row with another protocol reads %q", got)
	}
}

// datasets is where the shared test data lives: $DWELL_DATASETS, or
// ../shared/datasets beside the repository.
func datasets() string {
	if d := os.Getenv("DWELL_DATASETS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "..", "shared", "datasets")
}

// expecting is a sink that stores batches and keeps, for every record, its
// values as the table's columns give them, by table, file and line.
type expecting struct {
	*duckdb.Store
	schema *store.Schema
	mu     sync.Mutex
	want   map[string]string // "table\x00file\x00line" -> values
}

func (e *expecting) Write(ctx context.Context, b *event.Batch) error {
	e.mu.Lock()
	expect(e, e.schema.Conn, b)
	expect(e, e.schema.OpenConn, b)
	expect(e, e.schema.DNS, b)
	expect(e, e.schema.HTTP, b)
	expect(e, e.schema.TLS, b)
	expect(e, e.schema.X509, b)
	expect(e, e.schema.Files, b)
	e.mu.Unlock()
	return e.Store.Write(ctx, b)
}

func expect[R any](e *expecting, t *store.Table[R], b *event.Batch) {
	rows := t.Rows(b)
	for i := range rows {
		r := &rows[i]
		vals := make([]string, len(t.Columns))
		for j := range t.Columns {
			vals[j] = canon(columnValue(&t.Columns[j], r))
		}
		src := t.Source(r)
		e.want[t.Name()+"\x00"+src.File+"\x00"+fmt.Sprint(src.Line)] = strings.Join(vals, "\t")
	}
}

// columnValue is c's value in r as the store should give it back.
func columnValue[R any](c *store.Column[R], r *R) any {
	if c.IsNull(r) {
		return nil
	}
	switch c.Type {
	case store.TypeTime:
		v, _ := c.Time(r)
		return v
	case store.TypeString:
		return c.String(r)
	case store.TypeAddr:
		return c.Addr(r).String()
	case store.TypePort:
		v, _ := c.Port(r)
		return v
	case store.TypeCount:
		return c.Count(r).V
	case store.TypeInterval:
		return c.Interval(r).V.Seconds()
	case store.TypeBool:
		return c.Bool(r).V
	case store.TypeStrings:
		return c.Strings(r)
	case store.TypeIntervals:
		secs := make([]float64, len(c.Intervals(r)))
		for i, d := range c.Intervals(r) {
			secs[i] = d.Seconds()
		}
		return secs
	}
	return fmt.Sprintf("BUG: type %v", c.Type)
}

// TestZeekLogsReadBack is the coded layout's proof that nothing is lost:
// every value of every record the shared Zeek logs give reads back
// unchanged through Query, dwell query's path.
func TestZeekLogsReadBack(t *testing.T) {
	var roots []string
	for _, d := range []string{"wrccdc-2018-zeek", "zeek-btest-pcap-to-logs", "rita-parser-edgecases", "labelled-network"} {
		if p := filepath.Join(datasets(), d); dirExists(p) {
			roots = append(roots, p)
		}
	}
	if len(roots) == 0 {
		t.Skipf("no shared Zeek logs under %s (set DWELL_DATASETS)", datasets())
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	sink := &expecting{Store: st, schema: store.NewSchema(), want: map[string]string{}}
	cands, err := ingest.Discover(roots)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.New(sink, ingest.Options{Formats: zeek.Formats(), Complete: true}).Run(ctx, cands); err != nil {
		t.Fatal(err)
	}
	if len(sink.want) < 10000 {
		t.Fatalf("only %d records read from %v", len(sink.want), roots)
	}
	seen := 0
	for _, tbl := range sink.schema.Tables()[:7] {
		for _, r := range queryAll(t, st, "SELECT * FROM "+tbl.Name) {
			n := len(tbl.Columns)
			key := tbl.Name + "\x00" + r[n-2] + "\x00" + r[n-1]
			want, ok := sink.want[key]
			if !ok {
				t.Fatalf("%s: a row no batch held: %v", tbl.Name, r)
			}
			if got := strings.Join(r, "\t"); got != want {
				t.Errorf("%s %s line %s reads\n%s\nwant\n%s", tbl.Name, r[n-2], r[n-1], got, want)
			}
			seen++
		}
	}
	if seen != len(sink.want) {
		t.Errorf("%d rows read back, %d written", seen, len(sink.want))
	}
	t.Logf("%d records of %d inputs read back value by value", seen, len(cands))
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
