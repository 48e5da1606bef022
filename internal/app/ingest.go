package app

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/eve"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/ingest/pcap"
	"github.com/dwell-nsm/dwell/internal/ingest/winlog"
	"github.com/dwell-nsm/dwell/internal/ingest/zeek"
	"github.com/dwell-nsm/dwell/internal/store"
)

func ingestCommand() command {
	return command{
		name:    "ingest",
		summary: "read Zeek logs (TSV or JSON), packet captures (pcap/pcapng, analysed as Zeek would), flow exports and Windows events into the store",
		usage:   "ingest [--db FILE] [--sensor NAME] [-v] PATH... (- reads standard input)",
		example: `  dwell ingest /nsm/zeek/logs               # every log under it, dated dirs and current/
  dwell ingest --sensor brussels /nsm/zeek/logs/2024-04-19
  dwell ingest --db case42.db conn.log dns.log.gz
  dwell ingest --sensor edge netflow.pcap   # tcpdump -w of a flow collector's port
  dwell ingest --sensor span1 capture.pcapng.gz   # packets: conn, dns, http, ssl, x509, files, flow
  dwell ingest --sensor ids1 /var/log/suricata/eve.json   # Suricata: alerts, flow, dns, http, tls, fileinfo
  dwell ingest --db clickhouse://ch1:8123/dwell /nsm/zeek/logs
  zcat conn.log.gz | dwell ingest --sensor edge -

Ingest is idempotent: a file read before adds nothing, a growing file adds
only its new lines, and an interrupted ingest resumes where it stopped.
`,
		run: runIngest,
	}
}

// ingestGoMemory is the Go heap dwell ingest asks the collector to keep
// under (a soft limit: GOMEMLIMIT's). 512 MiB kept a month of rotated
// logs under 1.5 GiB resident in three runs, for up to 16 % more time;
// 768 MiB did not in two of four (docs/benchmarks.md).
const ingestGoMemory = 512 << 20

// ingestGCPercent is the collector's target during dwell ingest (GOGC;
// Go's default is 100): the heap may grow half its live size before a
// collection. A month of rotated logs peaked at 1.56–1.92 GB with the
// default and at 1.47–1.62 GB with 50, for about 2 % of the single
// file's speed (docs/benchmarks.md); the live heap is 160–250 MB beside
// DuckDB's memory.
const ingestGCPercent = 50

func runIngest(ctx context.Context, a *App, args []string) error {
	var co common
	c := ingestCommand()
	fs := a.newFlags(c, &co)
	fs.StringVar(&co.sensor, "sensor", "", "`name` of the site the logs come from (default from config, else \"default\")")
	verbose := fs.Bool("v", false, "list every file with its outcome")
	quiet := fs.Bool("q", false, "print nothing but errors")
	complete := fs.Bool("complete", false, "the inputs are complete (evidence copied from elsewhere): read an unterminated last line now\ninstead of waiting idle_after for its writer to end it")
	paths, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usagef("no input: name Zeek log files or directories")
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	for i, p := range paths {
		if p == "-" {
			tmp, err := spoolStdin(a.Stdin)
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(filepath.Dir(tmp)) }()
			paths[i] = tmp
		}
	}
	// Inputs first: nothing readable, and no store is created for it.
	if err := anyReadable(paths); err != nil {
		return err
	}
	if co.served == nil {
		cfg = ingestStore(cfg)
		if os.Getenv("GOMEMLIMIT") == "" {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(ingestGoMemory))
		}
		if os.Getenv("GOGC") == "" {
			defer debug.SetGCPercent(debug.SetGCPercent(ingestGCPercent))
		}
	}
	st, err := co.openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	sum, err := a.ingest(ctx, st, cfg, paths, ingestMode{quiet: *quiet, complete: *complete})
	sightings := -1
	if err == nil && sum != nil && sum.Rows > 0 {
		sightings, err = retrohuntAfterIngest(ctx, st)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if sum != nil && !*quiet {
		printIngestSummary(a.Stdout, sum, *verbose)
		if sightings >= 0 {
			fmt.Fprintf(a.Stdout, "  intel matched against all history: %d sighting(s)\n", sightings)
		}
	}
	if err != nil {
		return err
	}
	if n := explicitFailures(sum); n > 0 {
		if *quiet { // nothing was printed above: name them
			for _, f := range sum.Files {
				if f.Status == ingest.StatusFailed || (f.Status == ingest.StatusRejected && f.Explicit) {
					fmt.Fprintf(a.Stderr, "dwell ingest: %s: %s\n", sanitize(f.Path, 300), sanitize(f.Err, 300))
				}
			}
			return fmt.Errorf("%d input(s) could not be ingested", n)
		}
		return fmt.Errorf("%d input(s) could not be ingested (see above)", n)
	}
	if sum != nil && !sum.useful() {
		return fmt.Errorf("nothing was stored from any input (see above for why)")
	}
	return nil
}

// spoolStdin copies standard input (dwell ingest -) to a file named
// "stdin" in a new temporary directory, dated an hour back so that its
// last line counts even without a newline, and returns its path: ingest
// reads files (their identity, checkpoints, provenance), and a pipe is
// read once. The log type comes from the content (#path, _path, fields).
func spoolStdin(r io.Reader) (string, error) {
	dir, err := os.MkdirTemp("", "dwell-stdin-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stdin")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	past := time.Now().Add(-time.Hour)
	return path, os.Chtimes(path, past, past)
}

// anyReadable returns an error when not one of paths can be read, naming
// why for each: a mistyped path must not create an empty store.
func anyReadable(paths []string) error {
	cands, err := ingest.Discover(paths)
	if err != nil {
		return err
	}
	var why []string
	for _, c := range cands {
		if c.Err == "" {
			return nil
		}
		why = append(why, sanitize(c.Path, 300)+": "+sanitize(c.Err, 200))
	}
	if len(why) == 0 {
		return fmt.Errorf("no files in %s", sanitize(strings.Join(paths, ", "), 300))
	}
	return fmt.Errorf("nothing to read: %s", strings.Join(why, "; "))
}

// useful reports whether any input gave records: now, or in an earlier
// run (already ingested, or resumed).
func (r *ingestResult) useful() bool {
	for _, f := range r.Files {
		if f.Rows > 0 || f.Status == ingest.StatusUnchanged || f.Resumed {
			return true
		}
	}
	return false
}

// whyNothing says why an input gave no records at all, "" when it gave
// some (now or before) or holds only Zeek logs that dwell does not store
// (weird, notice: the summary counts those by type).
func whyNothing(f *ingest.FileResult) string {
	if f.Rows > 0 || f.Status == ingest.StatusUnchanged || f.Resumed {
		return ""
	}
	switch f.Status {
	case ingest.StatusRejected, ingest.StatusFailed:
		return f.Err
	case ingest.StatusSkipped:
		if len(f.Notes) > 0 {
			return strings.Join(f.Notes, "; ")
		}
	}
	if n := f.SkippedTypes[zeek.UnknownType]; n > 0 {
		return "log type not recognised (no #path or _path in it, no log type in the file name, and fields of no log dwell stores)"
	}
	if len(f.SkippedTypes) > 0 {
		return "" // Zeek logs dwell does not store: said with their counts
	}
	if f.Bad > 0 {
		return "every line malformed"
	}
	if len(f.Notes) > 0 {
		return strings.Join(f.Notes, "; ")
	}
	return "no records in it"
}

// printNothingStored lists the inputs that gave no records, grouped by
// reason: "3 files, 0 records: log type not recognised: a, b, c".
func printNothingStored(w io.Writer, r *ingestResult) {
	byWhy := map[string][]string{}
	for i := range r.Files {
		if why := whyNothing(&r.Files[i]); why != "" {
			byWhy[why] = append(byWhy[why], r.Files[i].Path)
		}
	}
	for _, why := range slices.Sorted(maps.Keys(byWhy)) {
		files := byWhy[why]
		fmt.Fprintf(w, "  %d file%s, 0 records: %s: %s\n", len(files), plural(len(files)), sanitize(why, 300), sanitize(shortList(files, 5), 600))
	}
}

// ingestResult is an ingest.Summary with the rows stored per kind.
type ingestResult struct {
	*ingest.Summary
	rows map[event.Kind]int64
}

// ingestStore returns cfg with the store's settings for dwell ingest:
// writing needs less memory than hunting (config.Ingest.MemoryLimit; Go's
// limit is set beside it), and the readers need cores of their own
// (config.Ingest.Threads).
func ingestStore(cfg *config.Config) *config.Config {
	scfg := *cfg
	scfg.MemoryLimit = cmp.Or(cfg.Ingest.MemoryLimit, cfg.MemoryLimit)
	scfg.Threads = cmp.Or(cfg.Ingest.Threads, cfg.Threads)
	return &scfg
}

// ingestMode is how a command asks for an ingest.
type ingestMode struct {
	quiet    bool // no progress on the terminal
	complete bool // every input is complete (ingest.Options.Complete)
	// seen carries what the last run of the same paths found stored to
	// its end (ingest.Options.Seen): dwell serve's polls.
	seen *ingest.Seen
}

// ingest reads paths into st with progress on the terminal.
func (a *App) ingest(ctx context.Context, st store.Store, cfg *config.Config, paths []string, mode ingestMode) (*ingestResult, error) {
	if a.served != nil {
		// Two ingests of one file at once would both store it.
		a.served.ingestMu.Lock()
		defer a.served.ingestMu.Unlock()
		// Files are read a log at a time across the days: the cut of the
		// settled answers moves once the run is over.
		defer a.served.memo.settled.Hold()()
	}
	cands, err := ingest.Discover(paths)
	if err != nil {
		return nil, err
	}
	sink := &countingSink{Store: st, rows: map[event.Kind]int64{}}
	in := ingest.New(sink, ingest.Options{
		Sensor:     cfg.Sensor,
		DataSensor: cfg.Sensor == config.Default().Sensor,
		Workers:    cfg.Ingest.Workers,
		BatchRows:  cfg.Ingest.BatchRows,
		IdleAfter:  time.Duration(cfg.Ingest.IdleAfter),
		Complete:   mode.complete,
		Clock: ingest.Clock{Earliest: time.Time(cfg.Ingest.Earliest), Skew: time.Duration(cfg.Ingest.ClockSkew),
			Gap: time.Duration(cfg.Ingest.MaxGap), MaxDuration: time.Duration(cfg.Ingest.MaxDuration)},
		// JSON Windows events first: Zeek's JSON detection is looser.
		Formats: slices.Concat(winlog.Formats(), eve.Formats(), zeek.Formats(), netflow.Formats(), pcap.Formats(), evtx.Formats()),
		Logger:  a.Logger,
		Now:     a.Now,
		Seen:    mode.seen,
	})
	var stop func()
	if a.Interactive && !mode.quiet {
		start := a.Now()
		stop = a.progress(func() string { return ingestProgress(in.Stats(), a.Now().Sub(start)) })
	}
	sum, err := in.Run(ctx, cands)
	if stop != nil {
		stop()
	}
	if sum == nil {
		return nil, err
	}
	return &ingestResult{Summary: sum, rows: sink.counts()}, err
}

func ingestProgress(s ingest.Stats, elapsed time.Duration) string {
	rate := ""
	if secs := elapsed.Seconds(); secs > 0.5 {
		rate = fmt.Sprintf(" · %s records/s", human(int64(float64(s.Rows)/secs)))
	}
	return fmt.Sprintf("ingest: %d/%d files · %s records%s · %s bad lines", s.FilesDone, s.FilesTotal, human(s.Rows), rate, human(s.Bad))
}

// explicitFailures counts inputs that failed, or were named on the command
// line and rejected.
func explicitFailures(r *ingestResult) int {
	if r == nil {
		return 0
	}
	n := 0
	for _, f := range r.Files {
		if f.Status == ingest.StatusFailed || (f.Status == ingest.StatusRejected && f.Explicit) {
			n++
		}
	}
	return n
}

func printIngestSummary(w io.Writer, r *ingestResult, verbose bool) {
	secs := r.Elapsed.Seconds()
	var total int64
	var kinds []string
	for _, k := range event.Kinds {
		if n := r.rows[k]; n > 0 {
			total += n
			kinds = append(kinds, fmt.Sprintf("%s %s", k, human(n)))
		}
	}
	rate := ""
	if secs > 0 && total > 0 {
		rate = fmt.Sprintf(", %s records/s", human(int64(float64(total)/secs)))
	}
	fmt.Fprintf(w, "%d input(s) in %s: %s records stored", len(r.Files), r.Elapsed.Round(time.Millisecond), withCommas(total))
	if len(kinds) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(kinds, ", "))
	}
	fmt.Fprintf(w, "%s\n", rate)
	var counts []string
	for _, st := range []ingest.Status{ingest.StatusIngested, ingest.StatusUnchanged, ingest.StatusSkipped, ingest.StatusRejected, ingest.StatusFailed} {
		if n := r.Count(st); n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(counts, ", "))
	printNothingStored(w, r)
	for _, f := range r.Files {
		if f.Status == ingest.StatusFailed && whyNothing(&f) == "" {
			fmt.Fprintf(w, "  failed: %s: %s\n", sanitize(f.Path, 300), sanitize(f.Err, 300))
		}
	}
	if r.Held > 0 {
		fmt.Fprintf(w, "  %s record(s) held out of the hunt for times or counts that cannot be true, kept in the quarantine table "+
			"(dwell query \"SELECT * FROM quarantine\"); the first of them:\n", withCommas(r.Held))
		shown := 0
		for _, f := range r.Files {
			for _, e := range f.HeldNotes {
				if shown < 10 {
					fmt.Fprintf(w, "    %s\n", sanitize(fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason), 300))
				}
				shown++
			}
		}
	}
	if r.Escaped > 0 {
		var files []string
		for _, f := range r.Files {
			if f.Escaped > 0 {
				files = append(files, f.Path)
			}
		}
		fmt.Fprintf(w, "  %s text value(s) held bytes that are not UTF-8: stored with those bytes written \\xNN, as Zeek writes them: %s\n",
			withCommas(r.Escaped), sanitize(shortList(files, 5), 600))
	}
	if r.Bad > 0 {
		fmt.Fprintf(w, "  %s malformed line(s) skipped and counted; the first of them:\n", withCommas(r.Bad))
		shown := 0
		for _, f := range r.Files {
			for _, e := range f.Errors {
				if shown < 10 {
					fmt.Fprintf(w, "    %s\n", sanitize(e.Error(), 300))
				}
				shown++
			}
		}
	}
	// What many files share is said once, with counts.
	notes := map[string]int{}
	ignored := map[string]int{}
	type skip struct {
		lines int64
		files int
	}
	skipped := map[string]*skip{}
	for _, f := range r.Files {
		if whyNothing(&f) == "" {
			for _, n := range f.Notes {
				notes[n]++
			}
		}
		for _, fld := range f.Ignored {
			ignored[fld]++
		}
		for t, n := range f.SkippedTypes {
			if t == zeek.UnknownType && whyNothing(&f) != "" {
				continue // said above
			}
			if skipped[t] == nil {
				skipped[t] = &skip{}
			}
			skipped[t].lines += n
			skipped[t].files++
		}
		if verbose {
			fmt.Fprintf(w, "  %-9s %s (%s%s) %d records, %d bad\n", f.Status, f.Path, f.Format, compression(f), f.Rows, f.Bad)
		}
	}
	if len(skipped) > 0 {
		types := make([]string, 0, len(skipped))
		for t := range skipped {
			types = append(types, t)
		}
		sort.Slice(types, func(i, j int) bool {
			if a, b := skipped[types[i]].lines, skipped[types[j]].lines; a != b {
				return a > b
			}
			return types[i] < types[j]
		})
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%s (%s lines, %d file%s)", sanitize(t, 40), withCommas(skipped[t].lines), skipped[t].files, plural(skipped[t].files))
		}
		fmt.Fprintf(w, "  log types dwell does not store, skipped: %s\n", strings.Join(parts, ", "))
	}
	if len(ignored) > 0 {
		// A log can name thousands of fields: the first few say enough.
		names := slices.Sorted(maps.Keys(ignored))
		parts := make([]string, 0, min(len(names), 20)+1)
		for _, fld := range names[:min(len(names), 20)] {
			parts = append(parts, fmt.Sprintf("%s (%d file%s)", sanitize(fld, 40), ignored[fld], plural(ignored[fld])))
		}
		if len(names) > 20 {
			parts = append(parts, fmt.Sprintf("and %d more (-v lists the files)", len(names)-20))
		}
		fmt.Fprintf(w, "  fields dwell does not store, ignored: %s\n", strings.Join(parts, ", "))
	}
	for _, n := range slices.Sorted(maps.Keys(notes)) {
		if notes[n] > 1 {
			fmt.Fprintf(w, "  note (%d inputs): %s\n", notes[n], sanitize(n, 300))
		} else {
			fmt.Fprintf(w, "  note: %s\n", sanitize(n, 300))
		}
	}
}

func compression(f ingest.FileResult) string {
	if f.Compression == ingest.CompressionNone {
		return ""
	}
	return ", " + string(f.Compression)
}

// countingSink counts the records stored per kind.
type countingSink struct {
	store.Store
	rows map[event.Kind]int64 // written by the ingester's single writer goroutine
}

func (s *countingSink) Write(ctx context.Context, b *event.Batch) error {
	if err := s.Store.Write(ctx, b); err != nil {
		return err
	}
	for _, k := range event.Kinds {
		s.rows[k] += int64(b.Count(k))
	}
	return nil
}

// counts is called after the ingester's Run returned.
func (s *countingSink) counts() map[event.Kind]int64 { return s.rows }

var _ ingest.Sink = (*countingSink)(nil)
