package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvaluation scores the detectors on the labelled real captures of
// ../shared/datasets/labelled-network (truth.json), as bench/eval.sh does
// for docs/evaluation.md, with floors: every expected finding of every
// case (Zeek logs, flows and packet captures) ranks in its case's top 5,
// no benign case and no negative control has a high finding, and no case
// stops being read. A detector change that
// loses a case fails here.
func TestEvaluation(t *testing.T) {
	truth := filepath.Join(datasets, "labelled-network", "truth.json")
	if _, err := os.Stat(truth); err != nil {
		t.Skipf("labelled data not available (%v): the evaluation is not run", err)
	}
	rep, err := evaluate(t.Context(), truth, evalOptions{Top: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Cases {
		if !c.Read {
			t.Errorf("%s (%s) is not read: %s", c.Case, c.Format, c.Why)
			continue
		}
		for _, e := range c.Expect {
			if !e.Found {
				t.Errorf("%s: %s %s", c.Case, e.String(), e.outcome(rep.Top))
			}
		}
		if (c.Benign || len(c.Expect) == 0) && c.High > 0 {
			t.Errorf("%s: %d high or critical finding(s) on a benign case or negative control", c.Case, c.High)
		}
	}
	s := rep.Summary
	if s.CasesRead < 38 || s.Expected < 46 {
		t.Errorf("%d cases read with %d expected findings; the evaluation covered 38 and 46", s.CasesRead, s.Expected)
	}
	if s.PrecisionHigh < 0.9 {
		t.Errorf("precision at high %.3f, below 0.9", s.PrecisionHigh)
	}
	md := rep.markdown()
	if !strings.Contains(md, "recall") || !strings.Contains(md, "| case |") {
		t.Errorf("markdown:\n%s", md)
	}
	t.Logf("%s", rep.summaryText())
}

// TestEvalCommand runs dwell eval on a truth file written here: a scan
// that must be found, a benign case, a case whose file is missing; the
// Markdown file's generated part is replaced, the rest kept.
func TestEvalCommand(t *testing.T) {
	dir := t.TempDir()
	var scan strings.Builder
	for p := range 200 {
		fmt.Fprintf(&scan, `{"_path":"conn","ts":%d.5,"uid":"C%d","id.orig_h":"10.0.0.9","id.orig_p":%d,"id.resp_h":"198.51.100.15","id.resp_p":%d,"proto":"tcp","conn_state":"S0"}`+"\n",
			1700000000+p/20, p, 40000+p, p+1)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("scan.log", scan.String())
	write("quiet.log", `{"_path":"conn","ts":1700000000.1,"uid":"Cq","id.orig_h":"10.0.0.8","id.orig_p":40000,"id.resp_h":"10.0.0.1","id.resp_p":53,"proto":"udp","conn_state":"SF"}`+"\n")
	write("truth.json", `[
 {"case": "scan", "path": "scan.log", "format": "zeek-json", "expect": [{"kind": "scan", "src": "10.0.0.9", "dst": "198.51.100.15", "port": null}], "benign": false},
 {"case": "quiet", "path": "quiet.log", "format": "zeek-json", "expect": [], "benign": true},
 {"case": "gone", "path": "gone.log", "format": "zeek-json", "expect": [{"kind": "c2", "src": "10.0.0.1", "dst": "198.51.100.1", "port": 443}], "benign": false}
]`)
	md := filepath.Join(dir, "evaluation.md")
	write("evaluation.md", "# Evaluation\n\nProse before.\n\n"+evalBegin+"\nold\n"+evalEnd+"\n\nProse after.\n")
	code, out, errOut := runDwell(t, "eval", "--markdown", md, filepath.Join(dir, "truth.json"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"found: #1 scan", "(benign)", "gone", "not read", "expected findings in the top 5: 1 of 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	doc, _ := os.ReadFile(md)
	if s := string(doc); !strings.Contains(s, "Prose before.") || !strings.Contains(s, "Prose after.") || strings.Contains(s, "\nold\n") ||
		!strings.Contains(s, "| scan | `scan.log` |") {
		t.Errorf("evaluation.md:\n%s", s)
	}
	if code, _, errOut := runDwell(t, "eval"); code != ExitUsage || !strings.Contains(errOut, "truth.json") {
		t.Errorf("eval without a truth file: exit %d, %s", code, errOut)
	}
}
