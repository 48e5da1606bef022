// Command sigmapeer evaluates Sigma rules with sigma-go v0.6.6 over Windows
// events, the peer of dwell's engine in docs/benchmarks.md: every rule that
// sigma-go loads, against every event (sigma-go has no log-source index),
// timed over the evaluation only.
//
//	evtxread FILES... > events.jsonl
//	sigmapeer -events events.jsonl RULES_DIR...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bradleyjkemp/sigma-go"
	"github.com/bradleyjkemp/sigma-go/evaluator"
)

// hostEvent is dwell's event.HostEvent as evtxread writes it.
type hostEvent struct {
	Channel  string
	Provider string
	EventID  uint32
	Computer string
	Fields   []struct{ Name, Value string }
}

func main() {
	events := flag.String("events", "", "JSON lines of events (bench/evtxread's output)")
	rounds := flag.Int("rounds", 1, "passes over the events")
	flag.Parse()
	var evs []map[string]interface{}
	f, err := os.Open(*events)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var h hostEvent
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			continue
		}
		m := map[string]interface{}{"EventID": fmt.Sprint(h.EventID), "Channel": h.Channel, "Provider_Name": h.Provider, "Computer": h.Computer}
		for _, fl := range h.Fields {
			m[fl.Name] = fl.Value
		}
		evs = append(evs, m)
	}
	_ = f.Close()
	var rules []*evaluator.RuleEvaluator
	failed := 0
	for _, dir := range flag.Args() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".yml" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			r, err := sigma.ParseRule(data)
			if err != nil {
				failed++
				return nil
			}
			rules = append(rules, evaluator.ForRule(r))
			return nil
		})
	}
	ctx := context.Background()
	matches, errs := 0, 0
	start := time.Now()
	for range *rounds {
		for _, e := range evs {
			for _, r := range rules {
				res, err := r.Matches(ctx, e)
				if err != nil {
					errs++
					continue
				}
				if res.Match {
					matches++
				}
			}
		}
	}
	el := time.Since(start)
	n := len(evs) * *rounds
	fmt.Printf("sigma-go v0.6.6: %d rules (%d refused), %d events in %v: %.0f events/s, %d matches, %d evaluation errors\n",
		len(rules), failed, n, el.Round(time.Millisecond), float64(n)/el.Seconds(), matches, errs)
}
