package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

func statusCommand() command {
	return command{
		name:    "status",
		summary: "summarise the store: records per table and their time range, inputs per sensor, quarantine, intel, last hunt",
		usage:   "status [--db FILE] [--format table|json]",
		example: `  dwell status
  dwell status --db case42.db --format json | jq '.tables'
`,
		run: runStatus,
	}
}

// storeStatus is what dwell status reports.
type storeStatus struct {
	Store      string         `json:"store"`
	Backend    string         `json:"backend"`
	Tables     []tableStatus  `json:"tables"`
	Quarantine int64          `json:"quarantine"`
	Sensors    []sensorStatus `json:"sensors"`
	Indicators int            `json:"indicators"`
	Sources    int            `json:"intel_sources"`
	LastHunt   *time.Time     `json:"last_hunt,omitempty"`
	Incidents  int            `json:"incidents"`
}

type tableStatus struct {
	Table   string    `json:"table"`
	Records int64     `json:"records"`
	First   time.Time `json:"first,omitzero"`
	Last    time.Time `json:"last,omitzero"`
}

type sensorStatus struct {
	Sensor   string    `json:"sensor"`
	Inputs   int       `json:"inputs"`
	Records  int64     `json:"records"`
	Bad      int64     `json:"bad_lines"`
	LastRead time.Time `json:"last_read"`
}

func runStatus(ctx context.Context, a *App, args []string) error {
	var co common
	fs := a.newFlags(statusCommand(), &co)
	format := fs.String("format", "table", "output `format`: table or json")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	if !storeExists(cfg.Store) {
		return fmt.Errorf("no store at %s (dwell ingest PATH makes one)", cfg.Store)
	}
	st, err := co.openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	s, err := statusOf(ctx, st, cfg.Store)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeIndented(a.Stdout, s)
	}
	printStatus(a.Stdout, s)
	return nil
}

// statusOf reads what the store holds through the store's interface, so
// that both backends answer alike.
func statusOf(ctx context.Context, st store.Store, path string) (*storeStatus, error) {
	s := &storeStatus{Store: path, Backend: st.Backend()}
	for _, k := range event.Kinds {
		n, err := st.Count(ctx, k)
		if err != nil {
			return nil, err
		}
		t := tableStatus{Table: k.String(), Records: n}
		if n > 0 {
			// The alias makes both stores return the column as a time.
			rows, err := st.Query(ctx, "SELECT min(ts) AS ts FROM "+k.String()+" UNION ALL SELECT max(ts) AS ts FROM "+k.String())
			if err != nil {
				return nil, err
			}
			var ts []time.Time
			for rows.Next() {
				if v, ok := rows.Values()[0].(time.Time); ok {
					ts = append(ts, v.UTC())
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return nil, err
			}
			if len(ts) == 2 {
				t.First, t.Last = event.Earliest(ts[0], ts[1]), event.Latest(ts[0], ts[1])
			}
		}
		s.Tables = append(s.Tables, t)
	}
	if rows, err := st.Query(ctx, "SELECT count(*) AS n FROM quarantine"); err == nil {
		for rows.Next() {
			s.Quarantine = toInt64(rows.Values()[0])
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, err
		}
	}
	ledger, err := st.Ledger(ctx)
	if err != nil {
		return nil, err
	}
	sensors := map[string]*sensorStatus{}
	for _, p := range ledger {
		x := sensors[p.Sensor]
		if x == nil {
			x = &sensorStatus{Sensor: p.Sensor}
			sensors[p.Sensor] = x
		}
		x.Inputs++
		x.Records += p.Rows
		x.Bad += p.Bad
		x.LastRead = event.Latest(x.LastRead, p.Updated.UTC())
	}
	for _, k := range slices.Sorted(maps.Keys(sensors)) {
		s.Sensors = append(s.Sensors, *sensors[k])
	}
	sources := map[string]bool{}
	if err := st.Indicators(ctx, func(i *event.Indicator) error {
		s.Indicators++
		sources[i.Source] = true
		return nil
	}); err != nil {
		return nil, err
	}
	s.Sources = len(sources)
	if h, err := loadHunt(ctx, st); err == nil {
		at := h.At
		s.LastHunt, s.Incidents = &at, len(h.Incidents)
	}
	return s, nil
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int32:
		return int64(x)
	case uint64:
		return int64(min(x, 1<<63-1))
	case int:
		return int64(x)
	}
	return 0
}

func printStatus(w io.Writer, s *storeStatus) {
	fmt.Fprintf(w, "store %s (%s)\n", s.Store, s.Backend)
	fmt.Fprintln(w, "records (times UTC):")
	for _, t := range s.Tables {
		span := ""
		if !t.First.IsZero() {
			span = t.First.Format("2006-01-02 15:04") + " .. " + t.Last.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(w, "  %-10s %14s  %s\n", t.Table, withCommas(t.Records), span)
	}
	if s.Quarantine > 0 {
		fmt.Fprintf(w, "  %-10s %14s  held out of the hunt: dwell query \"SELECT * FROM quarantine\"\n", "quarantine", withCommas(s.Quarantine))
	}
	fmt.Fprintf(w, "inputs from %d sensor(s):\n", len(s.Sensors))
	for _, x := range s.Sensors {
		fmt.Fprintf(w, "  %-20s %6d input(s), %s records, %s malformed lines; last read %s\n", sanitize(cmp.Or(x.Sensor, "-"), 20), x.Inputs,
			withCommas(x.Records), withCommas(x.Bad), x.LastRead.Format("2006-01-02 15:04"))
	}
	fmt.Fprintf(w, "intel: %d indicator(s) from %d source(s)\n", s.Indicators, s.Sources)
	if s.LastHunt != nil {
		fmt.Fprintf(w, "last full hunt: %s, %d incident(s) (dwell incidents)\n", s.LastHunt.UTC().Format("2006-01-02 15:04 UTC"), s.Incidents)
	} else {
		fmt.Fprintln(w, "no hunt kept yet (dwell hunt)")
	}
}
