package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/sigma"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/ingest/winlog"
	"github.com/dwell-nsm/dwell/internal/store"
)

func rulesCommand() command {
	return command{
		name:    "rules",
		summary: "list the Sigma rules dwell hunt runs, and test a rule against sample events",
		usage:   "rules list|test|import [options]",
		example: `  dwell rules list                                  # the rules of sigma.rules in the config
  dwell rules list --rules ~/sigma/rules/windows
  dwell rules test rule.yml --match attack.evtx --no-match baseline.evtx
  dwell rules import cert-advisory-2026-17/          # into the first sigma.rules directory, then retro-hunted

list loads every rule and names each one it refuses, with the file, the
line and the reason. test runs the rules of one file over sample events
(EVTX files, or JSON lines of Windows events): every --match file must
make each rule fire, no --no-match file may; the exit code says which.
import copies the rules that load into the first directory of sigma.rules
(or --to DIR) and hunts them at once over all stored history: did this
ever happen here?
docs/sigma.md says what is supported.
`,
		run: runRules,
	}
}

func runRules(ctx context.Context, a *App, args []string) error {
	sub, err := subcommand(a, rulesCommand(), args, "a subcommand: list, test or import")
	if sub == "" {
		return err
	}
	switch sub {
	case "list":
		return runRulesList(a, args[1:])
	case "test":
		return runRulesTest(ctx, a, args[1:])
	case "import":
		return runRulesImport(ctx, a, args[1:])
	}
	return usagef("unknown subcommand %q: list, test or import", sub)
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runRulesList(a *App, args []string) error {
	var co common
	c := rulesCommand()
	c.name = "rules list"
	fs := a.newFlags(c, nil)
	fs.StringVar(&co.config, "config", "", "configuration `file` (docs/config.md)")
	var dirs listFlag
	fs.Var(&dirs, "rules", "a `directory` or file of rules, instead of sigma.rules (repeatable)")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	setup := detect.SigmaSetup{Rules: cfg.Sigma.Rules, Logsources: cfg.Sigma.Logsources, Placeholders: cfg.Sigma.Placeholders}
	if len(dirs) > 0 {
		setup.Rules = dirs
	}
	if len(setup.Rules) == 0 {
		return usagef("no rules: set sigma.rules in the configuration, or name them with --rules")
	}
	_, rules, errs := sigma.Load(setup)
	slices.SortFunc(rules, func(x, y *sigma.Rule) int { return strings.Compare(x.File, y.File) })
	w := a.Stdout
	for _, r := range rules {
		fmt.Fprintf(w, "%-36s %-13s %s\n", r.ID, r.Level, sanitize(r.Title, 100))
	}
	for _, e := range errs {
		fmt.Fprintf(w, "refused: %s\n", sanitize(e.Error(), 300))
	}
	fmt.Fprintf(w, "%d rule(s) loaded, %d refused\n", len(rules), len(errs))
	return nil
}

func runRulesTest(_ context.Context, a *App, args []string) error {
	c := rulesCommand()
	c.name = "rules test"
	fs := a.newFlags(c, nil)
	var match, noMatch listFlag
	fs.Var(&match, "match", "an events `file` each rule must fire on (repeatable)")
	fs.Var(&noMatch, "no-match", "an events `file` no rule may fire on (repeatable)")
	logsources := fs.String("logsources", "", "log-source configuration `file` (SigmaHQ's CI format); default dwell's mapping")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("name one rule file")
	}
	if len(match)+len(noMatch) == 0 {
		return usagef("give sample events with --match or --no-match")
	}
	cfg := sigma.DefaultConfig()
	if *logsources != "" {
		if cfg, err = sigma.LoadConfig(*logsources); err != nil {
			return err
		}
	}
	rules, errs := sigma.ParseFile(rest[0], sigma.Options{})
	if len(errs) > 0 {
		return errs[0]
	}
	en, errs := sigma.NewEngine(rules, cfg)
	if len(errs) > 0 {
		return errs[0]
	}
	w := a.Stdout
	failed := false
	for _, set := range []struct {
		files []string
		want  bool
	}{{match, true}, {noMatch, false}} {
		for _, f := range set.files {
			evs, err := readSampleEvents(f)
			if err != nil {
				return err
			}
			hits := map[*sigma.Rule]int{}
			for i := range evs {
				en.Match(&evs[i], func(r *sigma.Rule) {
					hits[r]++
					fmt.Fprintf(w, "%s: record %d (%s %d): %s\n", f, evs[i].RecordID, sanitize(evs[i].Channel, 60), evs[i].EventID, sanitize(r.Title, 100))
				})
			}
			for _, r := range rules {
				ok := (hits[r] > 0) == set.want
				verdict := "ok"
				if !ok {
					verdict, failed = "FAIL", true
				}
				fmt.Fprintf(w, "%-4s %s on %s: %d of %d event(s)\n", verdict, sanitize(r.Title, 80), f, hits[r], len(evs))
			}
		}
	}
	if failed {
		return errors.New("a rule did not do what its samples say")
	}
	return nil
}

// readSampleEvents reads an EVTX file or JSON lines of Windows events.
func readSampleEvents(path string) ([]event.HostEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var out []event.HostEvent
	rd := evtx.Reader{File: path}
	_, err = rd.ReadAll(context.Background(), f, fi.Size(), 1, func(e *event.HostEvent) error {
		out = append(out, *e)
		return nil
	})
	if !errors.Is(err, evtx.ErrNotEVTX) {
		return out, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		e, err := winlog.Decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func runRulesImport(ctx context.Context, a *App, args []string) error {
	var co common
	c := rulesCommand()
	c.name = "rules import"
	fs := a.newFlags(c, &co)
	to := fs.String("to", "", "the rules `directory` to import into; default the first of sigma.rules")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return usagef("name rule files or directories to import")
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	dest := *to
	if dest == "" && len(cfg.Sigma.Rules) > 0 {
		dest = cfg.Sigma.Rules[0]
	}
	if dest == "" {
		return usagef("no rules directory: set sigma.rules in the configuration, or give --to DIR")
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	w := a.Stdout
	var copied []string
	refused := 0
	for _, src := range rest {
		err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error { //nolint:gosec // G703: the analyst's own paths, named on the command line
			if err != nil {
				return err
			}
			if d.IsDir() || (filepath.Ext(p) != ".yml" && filepath.Ext(p) != ".yaml") {
				return nil
			}
			rules, errs := sigma.ParseFile(p, sigma.Options{Placeholders: cfg.Sigma.Placeholders})
			if len(errs) > 0 {
				refused++
				for _, e := range errs {
					fmt.Fprintf(w, "refused: %s\n", sanitize(e.Error(), 300))
				}
				return nil
			}
			data, err := os.ReadFile(p) //nolint:gosec // G122: a rules directory the analyst names; read as that user
			if err != nil {
				return err
			}
			target := filepath.Join(dest, filepath.Base(p))
			if err := os.WriteFile(target, data, 0o644); err != nil { //nolint:gosec // G703: into the rules directory the analyst chose
				return err
			}
			copied = append(copied, target)
			for _, r := range rules {
				fmt.Fprintf(w, "imported %s %s\n", r.ID, sanitize(r.Title, 100))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "%d file(s) imported into %s, %d refused\n", len(copied), dest, refused)
	if len(copied) == 0 || !storeExists(cfg.Store) {
		return nil
	}
	// The retro-hunt: the new rules over all stored history, with the
	// rules already there (correlations and filters may name them).
	st, err := co.openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	env, err := environment(cfg)
	if err != nil {
		return err
	}
	env.Sigma.Rules = copied
	began := a.Now()
	fs2, err := sigma.New(env).Detect(ctx, st, store.Window{})
	if err != nil {
		return err
	}
	n, err := st.Count(ctx, event.KindWinlog)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "retro-hunt: the imported rules over all %d stored Windows events in %s: %d finding(s)\n", n,
		a.Now().Sub(began).Round(time.Millisecond), len(fs2))
	for i, f := range fs2 {
		if i == 10 {
			fmt.Fprintf(w, "  ... and %d more (dwell hunt --detectors sigma)\n", len(fs2)-i)
			break
		}
		fmt.Fprintf(w, "  %.2f %s %s\n", f.Score, f.FirstSeen.UTC().Format("2006-01-02 15:04"), sanitize(f.Summary, 200))
	}
	return nil
}
