package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/detect/sigma"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/duckdb"
)

// BenchmarkSigmaRetroHunt times what `dwell rules import` does after the
// copy: one new rule run over every stored Windows event. The store holds
// $DWELL_BENCH_EVENTS events (default 1,000,000; the figure is
// 10 M) over 30 days of 300 hosts: process creations, logons and
// connections, as a Sysmon-and-Security deployment logs them. The store is
// built once (not timed) in $DWELL_BENCH_DIR (a temporary directory
// otherwise); each iteration is the retro-hunt.
//
//	DWELL_BENCH_EVENTS=10000000 go test -run '^$' -bench SigmaRetroHunt -benchtime 1x -timeout 60m ./internal/app
func BenchmarkSigmaRetroHunt(b *testing.B) {
	ctx := context.Background()
	path, n := hostEventStore(b, "retro")
	st, err := duckdb.Open(ctx, path, duckdb.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	rules := filepath.Join(b.TempDir(), "r.yml")
	rule := "title: Encoded PowerShell\nid: 55555555-5555-5555-5555-555555555555\nlogsource: {product: windows, category: process_creation}\n" +
		"detection:\n  s:\n    Image|endswith: '\\powershell.exe'\n    CommandLine|contains: ' -enc '\n  condition: s\nlevel: high\n"
	if err := os.WriteFile(rules, []byte(rule), 0o644); err != nil {
		b.Fatal(err)
	}
	env := &detect.Env{Local: detect.DefaultLocal(), Sigma: detect.SigmaSetup{Rules: []string{rules}}}
	var fs []detect.Finding
	for b.Loop() {
		if fs, err = sigma.New(env).Detect(ctx, st, store.Window{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(fs)), "findings")
}

// hostEventStore returns the path of a DuckDB store (NAME-N.db in
// $DWELL_BENCH_DIR, a temporary directory otherwise) holding
// $DWELL_BENCH_EVENTS synthetic events (default 1,000,000), writing it
// when it is not there, and that number.
func hostEventStore(b *testing.B, name string) (string, int) {
	b.Helper()
	n := 1_000_000
	if s := os.Getenv("DWELL_BENCH_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		n = v
	}
	dir := os.Getenv("DWELL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.db", name, n))
	if _, err := os.Stat(path); err == nil {
		return path, n
	}
	ctx := context.Background()
	st, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := writeHostEvents(ctx, st, n); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d events in %v", n, time.Since(start).Round(time.Second))
	return path, n
}

// writeHostEvents stores n synthetic events in batches.
func writeHostEvents(ctx context.Context, st store.Writer, n int) error {
	batch := &event.Batch{}
	for i := range n {
		batch.Host = append(batch.Host, hostEvent(i, n))
		if len(batch.Host) == 100_000 || i == n-1 {
			if err := st.Write(ctx, batch); err != nil {
				return err
			}
			batch.Reset()
		}
	}
	return nil
}

// hostEvent is the i-th of n synthetic events spread over 30 days (i ≥ n
// continue after them): process creations, logons and connections, as a
// Sysmon-and-Security deployment logs them, an encoded PowerShell every
// 100,003.
func hostEvent(i, n int) event.HostEvent {
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	step := 30 * 24 * time.Hour / time.Duration(n)
	host := fmt.Sprintf("WS-%04d.ministry.example", i%300)
	e := event.HostEvent{TS: t0.Add(time.Duration(i) * step), Computer: host, RecordID: uint64(i/300 + 1),
		Src: event.Source{Sensor: "bench", File: "/evidence/" + host + ".evtx", Line: int64(i)}}
	switch i % 4 {
	case 0, 1:
		e.Channel, e.Provider, e.EventID = "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", 1
		cmd, img := `"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE"`, `C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE`
		if i%100_003 == 0 {
			img, cmd = `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "powershell -nop -w hidden -enc SQBFAFgA"
		}
		e.Fields = []event.Field{{Name: "Image", Value: img}, {Name: "CommandLine", Value: cmd},
			{Name: "ParentImage", Value: `C:\Windows\explorer.exe`}, {Name: "User", Value: fmt.Sprintf(`MINISTRY\user%d`, i%300)},
			{Name: "ProcessId", Value: strconv.Itoa(1000 + i%60000)}, {Name: "IntegrityLevel", Value: "Medium"}}
	case 2:
		e.Channel, e.Provider, e.EventID = "Security", "Microsoft-Windows-Security-Auditing", 4624
		e.Fields = []event.Field{{Name: "TargetUserName", Value: fmt.Sprintf("user%d", i%300)}, {Name: "TargetDomainName", Value: "MINISTRY"},
			{Name: "LogonType", Value: "3"}, {Name: "IpAddress", Value: fmt.Sprintf("10.10.%d.%d", i%300/250, i%250+1)},
			{Name: "AuthenticationPackageName", Value: "Kerberos"}}
	default:
		e.Channel, e.Provider, e.EventID = "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon", 3
		e.Fields = []event.Field{{Name: "Image", Value: `C:\Program Files\Google\Chrome\Application\chrome.exe`}, {Name: "Initiated", Value: "true"},
			{Name: "SourceIp", Value: fmt.Sprintf("10.10.%d.%d", i%300/250, i%250+1)}, {Name: "DestinationIp", Value: "198.51.100.7"},
			{Name: "DestinationPort", Value: "443"}}
	}
	return e
}

// BenchmarkServedTally times what a hunt under dwell serve costs the
// Windows-event detectors (host and sigma, with SigmaHQ's regression
// suite rules when the shared datasets are there, else one rule) once a
// thousand new events arrive, beside a hunt that reads all history as
// dwell hunt does. The store holds $DWELL_BENCH_EVENTS events (default
// 1,000,000), built once in $DWELL_BENCH_DIR (a temporary directory
// otherwise).
//
//	go test -run '^$' -bench ServedTally -benchtime 5x ./internal/app
func BenchmarkServedTally(b *testing.B) {
	ctx := context.Background()
	path, n := hostEventStore(b, "tally")
	st, err := duckdb.Open(ctx, path, duckdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	rules := filepath.Join(datasets, "sigma-regression", "rules")
	if _, err := os.Stat(rules); err != nil {
		rules = filepath.Join(b.TempDir(), "r.yml")
		rule := "title: Encoded PowerShell\nid: 55555555-5555-5555-5555-555555555555\nlogsource: {product: windows, category: process_creation}\n" +
			"detection:\n  s:\n    Image|endswith: '\\powershell.exe'\n    CommandLine|contains: ' -enc '\n  condition: s\nlevel: high\n"
		if err := os.WriteFile(rules, []byte(rule), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	env := &detect.Env{Local: detect.DefaultLocal(), Sigma: detect.SigmaSetup{Rules: []string{rules}}}
	ds, err := detectors(env, []string{"host", "sigma"})
	if err != nil {
		b.Fatal(err)
	}
	var m memo
	var writeMu sync.Mutex
	shared := sharedStore{Store: st, mu: &writeMu, gens: &m.gens, tallies: &m.tallies, settled: &m.settled, changed: func() {}}
	next := n
	hunt := func(m *memo) int {
		res, err := runDetectorsMemo(ctx, shared, env, ds, store.Window{}, m)
		if err != nil {
			b.Fatal(err)
		}
		return len(res.Findings)
	}
	b.Run("history", func(b *testing.B) {
		for b.Loop() {
			hunt(&memo{})
		}
		b.ReportMetric(float64(next)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	hunt(&m) // the kept tallies read history once
	b.Run("tally", func(b *testing.B) {
		batch := &event.Batch{}
		for b.Loop() {
			batch.Reset()
			for range 1000 {
				batch.Host = append(batch.Host, hostEvent(next, n))
				next++
			}
			if err := shared.Write(ctx, batch); err != nil {
				b.Fatal(err)
			}
			hunt(&m)
		}
	})
}
