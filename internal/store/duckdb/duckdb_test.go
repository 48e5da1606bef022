package duckdb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // the driver, to edit a store behind its back

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
	"github.com/dwell-nsm/dwell/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := duckdb.Open(context.Background(), filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSessionsReadOnly stitches flow sessions in a store opened
// read-only: they are kept in a database of their own, attached for
// writing, and the store's file stays untouched.
func TestSessionsReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	s, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, &event.Batch{Flows: storetest.SessionFlows()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := duckdb.Open(ctx, path, duckdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	w := store.Window{Conns: store.FlowSessions}
	n := 0
	if err := ro.Pairs(ctx, w, store.PairFilter{}, func(*store.PairStat) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, conns, ok, err := ro.Span(ctx, w); err != nil || !ok || conns < int64(n) || n == 0 {
		t.Errorf("read-only: %d pairs, Span %d sessions, %v, %v", n, conns, ok, err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(before) {
		t.Errorf("the store's file changed under a read-only hunt of flow sessions (%v)", err)
	}
}

func TestQueryCannotTouchFilesOrSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	s, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, storetest.Sample()); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(secret, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.csv")
	// The temporary directory an ingest killed while spilling leaves
	// behind: DuckDB lets itself write there.
	tmp := path + ".tmp"
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(tmp, "dump.csv")
	for _, q := range []string{
		// EXPLAIN ANALYZE runs what it explains (issue #14, item 7).
		"EXPLAIN ANALYZE COPY (SELECT * FROM conn) TO '" + dump + "'",
		"explain  /* x */ analyze COPY (SELECT 1) TO '" + dump + "'",
		"EXPLAIN ANALYZE SET threads = 1",
		"EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1",
		"EXPLAIN ANALYZE CHECKPOINT",
		"EXPLAIN COPY (SELECT 1) TO '" + dump + "'",
		// Table functions with effects, alone and hidden in a query.
		"SELECT * FROM checkpoint()",
		"SELECT * FROM force_checkpoint()",
		"SELECT * FROM enable_logging(storage = 'file', storage_path = '" + tmp + "')",
		"SELECT * FROM truncate_duckdb_logs()",
		"WITH x AS (SELECT * FROM checkpoint()) SELECT * FROM x",
		"SELECT (SELECT count(*) FROM force_checkpoint()) AS n",
		"SELECT * FROM conn WHERE ts IN (SELECT * FROM checkpoint())",
		"EXPLAIN ANALYZE SELECT * FROM checkpoint()",
		"SELECT * FROM query('SELECT * FROM checkpoint()')",
		"SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
		"SELECT * FROM glob('/etc/*')",
		"SELECT * FROM read_text('" + secret + "')",
		"SELECT 1; SELECT 2",
		"COPY conn TO '" + out + "'",
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"ATTACH '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SET enable_external_access = true",
		"PRAGMA enable_profiling",
		"EXPORT DATABASE '" + t.TempDir() + "'",
		"CREATE TEMP TABLE t AS SELECT 1",
		"CHECKPOINT",
		"BEGIN TRANSACTION",
	} {
		rows, err := s.Query(ctx, q)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			_ = rows.Close()
		}
		if err == nil {
			t.Errorf("%q was allowed", q)
		}
	}
	for _, f := range []string{out, dump} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("a query wrote %s", f)
		}
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		t.Errorf("a query wrote into %s: %v", tmp, entries)
	}
	for _, q := range []string{"DESCRIBE conn", "SUMMARIZE conn", "EXPLAIN SELECT * FROM conn", "SHOW TABLES", "WITH x AS (SELECT 1 AS a) SELECT * FROM x",
		"EXPLAIN ANALYZE SELECT count(*) FROM conn", "SELECT * FROM range(3)", "SELECT unnest([1, 2])", "SELECT * FROM duckdb_tables()",
		"-- a comment first\nSELECT 1", "SELECT current_setting('threads')"} {
		rows, err := s.Query(ctx, q)
		if err != nil {
			t.Errorf("%q refused: %v", q, err)
			continue
		}
		for rows.Next() {
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Read-only: DuckDB itself refuses writes.
	ro, err := duckdb.Open(ctx, path, duckdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	if err := ro.Write(ctx, storetest.Sample()); err == nil {
		t.Error("read-only store accepted a write")
	}
	if n, err := ro.Count(ctx, event.KindConn); err != nil || n != 2 {
		t.Errorf("read-only count = %d, %v", n, err)
	}
	if _, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "none.db"), duckdb.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "dwell ingest") {
		t.Errorf("opening a missing store read-only: %v", err)
	}
}

func TestKillResumeKeepsEveryRowOnce(t *testing.T) {
	// A transaction per batch with its ledger update: a batch is stored
	// whole or not at all. Simulated here by reopening after each write;
	// the SIGKILL test in internal/app does it with a real process.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	for round := range 3 {
		s, err := duckdb.Open(ctx, path, duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b := storetest.Sample()
		for i := range b.Conns {
			b.Conns[i].Src.Line += int64(100 * round)
		}
		b.Progress = []event.Progress{{ID: "f", Path: "f", HeadLen: 4096, Offset: int64(round + 1)}}
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := duckdb.Open(ctx, path, duckdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if n, _ := s.Count(ctx, event.KindConn); n != 6 {
		t.Errorf("conn rows = %d, want 6", n)
	}
	l, err := s.Ledger(ctx)
	if err != nil || len(l) != 1 || l[0].Offset != 3 {
		t.Errorf("ledger = %+v, %v", l, err)
	}
}

// TestSummaryBackfill: a store whose records predate the intel summary
// (as after the migration to schema 2) gets it built when opened for
// writing, with the same matches as if it had been kept all along.
func TestSummaryBackfill(t *testing.T) {
	windows := []store.Window{{}}
	path, want := intelStoreFile(t, windows)
	// Forget the summary, as a store from before it.
	execSQL(t, path, "DELETE FROM obs_value", "DELETE FROM obs_daily", "INSERT INTO dwell_meta VALUES ('summary_backfill', 'pending')")
	if got := reopenSightings(t, path, windows); got != want {
		t.Errorf("after the backfill:\n%s\nwant:\n%s", got, want)
	}
}

// TestMatchKeyMigration: a store of schema 3, without match keys, gets
// them when opened for writing, with the same matches as a store that
// had them all along (over all history: obs_value; and a window:
// obs_daily).
func TestMatchKeyMigration(t *testing.T) {
	windows := []store.Window{{}, {Since: time.Date(2024, 4, 20, 0, 0, 0, 0, time.UTC)}}
	path, want := intelStoreFile(t, windows)
	execSQL(t, path, "ALTER TABLE obs_value DROP COLUMN mkey", "ALTER TABLE obs_daily DROP COLUMN mkey", "ALTER TABLE obs_value DROP COLUMN bkey",
		"ALTER TABLE obs_daily DROP COLUMN bkey", "ALTER TABLE intel_indicator DROP COLUMN mkey", "UPDATE dwell_meta SET value = '3' WHERE key = 'schema_version'")
	if _, err := duckdb.Open(context.Background(), path, duckdb.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "needs migrating") {
		t.Errorf("read-only open of a schema 3 store: %v", err)
	}
	if got := reopenSightings(t, path, windows); got != want {
		t.Errorf("after the migration:\n%s\nwant:\n%s", got, want)
	}
}

// intelStoreFile writes storetest's intel records and indicators to a new
// store file and returns its path and its sightings over windows.
func intelStoreFile(t *testing.T, windows []store.Window) (path, sightings string) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "dwell.db")
	s, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range storetest.IntelData() {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.PutIndicators(ctx, storetest.IntelIndicators()); err != nil {
		t.Fatal(err)
	}
	sightings = sightingLines(t, s, windows)
	if sightings == "" {
		t.Fatal("no sightings")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, sightings
}

// execSQL runs statements on the store file at path as plain DuckDB, to
// make it what an older dwell left.
func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// reopenSightings opens the store at path for writing (which migrates it)
// and returns its sightings over windows.
func reopenSightings(t *testing.T, path string, windows []store.Window) string {
	t.Helper()
	s, err := duckdb.Open(context.Background(), path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	return sightingLines(t, s, windows)
}

// sightingLines returns a store's sightings over windows, a line each.
func sightingLines(t *testing.T, s *duckdb.Store, windows []store.Window) string {
	t.Helper()
	var out []string
	for _, w := range windows {
		if err := s.MatchIndicators(context.Background(), w, func(x *event.Sighting) error {
			out = append(out, fmt.Sprintf("%v|%q|%s|%s|%s|%d|%d|%v|%v|%v", w.Since, x.Key, x.Sensor, x.Log, x.Observed, x.Count, x.Days, x.First, x.Last, x.Peers))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(out, "\n")
}

// TestMatchWhileWriting: a match names summary rows and indicators by
// rowid, which compacting the summary (it rewrites the rows of the values
// a batch touches) and storing indicators (it renumbers them) change. A
// write started between a match's joins and its reading the rows they name
// waits for the match, which finds what it finds alone.
func TestMatchWhileWriting(t *testing.T) {
	ctx := context.Background()
	inds := storetest.IntelIndicators()
	for _, tc := range []struct {
		name  string
		write func(*duckdb.Store) error
	}{
		{"indicators", func(s *duckdb.Store) error { _, _, err := s.PutIndicators(ctx, inds); return err }},
		{"batches", func(s *duckdb.Store) error {
			for _, b := range storetest.IntelData() { // the same values again: more records, the same sightings
				if err := s.Write(ctx, b); err != nil {
					return err
				}
			}
			return s.CompactNow(ctx) // as Write does every compactEvery rows
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := intelStore(t, nil)
			match := func() string {
				var out []string
				if err := s.MatchIndicators(ctx, store.Window{}, func(x *event.Sighting) error {
					out = append(out, fmt.Sprintf("%q|%s|%s|%s", x.Key, x.Sensor, x.Log, x.Observed))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return strings.Join(out, "\n")
			}
			want := match()
			if want == "" {
				t.Fatal("no sightings")
			}
			wrote := make(chan error, 1)
			ended := false
			s.SetMatchPause(func() {
				s.SetMatchPause(nil)
				go func() { wrote <- tc.write(s) }()
				select {
				case err := <-wrote:
					ended = true
					t.Errorf("a write ended during a match (error %v)", err)
				case <-time.After(200 * time.Millisecond): // waiting, as it should
				}
			})
			if got := match(); got != want {
				t.Errorf("with a write waiting:\n%s\nwant:\n%s", got, want)
			}
			if !ended {
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
			}
			if got := match(); got != want {
				t.Errorf("after the write:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// intelStore returns a store in memory, closed with the test, holding
// storetest's intel data and indicators; setup, if any, runs first.
func intelStore(t *testing.T, setup func(*duckdb.Store)) *duckdb.Store {
	t.Helper()
	ctx := context.Background()
	s, err := duckdb.Open(ctx, ":memory:", duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if setup != nil {
		setup(s)
	}
	for _, b := range storetest.IntelData() {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.PutIndicators(ctx, storetest.IntelIndicators()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestNarrowBitmaps: the rows a match names, read in many parts, each
// spanning fewer rowids than the bitmaps of the real bound, give the same
// sightings.
func TestNarrowBitmaps(t *testing.T) {
	windows := []store.Window{{}, {Since: time.Date(2024, 4, 20, 0, 0, 0, 0, time.UTC)}}
	want := sightingLines(t, intelStore(t, nil), windows)
	if want == "" {
		t.Fatal("no sightings")
	}
	if got := sightingLines(t, intelStore(t, (*duckdb.Store).NarrowBitmaps), windows); got != want {
		t.Errorf("in narrow parts:\n%s\nwant:\n%s", got, want)
	}
}

// TestSummaryCompaction: compacting the summary at any point between
// batches changes no sighting, over all history or a window, when the
// batches after it are read from obs_daily as a read-only store does.
func TestSummaryCompaction(t *testing.T) {
	ctx := context.Background()
	batches := storetest.IntelData()
	windows := []store.Window{{}, {Since: time.Date(2024, 4, 20, 0, 0, 0, 0, time.UTC)}}
	run := func(compactAfter int) string {
		s, err := duckdb.Open(ctx, ":memory:", duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		s.MatchUncompacted()
		if _, _, err := s.PutIndicators(ctx, storetest.IntelIndicators()); err != nil {
			t.Fatal(err)
		}
		for i, b := range batches {
			if err := s.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
			if i == compactAfter {
				if err := s.CompactNow(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		return sightingLines(t, s, windows)
	}
	want := run(-1)
	if want == "" {
		t.Fatal("no sightings")
	}
	for i := range batches {
		if got := run(i); got != want {
			t.Errorf("compacted after batch %d:\n%s\nwant:\n%s", i, got, want)
		}
	}
}

// TestCompactInPieces: the intel summary merged in pieces of a few rows
// (as a large history is, to bound its memory) is the summary merged at
// once, and gives the same sightings.
func TestCompactInPieces(t *testing.T) {
	ctx := context.Background()
	summary := func(s *duckdb.Store) string {
		// Twice the batches: the second merge has old rows to rebuild.
		for _, b := range storetest.IntelData() {
			if err := s.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CompactNow(ctx); err != nil {
			t.Fatal(err)
		}
		return summaryRows(t, s)
	}
	whole := intelStore(t, nil)
	pieces := intelStore(t, func(s *duckdb.Store) { s.SmallCompactPieces() })
	want, got := summary(whole), summary(pieces)
	if want == "" || got != want {
		t.Errorf("merged in pieces:\n%s\nat once:\n%s", got, want)
	}
	windows := []store.Window{{}}
	if a, b := sightingLines(t, whole, windows), sightingLines(t, pieces, windows); a == "" || a != b {
		t.Errorf("sightings differ:\n%s\n%s", b, a)
	}
}

// summaryRows returns the intel summary's all-time rows, sorted.
func summaryRows(t *testing.T, s *duckdb.Store) string {
	t.Helper()
	rows, err := s.Query(context.Background(), `SELECT id, log, sensor, port, count, "first", "last", days, peers FROM obs_value ORDER BY ALL`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		out = append(out, fmt.Sprint(rows.Values()))
	}
	return strings.Join(out, "\n")
}

// TestCompactCutShort: a compaction cut short after some of its pieces
// committed (a crash, an error) leaves a store whose sightings a reader
// gets right (it leaves out the daily rows merged already), and the next
// writer finishes it: the same summary and sightings as a compaction
// never interrupted.
func TestCompactCutShort(t *testing.T) {
	ctx := context.Background()
	windows := []store.Window{{}}
	fill := func(path string, setup func(*duckdb.Store)) *duckdb.Store {
		t.Helper()
		s, err := duckdb.Open(ctx, path, duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.SmallCompactPieces()
		if err := s.CompactNow(ctx); err != nil {
			t.Fatal(err)
		}
		setup(s)
		for range 2 { // the second merge has old rows to rebuild
			for _, b := range storetest.IntelData() {
				if err := s.Write(ctx, b); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, _, err := s.PutIndicators(ctx, storetest.IntelIndicators()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	var last int64
	whole := fill(":memory:", func(s *duckdb.Store) {
		s.FailCompactPiece(func(piece int64) error { last = max(last, piece); return nil })
	})
	defer func() { _ = whole.Close() }()
	if err := whole.CompactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if last < 3 {
		t.Fatalf("%d pieces: too few to cut short", last+1)
	}
	wantSummary, wantSightings := summaryRows(t, whole), sightingLines(t, whole, windows)

	path := filepath.Join(t.TempDir(), "d.db")
	cut := errors.New("cut short")
	pieces := 0
	s := fill(path, func(s *duckdb.Store) {
		s.FailCompactPiece(func(piece int64) error {
			if piece == last {
				return cut
			}
			pieces++
			return nil
		})
	})
	if err := s.CompactNow(ctx); !errors.Is(err, cut) || int64(pieces) != last {
		t.Fatalf("compaction: %v after %d pieces, want it cut short before the last of %d", err, pieces, last+1)
	}
	if err := s.Close(); !errors.Is(err, cut) { // Close tries again, and is cut short again
		t.Fatalf("close: %v", err)
	}
	r, err := duckdb.Open(ctx, path, duckdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := sightingLines(t, r, windows); got != wantSightings {
		t.Errorf("a reader of the store cut short:\n%s\nwant\n%s", got, wantSightings)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	if err := w.CompactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if got := summaryRows(t, w); got != wantSummary {
		t.Errorf("finished by the next writer:\n%s\nwant\n%s", got, wantSummary)
	}
	if got := sightingLines(t, w, windows); got != wantSightings {
		t.Errorf("sightings after:\n%s\nwant\n%s", got, wantSightings)
	}
}

// TestHTTPServerMigration: a store of schema 7, without http.server, gets
// the column (last) when opened for writing; rows written before read
// NULL, rows written after keep their server, and the inserts name their
// columns, so the new column's place does not matter.
func TestHTTPServerMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	t0 := time.Date(2024, 4, 19, 10, 0, 0, 0, time.UTC)
	web := func(uid, server string) *event.Batch {
		return &event.Batch{HTTP: []event.HTTP{{TS: t0, UID: uid, SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("192.0.2.1"),
			DstPort: 80, Method: "GET", URI: "/", Server: server, Src: event.Source{Sensor: "s", File: "/logs/http.log", Line: 9}}}}
	}
	s, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	execSQL(t, path, "ALTER TABLE http DROP COLUMN server", "UPDATE dwell_meta SET value = '7' WHERE key = 'schema_version'")
	execSQL(t, path, `INSERT INTO http (ts, uid, method) VALUES ('2024-04-19 09:00:00', 'Cold', 'GET')`)
	s, err = duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Write(ctx, web("Cnew", "Kestrel-C2/0.9")); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Query(ctx, "SELECT uid, coalesce(server, '-'), source_line FROM http ORDER BY uid")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var got []string
	for rows.Next() {
		got = append(got, fmt.Sprintf("%v %v %v", rows.Values()...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Cnew Kestrel-C2/0.9 9", "Cold - <nil>"}; !slices.Equal(got, want) {
		t.Errorf("after the migration: %q, want %q", got, want)
	}
}

// TestTwoStoresOneFile: two Stores of one file in a process share DuckDB's
// database instance; each writes its own records, also at the same time.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dwell.db")
	var stores [2]*duckdb.Store
	for i := range stores {
		s, err := duckdb.Open(ctx, path, duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		stores[i] = s
	}
	done := make(chan error, len(stores))
	for k, s := range stores {
		go func() {
			for i := range 3 {
				b := &event.Batch{}
				for j := range 500 + 100*k {
					b.Conns = append(b.Conns, event.Conn{TS: time.Date(2024, 4, 19, 0, 0, j, 0, time.UTC), UID: fmt.Sprint("C", k, i, j),
						SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("192.0.2.1"), DstPort: 443, Proto: "tcp",
						Src: event.Source{Sensor: "s", File: fmt.Sprint("/logs/", k), Line: int64(j + 1)}})
				}
				b.Progress = []event.Progress{{ID: event.InputID(fmt.Sprint("in", k)), HeadLen: 4096, Path: fmt.Sprint("/logs/", k),
					Offset: int64(i + 1), Line: int64(i + 1), Rows: int64(i + 1)}}
				if err := s.Write(ctx, b); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range stores {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	rows, err := stores[0].Query(ctx, "SELECT count(*) FROM conn")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() || fmt.Sprint(rows.Values()...) != "3300" {
		t.Errorf("conn rows %v (%v), want 3 × 500 + 3 × 600", rows.Values(), rows.Err())
	}
}

// TestQueryCannotReadState checks DuckDB's own ways of naming a table
// against the state guard, beyond the conformance suite's.
func TestQueryCannotReadState(t *testing.T) {
	ctx := context.Background()
	s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	storetest.CheckStateRefused(t, s, []string{
		"FROM dwell_meta",
		"TABLE dwell_meta",
		"SUMMARIZE dwell_meta",
		"SELECT * FROM main.dwell_meta",
		"SELECT * FROM dwell.main.dwell_meta",
		`SELECT * FROM "main"."DWELL_META"`,
		"EXPLAIN ANALYZE SELECT * FROM dwell_meta",
		"SELECT * FROM (PIVOT dwell_meta ON key IN ('triage:INC-RED') USING first(value))",
		"UNPIVOT (SELECT key, value FROM dwell_meta) ON value INTO NAME k VALUE v",
		"SELECT * FROM conn POSITIONAL JOIN dwell_meta",
		"SELECT (SELECT max(value) FROM dwell_meta) AS v",
		"SELECT * FROM conn, LATERAL (SELECT value FROM dwell_meta) AS m",
		"SELECT * FROM (VALUES (1)) AS v(a) WHERE EXISTS (SELECT 1 FROM dwell_meta WHERE value LIKE 'TLP%')",
	})
}

// TestAllocatorSettings: a store gives freed memory back early (flush
// threshold 8 MB by default, or the one given) and lets DuckDB's
// allocator purge in the background.
func TestAllocatorSettings(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ opt, want string }{{"", "7.6 MiB"}, {"64MB", "61.0 MiB"}} {
		s, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "dwell.db"), duckdb.Options{AllocatorFlushThreshold: c.opt})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.Query(ctx, "SELECT name, value FROM duckdb_settings() WHERE name IN ('allocator_flush_threshold', 'allocator_background_threads') ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			v := rows.Values()
			got = append(got, fmt.Sprint(v[0], "=", v[1]))
		}
		_ = rows.Close()
		_ = s.Close()
		want := []string{"allocator_background_threads=true", "allocator_flush_threshold=" + c.want}
		if !slices.Equal(got, want) {
			t.Errorf("option %q: settings %v, want %v", c.opt, got, want)
		}
	}
}

// TestCompactReturnsGoRoom: a compaction of the intel summary first gives
// the room Go's heap keeps for growth back to the system, so that DuckDB's
// largest allocation is not added to it (the month's peak,
// docs/benchmarks.md).
func TestCompactReturnsGoRoom(t *testing.T) {
	ctx := context.Background()
	s, err := duckdb.Open(ctx, ":memory:", duckdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for _, b := range storetest.IntelData() {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// 256 MiB on the heap (sent on a channel, so not on the stack) that
	// a collection frees and the runtime keeps.
	held := make(chan [][]byte, 1)
	room := make([][]byte, 256)
	for i := range room {
		room[i] = make([]byte, 1<<20)
	}
	held <- room
	<-held
	runtime.GC()
	if kept := goFreeHeap(); kept < 128<<20 {
		t.Skipf("the runtime gave its free heap back by itself (%d MiB kept)", kept>>20)
	}
	if err := s.CompactNow(ctx); err != nil {
		t.Fatal(err)
	}
	if kept := goFreeHeap(); kept >= 64<<20 {
		t.Errorf("%d MiB of Go's free heap kept through a compaction", kept>>20)
	}
}

// goFreeHeap is the memory Go's heap holds free and has not given back.
func goFreeHeap() uint64 {
	m := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

// TestCloseAfterCancelledWrite writes again, then closes the store, as soon
// as a write cancelled midway returned, as dwell serve does on SIGTERM: the
// write's transaction is over by then, the writer's connection still
// works, and Close checkpoints without an error.
func TestCloseAfterCancelledWrite(t *testing.T) {
	b := &event.Batch{}
	for j := range 200_000 {
		b.Conns = append(b.Conns, event.Conn{TS: time.Date(2024, 4, 19, 0, 0, 0, j*1000, time.UTC), UID: fmt.Sprint("C", j),
			SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("192.0.2.1"), DstPort: 443, Proto: "tcp",
			Src: event.Source{Sensor: "s", File: "/logs/conn.log", Line: int64(j + 1)}})
	}
	cancelled := 0
	for i := range 8 {
		path := filepath.Join(t.TempDir(), "dwell.db")
		s, err := duckdb.Open(t.Context(), path, duckdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(20+10*i)*time.Millisecond)
		if err := s.Write(ctx, b); err != nil {
			cancelled++
		}
		cancel()
		if err := s.Write(t.Context(), &event.Batch{Conns: b.Conns[:1]}); err != nil {
			t.Fatalf("a write after one cancelled at %d ms: %v", 20+10*i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close after a write cancelled at %d ms: %v", 20+10*i, err)
		}
	}
	if cancelled == 0 {
		t.Skip("no write was cancelled midway: this machine wrote 200,000 rows in under 20 ms")
	}
}
