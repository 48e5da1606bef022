package clickhouse

import (
	"slices"
	"testing"
)

func TestIdentifiers(t *testing.T) {
	for q, want := range map[string][]string{
		"SELECT a, `b c`, \"d\" FROM t":          {"SELECT", "a", "b c", "d", "FROM", "t"},
		"SELECT 'dwell_meta' -- dwell_meta\n, x": {"SELECT", "x"},
		"SELECT /* dwell_meta */ y":              {"SELECT", "y"},
		"SELECT `a\\x5fb`, `c``d`, \"e\\\"f\"":   {"SELECT", "a_b", "c`d", "e\"f"},
		"SELECT 'it''s', 'a\\'b' AS z":           {"SELECT", "AS", "z"},
		"SELECT `unterminated":                   {"SELECT", "unterminated"},
		"SELECT x$1, _y FROM db.tbl":             {"SELECT", "x$1", "_y", "FROM", "db", "tbl"},
		"SELECT 1 /* unterminated dwell_meta":    {"SELECT"},
	} {
		if got := identifiers(q); !slices.Equal(got, want) {
			t.Errorf("identifiers(%q) = %q, want %q", q, got, want)
		}
	}
}

// FuzzReadsState feeds the guard's lexer analysts' text: it must not
// panic, and a bare mention of the state table after a complete
// statement is always found.
func FuzzReadsState(f *testing.F) {
	for _, s := range []string{"SELECT 1", "SELECT 'a", "SELECT `a\\", "/*", "--", "SELECT \"x\\x", "SELECT `dwell\\x5fmeta`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		_ = readsState(q)
		if len(identifiers(q)) > len(q) {
			t.Fatalf("more identifiers than bytes in %q", q)
		}
		if !readsState("SELECT 1 FROM dwell_meta, (" + q + ")") {
			t.Fatalf("a bare mention before %q was missed", q)
		}
	})
}
