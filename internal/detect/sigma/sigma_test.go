package sigma

import (
	"errors"
	"strings"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
)

// mapEvent is an Event of fixed fields.
type mapEvent map[string]string

func (m mapEvent) Get(f string) (string, bool) { v, ok := m[f]; return v, ok }
func (m mapEvent) Each(fn func(string) bool) {
	for _, v := range m {
		if !fn(v) {
			return
		}
	}
}

// rule compiles a detection given as YAML lines.
func rule(t *testing.T, detection string) *Rule {
	t.Helper()
	y := "title: t\nid: 1\nlogsource: {product: windows}\ndetection:\n" + detection
	rs, errs := Parse("t.yml", []byte(y), Options{Placeholders: map[string][]string{"admins": {"alice", "bob"}}})
	if len(errs) > 0 {
		t.Fatalf("%s: %v", detection, errs[0])
	}
	return rs[0]
}

func TestModifiers(t *testing.T) {
	cmd := `"C:\Windows\System32\cmd.exe" /c whoami`
	cases := []struct {
		detection string
		ev        mapEvent
		want      bool
	}{
		{"  s:\n    Image|endswith: '\\cmd.exe'\n  condition: s", mapEvent{"Image": `C:\Windows\System32\CMD.EXE`}, true},
		{"  s:\n    Image|endswith|cased: '\\cmd.exe'\n  condition: s", mapEvent{"Image": `C:\Windows\System32\CMD.EXE`}, false},
		// \* is a literal star; \\* a backslash, then the wildcard.
		{"  s:\n    Image: 'C:\\Windows\\*\\cmd.exe'\n  condition: s", mapEvent{"Image": `C:\Windows\System32\cmd.exe`}, false},
		{"  s:\n    Image: 'C:\\Windows\\\\*\\cmd.exe'\n  condition: s", mapEvent{"Image": `C:\Windows\System32\cmd.exe`}, true},
		{"  s:\n    Image: 'C:\\Windows\\\\?ystem32\\cmd.exe'\n  condition: s", mapEvent{"Image": `C:\Windows\System32\cmd.exe`}, true},
		{"  s:\n    Name: 'a\\*b'\n  condition: s", mapEvent{"Name": `a*b`}, true},
		{"  s:\n    Name: 'a\\*b'\n  condition: s", mapEvent{"Name": `axb`}, false},
		{"  s:\n    CommandLine|contains|all: [whoami, '/c']\n  condition: s", mapEvent{"CommandLine": cmd}, true},
		{"  s:\n    CommandLine|contains|all: [whoami, '/q']\n  condition: s", mapEvent{"CommandLine": cmd}, false},
		{"  s:\n    CommandLine|windash|contains: ' -c '\n  condition: s", mapEvent{"CommandLine": cmd}, true},
		{"  s:\n    CommandLine|windash|contains: ' -c '\n  condition: s", mapEvent{"CommandLine": "cmd \u2013c x"}, true},
		{"  s:\n    CommandLine|base64offset|contains: 'http://'\n  condition: s", mapEvent{"CommandLine": "powershell -enc aHR0cDovL2V2aWwK"}, true},
		{"  s:\n    CommandLine|base64offset|contains: 'http://'\n  condition: s", mapEvent{"CommandLine": "x Imh0dHA6Ly9ldmls"}, true},
		{"  s:\n    CommandLine|base64offset|contains: 'http://'\n  condition: s", mapEvent{"CommandLine": "x ICJodHRwOi8vZXZpbA"}, true},
		{"  s:\n    CommandLine|base64|contains: 'IEX'\n  condition: s", mapEvent{"CommandLine": "SUVY"}, true},
		{"  s:\n    CommandLine|wide|base64offset|contains: 'IEX'\n  condition: s", mapEvent{"CommandLine": "-e SQBFAFgA"}, true},
		{"  s:\n    CommandLine|re: 'who[a-z]+$'\n  condition: s", mapEvent{"CommandLine": cmd}, true},
		{"  s:\n    CommandLine|re: 'WHOAMI'\n  condition: s", mapEvent{"CommandLine": cmd}, false},
		{"  s:\n    CommandLine|re|i: 'WHOAMI'\n  condition: s", mapEvent{"CommandLine": cmd}, true},
		{"  s:\n    SourceIp|cidr: '10.0.0.0/8'\n  condition: s", mapEvent{"SourceIp": "10.1.2.3"}, true},
		{"  s:\n    SourceIp|cidr: '10.0.0.0/8'\n  condition: s", mapEvent{"SourceIp": "192.168.1.1"}, false},
		{"  s:\n    User|exists: true\n  condition: s", mapEvent{"User": ""}, true},
		{"  s:\n    User|exists: false\n  condition: s", mapEvent{"Image": "x"}, true},
		{"  s:\n    User: null\n  condition: s", mapEvent{"Image": "x"}, true},
		{"  s:\n    User: null\n  condition: s", mapEvent{"User": "bob"}, false},
		{"  s:\n    User: ''\n  condition: s", mapEvent{"User": ""}, true},
		{"  s:\n    TargetUserName|fieldref: SubjectUserName\n  condition: s", mapEvent{"TargetUserName": "Bob", "SubjectUserName": "bob"}, true},
		{"  s:\n    TargetUserName|fieldref: SubjectUserName\n  condition: s", mapEvent{"TargetUserName": "alice", "SubjectUserName": "bob"}, false},
		{"  s:\n    User|expand: '%admins%'\n  condition: s", mapEvent{"User": "BOB"}, true},
		{"  s:\n    LogonType|gte: 9\n  condition: s", mapEvent{"LogonType": "10"}, true},
		{"  s:\n    LogonType|lt: 9\n  condition: s", mapEvent{"LogonType": "10"}, false},
		{"  s:\n    LogonType|neq: 3\n  condition: s", mapEvent{"LogonType": "10"}, true},
		{"  s:\n    UtcTime|hour: 3\n  condition: s", mapEvent{"UtcTime": "2024-01-02 03:04:05.000"}, true},
		{"  s:\n    EventID: 4624\n  condition: s", mapEvent{"EventID": "4624"}, true},
		{"  k:\n    - mimikatz\n    - 'sekurlsa::*'\n  condition: k", mapEvent{"CommandLine": "run Sekurlsa::logonpasswords"}, true},
		{"  k:\n    - mimikatz\n  condition: k", mapEvent{"CommandLine": "whoami"}, false},
		{"  a:\n    Image|endswith: cmd.exe\n  f:\n    User: SYSTEM\n  condition: a and not f", mapEvent{"Image": "cmd.exe", "User": "SYSTEM"}, false},
		{"  sel_a:\n    Image|endswith: cmd.exe\n  sel_b:\n    User: x\n  condition: 1 of sel_*", mapEvent{"Image": "cmd.exe"}, true},
		{"  sel_a:\n    Image|endswith: cmd.exe\n  sel_b:\n    User: x\n  condition: all of sel_*", mapEvent{"Image": "cmd.exe"}, false},
		{"  a:\n    Image|endswith: cmd.exe\n  _helper:\n    User: x\n  condition: all of them", mapEvent{"Image": "cmd.exe"}, true},
		{"  a:\n    - Image|endswith: cmd.exe\n    - User: x\n  condition: a", mapEvent{"User": "X"}, true},
		{"  a:\n    Image|endswith: [cmd.exe, pwsh.exe]\n    User: [x, null]\n  condition: a", mapEvent{"Image": "pwsh.exe"}, true},
		{"  a:\n    Image: cmd.exe\n  b:\n    User: x\n  c:\n    User: y\n  condition: a and (b or c)", mapEvent{"Image": "cmd.exe", "User": "y"}, true},
	}
	for _, c := range cases {
		r := rule(t, c.detection)
		if got := r.cond.eval(c.ev, r); got != c.want {
			t.Errorf("%s\non %v: %v, want %v", c.detection, c.ev, got, c.want)
		}
	}
}

func TestRefusedWithReasons(t *testing.T) {
	for _, c := range []struct{ yaml, reason string }{
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A|nope: x\n  condition: s\n", "unknown modifier"},
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A: x\n  condition: s and t\n", `unknown search "t"`},
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A: x\n  condition: s | count() > 5\n", "aggregations"},
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A|re: '('\n  condition: s\n", "re:"},
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A|expand: '%nope%'\n  condition: s\n", "placeholder"},
		{"title: t\nid: 1\nlogsource: {}\ndetection:\n  s:\n    A: x\n", "no condition"},
		{"title: t\nid: 1\ncorrelation:\n  type: event_count\n", "correlation"},
		{"title: t\n: :\n", "not YAML"},
	} {
		_, errs := Parse("r.yml", []byte(c.yaml), Options{})
		var le *LoadError
		if len(errs) != 1 || !errors.As(errs[0], &le) || !strings.Contains(le.Error(), c.reason) || !strings.HasPrefix(le.Error(), "r.yml:") {
			t.Errorf("%q: errors %v, want one naming %q", c.yaml, errs, c.reason)
		}
	}
}

// TestMatchConcurrent runs one engine from several goroutines, as its
// documentation allows (go test -race checks it).
func TestMatchConcurrent(t *testing.T) {
	rs, errs := Parse("c.yml", []byte("title: t\nid: 1\nlogsource: {product: windows, category: process_creation}\n"+
		"detection:\n  s:\n    CommandLine|contains: whoami\n  k:\n    - mimikatz\n  condition: s or k\n"), Options{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	en, errs := NewEngine(rs, DefaultConfig())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	done := make(chan int)
	for g := range 4 {
		go func() {
			n := 0
			for i := range 2000 {
				cmd := "cmd /c dir"
				if (i+g)%3 == 0 {
					cmd = "cmd /c WHOAMI /all"
				}
				e := &event.HostEvent{Channel: "Microsoft-Windows-Sysmon/Operational", EventID: 1,
					Fields: []event.Field{{Name: "CommandLine", Value: cmd}}}
				en.Match(e, func(*Rule) { n++ })
			}
			done <- n
		}()
	}
	total := 0
	for range 4 {
		total += <-done
	}
	if total != 2667 { // the i in [0, 2000) with (i+g)%3 == 0, for g = 0..3
		t.Errorf("%d matches, want 2,667", total)
	}
}

// The event's lower-case values are strings.ToLower's, and the arena they
// are written into is reused by the next event without changing what
// strings.ToLower would give for it.
func TestFoldIsToLower(t *testing.T) {
	h := NewEvent(&event.HostEvent{})
	for _, s := range []string{"", "abc", "ABC", "C:\\Windows\\System32\\CMD.EXE", "Ärger ÉCOLE ß İ", "mixed\xffINVALID\xfe", "ΣΊΣΥΦΟΣ", "a\x00B"} {
		if got, want := h.fold(s), strings.ToLower(s); got != want {
			t.Errorf("fold(%q) = %q, want %q", s, got, want)
		}
	}
	_ = h.fold("FIRST")
	ev := &event.HostEvent{}
	h.reset(ev)
	if b := h.fold("SECOND"); b != "second" {
		t.Errorf("after reset: %q", b)
	}
	if n := testing.AllocsPerRun(100, func() {
		h.reset(ev)
		_ = h.fold("C:\\Windows\\System32\\CMD.EXE")
	}); n != 0 {
		t.Errorf("%v allocations a fold", n)
	}
}

// TestMatchAllocatesNothing: once warm, matching an event allocates
// nothing, whatever its case, its channel or a rule's field with a space
// taken out (the values' lower case goes to a reused arena).
func TestMatchAllocatesNothing(t *testing.T) {
	rs, errs := Parse("a.yml", []byte("title: t\nid: 1\nlogsource: {product: windows}\n"+
		"detection:\n  s:\n    CommandLine|contains: whoami\n    ThreatName|contains: eicar\n  k:\n    - mimikatz\n  condition: s or k\n"), Options{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	en, errs := NewEngine(rs, DefaultConfig())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e := &event.HostEvent{Channel: "Microsoft-Windows-Windows Defender/Operational", EventID: 1116,
		Fields: []event.Field{{Name: "CommandLine", Value: `C:\Windows\System32\WHOAMI.EXE /ALL`}, {Name: "Threat Name", Value: "Virus:DOS/EICAR_Test_File"},
			{Name: "Image", Value: `C:\Program Files\Ärger\MIMIKATZ.exe`}}}
	n := 0
	en.Match(e, func(*Rule) { n++ })
	if n != 1 {
		t.Fatalf("%d matches, want 1", n)
	}
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector")
	}
	if a := testing.AllocsPerRun(200, func() { en.Match(e, func(*Rule) { n++ }) }); a != 0 {
		t.Errorf("%v allocations an event", a)
	}
}
