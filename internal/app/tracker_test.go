package app

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

func incident(id string, sev detect.Severity, last time.Time, fs ...string) correlate.Incident {
	inc := correlate.Incident{ID: id, Severity: sev, Class: correlate.ClassEspionage, LastSeen: last}
	for _, dst := range fs {
		inc.Findings = append(inc.Findings, detect.Finding{Detector: "beacon", Sensor: "s", Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr(dst)})
	}
	inc.Hosts = []netip.Addr{netip.MustParseAddr("10.0.0.5")}
	return inc
}

// TestTrackIncidents follows one intrusion over hunts: it is new, grows,
// changes its id when earlier evidence appears, escalates, vanishes and
// returns; only its first report at the alert level and its rises above
// it are announced, a rise no sooner than the interval after the last.
func TestTrackIncidents(t *testing.T) {
	c := &config.Alerts{MinSeverity: "high", Interval: config.Duration(time.Hour)}
	state := map[string]*tracked{}
	t0 := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	ids := func(incs []*correlate.Incident) []string {
		var out []string
		for _, i := range incs {
			out = append(out, i.ID)
		}
		return out
	}
	// 1. A medium incident: tracked, not announced (below high).
	if due := trackIncidents(state, []correlate.Incident{incident("INC-a", detect.SeverityMedium, t0, "198.51.100.7")}, t0, c); len(due) != 0 {
		t.Errorf("medium announced: %v", ids(due))
	}
	// 2. The same, grown: a second finding, later last seen.
	t1 := t0.Add(10 * time.Minute)
	due := trackIncidents(state, []correlate.Incident{incident("INC-a", detect.SeverityMedium, t1, "198.51.100.7", "198.51.100.8")}, t1, c)
	if len(due) != 0 || state["INC-a"].Findings != 2 || state["INC-a"].History[1].Event != "updated" {
		t.Errorf("growth: due %v, state %+v", ids(due), state["INC-a"])
	}
	// 3. Earlier evidence gives it a new id, and it becomes high: one
	// escalation alert, the history carried over.
	t2 := t1.Add(10 * time.Minute)
	due = trackIncidents(state, []correlate.Incident{incident("INC-b", detect.SeverityHigh, t2, "198.51.100.6", "198.51.100.7", "198.51.100.8")}, t2, c)
	if !slices.Equal(ids(due), []string{"INC-b"}) || state["INC-a"] != nil || !slices.Equal(state["INC-b"].Aliases, []string{"INC-a"}) ||
		len(state["INC-b"].History) != 3 || state["INC-b"].History[2].Event != "escalated" {
		t.Fatalf("escalation: due %v, state %+v", ids(due), state)
	}
	// 4. Critical ten minutes later: escalated, but within the interval.
	t3 := t2.Add(10 * time.Minute)
	if due := trackIncidents(state, []correlate.Incident{incident("INC-b", detect.SeverityCritical, t3, "198.51.100.6")}, t3, c); len(due) != 0 {
		t.Errorf("announced again within the interval: %v", ids(due))
	}
	// 5. Gone (allow-listed), then found again, more than the interval
	// after the last alert: the held-back rise to critical goes out now.
	t4 := t3.Add(time.Hour)
	trackIncidents(state, nil, t4, c)
	if !state["INC-b"].Gone {
		t.Errorf("not gone: %+v", state["INC-b"])
	}
	due = trackIncidents(state, []correlate.Incident{incident("INC-b", detect.SeverityCritical, t4, "198.51.100.6")}, t4.Add(time.Minute), c)
	if state["INC-b"].Gone || state["INC-b"].History[len(state["INC-b"].History)-1].Changes[0] != "found again" || !slices.Equal(ids(due), []string{"INC-b"}) {
		t.Errorf("found again: due %v, %+v", ids(due), state["INC-b"].History)
	}
	// 6. A new high incident: announced at once.
	due = trackIncidents(state, []correlate.Incident{incident("INC-b", detect.SeverityCritical, t4, "198.51.100.6"),
		incident("INC-c", detect.SeverityHigh, t4, "203.0.113.9")}, t4.Add(2*time.Minute), c)
	if !slices.Equal(ids(due), []string{"INC-c"}) {
		t.Errorf("new high: %v", ids(due))
	}
}
