package clickhouse

import (
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// serverLogs are the system tables that keep the text of statements run
// on the server: dwell's state is written with its values in the
// statement, so they would show it (when the server logs queries).
var serverLogs = map[string]bool{"query_log": true, "query_thread_log": true, "processes": true, "text_log": true}

// readsState reports whether an analyst's query names dwell's state
// table (store.StateTable, or its shards' local tables) or a server log
// that would show the statements writing it. ClickHouse has no syntax
// tree to ask for (18.16 has no EXPLAIN), so every identifier is read
// here as ClickHouse reads it: bare, `quoted` or "quoted" with backslash
// escapes and doubled quotes, with string literals and comments skipped.
// Case is ignored, which refuses more than ClickHouse would read. Table
// functions, which could name a table in a string, are refused by the
// server under readonly=1.
func readsState(q string) bool {
	for _, id := range identifiers(q) {
		id = strings.ToLower(id)
		if strings.HasPrefix(id, store.StateTable) || serverLogs[id] {
			return true
		}
	}
	return false
}

// identifiers returns the identifiers of a statement, unquoted.
func identifiers(q string) []string {
	var out []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return out
			}
			i += j + 1
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return out
			}
			i += j + 4
		case c == '\'':
			_, n := quoted(q[i:])
			i += n
		case c == '`' || c == '"':
			s, n := quoted(q[i:])
			out = append(out, s)
			i += n
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] == '$' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9' || q[j] >= 0x80) {
				j++
			}
			out = append(out, q[i:j])
			i = j
		default:
			i++
		}
	}
	return out
}

// quoted reads a quoted string or identifier at the start of s (its
// first byte is the quote) and returns its value and the bytes it took:
// a doubled quote is one quote, and a backslash escapes the next
// character (\xHH a byte, \n and the like a control character, any other
// character itself). An unterminated one takes the rest.
func quoted(s string) (string, int) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			switch e := s[i]; e {
			case 'x', 'X':
				if i+2 < len(s) {
					if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
						b.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'a':
				b.WriteByte('\a')
			case 'v':
				b.WriteByte('\v')
			default:
				b.WriteByte(e)
			}
		case c == q && i+1 < len(s) && s[i+1] == q:
			b.WriteByte(q)
			i++
		case c == q:
			return b.String(), i + 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), len(s)
}
