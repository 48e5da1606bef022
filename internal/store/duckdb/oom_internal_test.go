package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
)

// TestOutOfMemoryIsMarked: a query that runs out of the store's
// memory_limit fails with an error that is store.ErrOutOfMemory (the hunt
// runs such a detector again alone) and keeps DuckDB's text; another
// failure is not marked.
func TestOutOfMemoryIsMarked(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:", Options{MemoryLimit: "8MB", Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	none := func(*sql.Rows) error { return nil }
	err = s.each(ctx, "big list", "SELECT list(i) FROM range(20000000) t(i)", nil, none)
	if !errors.Is(err, store.ErrOutOfMemory) {
		t.Fatalf("a list of 20 M under 8MB: %v", err)
	}
	if got := err.Error(); !strings.HasPrefix(got, "big list: Out of Memory") {
		t.Errorf("text %q", got)
	}
	err = s.each(ctx, "bad", "SELECT nosuchcolumn FROM range(1)", nil, none)
	if err == nil || errors.Is(err, store.ErrOutOfMemory) {
		t.Errorf("a binder error: %v", err)
	}
}
