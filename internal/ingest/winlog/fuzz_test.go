package winlog

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzDecode decodes attacker-written lines: never a panic, and no event
// without a time. Text that is not UTF-8 is passed on as read (ingest
// escapes it as \xNN, as for every format), so it is not checked here.
func FuzzDecode(f *testing.F) {
	for _, l := range shapes {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"EventID":4624,"TimeCreated":"2020-01-01T00:00:00Z","A":{"B":{"C":[1,{"D":null}]}}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := Decode(line)
		if err != nil {
			return
		}
		if e.TS.IsZero() {
			t.Fatal("an event without a time decoded")
		}
		if len(e.Fields) > len(line) {
			t.Fatalf("%d fields from %d bytes", len(e.Fields), len(line))
		}
	})
}

// FuzzUnquote checks the JSON string unescaper against encoding/json on
// every string encoding/json accepts. Bytes that are not UTF-8 are where
// they differ by design: encoding/json replaces them, dwell keeps them for
// ingest to escape as \xNN (evidence is not rewritten).
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"C:\\Windows\\cmd.exe"`, `"a\"b\/c\n\t\u00e9\ud83d\ude00"`, `"\ud800x"`, `"\udc00"`, `""`, `"\u0041\u004a"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		var want string
		if !utf8.Valid(q) || json.Unmarshal(q, &want) != nil || len(bytes.TrimSpace(q)) != len(q) || len(q) == 0 || q[0] != '"' {
			return
		}
		got, err := unquote(q)
		if err != nil || got != want {
			t.Fatalf("unquote(%q) = %q, %v; encoding/json: %q", q, got, err, want)
		}
	})
}
