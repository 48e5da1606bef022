package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// dwell eval scores the detectors against labelled data: a truth.json
// that lists captures or logs recorded by others, with the findings each
// must yield and the cases that are benign (the format of
// ../shared/datasets/labelled-network/truth.json, docs/evaluation.md).
// Every case is ingested into a store of its own and hunted as a user of
// that network would hunt it.

func evalCommand() command {
	return command{
		name:    "eval",
		summary: "score the detectors against labelled data (a truth.json of cases and the findings each must yield)",
		usage:   "eval [--top N] [--case TEXT] [--format table|json|markdown] [--markdown FILE] TRUTH.json",
		example: `  dwell eval ../shared/datasets/labelled-network/truth.json
  dwell eval --case mordor --format json truth.json
  dwell eval --markdown docs/evaluation.md truth.json   # rewrite the results in that file

A case counts as found when a finding of a fitting detector about its
source and destination ranks in the case's top N (5). Benign cases count
their high and critical findings. The JSON form of truth.json is in
docs/evaluation.md.
`,
		run: runEval,
	}
}

func runEval(ctx context.Context, a *App, args []string) error {
	c := evalCommand()
	fs := a.newFlags(c, nil)
	top := fs.Int("top", 5, "an expected finding must rank in a case's top `N`")
	only := fs.String("case", "", "evaluate only the cases whose name contains `TEXT`")
	format := fs.String("format", "table", "output `format`: table, json or markdown")
	md := fs.String("markdown", "", "rewrite the results between the evaluation markers of this Markdown `file`")
	keep := fs.String("keep", "", "keep each case's store under this `directory` (for dwell query and dwell hunt)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("name one truth.json")
	}
	if *format != "table" && *format != "json" && *format != "markdown" {
		return usagef("unknown format %q: use table, json or markdown", *format)
	}
	var stop func()
	var done, total int
	if a.Interactive && *format == "table" {
		stop = a.progress(func() string { return fmt.Sprintf("eval: %d/%d cases", done, total) })
	}
	rep, err := evaluate(ctx, pos[0], evalOptions{Top: *top, Only: *only, Keep: *keep, Progress: func(d, t int) { done, total = d, t }})
	if stop != nil {
		stop()
	}
	if err != nil {
		return err
	}
	if *md != "" {
		if err := rewriteEvaluation(*md, rep); err != nil {
			return err
		}
	}
	switch *format {
	case "json":
		return writeIndented(a.Stdout, rep)
	case "markdown":
		_, err := io.WriteString(a.Stdout, rep.markdown())
		return err
	}
	return rep.writeTable(a.Stdout)
}

// truthCase is one case of a truth.json.
type truthCase struct {
	Case   string        `json:"case"`
	Path   string        `json:"path"` // relative to the truth file's directory
	Format string        `json:"format"`
	Expect []expectation `json:"expect"`
	Benign bool          `json:"benign"`
	Local  []string      `json:"local"` // the networks inside the perimeter; default dwell's
	Note   string        `json:"note"`
}

// expectation is one finding a case must yield.
type expectation struct {
	Kind string `json:"kind"` // beacon, c2, exfil, lateral, scan, dnstunnel, dga, ddos
	Src  string `json:"src"`
	Dst  string `json:"dst"`  // "*": many destinations
	Port *int   `json:"port"` // null: any
	Note string `json:"note"`
}

// evalKinds says which detectors' findings can satisfy an expected kind.
// A kind names what an analyst must be told (a periodic call-back, a
// command channel, data leaving); a detector fits it when its finding
// says exactly that.
func evalKinds() map[string][]string {
	return map[string][]string{
		"beacon":    {"beacon", "deadc2"},
		"c2":        {"beacon", "deadc2", "c2", "longconn", "tlsanom", "httpanom", "iocmatch", "dga"},
		"exfil":     {"exfil"},
		"lateral":   {"lateral"},
		"scan":      {"scan"},
		"dnstunnel": {"dnstunnel"},
		"dga":       {"dga"},
		"ddos":      {"ddos"},
	}
}

// evalOptions tune evaluate.
type evalOptions struct {
	Top      int    // rank an expected finding must reach (5)
	Only     string // cases whose name contains it; "" for all
	Keep     string // directory to keep the stores in; "" uses a temporary one
	Progress func(done, total int)
}

// evalReport is the result of an evaluation.
type evalReport struct {
	Truth   string       `json:"truth"`
	Top     int          `json:"top"`
	Cases   []caseResult `json:"cases"`
	Summary evalSummary  `json:"summary"`
}

// caseResult is one case's outcome.
type caseResult struct {
	Case     string         `json:"case"`
	Format   string         `json:"format"`
	Input    string         `json:"input"`            // what was read (relative to the truth file)
	Read     bool           `json:"read"`             // whether dwell stored records from it
	Why      string         `json:"why,omitempty"`    // why it was not read
	Records  int64          `json:"records"`          // records stored
	Benign   bool           `json:"benign"`           //
	Expect   []expectResult `json:"expect"`           //
	High     int            `json:"high"`             // findings at high or critical
	Medium   int            `json:"medium"`           // findings at medium
	True     int            `json:"true_findings"`    // findings about an expected pair (medium and above)
	TrueHigh int            `json:"true_high"`        // findings about an expected pair (high and above)
	Top      []findingBrief `json:"top"`              // the case's first findings
	Elapsed  time.Duration  `json:"elapsed_ns"`       //
	Errors   []string       `json:"errors,omitempty"` //
}

// expectResult is one expected finding's outcome.
type expectResult struct {
	expectation
	Found    bool    `json:"found"`              // ranked within Top
	Rank     int     `json:"rank"`               // 1-based rank of the best fitting finding, 0 if none
	Score    float64 `json:"score"`              //
	Severity string  `json:"severity,omitempty"` //
	Detector string  `json:"detector,omitempty"` //
}

// findingBrief is a finding in a case's top list.
type findingBrief struct {
	Rank     int     `json:"rank"`
	Detector string  `json:"detector"`
	Score    float64 `json:"score"`
	Severity string  `json:"severity"`
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	Domain   string  `json:"domain,omitempty"`
	True     bool    `json:"true"` // about an expected pair
}

// evalSummary totals the evaluation over the cases read.
type evalSummary struct {
	CasesRead     int     `json:"cases_read"`
	CasesNotRead  int     `json:"cases_not_read"`
	Expected      int     `json:"expected"`       // expected findings in cases read
	Found         int     `json:"found"`          // of them, within the top N
	Recall        float64 `json:"recall"`         // Found / Expected
	Reported      int     `json:"reported"`       // findings at medium and above in cases read
	TrueReported  int     `json:"true_reported"`  // of them, about an expected pair
	Precision     float64 `json:"precision"`      // TrueReported / Reported
	BenignCases   int     `json:"benign_cases"`   // benign cases read
	BenignHigh    int     `json:"benign_high"`    // high and critical findings on them
	ControlHigh   int     `json:"control_high"`   // high and critical findings on negative controls (non-benign cases expecting nothing)
	ReportedHigh  int     `json:"reported_high"`  // findings at high and above in cases read
	TrueHigh      int     `json:"true_high"`      // of them, about an expected pair
	PrecisionHigh float64 `json:"precision_high"` // TrueHigh / ReportedHigh
}

// evaluate runs every case of the truth file at path.
func evaluate(ctx context.Context, path string, opt evalOptions) (*evalReport, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G703: the truth file the user named
	if err != nil {
		return nil, fmt.Errorf("reading the truth: %w", err)
	}
	var cases []truthCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return nil, fmt.Errorf("truth %s: %w", path, err)
	}
	if opt.Top <= 0 {
		opt.Top = 5
	}
	base := filepath.Dir(path)
	work := opt.Keep
	if work != "" {
		if err := os.MkdirAll(work, 0o755); err != nil {
			return nil, err
		}
	} else {
		if work, err = os.MkdirTemp("", "dwell-eval-"); err != nil {
			return nil, err
		}
		defer func() { _ = os.RemoveAll(work) }() // scratch stores
	}
	rep := &evalReport{Truth: path, Top: opt.Top}
	var todo []truthCase
	for _, c := range cases {
		if strings.Contains(c.Case, opt.Only) {
			todo = append(todo, c)
		}
	}
	for i, c := range todo {
		if opt.Progress != nil {
			opt.Progress(i, len(todo))
		}
		res, err := evalCase(ctx, base, work, i, c, opt.Top)
		if err != nil {
			return nil, fmt.Errorf("case %s: %w", c.Case, err)
		}
		rep.Cases = append(rep.Cases, *res)
	}
	rep.total()
	return rep, nil
}

// caseInputs returns the files to try for a case, in order: its path,
// then, for flow records kept by nfdump (which dwell does not read), the
// capture of the same export beside it (NAME.export.pcap for NAME.nfcapd).
func caseInputs(base string, c truthCase) []string {
	p := filepath.Join(base, filepath.FromSlash(c.Path))
	out := []string{p}
	if stem, ok := strings.CutSuffix(p, ".nfcapd"); ok {
		out = append(out, stem+".export.pcap")
	}
	return out
}

// evalCase ingests and hunts one case in a store of its own.
func evalCase(ctx context.Context, base, work string, i int, c truthCase, top int) (*caseResult, error) {
	start := time.Now()
	res := &caseResult{Case: c.Case, Format: c.Format, Benign: c.Benign}
	for _, e := range c.Expect {
		res.Expect = append(res.Expect, expectResult{expectation: e})
	}
	cfg := config.Default()
	cfg.Store = filepath.Join(work, fmt.Sprintf("case%02d-%s.db", i+1, safeName(c.Case)))
	cfg.Networks.Local = c.Local
	cfg.Ingest.Workers = 2
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	env, err := environment(cfg)
	if err != nil {
		return nil, err
	}
	ds, err := detectors(env, nil)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg, false, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }() // the case's scratch store
	quiet := &App{Stdout: io.Discard, Stderr: io.Discard, Now: time.Now, Logger: discardLogger()}
	var why []string
	for _, in := range caseInputs(base, c) {
		if _, err := os.Stat(in); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", filepath.Base(in), errors.Unwrap(err)))
			continue
		}
		sum, err := quiet.ingest(ctx, st, cfg, []string{in}, ingestMode{quiet: true, complete: true})
		if err != nil {
			return nil, err
		}
		var n int64
		for _, k := range sum.rows {
			n += k
		}
		if n > 0 {
			res.Read, res.Records = true, n
			res.Input, _ = filepath.Rel(base, in)
			break
		}
		why = append(why, filepath.Base(in)+": "+nothingStored(sum))
	}
	if !res.Read {
		res.Why = strings.Join(why, "; ")
		res.Elapsed = time.Since(start)
		return res, nil
	}
	hr, err := runDetectors(ctx, st, env, ds, store.Window{})
	if err != nil {
		return nil, err
	}
	res.score(hr.Findings, top)
	res.Elapsed = time.Since(start)
	return res, nil
}

// nothingStored says why an ingest stored nothing, from its summary.
func nothingStored(sum *ingestResult) string {
	var reasons []string
	for _, f := range sum.Files {
		switch {
		case f.Err != "":
			reasons = append(reasons, f.Err)
		case len(f.Notes) > 0:
			reasons = append(reasons, f.Notes...)
		}
	}
	if len(reasons) == 0 {
		return "no records"
	}
	return strings.Join(reasons, "; ")
}

// score matches the case's findings (sorted, best first) with what it
// expects.
func (res *caseResult) score(fs []detect.Finding, top int) {
	kinds := evalKinds()
	for i := range res.Expect {
		e := &res.Expect[i]
		for rank, f := range fs {
			if !fitsAny(kinds[e.Kind], f.Detectors()) || !e.about(&f) {
				continue
			}
			e.Rank, e.Score, e.Severity, e.Detector = rank+1, detect.Round(f.Score, 3), f.Severity.String(), f.Detector
			e.Found = rank < top
			break
		}
	}
	for rank, f := range fs {
		isTrue := false
		for i := range res.Expect {
			isTrue = isTrue || res.Expect[i].about(&f)
		}
		switch {
		case f.Severity >= detect.SeverityHigh:
			res.High++
		case f.Severity == detect.SeverityMedium:
			res.Medium++
		}
		if isTrue && f.Severity >= detect.SeverityMedium {
			res.True++
		}
		if isTrue && f.Severity >= detect.SeverityHigh {
			res.TrueHigh++
		}
		if rank < 10 {
			res.Top = append(res.Top, findingBrief{Rank: rank + 1, Detector: f.Detector, Score: detect.Round(f.Score, 3), Severity: f.Severity.String(),
				Src: addr(f.Src), Dst: addr(f.Dst), Domain: f.Domain, True: isTrue})
		}
	}
}

// fitsAny reports whether any of a finding's detectors (its own and
// those merged into it) fits a kind.
func fitsAny(kind, detectors []string) bool {
	for _, d := range detectors {
		if slices.Contains(kind, d) {
			return true
		}
	}
	return false
}

// about reports whether a finding is about the expectation's hosts: its
// source and destination, in either direction (Zeek orients a connection
// whose start it did not see by guesswork, and a finding is about the
// channel either way); its source alone when many destinations are
// expected ("*"). A finding with no source (a flood's) matches on its
// destination.
func (e *expectation) about(f *detect.Finding) bool {
	src, _ := netip.ParseAddr(e.Src)
	dst, _ := netip.ParseAddr(e.Dst)
	switch {
	case e.Dst == "*":
		return f.Src == src
	case !f.Src.IsValid():
		return f.Dst == dst
	}
	return f.Src == src && f.Dst == dst || f.Src == dst && f.Dst == src
}

// total fills the summary.
func (r *evalReport) total() {
	s := &r.Summary
	for _, c := range r.Cases {
		if !c.Read {
			s.CasesNotRead++
			continue
		}
		s.CasesRead++
		for _, e := range c.Expect {
			s.Expected++
			if e.Found {
				s.Found++
			}
		}
		s.Reported += c.High + c.Medium
		s.TrueReported += c.True
		s.ReportedHigh += c.High
		s.TrueHigh += c.TrueHigh
		if c.Benign {
			s.BenignCases++
			s.BenignHigh += c.High
		} else if len(c.Expect) == 0 {
			s.ControlHigh += c.High
		}
	}
	if s.Expected > 0 {
		s.Recall = detect.Round(float64(s.Found)/float64(s.Expected), 3)
	}
	if s.Reported > 0 {
		s.Precision = detect.Round(float64(s.TrueReported)/float64(s.Reported), 3)
	}
	if s.ReportedHigh > 0 {
		s.PrecisionHigh = detect.Round(float64(s.TrueHigh)/float64(s.ReportedHigh), 3)
	}
}

// safeName makes a case name usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == ' ' || r == '\\' {
			return '_'
		}
		return r
	}, s)
}
