package app

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/sigma"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
)

func huntCommand() command {
	return command{
		name:    "hunt",
		summary: "run every detector over all history (ingesting PATHs first) and print the incidents the findings make",
		usage:   "hunt [--db FILE] [PATH...] [--since T] [--until T] [--min-score X] [--findings] [--format table|json|csv]",
		example: `  dwell hunt                                  # everything in ./dwell.db
  dwell hunt /nsm/zeek/logs                   # ingest, then hunt
  dwell hunt --since 2024-01-01 --min-score 0.7
  dwell hunt --since 30d --format json > findings.json
  dwell hunt --detectors beacon,exfil --findings
  dwell hunt --timings > /dev/null            # how long each detector takes

Times are RFC 3339 (2024-04-19T08:00:00Z), dates (2024-04-19, UTC) or ages
before now (90d, 12h). Incidents are explained in docs/incidents.md; the
JSON output (incidents and findings) in docs/findings.md.
`,
		run: runHunt,
	}
}

func runHunt(ctx context.Context, a *App, args []string) error {
	var co common
	c := huntCommand()
	fs := a.newFlags(c, &co)
	fs.StringVar(&co.sensor, "sensor", "", "`name` of the site PATHs come from (as for ingest)")
	since := fs.String("since", "", "hunt from this `time` on (default: all history)")
	until := fs.String("until", "", "hunt up to this `time` (default: the end of the data)")
	minScore := fs.Float64("min-score", -1, "drop findings scored below `X` (0–1; default from config, else 0)")
	format := fs.String("format", "table", "output `format`: table, json or csv")
	only := fs.String("detectors", "", "comma-separated `list` of detectors to run (default all)")
	limit := fs.Int("limit", 0, "print at most `N` findings (table only; 0: 50 on a terminal, all otherwise)")
	complete := fs.Bool("complete", false, "PATHs are complete (as for ingest)")
	listFindings := fs.Bool("findings", false, "print the findings rather than the incidents (table)")
	timings := fs.Bool("timings", false, "print the time each detector took to standard error")
	paths, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return usagef("unknown format %q: use table, json or csv", *format)
	}
	var w store.Window
	now := a.Now()
	if w.Since, err = parseWhen(*since, now); err != nil {
		return usagef("--since: %v", err)
	}
	if w.Until, err = parseWhen(*until, now); err != nil {
		return usagef("--until: %v", err)
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && !w.Since.Before(w.Until) {
		return usagef("--since (%s) is not before --until (%s)", w.Since.Format(time.DateTime), w.Until.Format(time.DateTime))
	}
	if *minScore != -1 && (*minScore < 0 || *minScore > 1) {
		return usagef("--min-score: %g is not a score between 0 and 1", *minScore)
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	if co.served != nil {
		// One hunt at a time: they share the store's flow sessions.
		co.served.huntMu.Lock()
		defer co.served.huntMu.Unlock()
	}
	if *only != "" {
		cfg.Hunt.Detectors = strings.Split(*only, ",")
		if err := cfg.Validate(); err != nil {
			return usagef("--detectors: %v", err)
		}
	}
	if *minScore >= 0 {
		cfg.Hunt.MinScore = *minScore
	}
	env, err := environment(cfg)
	if err != nil {
		return err
	}
	ds, err := detectors(env, cfg.Hunt.Detectors)
	if err != nil {
		return err
	}
	warnRefusedRules(a, env, ds)
	// Open for writing, to keep the result for dwell incidents; a store
	// that cannot be written (evidence on read-only media) is hunted all
	// the same.
	readOnly := len(paths) == 0 && !storeExists(cfg.Store) // says there is no store, rather than making one
	st, err := co.openStore(ctx, cfg, readOnly)
	saved := err == nil && !readOnly
	if err != nil && len(paths) == 0 && !readOnly {
		st, err = co.openStore(ctx, cfg, true)
	}
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // reads, or ingest already committed
	if len(paths) > 0 {
		sum, err := a.ingest(ctx, st, cfg, paths, ingestMode{quiet: *format != "table", complete: *complete})
		if err != nil {
			return err
		}
		if sum.Rows > 0 {
			if _, err := retrohuntAfterIngest(ctx, st); err != nil {
				return err
			}
		}
		if *format == "table" {
			printIngestSummary(a.Stdout, sum, false)
			fmt.Fprintln(a.Stdout)
		}
	}
	if empty, err := storeEmpty(ctx, st); err != nil {
		return err
	} else if empty {
		return fmt.Errorf("nothing to hunt: the store %s holds no records (ingest Zeek logs or flow captures first: dwell ingest PATH)", cfg.Store)
	}
	if err := windowHoldsData(ctx, st, w); err != nil {
		return err
	}
	if err := withStoredAllow(ctx, st, env); err != nil {
		return err
	}
	// Only a hunt of everything (all history, every configured detector,
	// the configured score floor) becomes the incidents dwell incidents
	// and the exports show: a narrowed one is printed, not kept.
	narrowed := !w.Since.IsZero() || !w.Until.IsZero() || *only != "" || *minScore >= 0
	var stop func()
	if a.Interactive {
		start := a.Now()
		stop = a.progress(func() string {
			return fmt.Sprintf("hunt: %d detectors, %s", len(ds), a.Now().Sub(start).Round(time.Second))
		})
	}
	var m *memo
	if co.served != nil {
		m = &co.served.memo
	}
	res, err := runDetectorsMemo(ctx, st, env, ds, w, m)
	if stop != nil {
		stop()
	}
	if err != nil {
		return err
	}
	if m != nil && *only == "" {
		// What a hunt of every detector no longer asks for is not kept;
		// a hunt of a few (--detectors) keeps what the others use.
		m.settled.Sweep()
	}
	if res.Alone > 0 {
		fmt.Fprintf(a.Stderr, "%d detector run(s) ran out of the store's memory beside others and were run again alone "+
			"(memory_limit in dwell's configuration, docs/config.md, gives them more)\n", res.Alone)
	}
	if *timings {
		printTimings(a.Stderr, res.Timings)
		if res.Reused > 0 {
			fmt.Fprintf(a.Stderr, "%d detector run(s) taken from the last hunt: their inputs did not change\n", res.Reused)
		}
		if res.Merged+res.Settled+res.Extended > 0 {
			fmt.Fprintf(a.Stderr, "%d aggregate queries merged settled history kept from earlier hunts with the records since; %d read it to keep it; "+
				"%d extended it over the days the cut moved\n", res.Merged, res.Settled, res.Extended)
		}
		if res.Tallied > 0 {
			fmt.Fprintf(a.Stderr, "%d detector(s) from their running tallies: history read once, new records added as stored\n", res.Tallied)
		}
	}
	findings := res.Findings[:0:0]
	for _, f := range res.Findings {
		if f.Score >= cfg.Hunt.MinScore {
			findings = append(findings, f)
		}
	}
	incidents := correlate.Correlate(findings, correlate.Options{IsLocal: env.IsLocal})
	switch {
	case saved && !narrowed:
		if err := saveHunt(ctx, st, &savedHunt{At: a.Now().UTC(), Window: w, Detectors: cfg.Hunt.Detectors, Incidents: incidents,
			Findings: len(findings)}); err != nil {
			return err
		}
	case narrowed:
		fmt.Fprintln(a.Stderr, "dwell hunt: a narrowed hunt (--since, --until, --detectors or --min-score): its incidents are printed, "+
			"not kept; dwell incidents and the exports keep those of the last full hunt")
	default:
		fmt.Fprintln(a.Stderr, "dwell hunt: the store is read-only here: these incidents are not kept for dwell incidents")
	}
	switch *format {
	case "json":
		return writeHuntJSON(a.Stdout, incidents, findings)
	case "csv":
		return writeFindingsCSV(a.Stdout, findings)
	}
	n := *limit
	if n == 0 && isTerminal(a.Stdout) {
		n = 50
	}
	if *listFindings {
		return writeFindingsTable(a.Stdout, findings, n)
	}
	return writeIncidentsTable(a.Stdout, incidents, len(findings), n)
}

// printTimings writes each detector's time, slowest first. Detectors run
// two at a time and share aggregates, so the first to ask for one pays
// for it: the times add up to more than the hunt took.
func printTimings(w io.Writer, t map[string]time.Duration) {
	names := slices.Collect(maps.Keys(t))
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(t[b], t[a]), cmp.Compare(a, b)) })
	for _, n := range names {
		fmt.Fprintf(w, "%-18s %6.1f s\n", n, t[n].Seconds())
	}
}

// windowHoldsData returns an error naming the span of the data when w,
// narrowed by --since or --until, holds no connection, flow or DNS
// record: a window on another year finds nothing, and must say why.
func windowHoldsData(ctx context.Context, st store.Reader, w store.Window) error {
	if w.Since.IsZero() && w.Until.IsZero() {
		return nil
	}
	var first, last time.Time
	for _, conns := range []store.ConnSource{store.ConnLog, store.FlowSessions} {
		all := store.Window{Conns: conns}
		if _, _, n, ok, err := st.Span(ctx, store.Window{Since: w.Since, Until: w.Until, Conns: conns}); err != nil {
			return err
		} else if ok && n > 0 {
			return nil
		}
		f, l, _, ok, err := st.Span(ctx, all)
		if err != nil {
			return err
		}
		if ok {
			if first.IsZero() || f.Before(first) {
				first = f
			}
			last = event.Latest(last, l)
		}
	}
	n := 0
	if err := st.DNSNames(ctx, w, store.DNSFilter{}, func(*store.DNSName) error { n++; return errStop }); err != nil && !errors.Is(err, errStop) {
		return err
	}
	if n > 0 {
		return nil
	}
	span := "no connections or flows"
	if !first.IsZero() {
		span = fmt.Sprintf("connections from %s to %s", first.Format(time.DateTime), last.Format(time.DateTime))
	}
	return fmt.Errorf("the window %s holds no records: the store holds %s (times are UTC)", windowText(w), span)
}

// windowText writes a window as --since and --until gave it.
func windowText(w store.Window) string {
	from, to := "the beginning", "the end"
	if !w.Since.IsZero() {
		from = w.Since.UTC().Format(time.DateTime)
	}
	if !w.Until.IsZero() {
		to = w.Until.UTC().Format(time.DateTime)
	}
	return "from " + from + " to " + to
}

// storeEmpty reports whether the store holds no records of any kind.
func storeEmpty(ctx context.Context, st store.Reader) (bool, error) {
	for _, k := range event.Kinds {
		n, err := st.Count(ctx, k)
		if err != nil || n > 0 {
			return false, err
		}
	}
	return true, nil
}

// storeExists reports whether a DuckDB store file is there (a ClickHouse
// URL always is).
func storeExists(path string) bool {
	if strings.Contains(path, "://") {
		return true
	}
	_, err := os.Stat(path)
	return err == nil
}

// parseWhen reads an RFC 3339 time, a date (UTC midnight) or an age
// before now ("90d", "12h", "30m"). Empty is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if n, unit := strings.TrimRight(s, "dhm"), strings.TrimLeft(s, "0123456789"); n != "" && len(unit) == 1 {
		v, err := strconv.Atoi(n)
		if err == nil {
			d := map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute}[unit]
			return now.Add(-time.Duration(v) * d).UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2024-04-19T08:00:00Z), a date (2024-04-19) or an age (90d, 12h)", s)
}

// writeHuntJSON writes the incidents, each with its findings, and every
// finding (docs/findings.md).
func writeHuntJSON(w io.Writer, incs []correlate.Incident, fs []detect.Finding) error {
	if fs == nil {
		fs = []detect.Finding{}
	}
	if incs == nil {
		incs = []correlate.Incident{}
	}
	return writeIndented(w, map[string]any{"incidents": incs, "findings": fs})
}

// writeIncidentsTable prints the incidents, most serious first, with their
// scope and the first findings of their timeline.
func writeIncidentsTable(w io.Writer, incs []correlate.Incident, findings, limit int) error {
	if len(incs) == 0 {
		_, err := fmt.Fprintf(w, "no incidents; %d finding(s) below the incident threshold (dwell hunt --findings lists them)\n", findings)
		return err
	}
	shown := incs
	if limit > 0 && len(incs) > limit {
		shown = incs[:limit]
	}
	for i, inc := range shown {
		fmt.Fprintf(w, "%2d. %s  %.2f %-8s %-15s %s\n    %s\n", i+1, inc.ID, inc.Score, inc.Severity, inc.Class,
			inc.DwellStart.UTC().Format("2006-01-02 15:04")+" .. "+inc.LastSeen.UTC().Format("2006-01-02 15:04"), sanitize(inc.Summary, 300))
		hosts := make([]string, len(inc.Hosts))
		for j, h := range inc.Hosts {
			hosts[j] = h.String()
		}
		fmt.Fprintf(w, "    hosts: %s\n", shortList(hosts, 12))
		if len(inc.Accounts) > 0 {
			accounts := make([]string, len(inc.Accounts))
			for j, acct := range inc.Accounts {
				accounts[j] = sanitize(acct, 60)
			}
			fmt.Fprintf(w, "    accounts: %s\n", shortList(accounts, 8))
		}
		var infra []string
		for _, x := range inc.Infrastructure {
			infra = append(infra, sanitize(x.Value, 80))
		}
		fmt.Fprintf(w, "    infrastructure: %s\n", shortList(infra, 8))
		for _, t := range inc.BytesOut {
			fmt.Fprintf(w, "    sent out: %s -> %s  %d bytes\n", t.Src, t.Dst, t.Bytes)
		}
		if len(inc.Attack) > 0 {
			fmt.Fprintf(w, "    ATT&CK: %s\n", strings.Join(inc.Attack, " "))
		}
		for j, f := range inc.Findings {
			if j == 5 {
				fmt.Fprintf(w, "    ... and %d more finding(s)\n", len(inc.Findings)-j)
				break
			}
			fmt.Fprintf(w, "    %s %.2f %-9s %s\n", f.FirstSeen.UTC().Format("2006-01-02 15:04"), f.Score, f.Detector, sanitize(f.Summary, 200))
		}
	}
	if len(shown) < len(incs) {
		fmt.Fprintf(w, "(%d more incident(s); --limit 0 on a pipe, or --format json, shows all)\n", len(incs)-len(shown))
	}
	_, err := fmt.Fprintf(w, "%d incident(s) from %d finding(s); dwell hunt --findings lists every finding\n", len(incs), findings)
	return err
}

func writeFindingsCSV(w io.Writer, fs []detect.Finding) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"score", "severity", "detector", "sensor", "src", "dst", "domain", "first_seen", "last_seen", "attack", "summary"}); err != nil {
		return err
	}
	for _, f := range fs {
		if err := cw.Write([]string{strconv.FormatFloat(detect.Round(f.Score, 3), 'f', 3, 64), f.Severity.String(), f.Detector, f.Sensor,
			addr(f.Src), addr(f.Dst), f.Domain, stamp(f.FirstSeen), stamp(f.LastSeen), strings.Join(f.Attack, " "), f.Summary}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeFindingsTable(w io.Writer, fs []detect.Finding, limit int) error {
	if len(fs) == 0 {
		_, err := fmt.Fprintln(w, "no findings")
		return err
	}
	shown := fs
	if limit > 0 && len(fs) > limit {
		shown = fs[:limit]
	}
	for i, f := range shown {
		peer := addr(f.Dst)
		if f.Domain != "" {
			peer = f.Domain
			if f.Dst.IsValid() {
				peer += " (" + addr(f.Dst) + ")"
			}
		}
		fmt.Fprintf(w, "%3d. %.2f %-8s %-9s %s -> %s  [%s .. %s]  %s\n     %s\n", i+1, f.Score, f.Severity, f.Detector,
			sanitize(addr(f.Src), 60), sanitize(peer, 80), f.FirstSeen.UTC().Format("2006-01-02 15:04"), f.LastSeen.UTC().Format("2006-01-02 15:04"),
			strings.Join(f.Attack, " "), sanitize(f.Summary, 400))
	}
	if len(shown) < len(fs) {
		fmt.Fprintf(w, "... and %d more findings (--limit 0 with a pipe, or --format json, shows all)\n", len(fs)-len(shown))
	}
	counts := map[detect.Severity]int{}
	for _, f := range fs {
		counts[f.Severity]++
	}
	_, err := fmt.Fprintf(w, "%d findings: %d critical, %d high, %d medium, %d low, %d info\n", len(fs),
		counts[detect.SeverityCritical], counts[detect.SeverityHigh], counts[detect.SeverityMedium], counts[detect.SeverityLow], counts[detect.SeverityInfo])
	return err
}

func addr(a interface{ IsValid() bool }) string {
	if s, ok := a.(fmt.Stringer); ok && a.IsValid() {
		return s.String()
	}
	return ""
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// warnRefusedRules says, before a hunt that runs the sigma detector, how
// many of the configured rules cannot be loaded: the hunt runs the others,
// and dwell rules list says why.
func warnRefusedRules(a *App, env *detect.Env, ds []detect.Detector) {
	if len(env.Sigma.Rules) == 0 || !slices.ContainsFunc(ds, func(d detect.Detector) bool { return d.Name() == "sigma" }) {
		return
	}
	if _, _, errs := sigma.Load(env.Sigma); len(errs) > 0 {
		fmt.Fprintf(a.Stderr, "dwell hunt: %d Sigma rule(s) or file(s) refused, hunted without them: dwell rules list says why\n", len(errs))
	}
}
