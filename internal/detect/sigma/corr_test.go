package sigma

import (
	"strings"
	"testing"
	"time"
)

// corrRule parses a correlation rule given as the lines of its
// correlation section.
func corrRule(t *testing.T, section string) *Rule {
	t.Helper()
	rs, errs := Parse("c.yml", []byte("title: c\nid: c1\ncorrelation:\n"+section), Options{})
	if len(errs) > 0 {
		t.Fatalf("%s: %v", section, errs[0])
	}
	return rs[0]
}

var (
	ruleA = &Rule{ID: "a", Name: "failed_logon"}
	ruleB = &Rule{ID: "b", Name: "new_service"}
	ruleC = &Rule{ID: "c", Name: "log_cleared"}
	ct0   = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
)

func hit(r *Rule, at time.Duration, kv ...string) Hit {
	h := Hit{TS: ct0.Add(at), Rule: r, Values: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Values[kv[i]] = kv[i+1]
	}
	return h
}

func TestEventCount(t *testing.T) {
	c := corrRule(t, "  type: event_count\n  rules: [failed_logon]\n  group-by: [User]\n  timespan: 10m\n  condition: {gte: 3}\n")
	hits := []Hit{
		hit(ruleA, 0, "User", "bob"), hit(ruleA, time.Minute, "User", "bob"), hit(ruleA, 2*time.Minute, "User", "alice"),
		hit(ruleA, 10*time.Minute, "User", "bob"), // 10 minutes after the first: still inside (the window is inclusive)
		hit(ruleA, 11*time.Minute+time.Second, "User", "bob"),
		hit(ruleB, 3*time.Minute, "User", "bob"), // another rule: not counted
	}
	fired := Correlate(c, hits)
	if len(fired) != 1 || fired[0].Group[0] != "bob" || !fired[0].At.Equal(ct0.Add(10*time.Minute)) || fired[0].Value != 3 {
		t.Fatalf("fired %+v", fired)
	}
	// The fourth hit at 11m01s: the first has left the window, two remain.
}

func TestValueCount(t *testing.T) {
	c := corrRule(t, "  type: value_count\n  rules: [a]\n  group-by: [IpAddress]\n  timespan: 1h\n  condition: {field: TargetUserName, gt: 2}\n")
	var hits []Hit
	for i, u := range []string{"u1", "u2", "u2", "u3"} {
		hits = append(hits, hit(ruleA, time.Duration(i)*time.Minute, "IpAddress", "10.0.0.9", "TargetUserName", u))
	}
	hits = append(hits, hit(ruleA, 2*time.Hour, "IpAddress", "10.0.0.9", "TargetUserName", "u4"))
	fired := Correlate(c, hits)
	if len(fired) != 1 || fired[0].Value != 3 || !fired[0].From.Equal(ct0) {
		t.Fatalf("fired %+v", fired)
	}
}

func TestTemporal(t *testing.T) {
	c := corrRule(t, "  type: temporal\n  rules: [failed_logon, new_service, log_cleared]\n  group-by: [Computer]\n  timespan: 30m\n")
	hits := []Hit{
		hit(ruleC, 0, "Computer", "ws1"), hit(ruleA, 5*time.Minute, "Computer", "ws1"),
		hit(ruleB, 10*time.Minute, "Computer", "ws2"), // another host
		hit(ruleB, 20*time.Minute, "Computer", "ws1"),
	}
	fired := Correlate(c, hits)
	if len(fired) != 1 || fired[0].Group[0] != "ws1" || !fired[0].From.Equal(ct0) {
		t.Fatalf("fired %+v", fired)
	}
	// Out of the timespan: no fire.
	late := []Hit{hit(ruleC, 0, "Computer", "ws1"), hit(ruleA, 5*time.Minute, "Computer", "ws1"), hit(ruleB, 31*time.Minute, "Computer", "ws1")}
	if f := Correlate(c, late); len(f) != 0 {
		t.Errorf("fired beyond the timespan: %+v", f)
	}
}

func TestTemporalOrdered(t *testing.T) {
	c := corrRule(t, "  type: temporal_ordered\n  rules: [failed_logon, new_service]\n  group-by: [Computer]\n  timespan: 1h\n")
	wrongOrder := []Hit{hit(ruleB, 0, "Computer", "h"), hit(ruleA, time.Minute, "Computer", "h")}
	if f := Correlate(c, wrongOrder); len(f) != 0 {
		t.Errorf("fired in the wrong order: %+v", f)
	}
	right := []Hit{hit(ruleB, 0, "Computer", "h"), hit(ruleA, time.Minute, "Computer", "h"), hit(ruleB, 2*time.Minute, "Computer", "h")}
	if f := Correlate(c, right); len(f) != 1 || !f[0].From.Equal(ct0.Add(time.Minute)) {
		t.Errorf("fired %+v", f)
	}
}

func TestValueAggregates(t *testing.T) {
	var hits []Hit
	for i, b := range []string{"100", "200", "x", "300"} {
		hits = append(hits, hit(ruleA, time.Duration(i)*time.Minute, "Host", "h", "Bytes", b))
	}
	sum := corrRule(t, "  type: value_sum\n  rules: [a]\n  group-by: [Host]\n  timespan: 1h\n  condition: {field: Bytes, gte: 600}\n")
	if f := Correlate(sum, hits); len(f) != 1 || f[0].Value != 600 {
		t.Errorf("sum fired %+v", f)
	}
	avg := corrRule(t, "  type: value_avg\n  rules: [a]\n  group-by: [Host]\n  timespan: 1h\n  condition: {field: Bytes, gt: 140, lt: 160}\n")
	if f := Correlate(avg, hits); len(f) != 1 || f[0].Value != 150 {
		t.Errorf("avg fired %+v", f)
	}
	p := corrRule(t, "  type: value_percentile\n  rules: [a]\n  group-by: [Host]\n  timespan: 1h\n  condition: {field: Bytes, percentile: 50, eq: 200}\n")
	// Nearest rank: the median of 100 and 200 is 100, of 100, 200, 300 is 200.
	if f := Correlate(p, hits); len(f) != 1 || !f[0].At.Equal(ct0.Add(3*time.Minute)) {
		t.Errorf("median fired %+v", f)
	}
}

func TestAliases(t *testing.T) {
	c := corrRule(t, "  type: temporal\n  rules: [failed_logon, new_service]\n  group-by: [account]\n  timespan: 1h\n"+
		"  aliases:\n    account:\n      failed_logon: TargetUserName\n      new_service: SubjectUserName\n")
	if f := c.Corr.Fields(ruleA); f["account"] != "TargetUserName" {
		t.Errorf("fields for a: %v", f)
	}
	if f := c.Corr.Fields(ruleB); f["account"] != "SubjectUserName" {
		t.Errorf("fields for b: %v", f)
	}
}

func TestCorrelationRefusals(t *testing.T) {
	for _, c := range []struct{ section, reason string }{
		{"  type: nope\n  rules: [a]\n  timespan: 1m\n", "unknown correlation type"},
		{"  type: event_count\n  rules: [a]\n  timespan: 1m\n", "needs a condition"},
		{"  type: value_count\n  rules: [a]\n  timespan: 1m\n  condition: {gt: 1}\n", "condition.field"},
		{"  type: temporal\n  rules: [a]\n  timespan: 1m\n", "two rules or more"},
		{"  type: event_count\n  rules: [a]\n  timespan: soon\n  condition: {gt: 1}\n", "timespan"},
		{"  type: event_count\n  rules: [a]\n  timespan: 5y\n  condition: {gt: 1}\n", "unit"},
		{"  type: event_count\n  timespan: 5m\n  condition: {gt: 1}\n", "names no rules"},
	} {
		_, errs := Parse("c.yml", []byte("title: c\nid: c1\ncorrelation:\n"+c.section), Options{})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.reason) {
			t.Errorf("%q: %v, want %q", c.section, errs, c.reason)
		}
	}
}

// TestFilters adds a meta-filter to a rule: the administrators' own use of
// the tool no longer fires it; a filter naming a rule not loaded is
// refused.
func TestFilters(t *testing.T) {
	y := `title: Whoami
id: w1
name: whoami
logsource: {product: windows, category: process_creation}
detection:
  s:
    Image|endswith: '\whoami.exe'
  condition: s
---
title: Not the admins
id: f1
logsource: {product: windows, category: process_creation}
filter:
  rules: [whoami]
  admins:
    User|startswith: 'MIN\adm-'
  condition: not admins
---
title: Dangling
id: f2
logsource: {product: windows}
filter:
  rules: [nope]
  s:
    User: x
  condition: not s
`
	rs, errs := Parse("f.yml", []byte(y), Options{})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rules, errs := ApplyFilters(rs)
	if len(rules) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "names rule nope") {
		t.Fatalf("rules %d, errors %v", len(rules), errs)
	}
	r := rules[0]
	if !r.cond.eval(mapEvent{"Image": `C:\Windows\System32\whoami.exe`, "User": `MIN\jdoe`}, r) {
		t.Error("an ordinary user's whoami was filtered")
	}
	if r.cond.eval(mapEvent{"Image": `C:\Windows\System32\whoami.exe`, "User": `MIN\adm-jdoe`}, r) {
		t.Error("an administrator's whoami was not filtered")
	}
}
