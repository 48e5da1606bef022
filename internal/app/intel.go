package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/store"
)

func intelCommand() command {
	return command{
		name:    "intel",
		summary: "import threat intelligence (MISP, STIX 2.1, TAXII 2.1, CSV) and retro-hunt it over all history",
		usage:   "intel import|list|sightings|delete|retrohunt [options]",
		example: `  dwell intel import feeds/circl/                       # a MISP feed directory
  dwell intel import https://www.circl.lu/doc/misp/feed-osint/
  dwell intel import --source cert-eu bundle.json iocs.csv
  dwell intel import --taxii https://taxii.example/taxii2/ --token-env TAXII_TOKEN
  dwell intel list
  dwell intel sightings                                 # the stored sightings, without matching again
  dwell intel delete /srv/feeds/withdrawn.json        # a source, as intel list names it
  dwell intel retrohunt --since 2019-01-01

Every import is matched against all stored history at once (retro-hunt);
sightings become iocmatch findings in dwell hunt. docs/intel.md says what
is read and how values match.
`,
		run: runIntel,
	}
}

func runIntel(ctx context.Context, a *App, args []string) error {
	sub, err := subcommand(a, intelCommand(), args, "a subcommand: import, list, sightings, delete or retrohunt")
	if sub == "" {
		return err
	}
	switch sub {
	case "import":
		return runIntelImport(ctx, a, args[1:])
	case "list":
		return runIntelList(ctx, a, args[1:])
	case "delete":
		return runIntelDelete(ctx, a, args[1:])
	case "retrohunt":
		return runRetrohunt(ctx, a, args[1:])
	case "sightings":
		return runSightings(ctx, a, args[1:])
	}
	return usagef("unknown intel subcommand %q: use import, list, sightings, delete or retrohunt", args[0])
}

// runIntelDelete removes every indicator of the sources named (as intel
// list names them) and matches what is left again, so no sighting of a
// withdrawn feed remains.
func runIntelDelete(ctx context.Context, a *App, args []string) error {
	var co common
	c := command{name: "intel delete", summary: "delete every indicator of a source, and their sightings",
		usage: "intel delete [--db FILE] SOURCE...", example: intelCommand().example}
	fs := a.newFlags(c, &co)
	sources, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(sources) == 0 {
		return usagef("name the sources to delete, as dwell intel list names them")
	}
	_, st, err := co.open(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	total := 0
	for _, src := range sources {
		n, err := st.DeleteIndicators(ctx, src)
		if err != nil {
			return err
		}
		if n == 0 {
			// Typed as imported: a path given relatively then was made absolute.
			if n, err = st.DeleteIndicators(ctx, sourceName(src)); err != nil {
				return err
			}
		}
		fmt.Fprintf(a.Stdout, "%s: %d indicator(s) deleted\n", sanitize(src, 200), n)
		total += n
	}
	if total == 0 {
		return fmt.Errorf("no indicator of these sources is stored (dwell intel list names the sources)")
	}
	s, err := retrohunt(ctx, st, store.Window{})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "retro-hunt over all history again: %d sighting(s)\n", len(s))
	return nil
}

// usageTo prints a command's help without a flag set.
func (c command) usageTo(a *App) {
	fmt.Fprintf(a.Stdout, "%s\n\nUsage: dwell %s\n\nExamples:\n%s", c.summary, c.usage, c.example)
}

func runIntelImport(ctx context.Context, a *App, args []string) error {
	var co common
	c := command{name: "intel import", summary: "import indicators from files, directories, URLs or a TAXII server",
		usage: "intel import [--db FILE] [--source NAME] [--taxii] [--user U --password-env VAR | --token-env VAR] SRC...", example: intelCommand().example}
	fs := a.newFlags(c, &co)
	source := fs.String("source", "", "`name` recorded as the indicators' source (default: each file by its absolute path, each URL as given)")
	taxii := fs.Bool("taxii", false, "SRC are TAXII 2.1 URLs: a discovery URL, an API root or a collection")
	user := fs.String("user", "", "`user` for HTTP basic authentication (TAXII)")
	passEnv := fs.String("password-env", "", "environment `variable` holding the password (TAXII)")
	tokenEnv := fs.String("token-env", "", "environment `variable` holding a bearer token (TAXII)")
	verbose := fs.Bool("v", false, "list every skipped object with its reason")
	srcs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return usagef("no source: name MISP feeds, STIX bundles, CSV or lists, or TAXII URLs with --taxii")
	}
	cfg, st, err := co.open(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	env, err := environment(cfg)
	if err != nil {
		return err
	}
	scope := intel.Scope{Local: env.Local, WidestIPv4: cfg.Intel.WidestIPv4, WidestIPv6: cfg.Intel.WidestIPv6}
	client := &http.Client{Timeout: time.Duration(cfg.Intel.TAXIITimeout)}
	var all []event.Indicator
	stored, added, updated := 0, 0, 0 // by TAXII imports, page by page
	for _, src := range srcs {
		name := cmp.Or(*source, sourceName(src))
		var r *intel.Result
		if *taxii {
			t := &intel.TAXII{HTTP: client, User: *user, Password: os.Getenv(*passEnv), Token: os.Getenv(*tokenEnv),
				MaxPages: cfg.Intel.TAXIIMaxPages, MaxObjects: cfg.Intel.TAXIIMaxObjects, MaxTime: time.Duration(cfg.Intel.TAXIIMaxTime)}
			if *passEnv != "" && t.Password == "" || *tokenEnv != "" && t.Token == "" {
				return fmt.Errorf("the environment variable named by --password-env or --token-env is empty")
			}
			var n taxiiStored
			r, n, err = importTAXII(ctx, st, t, src, *source, scope)
			stored, added, updated = stored+n.stored, added+n.added, updated+n.updated
		} else {
			r, err = (&intel.Loader{HTTP: client}).Load(ctx, src, name)
			if err == nil {
				scope.Vet(r)
				all = append(all, r.Indicators...)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		printImport(a.Stdout, src, r, *verbose)
	}
	all = intel.Distinct(all)
	a2, u2, err := st.PutIndicators(ctx, all)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "stored %d indicator(s): %d new, %d updated\n", stored+len(all), added+a2, updated+u2)
	s, err := retrohunt(ctx, st, store.Window{})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.Stdout, "retro-hunt over all history: %d sighting(s); dwell intel retrohunt lists them, dwell hunt scores them\n", len(s))
	return nil
}

// sourceName is the source a SRC's indicators are recorded under when
// --source names none: a file or directory by its absolute path, however
// it was typed (f.json and ./f.json and /abs/f.json are one source, and
// a revocation reaches what it revokes), a URL as it is.
func sourceName(src string) string {
	if strings.Contains(src, "://") {
		return src
	}
	if abs, err := filepath.Abs(src); err == nil {
		return abs
	}
	return src
}

// taxiiStored counts what a TAXII import stored.
type taxiiStored struct{ stored, added, updated int }

// importTAXII reads the collections at u from where the last import
// stopped and stores each page as it comes: its indicators, vetted, then
// the collection's cursor, so an import cut short (a crash, a cap of
// intel.taxii_max_*) goes on from the last page stored. It returns what
// was read, for the summary, and what was stored.
func importTAXII(ctx context.Context, st store.Store, t *intel.TAXII, u, source string, scope intel.Scope) (*intel.Result, taxiiStored, error) {
	var n taxiiStored
	cols, err := t.Collections(ctx, u)
	if err != nil {
		return nil, n, err
	}
	if len(cols) == 0 {
		return nil, n, fmt.Errorf("no readable collection at %s", u)
	}
	sum := &intel.Result{Format: "taxii"}
	for _, col := range cols {
		key := "taxii:" + col.URL
		cursor, err := st.State(ctx, key)
		if err != nil {
			return nil, n, err
		}
		name := cmp.Or(source, key)
		rd, err := t.Read(ctx, col, cursor, func(objects []json.RawMessage, cursor string) error {
			r, err := intel.ParseTAXII([]*intel.TAXIIRead{{Collection: col, Objects: objects}}, func(intel.Collection) string { return name })
			if err != nil {
				return err
			}
			r.Notes = nil // one per collection, below
			scope.Vet(r)
			inds := intel.Distinct(r.Indicators)
			a, u, err := st.PutIndicators(ctx, inds)
			if err != nil {
				return err
			}
			n.stored, n.added, n.updated = n.stored+len(inds), n.added+a, n.updated+u
			sum.Merge(r)
			if cursor != "" {
				return st.SetState(ctx, key, cursor)
			}
			return nil
		})
		if err != nil {
			return nil, n, err
		}
		sum.Notes = append(sum.Notes, fmt.Sprintf("collection %s (%s): %d page(s), read up to %s", col.ID, col.Title, rd.Pages, cmp.Or(rd.Cursor, "the start")))
		if rd.Stopped != "" {
			sum.Notes = append(sum.Notes, fmt.Sprintf("collection %s: %s; the next import goes on from there", col.ID, rd.Stopped))
		}
	}
	return sum, n, nil
}

func printImport(w io.Writer, src string, r *intel.Result, verbose bool) {
	var kinds []string
	for k, n := range r.Objects {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(kinds)
	actionable, revoked := 0, 0
	for _, i := range r.Indicators {
		if i.Actionable {
			actionable++
		}
		if i.Revoked {
			revoked++
		}
	}
	fmt.Fprintf(w, "%s (%s): %s\n", sanitize(src, 200), r.Format, strings.Join(kinds, ", "))
	fmt.Fprintf(w, "  %d indicator(s): %d actionable, %d context only, %d revoked; %d skipped\n", len(r.Indicators), actionable,
		len(r.Indicators)-actionable-revoked, revoked, len(r.Skipped))
	reasons := map[string]int{}
	for _, s := range r.Skipped {
		reasons[reasonClass(s.Reason)]++
	}
	for _, k := range slices.Sorted(maps.Keys(reasons)) {
		fmt.Fprintf(w, "    %d skipped: %s\n", reasons[k], sanitize(k, 200))
	}
	var broad []string
	for _, s := range r.Skipped {
		if strings.HasPrefix(s.Reason, intel.TooBroad) || strings.HasPrefix(s.Reason, intel.NotAttacker) {
			broad = append(broad, s.What)
		}
	}
	if len(broad) > 0 {
		fmt.Fprintf(w, "    warning: refused as matching the network's own traffic: %s\n", sanitize(shortList(broad, 10), 600))
	}
	if verbose {
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "    %s %s: %s\n", sanitize(s.Ref, 60), sanitize(s.What, 100), sanitize(s.Reason, 200))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  %s\n", sanitize(n, 300))
	}
}

// reasonClass groups skip reasons that differ only by their value.
func reasonClass(r string) string {
	switch {
	case strings.HasPrefix(r, intel.NotAttacker):
		return intel.NotAttacker + " the defended networks or a special-purpose range (RFC 6890)"
	case strings.HasPrefix(r, intel.TooBroad):
		return intel.TooBroad + " a network wider than intel.widest_ipv4/ipv6, a public suffix or the hash of empty content"
	}
	if i := strings.Index(r, `"`); i >= 0 {
		if j := strings.LastIndex(r, `"`); j > i {
			return r[:i] + "…" + r[j+1:]
		}
	}
	return r
}

// retrohunt matches the stored indicators over w and, for all history,
// stores the sightings.
func retrohunt(ctx context.Context, st store.Store, w store.Window) ([]event.Sighting, error) {
	var s []event.Sighting
	err := st.MatchIndicators(ctx, w, func(x *event.Sighting) error {
		c := *x
		c.Peers = slices.Clone(x.Peers)
		s = append(s, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if w == (store.Window{}) {
		if err := st.PutSightings(ctx, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// retrohuntAfterIngest matches the stored indicators, if any, against
// history with the new data in it. It returns the number of sightings, -1
// when there is no intel.
func retrohuntAfterIngest(ctx context.Context, st store.Store) (int, error) {
	found := false
	err := st.Indicators(ctx, func(*event.Indicator) error { found = true; return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return 0, err
	}
	if !found {
		return -1, nil
	}
	s, err := retrohunt(ctx, st, store.Window{})
	return len(s), err
}

func runIntelList(ctx context.Context, a *App, args []string) error {
	var co common
	c := command{name: "intel list", summary: "count stored indicators per source, type and TLP", usage: "intel list [--db FILE] [--all] [--format table|json]"}
	fs := a.newFlags(c, &co)
	all := fs.Bool("all", false, "list every indicator")
	format := fs.String("format", "table", "output `format`: table or json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	_, st, err := co.open(ctx, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	type row struct{ source, typ, tlp string }
	counts := map[row]int{}
	var inds []event.Indicator
	err = st.Indicators(ctx, func(i *event.Indicator) error {
		counts[row{i.Source, string(i.Type), cmp.Or(i.TLP, "-")}]++
		if *all || *format == "json" {
			inds = append(inds, *i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeIndented(a.Stdout, map[string]any{"indicators": inds})
	}
	if len(counts) == 0 {
		fmt.Fprintln(a.Stdout, "no indicators: dwell intel import adds some")
		return nil
	}
	rows := make([]row, 0, len(counts))
	for r := range counts {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(x, y row) int {
		return cmp.Or(cmp.Compare(x.source, y.source), cmp.Compare(x.typ, y.typ), cmp.Compare(x.tlp, y.tlp))
	})
	fmt.Fprintf(a.Stdout, "%-50s %-12s %-13s %s\n", "source", "type", "TLP", "indicators")
	total := 0
	for _, r := range rows {
		fmt.Fprintf(a.Stdout, "%-50s %-12s %-13s %d\n", sanitize(r.source, 50), r.typ, r.tlp, counts[r])
		total += counts[r]
	}
	fmt.Fprintf(a.Stdout, "%d indicator(s)\n", total)
	for _, i := range inds {
		port := ""
		if i.Port != 0 {
			port = fmt.Sprintf(":%d", i.Port)
		}
		flags := ""
		if i.Revoked {
			flags = " (revoked)"
		} else if !i.Actionable {
			flags = " (context)"
		}
		fmt.Fprintf(a.Stdout, "  %-12s %s%s%s  %s\n", i.Type, sanitize(i.Value, 100), port, flags, sanitize(i.Name, 80))
	}
	return nil
}

func runRetrohunt(ctx context.Context, a *App, args []string) error {
	var co common
	c := command{name: "intel retrohunt", summary: "match every stored indicator against stored history and list the sightings",
		usage: "intel retrohunt [--db FILE] [--since T] [--until T] [--format table|json]"}
	fs := a.newFlags(c, &co)
	since := fs.String("since", "", "from this `time` on (default: all history); whole UTC days")
	until := fs.String("until", "", "up to this `time`")
	format := fs.String("format", "table", "output `format`: table or json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var w store.Window
	var err error
	if w.Since, err = parseWhen(*since, a.Now()); err != nil {
		return usagef("--since: %v", err)
	}
	if w.Until, err = parseWhen(*until, a.Now()); err != nil {
		return usagef("--until: %v", err)
	}
	_, st, err := co.open(ctx, false)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	start := a.Now()
	sightings, err := retrohunt(ctx, st, w)
	if err != nil {
		return err
	}
	took := a.Now().Sub(start)
	inds := map[string]event.Indicator{}
	if err := st.Indicators(ctx, func(i *event.Indicator) error { inds[i.Key()] = *i; return nil }); err != nil {
		return err
	}
	// Earliest first: when the intrusion began.
	slices.SortStableFunc(sightings, func(x, y event.Sighting) int { return x.First.Compare(y.First) })
	if *format == "json" {
		type js struct {
			Indicator event.Indicator `json:"indicator"`
			Sighting  event.Sighting  `json:"sighting"`
		}
		out := make([]js, 0, len(sightings))
		for _, s := range sightings {
			out = append(out, js{inds[s.Key], s})
		}
		return writeIndented(a.Stdout, map[string]any{"sightings": out})
	}
	fmt.Fprintf(a.Stdout, "%d indicator(s), %d sighting(s), matched in %s\n", len(inds), len(sightings), took.Round(time.Millisecond))
	for _, s := range sightings {
		i := inds[s.Key]
		hosts := make([]string, 0, len(s.Peers))
		for _, p := range s.Peers {
			hosts = append(hosts, p.String())
		}
		fmt.Fprintf(a.Stdout, "%s .. %s  %-8s %-5s %s (%s %s from %s) %d record(s) on %d day(s); peers %s\n",
			s.First.UTC().Format("2006-01-02 15:04"), s.Last.UTC().Format("2006-01-02 15:04"), i.Type, s.Log, sanitize(s.Observed, 80),
			i.Type, sanitize(i.Value, 60), sanitize(i.Source, 60), s.Count, s.Days, sanitize(shortList(hosts, 5), 200))
	}
	return nil
}

// errStop ends a stream early.
var errStop = errors.New("stop")

func shortList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// runSightings lists the stored sightings with their indicators, as the
// last retro-hunt left them (read-only: nothing is matched again).
func runSightings(ctx context.Context, a *App, args []string) error {
	var co common
	c := command{name: "intel sightings", summary: "list the stored sightings of indicators", usage: "intel sightings [--db FILE] [--format table|json]"}
	fs := a.newFlags(c, &co)
	format := fs.String("format", "table", "output `format`: table or json")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *format != "table" && *format != "json" {
		return usagef("unknown format %q: use table or json", *format)
	}
	_, st, err := co.open(ctx, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	inds := map[string]event.Indicator{}
	if err := st.Indicators(ctx, func(i *event.Indicator) error { inds[i.Key()] = *i; return nil }); err != nil {
		return err
	}
	type row struct {
		event.Sighting
		Type   string `json:"type"`
		Value  string `json:"value"`
		Name   string `json:"name"`
		Source string `json:"source"`
		TLP    string `json:"tlp"`
	}
	var rows []row
	err = st.Sightings(ctx, func(s *event.Sighting) error {
		i := inds[s.Key]
		rows = append(rows, row{Sighting: *s, Type: string(i.Type), Value: i.Value, Name: i.Name, Source: i.Source, TLP: i.TLP})
		return nil
	})
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeIndented(a.Stdout, map[string]any{"sightings": rows})
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.Stdout, "no sightings stored")
		return nil
	}
	for _, r := range rows {
		fmt.Fprintf(a.Stdout, "%-8s %-40s %-6s %-12s %s .. %s  %d record(s) on %d day(s)  %s\n", r.Type, sanitize(r.Observed, 40), r.Log, sanitize(r.Sensor, 12),
			r.First.Format(time.DateOnly), r.Last.Format(time.DateOnly), r.Count, r.Days, sanitize(r.Source, 60))
	}
	return nil
}
