package clickhouse

import (
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/store"
)

func readAll(text string) ([][]string, [][]bool, error) {
	r := newTSVReader(io.NopCloser(strings.NewReader(text)))
	var rows [][]string
	var nulls [][]bool
	for r.Next() {
		rows = append(rows, append([]string(nil), r.fields...))
		nulls = append(nulls, append([]bool(nil), r.nulls...))
	}
	return rows, nulls, r.Err()
}

func TestTSVReader(t *testing.T) {
	rows, nulls, err := readAll("a\\tb\t\\N\tc\\\\d\\ne\n\t'x\\'\n")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"a\tb", "", "c\\d\ne"}, {"", "'x'"}}
	if !reflect.DeepEqual(rows, want) || !reflect.DeepEqual(nulls, [][]bool{{false, true, false}, {false, false}}) {
		t.Errorf("rows = %q %v", rows, nulls)
	}
	if _, _, err := readAll("a\tb\nc"); err == nil {
		t.Error("a result cut short mid-row was read without error")
	}
	long := strings.Repeat("x", 1<<20)
	if rows, _, err := readAll(long + "\n"); err != nil || len(rows) != 1 || rows[0][0] != long {
		t.Errorf("a 1 MB field: %v", err)
	}
}

func TestParseArray(t *testing.T) {
	for in, want := range map[string][]string{
		"[]":                         nil,
		"['a','b\\'c','']":           {"a", "b'c", ""},
		"[1,2,NULL]":                 {"1", "2", "<nil>"},
		"[[1,2],[3]]":                {"[1,2]", "[3]"},
		"['x,y','\\\\z\\n']":         {"x,y", "\\z\n"},
		"[(1,'a'),(2,'b')]":          {"(1,'a')", "(2,'b')"},
		"[1.5,-2e-3]":                {"1.5", "-2e-3"},
		"['2001:db8::1','10.0.0.1']": {"2001:db8::1", "10.0.0.1"},
	} {
		items, err := parseArray(in)
		if err != nil {
			t.Errorf("parseArray(%q): %v", in, err)
			continue
		}
		var got []string
		for _, it := range items {
			if it == nil {
				got = append(got, "<nil>")
			} else {
				got = append(got, *it)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseArray(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "[", "['a", "['a'x]", "x"} {
		if _, err := parseArray(bad); err == nil {
			t.Errorf("parseArray(%q) accepted", bad)
		}
	}
}

func TestConverter(t *testing.T) {
	for _, c := range []struct {
		typ  string
		kind store.Type
		in   string
		want any
	}{
		{"Nullable(Int64)", store.TypeTime, "1713484801123456", "2024-04-19T00:00:01.123456Z"},
		{"Int64", 0, "-5", int64(-5)},
		{"Nullable(UInt8)", store.TypeBool, "1", true},
		{"UInt8", 0, "1", uint64(1)},
		{"Float64", 0, "0.25", 0.25},
		{"Array(String)", store.TypeStrings, "['a']", []any{"a"}},
		{"Array(String)", store.TypeStrings, "[]", nil},
		{"Array(Nullable(UInt16))", 0, "[80,NULL]", []any{uint64(80), nil}},
		{"DateTime", 0, "2024-04-19 00:00:01", "2024-04-19T00:00:01Z"},
		{"String", 0, "x", "x"},
	} {
		got, err := converter(c.typ, c.kind)(c.in)
		if err != nil {
			t.Errorf("%s %q: %v", c.typ, c.in, err)
			continue
		}
		if n := storetestNormalize(got); !reflect.DeepEqual(n, c.want) {
			t.Errorf("%s %q = %#v, want %#v", c.typ, c.in, n, c.want)
		}
	}
}

// storetestNormalize formats times as the suite compares them.
func storetestNormalize(v any) any {
	if tm, ok := v.(interface{ Format(string) string }); ok {
		return tm.Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	return v
}

func TestQuoteString(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it\'s'`, `a\b`: `'a\\b'`, "x\ny\x00": `'x\ny\0'`} {
		if got := quoteString(in); got != want {
			t.Errorf("quoteString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := stringList(nil); got != "('')" {
		t.Errorf("stringList(nil) = %s", got)
	}
}

// FuzzTSV feeds arbitrary server output to the result reader and the
// analysts' value converters: errors are fine, panics are not.
func FuzzTSV(f *testing.F) {
	for _, s := range []string{"a\tb\n", "\\N\t['a','b']\n", "[1,NULL]\t1713484801123456\n", "['\\'\n", "x"} {
		f.Add(s)
	}
	types := []string{"Array(String)", "Array(Array(UInt8))", "Nullable(Int64)", "UInt8", "Float64", "DateTime", "Date", "String"}
	f.Fuzz(func(t *testing.T, text string) {
		r := newTSVReader(io.NopCloser(strings.NewReader(text)))
		for r.Next() {
			for i := range r.fields {
				_ = r.Int(i)
				_ = r.Float(i)
				_ = r.Time(i)
				_ = r.Addr(i)
				for _, typ := range types {
					_, _ = converter(typ, store.TypeTime)(r.fields[i])
					_, _ = converter(typ, store.TypeBool)(r.fields[i])
				}
			}
		}
		_ = r.Err()
	})
}

func TestCompressInserts(t *testing.T) {
	for _, c := range []struct {
		option, host string
		want         bool
	}{{"", "127.0.0.1", false}, {"", "::1", false}, {"", "localhost", false}, {"", "LOCALHOST", false}, {"", "ch1.example", true},
		{"", "10.0.0.5", true}, {"true", "127.0.0.1", true}, {"false", "ch1.example", false}} {
		if got := compressInserts(c.option, c.host); got != c.want {
			t.Errorf("compress=%q to %s: %v, want %v", c.option, c.host, got, c.want)
		}
	}
}
