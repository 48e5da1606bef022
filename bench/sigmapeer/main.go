// Package main is the sigmapeer command, which evaluates Sigma rules with
// sigma-go v0.6.6 over Windows events, the peer of dwell's engine in
// docs/benchmarks.md: every rule that sigma-go loads, against every event
// (sigma-go has no log-source index), timed over the evaluation only.
//
//	evtxread FILES... > events.jsonl
//	sigmapeer -events events.jsonl RULES_DIR...
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	regression := flag.String("regression", "", "run SigmaHQ's regression suite in this `directory` (sigma-regression) instead")
	flag.Parse()
	if *regression != "" {
		runRegression(*regression)
		return
	}
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

// runRegression runs each test of SigmaHQ's regression suite with
// sigma-go: the rule over the test's events (its .json twin, evtx_dump's
// format), passing when it matches at least match_count times. sigma-go
// has no log-source gating: every event is tried.
func runRegression(root string) {
	rules := map[string]sigma.Rule{}
	for _, d := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		_ = filepath.WalkDir(filepath.Join(root, d), func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() || filepath.Ext(p) != ".yml" {
				return nil
			}
			data, _ := os.ReadFile(p)
			if r, err := sigma.ParseRule(data); err == nil {
				rules[r.ID] = r
			}
			return nil
		})
	}
	pass, total, loadErr, evalErr := 0, 0, 0, 0
	_ = filepath.WalkDir(filepath.Join(root, "regression_data"), func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.Name() != "info.yml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		id, jsonPath, want := "", "", 1
		for _, line := range strings.Split(string(data), "\n") {
			t := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))
			switch {
			case strings.HasPrefix(t, "match_count:"):
				fmt.Sscan(strings.TrimPrefix(t, "match_count:"), &want)
			case strings.HasPrefix(t, "path:") && strings.HasSuffix(t, ".evtx"):
				jsonPath = filepath.Join(root, strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(t, "path:")), ".evtx")+".json")
			}
		}
		if i := strings.Index(string(data), "rule_metadata:"); i >= 0 {
			for _, line := range strings.Split(string(data[i:]), "\n") {
				t := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- "))
				if strings.HasPrefix(t, "id:") {
					id = strings.TrimSpace(strings.TrimPrefix(t, "id:"))
					break
				}
			}
		}
		if jsonPath == "" {
			return nil
		}
		total++
		r, ok := rules[id]
		if !ok {
			loadErr++
			return nil
		}
		ev := evaluator.ForRule(r)
		n := 0
		for _, e := range readDump(jsonPath) {
			res, err := ev.Matches(context.Background(), e)
			if err != nil {
				evalErr++
				continue
			}
			if res.Match {
				n++
			}
		}
		if n >= want {
			pass++
		}
		return nil
	})
	fmt.Printf("sigma-go v0.6.6 on SigmaHQ's regression suite (no log-source gating): %d of %d pass; %d rules not loaded, %d evaluation errors\n",
		pass, total, loadErr, evalErr)
}

// readDump reads evtx_dump's JSON (one object or several in a row) into
// flat events: EventData by name, System fields as Sigma names them.
func readDump(path string) []map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		var doc struct {
			Event struct {
				System    map[string]interface{} `json:"System"`
				EventData map[string]interface{} `json:"EventData"`
				UserData  map[string]interface{} `json:"UserData"`
			} `json:"Event"`
		}
		if err := dec.Decode(&doc); err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, path, err)
			}
			return out
		}
		m := map[string]interface{}{}
		for k, v := range doc.Event.EventData {
			m[strings.ReplaceAll(k, " ", "")] = fmt.Sprint(v)
		}
		sys := doc.Event.System
		id := sys["EventID"]
		if o, ok := id.(map[string]interface{}); ok {
			id = o["#text"]
		}
		m["EventID"] = fmt.Sprint(id)
		m["Channel"] = fmt.Sprint(sys["Channel"])
		m["Computer"] = fmt.Sprint(sys["Computer"])
		if p, ok := sys["Provider"].(map[string]interface{}); ok {
			if a, ok := p["#attributes"].(map[string]interface{}); ok {
				m["Provider_Name"] = fmt.Sprint(a["Name"])
			}
		}
		out = append(out, m)
	}
}
