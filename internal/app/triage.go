package app

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Triage is the analysts' handling of an incident: its status, who owns
// it, its TLP and who may see it when RED, notes, and every change with
// who made it and when. It is kept in the store's state, one key per
// incident, and follows the incident when a later hunt gives it another
// id only if the caller uses the new id (dwell incidents --history shows
// both).

// triageStatuses are an incident's statuses, in the order of its handling.
func triageStatuses() []string {
	return []string{"new", "investigating", "contained", "closed", "false_positive"}
}

// triage is one incident's handling.
type triage struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Assignee string   `json:"assignee,omitempty"`
	TLP      string   `json:"tlp"`
	People   []string `json:"people,omitempty"` // who may see it when it is TLP:RED
	Reason   string   `json:"reason,omitempty"` // why it was closed
	Notes    []note   `json:"notes"`
	History  []change `json:"history"`
}

// note is an analyst's note, Markdown.
type note struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	Text string    `json:"text"`
}

// change is one field's change.
type change struct {
	At    time.Time `json:"at"`
	By    string    `json:"by"`
	Field string    `json:"field"`
	From  string    `json:"from"`
	To    string    `json:"to"`
}

func triageKey(id string) string { return "triage:" + strings.ToUpper(id) }

// loadTriage returns an incident's triage; a new one when none is kept.
func loadTriage(ctx context.Context, st interface {
	State(context.Context, string) (string, error)
}, id string) (*triage, error) {
	v, err := st.State(ctx, triageKey(id))
	if err != nil {
		return nil, err
	}
	if v == "" {
		return &triage{ID: id, Status: "new", TLP: "amber", Notes: []note{}, History: []change{}}, nil
	}
	var t triage
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return nil, fmt.Errorf("reading the triage of %s: %w", id, err)
	}
	return &t, nil
}

// Visible reports whether user may see an incident with this triage:
// anyone unless it is TLP:RED, then only the people named on it and its
// assignee; TLP:AMBER+STRICT only people of the organisation that runs
// dwell (external is true for an account of another organisation).
func (t *triage) Visible(user string, external bool) bool {
	switch {
	case t == nil:
		return true
	case t.TLP == "red":
		return user != "" && (t.Assignee == user || slices.Contains(t.People, user))
	case t.TLP == "amber+strict":
		return !external
	}
	return true
}

func triageCommand() command {
	return command{
		name:    "triage",
		summary: "show or change an incident's handling: status, assignee, TLP and who may see it, notes",
		usage:   "triage [--db FILE] [--status S] [--assignee NAME] [--tlp LEVEL] [--person NAME]... [--note TEXT] [--reason TEXT] [--by NAME] [--format table|json] ID",
		example: `  dwell triage INC-5adc20b96c
  dwell triage --status investigating --assignee alice INC-5adc20b96c
  dwell triage --note "Beacon confirmed on the host: svchost.exe from C:\\ProgramData" INC-5adc20b96c
  dwell triage --tlp red --person alice --person bob INC-5adc20b96c
  dwell triage --status closed --reason "reimaged, credentials reset" INC-5adc20b96c

Statuses: new, investigating, contained, closed, false_positive (closing
needs --reason). A TLP:RED incident is shown only to the people named on it
and its assignee (the web console; docs/serve.md).
`,
		run: runTriage,
	}
}

func runTriage(ctx context.Context, a *App, args []string) error {
	var co common
	fs := a.newFlags(triageCommand(), &co)
	status := fs.String("status", "", "new `status`: "+strings.Join(triageStatuses(), ", "))
	assignee := fs.String("assignee", "", "who handles it (`name`; \"-\" for nobody)")
	tlp := fs.String("tlp", "", "its TLP `level`: clear, green, amber, amber+strict, red")
	var people listFlag
	fs.Var(&people, "person", "a `name` who may see it when TLP:RED (repeat; \"-NAME\" removes)")
	text := fs.String("note", "", "add a note (`Markdown`)")
	reason := fs.String("reason", "", "why it is closed or a false positive (`text`)")
	by := fs.String("by", os.Getenv("USER"), "who makes the change (`name`)")
	format := fs.String("format", "table", "output `format`: table or json")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("name one incident: dwell triage ID")
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	if *status != "" && !slices.Contains(triageStatuses(), *status) {
		return usagef("--status: %q is not one of %s", *status, strings.Join(triageStatuses(), ", "))
	}
	if *tlp != "" && config.TLPRank(*tlp) < 0 {
		return usagef("--tlp: %q is not a TLP level (clear, green, amber, amber+strict, red)", *tlp)
	}
	if (*status == "closed" || *status == "false_positive") && strings.TrimSpace(*reason) == "" {
		return usagef("--status %s needs --reason", *status)
	}
	if len(*text) > 64<<10 || len(*reason) > 4<<10 {
		return usagef("a note is at most 64 KiB, a reason 4 KiB")
	}
	changing := *status != "" || *assignee != "" || *tlp != "" || len(people) > 0 || *text != "" || *reason != ""
	if changing && strings.TrimSpace(*by) == "" {
		return usagef("--by NAME: who makes the change")
	}
	_, st, err := co.open(ctx, !changing)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	h, err := loadHunt(ctx, st)
	if err != nil {
		return err
	}
	id := incidentID(h, rest[0])
	if id == "" {
		return fmt.Errorf("no incident %s in the last hunt (dwell incidents lists them)", sanitize(rest[0], 40))
	}
	t, err := loadTriage(ctx, st, id)
	if err != nil {
		return err
	}
	if changing {
		t.apply(a.Now().UTC(), *by, *status, *assignee, *tlp, people, *text, *reason)
		data, err := json.Marshal(t)
		if err != nil {
			return err
		}
		if err := st.SetState(ctx, triageKey(id), string(data)); err != nil {
			return err
		}
	}
	if *format == "json" {
		return writeIndented(a.Stdout, t)
	}
	fmt.Fprintf(a.Stdout, "%s  %s, assignee %s, TLP:%s\n", t.ID, t.Status, orNone(t.Assignee), strings.ToUpper(t.TLP))
	if len(t.People) > 0 {
		fmt.Fprintf(a.Stdout, "people       %s\n", sanitize(strings.Join(t.People, ", "), 300))
	}
	if t.Reason != "" {
		fmt.Fprintf(a.Stdout, "reason       %s\n", sanitize(t.Reason, 300))
	}
	for _, n := range t.Notes {
		fmt.Fprintf(a.Stdout, "\n%s  %s:\n%s\n", n.At.Format(time.DateTime), sanitize(n.By, 60), sanitize(n.Text, 2000))
	}
	if len(t.History) > 0 {
		fmt.Fprintln(a.Stdout, "\nhistory:")
		for _, c := range t.History {
			fmt.Fprintf(a.Stdout, "  %s  %-10s %-9s %s -> %s\n", c.At.Format(time.DateTime), sanitize(c.By, 30), c.Field, sanitize(orNone(c.From), 60), sanitize(orNone(c.To), 60))
		}
	}
	return nil
}

// incidentID returns the id of the last hunt's incident named id (in any
// case), "" when there is none.
func incidentID(h *savedHunt, id string) string {
	for i := range h.Incidents {
		if strings.EqualFold(h.Incidents[i].ID, id) {
			return h.Incidents[i].ID
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// apply makes the asked changes, recording each.
func (t *triage) apply(now time.Time, by, status, assignee, tlp string, people []string, text, reason string) {
	set := func(field string, dst *string, v string) {
		if v != "" && v != *dst {
			t.History = append(t.History, change{At: now, By: by, Field: field, From: *dst, To: v})
			*dst = v
		}
	}
	if assignee == "-" {
		if t.Assignee != "" {
			t.History = append(t.History, change{At: now, By: by, Field: "assignee", From: t.Assignee})
			t.Assignee = ""
		}
		assignee = ""
	}
	set("status", &t.Status, status)
	set("assignee", &t.Assignee, assignee)
	if tlp != "" {
		set("tlp", &t.TLP, strings.ToLower(strings.TrimPrefix(strings.ToUpper(tlp), "TLP:")))
	}
	for _, p := range people {
		if name, ok := strings.CutPrefix(p, "-"); ok {
			if i := slices.Index(t.People, name); i >= 0 {
				t.People = slices.Delete(t.People, i, i+1)
				t.History = append(t.History, change{At: now, By: by, Field: "people", From: name})
			}
			continue
		}
		if strings.TrimSpace(p) != "" && !slices.Contains(t.People, p) {
			t.People = append(t.People, p)
			t.History = append(t.History, change{At: now, By: by, Field: "people", To: p})
		}
	}
	if t.TLP == "red" && t.Assignee == "" && len(t.People) == 0 {
		// Nobody could see it: the one who marked it stays named.
		t.People = append(t.People, by)
	}
	set("reason", &t.Reason, reason)
	if strings.TrimSpace(text) != "" {
		t.Notes = append(t.Notes, note{At: now, By: by, Text: text})
	}
}

// triages returns the triage of each incident of h.
func triages(ctx context.Context, st store.Store, h *savedHunt) (map[string]*triage, error) {
	out := make(map[string]*triage, len(h.Incidents))
	for i := range h.Incidents {
		t, err := loadTriage(ctx, st, h.Incidents[i].ID)
		if err != nil {
			return nil, err
		}
		out[h.Incidents[i].ID] = t
	}
	return out, nil
}
