package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/store"
)

func demoCommand() command {
	return command{
		name:    "demo",
		summary: "generate a ministry network with a planted intrusion, ingest it, hunt, and score the findings against the truth",
		usage:   "demo [--keep DIR] [--days N] [--hosts N] [--seed S] [--rate CONN_PER_DAY] [--top N] [--detectors LIST] [--serve [--listen ADDR]]",
		example: `  dwell demo                       # everything in a temporary directory, removed after
  dwell demo --keep /tmp/ministry  # keep the data and the store, then:
  dwell hunt --db /tmp/ministry/dwell.db
  dwell query --db /tmp/ministry/dwell.db "SELECT count(*) FROM conn"
  dwell demo --serve               # then the web console on it, with a printed first password

The scorecard is computed from the hunt's actual findings and the
scenario's truth.json: each planted technique found or missed, with the
finding that found it, and the benign findings ranked above the last of
them. The scenario is described in docs/scenario.md.
`,
		run: runDemo,
	}
}

// demoDefaults is the demo's scenario: two weeks of a 300-host ministry,
// small enough to generate, ingest and hunt in well under two minutes.
func demoDefaults() scenario.Config {
	c := scenario.Default()
	c.Rate = 60_000
	return c
}

func runDemo(ctx context.Context, a *App, args []string) error {
	c := demoCommand()
	fs := a.newFlags(c, nil)
	keep := fs.String("keep", "", "keep the data and the store in `directory` (created; must be empty)")
	top := fs.Int("top", 10, "how many top findings to check for benign hosts")
	only := fs.String("detectors", "", "comma-separated `list` of detectors to run (default all): see what a missing one misses")
	serve := fs.Bool("serve", false, "then serve the result: the web console on the demo's store, until interrupted")
	listen := fs.String("listen", "127.0.0.1:7878", "with --serve: the console's `address`")
	cfg, start := scenarioFlags(fs, demoDefaults())
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if cfg.Start, err = time.Parse(time.DateOnly, *start); err != nil {
		return usagef("--start: %q is not a date (2025-03-03)", *start)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	dir := *keep
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dwell-demo-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
	} else if err := emptyDir(dir); err != nil {
		return err
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
		for _, n := range names {
			if !slices.Contains(config.DetectorNames(), n) {
				return usagef("--detectors: unknown detector %q (known: %s)", n, strings.Join(config.DetectorNames(), ", "))
			}
		}
	}
	if err := a.demo(ctx, *cfg, dir, *keep != "", *top, names); err != nil || !*serve {
		return err
	}
	return a.serveDemo(ctx, dir, *listen)
}

// serveDemo serves the demo's store with a first admin account whose
// generated password it prints with the console's URL.
func (a *App) serveDemo(ctx context.Context, dir, listen string) error {
	db := filepath.Join(dir, "dwell.db")
	var out strings.Builder
	sub := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: a.Stderr, Logger: a.Logger, Now: a.Now}
	if code := sub.Main(ctx, []string{"users", "add", "--db", db, "--role", "admin", "admin"}); code != ExitOK {
		return errQuiet
	}
	_, password, _ := strings.Cut(strings.TrimSpace(out.String()), "password: ")
	fmt.Fprintf(a.Stdout, "\nthe web console: log in as admin with password %s at the address below; Ctrl-C stops it\n", password)
	return runServe(ctx, a, []string{"--db", db, "--listen", listen})
}

// emptyDir creates dir, or accepts it if it exists and is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("--keep %s: the directory is not empty; the demo writes a new scenario and store there", dir)
	}
	return nil
}

// demo runs the four stages and prints the scorecard.
func (a *App) demo(ctx context.Context, cfg scenario.Config, dir string, kept bool, top int, detectorNames []string) error {
	w := a.Stdout
	data := filepath.Join(dir, "data")
	fmt.Fprintf(w, "dwell demo: %d days of a %d-host ministry network with a planted espionage campaign (seed %d)\n\n",
		cfg.Days, cfg.Hosts, cfg.Seed)

	began := a.Now()
	truth, err := a.generate(ctx, cfg, data, false)
	if err != nil {
		return err
	}
	tGen := a.Now().Sub(began)
	var zeekRows int64
	for _, k := range []string{"conn", "dns", "http", "ssl", "x509", "files"} {
		zeekRows += truth.Counts[k]
	}
	fmt.Fprintf(w, "  generate %7s  %s Zeek records (%s conn), %s flow records, %s host events\n", secs(tGen), human(zeekRows),
		human(truth.Counts["conn"]), human(truth.Counts["flows"]), human(truth.Counts["host_events"]))

	began = a.Now()
	dcfg := config.Default()
	dcfg.Store = filepath.Join(dir, "dwell.db")
	dcfg.Sensor = truth.Sensor
	st, err := openStore(ctx, dcfg, false, nil)
	if err != nil {
		return err
	}
	inputs := append(zeekDays(data, truth), filepath.Join(data, filepath.FromSlash(truth.DDoS.FlowFile)), filepath.Join(data, "hostlogs"))
	sum, err := a.ingest(ctx, st, dcfg, inputs, ingestMode{})
	if err != nil {
		_ = st.Close()
		return err
	}
	tIngest := a.Now().Sub(began)
	fmt.Fprintf(w, "  ingest   %7s  %s records, %d bad lines, into %s\n", secs(tIngest), human(sum.Rows), sum.Bad, dcfg.Store)

	env, err := environment(dcfg)
	if err != nil {
		_ = st.Close()
		return err
	}
	nIntel, err := demoIntel(ctx, dcfg, st, env, data, truth)
	if err != nil {
		_ = st.Close()
		return fmt.Errorf("the scenario's intel: %w", err)
	}
	if nIntel > 0 {
		fmt.Fprintf(w, "  intel    %7s  %d indicator(s) of the scenario's CERT event imported and retro-hunted\n", "", nIntel)
	}
	began = a.Now()
	ds, err := detectors(env, detectorNames)
	if err != nil {
		_ = st.Close()
		return err
	}
	var stop func()
	if a.Interactive {
		stop = a.progress(func() string {
			return fmt.Sprintf("hunt: %d detectors, %s", len(ds), a.Now().Sub(began).Round(time.Second))
		})
	}
	res, err := runDetectors(ctx, st, env, ds, store.Window{})
	if stop != nil {
		stop()
	}
	var incidents []correlate.Incident
	if err == nil {
		// As dwell hunt does: grouped, and kept for dwell incidents.
		incidents = correlate.Correlate(res.Findings, correlate.Options{IsLocal: env.IsLocal})
		err = saveHunt(ctx, st, &savedHunt{At: a.Now().UTC(), Detectors: detectorNames, Findings: len(res.Findings), Incidents: incidents})
	}
	tHunt := a.Now().Sub(began)
	var answers strings.Builder
	began = a.Now()
	if err == nil {
		_, err = printDemoAnswers(ctx, &answers, dcfg, st, incidents, truth)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  hunt     %7s  %d detectors, %d findings\n", secs(tHunt), len(ds), len(res.Findings))

	sc := score(truth, res.Findings, top)
	sc.print(w, res.Findings)
	printDemoIncidents(w, incidents, truth)
	fmt.Fprint(w, answers.String())
	fmt.Fprintf(w, "\ntotal %s (generate %s, ingest %s, hunt %s, score %s)\n", secs(a.Now().Sub(began)+tGen+tIngest+tHunt),
		secs(tGen), secs(tIngest), secs(tHunt), secs(a.Now().Sub(began)))
	if kept {
		conf := filepath.Join(dir, "dwell.yaml")
		if err := writeDemoConfig(conf, dcfg); err != nil {
			return err
		}
		fmt.Fprintf(w, "\nkept in %s: the scenario in data/ (ground truth: data/truth.json), the store dwell.db and its configuration\n"+
			"dwell.yaml (the scenario's .mmdb and group catalogue). Try:\n", dir)
		fmt.Fprintf(w, "  dwell hunt --config %s\n  dwell incidents --config %s\n  dwell incident --config %s ID\n"+
			"  dwell export report --config %s --out report.html\n"+
			"  dwell query --config %s \"SELECT id_orig_h, count(*) FROM conn GROUP BY 1 ORDER BY 2 DESC LIMIT 5\"\n",
			conf, conf, conf, conf, conf)
	}
	return nil
}

// zeekDays returns the scenario's day directories: the Zeek logs.
func zeekDays(data string, truth *scenario.Truth) []string {
	var days []string
	for _, f := range truth.Files {
		d := path.Dir(f)
		if len(d) == len(time.DateOnly) && !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	slices.Sort(days)
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = filepath.Join(data, filepath.FromSlash(d))
	}
	return out
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// printDemoIncidents compares the incidents with the planted campaign:
// its hosts grouped, its dwell start, what it sent out.
func printDemoIncidents(w io.Writer, incs []correlate.Incident, truth *scenario.Truth) {
	fmt.Fprintf(w, "\nincidents: %d (dwell hunt groups the findings; docs/incidents.md)\n", len(incs))
	var planted int64
	for _, x := range truth.Campaign.Exfiltration {
		planted += x.Bytes
	}
	for _, x := range truth.Campaign.Taken {
		planted += x.Bytes
	}
	for i, inc := range incs {
		if i == 5 {
			fmt.Fprintf(w, "  ... and %d more\n", len(incs)-i)
			break
		}
		var out uint64
		for _, t := range inc.BytesOut {
			out += t.Bytes
		}
		grouped := 0
		for _, h := range inc.Hosts {
			if slices.Contains(truth.Campaign.Hosts, h.String()) {
				grouped++
			}
		}
		fmt.Fprintf(w, "  %s %-15s %.2f  %d host(s), since %s, %s sent out", inc.ID, inc.Class, inc.Score, len(inc.Hosts),
			inc.DwellStart.UTC().Format("2006-01-02 15:04"), detect.HumanBytes(out))
		if inc.Class == correlate.ClassDDoS && slices.ContainsFunc(inc.Hosts, func(h netip.Addr) bool { return h.String() == truth.DDoS.Target }) {
			fmt.Fprintf(w, "   truth: the DDoS against %s, %s to %s (%s off)", truth.DDoS.Target, truth.DDoS.From.UTC().Format("2006-01-02 15:04"),
				truth.DDoS.To.UTC().Format("15:04"), inc.DwellStart.Sub(truth.DDoS.From).Abs().Round(time.Minute))
		}
		if grouped > 0 {
			fmt.Fprintf(w, "   truth: %d of the campaign's %d hosts, first event %s (%s off), %s sent out",
				grouped, len(truth.Campaign.Hosts), truth.Campaign.FirstEvent.UTC().Format("2006-01-02 15:04"),
				inc.DwellStart.Sub(truth.Campaign.FirstEvent).Abs().Round(time.Minute), detect.HumanBytes(uint64(max(planted, 0))))
		}
		fmt.Fprintln(w)
		if len(inc.Accounts) > 0 {
			fmt.Fprintf(w, "    accounts: %s\n", sanitize(strings.Join(inc.Accounts, ", "), 200))
		}
	}
}

// writeDemoConfig writes the configuration of a kept demo: its store and
// sensor, the scenario's .mmdb and group catalogue (docs/config.md).
func writeDemoConfig(path string, cfg *config.Config) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# dwell demo's configuration (docs/config.md)\nstore: %q\nsensor: %q\norigin:\n  mmdb:\n", cfg.Store, cfg.Sensor)
	for _, p := range cfg.Origin.MMDB {
		fmt.Fprintf(&b, "    - %q\n", p)
	}
	b.WriteString("attribution:\n  groups:\n")
	for _, p := range cfg.Attribution.Groups {
		fmt.Fprintf(&b, "    - %q\n", p)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
