package duckdb

import (
	"fmt"
	"testing"
)

func TestVectorParts(t *testing.T) {
	for _, tc := range []struct {
		ids  []int64
		n    int
		want string
	}{
		{nil, 2, "[]"},
		{[]int64{7}, 2, "[[7]]"},
		{[]int64{1, 2, 2047}, 2, "[[1 2 2047]]"}, // one vector: one part
		{[]int64{1, 2048, 4096, 6144}, 2, "[[1 2048] [4096 6144]]"},
		{[]int64{1, 2, 2048, 9000}, 2, "[[1 2 2048] [9000]]"},
		{[]int64{1, 2048, 4096}, 2, "[[1 2048] [4096]]"},
		{[]int64{1, 2048, 4096}, 1, "[[1 2048 4096]]"},
		{[]int64{1, 2048, 4096}, 5, "[[1] [2048] [4096]]"},
	} {
		if got := fmt.Sprint(vectorParts(tc.ids, tc.n)); got != tc.want {
			t.Errorf("vectorParts(%v, %d) = %s, want %s", tc.ids, tc.n, got, tc.want)
		}
	}
}

func TestSpanParts(t *testing.T) {
	for _, tc := range []struct {
		ids  []int64
		span int64
		want string
	}{
		{nil, 4, "[]"},
		{[]int64{5}, 4, "[[5]]"},
		{[]int64{0, 3, 4, 7, 8, 100}, 4, "[[0 3] [4 7] [8] [100]]"},
		{[]int64{0, 3, 4, 7, 8, 100}, 1000, "[[0 3 4 7 8 100]]"},
	} {
		if got := fmt.Sprint(spanParts(tc.ids, tc.span)); got != tc.want {
			t.Errorf("spanParts(%v, %d) = %s, want %s", tc.ids, tc.span, got, tc.want)
		}
	}
}

func TestNameMatches(t *testing.T) {
	for _, tc := range []struct {
		name, ind string
		want      bool
	}{
		{"evil.example", "evil.example", true},
		{"a.b.evil.example", "evil.example", true},
		{"notevil.example", "evil.example", false},
		{"evil.example", "a.evil.example", false},
		{"b.evil.example", "a.evil.example", false},
		{"x.a.evil.example", "a.evil.example", true},
	} {
		if got := nameMatches(tc.name, tc.ind); got != tc.want {
			t.Errorf("nameMatches(%q, %q) = %v", tc.name, tc.ind, got)
		}
	}
}
