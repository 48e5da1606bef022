package store

import (
	"slices"
	"testing"
)

// TestCodes: every closed set is sorted (so that its codes sort as its
// text), has no value twice and fits a one-byte code, and is set on
// string columns only.
func TestCodes(t *testing.T) {
	s := NewSchema()
	n := 0
	for _, tbl := range s.Tables() {
		for _, c := range tbl.Columns {
			if len(c.Codes) == 0 {
				continue
			}
			n++
			if c.Type != TypeString {
				t.Errorf("%s.%s: codes on a %v column", tbl.Name, c.Name, c.Type)
			}
			if !slices.IsSorted(c.Codes) || len(slices.Compact(slices.Clone(c.Codes))) != len(c.Codes) {
				t.Errorf("%s.%s: codes not sorted or not unique: %q", tbl.Name, c.Name, c.Codes)
			}
			if len(c.Codes) > 255 || slices.Contains(c.Codes, "") {
				t.Errorf("%s.%s: %d codes, or an empty one", tbl.Name, c.Name, len(c.Codes))
			}
		}
	}
	if n != 4 {
		t.Errorf("%d coded columns, want 4 (proto and conn_state of conn and open_conn)", n)
	}
}
