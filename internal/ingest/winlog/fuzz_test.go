package winlog

import "testing"

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
