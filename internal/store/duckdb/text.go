package duckdb

import "github.com/dwell-nsm/dwell/internal/event"

// utf8Args returns args with every string, and every string of a
// []string, that is not UTF-8 escaped \xNN as ingest escapes telemetry
// (event.EscapeText). DuckDB keeps UTF-8 only, and its Go driver crashes
// the process binding a parameter that is not (a segmentation fault in
// duckdb_bind_value, not an error): every value that comes from outside
// (a TAXII server's cursor, an indicator key, a sensor name) passes here.
// args is returned as it is when nothing needs escaping.
func utf8Args(args []any) []any {
	var out []any
	for i, a := range args {
		v, changed := escapeArg(a)
		if changed && out == nil {
			out = append(make([]any, 0, len(args)), args[:i]...)
		}
		if out != nil {
			out = append(out, v)
		}
	}
	if out == nil {
		return args
	}
	return out
}

// escapeArg escapes one argument; changed is false when it is UTF-8.
func escapeArg(a any) (any, bool) {
	switch x := a.(type) {
	case string:
		return event.EscapeText(x)
	case []string:
		var c []string
		for j, s := range x {
			if e, changed := event.EscapeText(s); changed {
				if c == nil {
					c = append([]string(nil), x...)
				}
				c[j] = e
			}
		}
		if c != nil {
			return c, true
		}
	}
	return a, false
}
