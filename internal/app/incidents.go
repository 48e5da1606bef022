package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// lastHuntKey is where dwell hunt keeps its incidents in the store's state.
const lastHuntKey = "hunt:last"

// savedHunt is what dwell hunt keeps for dwell incidents.
type savedHunt struct {
	At        time.Time            `json:"at"`
	Window    store.Window         `json:"window"`
	Detectors []string             `json:"detectors,omitempty"`
	Findings  int                  `json:"findings"`
	Incidents []correlate.Incident `json:"incidents"`
}

func saveHunt(ctx context.Context, st store.Store, h *savedHunt) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return st.SetState(ctx, lastHuntKey, string(data))
}

func loadHunt(ctx context.Context, st store.Store) (*savedHunt, error) {
	v, err := st.State(ctx, lastHuntKey)
	if err != nil {
		return nil, err
	}
	if v == "" {
		return nil, errors.New("no hunt yet: run dwell hunt first (it keeps its incidents in the store)")
	}
	var h savedHunt
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return nil, fmt.Errorf("reading the last hunt: %w", err)
	}
	return &h, nil
}

// openHunt opens the store read-only and reads the last hunt; the caller
// closes the store.
func (co *common) openHunt(ctx context.Context) (*config.Config, store.Store, *savedHunt, error) {
	cfg, st, err := co.open(ctx, true)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := loadHunt(ctx, st)
	if err != nil {
		_ = st.Close()
		return nil, nil, nil, err
	}
	return cfg, st, h, nil
}

func incidentsCommand() command {
	return command{
		name:    "incidents",
		summary: "list the incidents of the last dwell hunt",
		usage:   "incidents [--db FILE] [--format table|json] [--findings | --history]",
		example: `  dwell hunt >/dev/null && dwell incidents
  dwell incidents --format json | jq '.incidents[] | {id, class, dwell_start}'

dwell incident ID shows one incident with its whole timeline.
`,
		run: runIncidents,
	}
}

func incidentCommand() command {
	return command{
		name:    "incident",
		summary: "show one incident of the last dwell hunt with its timeline",
		usage:   "incident [--db FILE] [--format table|json] ID",
		example: `  dwell incident INC-5adc20b96c
  dwell incident --format json INC-5adc20b96c > case-42.json
`,
		run: runIncident,
	}
}

func runIncidents(ctx context.Context, a *App, args []string) error {
	var co common
	fs := a.newFlags(incidentsCommand(), &co)
	format := fs.String("format", "table", "output `format`: table or json")
	listFindings := fs.Bool("findings", false, "list the incidents' findings instead, highest score first")
	history := fs.Bool("history", false, "list every incident dwell serve has tracked, with its changes (new, updated, escalated, gone)")
	as := fs.String("as", "", "leave out the TLP:RED incidents `user` is not named on (the console's view)")
	external := fs.Bool("external", false, "with --as: the user is of another organisation (leaves out TLP:AMBER+STRICT too)")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q (dwell incident ID shows one)", rest[0])
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	if *history {
		if *listFindings {
			return usagef("--findings or --history, not both")
		}
		return runIncidentHistory(ctx, a, &co, *format)
	}
	_, st, h, err := co.openHunt(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	// The triage is read where it is shown or decides what is shown.
	var tri map[string]*triage
	if *as != "" || (*format == "json" && !*listFindings) {
		if tri, err = triages(ctx, st, h); err != nil {
			return err
		}
	}
	if *as != "" {
		h.Incidents = slices.DeleteFunc(h.Incidents, func(inc correlate.Incident) bool { return !tri[inc.ID].Visible(*as, *external) })
		maps.DeleteFunc(tri, func(id string, t *triage) bool { return !t.Visible(*as, *external) })
	}
	if *listFindings {
		var fs []detect.Finding
		for _, inc := range h.Incidents {
			fs = append(fs, inc.Findings...)
		}
		detect.Sort(fs)
		if *format == "json" {
			return writeIndented(a.Stdout, map[string]any{"hunted_at": h.At, "findings": fs})
		}
		return writeFindingsTable(a.Stdout, fs, 0)
	}
	if *format == "json" {
		return writeIndented(a.Stdout, map[string]any{"hunted_at": h.At, "incidents": h.Incidents, "triage": tri})
	}
	fmt.Fprintf(a.Stdout, "%d incident(s) from the hunt of %s (%d finding(s))\n", len(h.Incidents), h.At.Format("2006-01-02 15:04 UTC"), h.Findings)
	for _, inc := range h.Incidents {
		fmt.Fprintf(a.Stdout, "%s  %.2f %-8s %-15s %2d host(s)  %s .. %s  %s\n", inc.ID, inc.Score, inc.Severity, inc.Class, len(inc.Hosts),
			inc.DwellStart.UTC().Format("2006-01-02 15:04"), inc.LastSeen.UTC().Format("2006-01-02 15:04"), sanitize(inc.Summary, 200))
	}
	return nil
}

func runIncident(ctx context.Context, a *App, args []string) error {
	var co common
	fs := a.newFlags(incidentCommand(), &co)
	format := fs.String("format", "table", "output `format`: table or json")
	as := fs.String("as", "", "refuse a TLP:RED incident `user` is not named on (the console's view)")
	external := fs.Bool("external", false, "with --as: the user is of another organisation (refuses TLP:AMBER+STRICT too)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("name one incident: dwell incident ID (dwell incidents lists them)")
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	cfg, st, h, err := co.openHunt(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	for i := range h.Incidents {
		inc := &h.Incidents[i]
		if !strings.EqualFold(inc.ID, rest[0]) {
			continue
		}
		if err := enrich(ctx, cfg, st, inc); err != nil {
			return err
		}
		t, err := loadTriage(ctx, st, inc.ID)
		if err != nil {
			return err
		}
		if *as != "" && !t.Visible(*as, *external) {
			break // as if it did not exist
		}
		if *format == "json" {
			if *as != "" {
				return writeIndented(a.Stdout, map[string]any{"incident": inc, "triage": t})
			}
			return writeIndented(a.Stdout, inc)
		}
		return writeIncident(a, inc)
	}
	return fmt.Errorf("no incident %s in the last hunt (dwell incidents lists them)", sanitize(rest[0], 40))
}

// writeIndented writes v as indented JSON.
func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeIncident prints an incident whole: scope, bytes per day, timeline.
func writeIncident(a *App, inc *correlate.Incident) error {
	w := a.Stdout
	fmt.Fprintf(w, "%s  %s, score %.2f (%s)\n%s\n\n", inc.ID, inc.Class, inc.Score, inc.Severity, sanitize(inc.Summary, 400))
	fmt.Fprintf(w, "dwell start  %s\nlast seen    %s\n", inc.DwellStart.UTC().Format(time.RFC3339), inc.LastSeen.UTC().Format(time.RFC3339))
	if c := inc.FirstContact; c != nil {
		if c.Log == "dns" {
			fmt.Fprintf(w, "first contact %s  a DNS answer gave %s as %s (%d answer(s))", c.At.UTC().Format(time.RFC3339), sanitize(c.Name, 100), c.Dst, c.Conns)
		} else {
			fmt.Fprintf(w, "first contact %s  %s -> %s:%d/%s (%d connection(s) on %d day(s) in all history, %s records)", c.At.UTC().Format(time.RFC3339),
				c.Src, c.Dst, c.Port, sanitize(c.Proto, 10), c.Conns, c.Days, sanitize(c.Log, 10))
		}
		if before := inc.DwellStart.Sub(c.At); before >= 24*time.Hour {
			fmt.Fprintf(w, ": %d days before the first finding", int(before.Hours()/24))
		}
		fmt.Fprintln(w)
	}
	hosts := make([]string, len(inc.Hosts))
	for i, h := range inc.Hosts {
		hosts[i] = h.String()
	}
	fmt.Fprintf(w, "hosts        %s\n", strings.Join(hosts, ", "))
	if len(inc.HostNames) > 0 {
		fmt.Fprintf(w, "host names   %s\n", sanitize(strings.Join(inc.HostNames, ", "), 400))
	}
	if len(inc.Accounts) > 0 {
		fmt.Fprintf(w, "accounts     %s\n", sanitize(strings.Join(inc.Accounts, ", "), 400))
	}
	if len(inc.Attack) > 0 {
		fmt.Fprintf(w, "ATT&CK       %s\n", strings.Join(inc.Attack, " "))
	}
	fmt.Fprintln(w, "\ninfrastructure:")
	for _, x := range inc.Infrastructure {
		if x.Pivot != "" {
			fmt.Fprintf(w, "  %-6s %-40s pivot: %s", x.Kind, sanitize(x.Value, 40), sanitize(x.Pivot, 200))
		} else {
			fmt.Fprintf(w, "  %-6s %-40s %d host(s), seen by %s", x.Kind, sanitize(x.Value, 40), x.Hosts, strings.Join(x.Detectors, ", "))
		}
		if x.Origin != nil {
			fmt.Fprintf(w, "; %s", sanitize(x.Origin.String(), 120))
		}
		fmt.Fprintln(w)
	}
	if len(inc.BytesOut) > 0 {
		fmt.Fprintln(w, "\nsent out:")
		for _, t := range inc.BytesOut {
			fmt.Fprintf(w, "  %s -> %s  %d bytes\n", t.Src, t.Dst, t.Bytes)
			for _, d := range t.PerDay {
				fmt.Fprintf(w, "    %s  %d\n", d.Day, d.Bytes)
			}
		}
	}
	writeAnswers(w, inc)
	fmt.Fprintf(w, "\ntimeline (%d finding(s)):\n", len(inc.Findings))
	for _, f := range inc.Findings {
		fmt.Fprintf(w, "  %s  %.2f %-9s %s\n", f.FirstSeen.UTC().Format("2006-01-02 15:04"), f.Score, f.Detector, sanitize(f.Summary, 300))
	}
	return nil
}

// runIncidentHistory prints the incidents dwell serve tracks, most
// recently changed first.
func runIncidentHistory(ctx context.Context, a *App, co *common, format string) error {
	_, st, err := co.open(ctx, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	state, err := loadTracked(ctx, st)
	if err != nil {
		return err
	}
	list := make([]*tracked, 0, len(state))
	for _, t := range state {
		list = append(list, t)
	}
	slices.SortFunc(list, func(x, y *tracked) int {
		return cmp.Or(y.LastChanged.Compare(x.LastChanged), strings.Compare(x.ID, y.ID))
	})
	if format == "json" {
		return writeIndented(a.Stdout, map[string]any{"incidents": list})
	}
	if len(list) == 0 {
		fmt.Fprintln(a.Stdout, "no incident history: dwell serve keeps it, hunt after hunt")
		return nil
	}
	for _, t := range list {
		status := t.History[len(t.History)-1].Event
		fmt.Fprintf(a.Stdout, "%s  %-9s %-8s %-15s %2d host(s)  first reported %s, last changed %s\n", t.ID, status, t.Severity, t.Class, t.Hosts,
			t.FirstReported.Format("2006-01-02 15:04"), t.LastChanged.Format("2006-01-02 15:04"))
		for _, e := range t.History {
			fmt.Fprintf(a.Stdout, "    %s  %-9s %s\n", e.At.Format("2006-01-02 15:04:05"), e.Event, sanitize(strings.Join(e.Changes, "; "), 200))
		}
	}
	return nil
}
