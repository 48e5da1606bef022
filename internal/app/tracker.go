package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/alert"
	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
)

// Incidents under dwell serve are a lasting state, not the last hunt's
// output: each hunt's incidents are matched with the ones tracked so far
// (by id, or by a finding they share when new evidence moved an
// incident's earliest finding and so its id), and each change is kept in
// the incident's history: new, updated (more hosts, more findings, later
// last seen), escalated (a higher severity), gone (no longer found, as
// after an allow-list entry). dwell incidents --history prints them.

// trackedKey is where the server keeps the tracked incidents.
const trackedKey = "incidents:tracked"

// tracked is one incident's lasting state.
type tracked struct {
	ID string `json:"id"`
	// Aliases are ids it had before new evidence changed them.
	Aliases       []string       `json:"aliases,omitempty"`
	FirstReported time.Time      `json:"first_reported"`
	LastChanged   time.Time      `json:"last_changed"`
	Severity      string         `json:"severity"`
	Class         string         `json:"class"`
	Hosts         int            `json:"hosts"`
	Findings      int            `json:"findings"`
	LastSeen      time.Time      `json:"last_seen"`
	Gone          bool           `json:"gone,omitempty"`
	Keys          []string       `json:"keys"`
	Alerted       time.Time      `json:"alerted,omitzero"`
	AlertedLevel  string         `json:"alerted_severity,omitempty"`
	History       []trackedEvent `json:"history"`
}

// trackedEvent is one change of an incident.
type trackedEvent struct {
	At      time.Time `json:"at"`
	Event   string    `json:"event"` // new, updated, escalated, gone
	Changes []string  `json:"changes,omitempty"`
}

// maxHistory bounds an incident's kept history (the first event stays).
const maxHistory = 200

func loadTracked(ctx context.Context, s interface {
	State(context.Context, string) (string, error)
}) (map[string]*tracked, error) {
	v, err := s.State(ctx, trackedKey)
	if err != nil || v == "" {
		return map[string]*tracked{}, err
	}
	var list []*tracked
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, fmt.Errorf("reading the tracked incidents: %w", err)
	}
	m := make(map[string]*tracked, len(list))
	for _, t := range list {
		m[t.ID] = t
	}
	return m, nil
}

func incidentKeys(inc *correlate.Incident) []string {
	keys := make([]string, 0, len(inc.Findings))
	for i := range inc.Findings {
		keys = append(keys, correlate.FindingKey(&inc.Findings[i]))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// trackIncidents updates the tracked state with one hunt's incidents at
// now and returns the incidents whose change calls for an alert under
// the alerts configuration c: new at or above its severity, or escalated
// to it, at most once per c.Interval for each.
func trackIncidents(state map[string]*tracked, incs []correlate.Incident, now time.Time, c *config.Alerts) []*correlate.Incident {
	byKey := map[string]*tracked{}
	for _, t := range state {
		for _, k := range t.Keys {
			byKey[k] = t
		}
	}
	min := severityRank(c.MinSeverity)
	seen := map[*tracked]bool{}
	var due []*correlate.Incident
	for i := range incs {
		inc := &incs[i]
		keys := incidentKeys(inc)
		t := state[inc.ID]
		if t == nil {
			for _, k := range keys {
				if o := byKey[k]; o != nil && !seen[o] {
					t = o
					break
				}
			}
			if t != nil { // the same incident under a new id
				delete(state, t.ID)
				t.Aliases = append(t.Aliases, t.ID)
				t.ID = inc.ID
				state[t.ID] = t
			}
		}
		sev := inc.Severity.String()
		if t == nil {
			t = &tracked{ID: inc.ID, FirstReported: now, LastChanged: now, Severity: sev, Class: string(inc.Class), Hosts: len(inc.Hosts),
				Findings: len(inc.Findings), LastSeen: inc.LastSeen, Keys: keys, History: []trackedEvent{{At: now, Event: "new"}}}
			state[t.ID] = t
			seen[t] = true
			if severityRank(sev) >= min {
				t.Alerted, t.AlertedLevel = now, sev
				due = append(due, inc)
			}
			continue
		}
		seen[t] = true
		var changes []string
		if n := len(inc.Hosts); n > t.Hosts {
			changes = append(changes, fmt.Sprintf("hosts %d -> %d", t.Hosts, n))
		}
		if n := len(inc.Findings); n > t.Findings {
			changes = append(changes, fmt.Sprintf("findings %d -> %d", t.Findings, n))
		}
		if inc.LastSeen.After(t.LastSeen) {
			changes = append(changes, "last seen "+inc.LastSeen.UTC().Format(time.DateTime))
		}
		if string(inc.Class) != t.Class {
			changes = append(changes, fmt.Sprintf("class %s -> %s", t.Class, inc.Class))
		}
		event := "updated"
		escalated := severityRank(sev) > severityRank(t.Severity)
		if escalated {
			event = "escalated"
			changes = append([]string{fmt.Sprintf("severity %s -> %s", t.Severity, sev)}, changes...)
		}
		if t.Gone {
			event = "updated"
			changes = append([]string{"found again"}, changes...)
			t.Gone = false
		}
		t.Keys = keys
		if len(changes) == 0 {
			continue
		}
		t.History = append(t.History, trackedEvent{At: now, Event: event, Changes: changes})
		if len(t.History) > maxHistory {
			t.History = append(t.History[:1], t.History[len(t.History)-maxHistory+1:]...)
		}
		t.LastChanged, t.Severity, t.Class = now, sev, string(inc.Class)
		t.Hosts, t.Findings = max(t.Hosts, len(inc.Hosts)), max(t.Findings, len(inc.Findings))
		if inc.LastSeen.After(t.LastSeen) {
			t.LastSeen = inc.LastSeen
		}
		// An incident that rises to the alert level is announced, but
		// not more often than the interval allows.
		rose := severityRank(sev) >= min && severityRank(sev) > severityRank(t.AlertedLevel)
		if rose && (t.Alerted.IsZero() || now.Sub(t.Alerted) >= time.Duration(c.Interval) || t.AlertedLevel == "") {
			t.Alerted, t.AlertedLevel = now, sev
			due = append(due, inc)
		}
	}
	for _, t := range state {
		if !seen[t] && !t.Gone {
			t.Gone, t.LastChanged = true, now
			t.History = append(t.History, trackedEvent{At: now, Event: "gone"})
		}
	}
	return due
}

func severityRank(s string) int {
	return slices.Index([]string{"info", "low", "medium", "high", "critical"}, s)
}

// track updates the tracked incidents with hunt h, keeps them, and
// returns the alerts due. The state is kept before any alert is sent: an
// alert is sent at most once, even across a crash.
func (s *served) track(ctx context.Context, h *savedHunt) ([]*alert.Alert, error) {
	st := s.store()
	state, err := loadTracked(ctx, st)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg.Load()
	now := s.now().UTC()
	due := trackIncidents(state, h.Incidents, now, &cfg.Serve.Alerts)
	list := make([]*tracked, 0, len(state))
	for _, t := range state {
		list = append(list, t)
	}
	slices.SortFunc(list, func(a, b *tracked) int { return strings.Compare(a.ID, b.ID) })
	data, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	if err := st.SetState(ctx, trackedKey, string(data)); err != nil {
		return nil, err
	}
	out := make([]*alert.Alert, 0, len(due))
	for _, inc := range due {
		t := state[inc.ID]
		ev := t.History[len(t.History)-1]
		a := incidentAlert(inc, ev, now)
		// An analyst's marking (dwell triage --tlp) holds when stricter.
		if tr, err := loadTriage(ctx, st, inc.ID); err == nil && config.TLPRank(tr.TLP) > config.TLPRank(a.TLP) {
			a.TLP = tr.TLP
		}
		out = append(out, a)
	}
	return out, nil
}

// incidentAlert is the alert for an incident's change.
func incidentAlert(inc *correlate.Incident, ev trackedEvent, now time.Time) *alert.Alert {
	a := &alert.Alert{Event: ev.Event, At: now, Incident: inc.ID, Severity: inc.Severity.String(), Class: string(inc.Class), Score: inc.Score,
		Summary: inc.Summary, Attack: inc.Attack, DwellStart: inc.DwellStart, LastSeen: inc.LastSeen, Changes: ev.Changes, TLP: incidentTLP(inc)}
	if a.Event == "updated" {
		a.Event = "escalated"
	}
	for _, h := range inc.Hosts {
		a.Hosts = append(a.Hosts, h.String())
	}
	a.Hosts = append(a.Hosts, inc.HostNames...)
	for _, i := range inc.Infrastructure {
		a.Infrastructure = append(a.Infrastructure, i.Value)
	}
	return a
}

// incidentTLP is an incident's marking: amber (it names internal hosts),
// or the most restrictive marking of the intel its findings matched.
func incidentTLP(inc *correlate.Incident) string {
	tlp := "amber"
	for i := range inc.Findings {
		if v, ok := inc.Findings[i].Evidence["tlp"].(string); ok && config.TLPRank(v) > config.TLPRank(tlp) {
			tlp = strings.ToLower(strings.TrimPrefix(strings.ToUpper(v), "TLP:"))
		}
	}
	return tlp
}

// dispatch sends alerts by the configured channels.
func (s *served) dispatch(ctx context.Context, alerts []*alert.Alert) {
	if len(alerts) == 0 {
		return
	}
	cfg := s.cfg.Load()
	chans, err := alert.Channels(&cfg.Serve.Alerts)
	if err != nil {
		s.logger.Error("alerts", "err", err)
		return
	}
	if len(chans) == 0 {
		return
	}
	d := &alert.Dispatcher{Channels: chans, DeadLetter: cfg.Serve.Alerts.DeadLetter, Logger: s.logger, Backoff: s.alertBackoff}
	for _, a := range alerts {
		r := d.Dispatch(ctx, a)
		s.metrics.alerts.WithLabelValues("delivered").Add(float64(r.Delivered))
		s.metrics.alerts.WithLabelValues("failed").Add(float64(r.Failed))
		s.logger.Info("alert", "incident", a.Incident, "event", a.Event, "severity", a.Severity, "delivered", r.Delivered, "failed", r.Failed)
	}
}
