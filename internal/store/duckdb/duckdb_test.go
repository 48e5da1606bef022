package duckdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	for _, q := range []string{
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
	if _, err := os.Stat(out); err == nil {
		t.Error("COPY wrote a file")
	}
	for _, q := range []string{"DESCRIBE conn", "SUMMARIZE conn", "EXPLAIN SELECT * FROM conn", "SHOW TABLES", "WITH x AS (SELECT 1 AS a) SELECT * FROM x"} {
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
