package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	"github.com/dwell-nsm/dwell/internal/scenario"
)

func scenarioCommand() command {
	return command{
		name:    "scenario",
		summary: "write a synthetic ministry network's Zeek logs, flows and host events, with a planted intrusion and its ground truth",
		usage:   "scenario --out DIR [--days N] [--hosts N] [--seed S] [--start DATE] [--rate CONN_PER_DAY] [--format zeek-tsv|zeek-json]",
		example: `  dwell scenario --out /tmp/ministry                 # two weeks, 300 hosts
  dwell scenario --out big --days 30 --rate 1000000  # 30 M connections, for benchmarks
  dwell scenario --out slow --beacon-min 12h --beacon-max 48h

The layout and the ground truth (truth.json) are described in
docs/scenario.md. The same options and seed write the same bytes.
`,
		run: runScenario,
	}
}

// scenarioFlags binds the generator's options to fs.
func scenarioFlags(fs *flag.FlagSet, def scenario.Config) (*scenario.Config, *string) {
	cfg := def
	start := fs.String("start", def.Start.Format(time.DateOnly), "first `date` of the period (UTC)")
	fs.IntVar(&cfg.Days, "days", def.Days, "length of the period in `days`")
	fs.IntVar(&cfg.Hosts, "hosts", def.Hosts, "machines on the network, servers included")
	fs.Uint64Var(&cfg.Seed, "seed", def.Seed, "random `seed`: the same seed writes the same bytes")
	fs.IntVar(&cfg.Rate, "rate", def.Rate, "staff connections per day, on average (timers, mail and the Internet's noise come on top)")
	fs.StringVar(&cfg.Format, "format", def.Format, "Zeek log `format`: zeek-tsv or zeek-json")
	fs.DurationVar(&cfg.BeaconMin, "beacon-min", def.BeaconMin, "check-in `period` of the first implant")
	fs.DurationVar(&cfg.BeaconMax, "beacon-max", def.BeaconMax, "check-in `period` of the last implant")
	return &cfg, start
}

func runScenario(ctx context.Context, a *App, args []string) error {
	c := scenarioCommand()
	fs := a.newFlags(c, nil)
	out := fs.String("out", "", "output `directory` (created if needed)")
	cfg, start := scenarioFlags(fs, scenario.Default())
	quiet := fs.Bool("q", false, "print nothing but errors")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (the output directory is --out)", pos[0])
	}
	if *out == "" {
		return usagef("--out DIR is required")
	}
	if cfg.Start, err = time.Parse(time.DateOnly, *start); err != nil {
		return usagef("--start: %q is not a date (2025-03-03)", *start)
	}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	began := a.Now()
	truth, err := a.generate(ctx, *cfg, *out, *quiet)
	if err != nil {
		return err
	}
	if !*quiet {
		printScenario(a.Stdout, *out, truth, a.Now().Sub(began))
	}
	return nil
}

// generate writes a scenario with progress on the terminal.
func (a *App) generate(ctx context.Context, cfg scenario.Config, dir string, quiet bool) (*scenario.Truth, error) {
	var done, total atomic.Int64
	var stop func()
	if a.Interactive && !quiet {
		begin := a.Now()
		stop = a.progress(func() string {
			return fmt.Sprintf("scenario: %d/%d hours · %s", done.Load(), total.Load(), a.Now().Sub(begin).Round(time.Second))
		})
	}
	truth, err := scenario.Generate(ctx, cfg, dir, func(d, t int) { done.Store(int64(d)); total.Store(int64(t)) })
	if stop != nil {
		stop()
	}
	return truth, err
}

func printScenario(w io.Writer, dir string, t *scenario.Truth, took time.Duration) {
	fmt.Fprintf(w, "wrote %s: %s to %s, %d hosts (%d laptops), seed %d, in %s\n", dir, t.Start.Format(time.DateOnly),
		t.End.Add(-time.Second).Format(time.DateOnly), t.Network.Hosts, t.Network.Laptops, t.Seed, took.Round(100*time.Millisecond))
	logs := make([]string, 0, len(t.Counts))
	for k := range t.Counts {
		logs = append(logs, k)
	}
	sort.Strings(logs)
	for _, k := range logs {
		fmt.Fprintf(w, "  %-12s %s\n", k, withCommas(t.Counts[k]))
	}
	if secs := took.Seconds(); secs > 0 {
		fmt.Fprintf(w, "  (%s conn rows/s)\n", human(int64(float64(t.Counts["conn"])/secs)))
	}
	c := t.Campaign
	fmt.Fprintf(w, "planted: %s from %s to %s on %d hosts, %d techniques; ground truth in %s/truth.json\n", c.Name,
		c.FirstEvent.Format(time.DateOnly), c.Containment.Format(time.DateOnly), len(c.Hosts), len(c.Techniques), dir)
	fmt.Fprintf(w, "DDoS against %s from %s for %s: %s flows in %s\n", t.DDoS.Target, t.DDoS.From.Format("2006-01-02 15:04"),
		t.DDoS.To.Sub(t.DDoS.From), withCommas(t.DDoS.Flows), t.DDoS.FlowFile)
}
