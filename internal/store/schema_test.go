package store

import (
	"strings"
	"testing"
)

// TestSchemaIsConsistent checks every table: unique column names, Zeek
// names mapped by the documented rule, one getter matching each type, and
// the provenance columns last.
func TestSchemaIsConsistent(t *testing.T) {
	s := NewSchema()
	check := func(name string, cols []ColumnInfo, getters func(i int) (Type, int)) {
		seen := map[string]bool{}
		for i, c := range cols {
			if seen[strings.ToLower(c.Name)] {
				t.Errorf("%s: column %s twice", name, c.Name)
			}
			seen[strings.ToLower(c.Name)] = true
			if c.Zeek != "" && strings.ReplaceAll(c.Zeek, ".", "_") != c.Name {
				t.Errorf("%s: column %s for Zeek field %s breaks the naming rule", name, c.Name, c.Zeek)
			}
			if c.Doc == "" {
				t.Errorf("%s.%s has no doc", name, c.Name)
			}
			typ, n := getters(i)
			if n != 1 || typ != c.Type {
				t.Errorf("%s.%s: %d getters for type %v", name, c.Name, n, c.Type)
			}
		}
		n := len(cols)
		if n < 4 || cols[0].Name != "ts" || cols[n-3].Name != "sensor" || cols[n-2].Name != "source_file" || cols[n-1].Name != "source_line" {
			t.Errorf("%s: ts first and sensor, source_file, source_line last", name)
		}
	}
	check("conn", s.Conn.Info().Columns, func(i int) (Type, int) { return getters(&s.Conn.Columns[i]) })
	check("open_conn", s.OpenConn.Info().Columns, func(i int) (Type, int) { return getters(&s.OpenConn.Columns[i]) })
	check("dns", s.DNS.Info().Columns, func(i int) (Type, int) { return getters(&s.DNS.Columns[i]) })
	check("http", s.HTTP.Info().Columns, func(i int) (Type, int) { return getters(&s.HTTP.Columns[i]) })
	check("ssl", s.TLS.Info().Columns, func(i int) (Type, int) { return getters(&s.TLS.Columns[i]) })
	check("x509", s.X509.Info().Columns, func(i int) (Type, int) { return getters(&s.X509.Columns[i]) })
	check("files", s.Files.Info().Columns, func(i int) (Type, int) { return getters(&s.Files.Columns[i]) })
	check("flow", s.Flow.Info().Columns, func(i int) (Type, int) { return getters(&s.Flow.Columns[i]) })
	check("winlog", s.Winlog.Info().Columns, func(i int) (Type, int) { return getters(&s.Winlog.Columns[i]) })
	check("alert", s.Alert.Info().Columns, func(i int) (Type, int) { return getters(&s.Alert.Columns[i]) })
	check("quarantine", s.Quarantine.Info().Columns, func(i int) (Type, int) { return getters(&s.Quarantine.Columns[i]) })
	if len(s.Tables()) != 11 {
		t.Errorf("%d tables", len(s.Tables()))
	}
}

// getters returns the type of the one getter set, and how many are set.
func getters[R any](c *Column[R]) (Type, int) {
	n, t := 0, Type(0)
	for typ, set := range map[Type]bool{
		TypeTime: c.Time != nil, TypeString: c.String != nil, TypeAddr: c.Addr != nil, TypePort: c.Port != nil,
		TypeCount: c.Count != nil, TypeInterval: c.Interval != nil, TypeBool: c.Bool != nil,
		TypeStrings: c.Strings != nil, TypeIntervals: c.Intervals != nil,
	} {
		if set {
			n, t = n+1, typ
		}
	}
	return t, n
}
