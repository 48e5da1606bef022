package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/dwell-nsm/dwell/internal/alert"
	"github.com/dwell-nsm/dwell/internal/alert/alerttest"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

// TestServeSoak replays the scenario as a live Zeek directory — each
// hour's logs written to current/ in parts, then rotated and compressed
// into the day's directory, as Zeek does — while dwell serve runs as its
// own process, an analyst's query runs in a loop through it and an intel
// feed is polled. Half way the server is killed with SIGKILL and started
// again. At the end every record of the generated files is stored exactly
// once, every planted technique is in an incident, each alert receiver
// got each incident's announcement once, the lag from a written hour to
// its rows being queryable stayed under the bound, and the server's
// memory stayed bounded. DWELL_SOAK_DAYS, DWELL_SOAK_RATE and
// DWELL_SOAK_HOUR (the wall time one scenario hour takes) make it longer
// by hand (docs/benchmarks.md).
func TestServeSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a server process for minutes; skipped with -short")
	}
	if raceDetector {
		t.Skip("measures lag and memory, which mean nothing under the race detector (TestServe covers the server's concurrency)")
	}
	days, rate, hour := envInt("DWELL_SOAK_DAYS", 14), envInt("DWELL_SOAK_RATE", 20_000), time.Duration(envInt("DWELL_SOAK_HOUR_MS", 250))*time.Millisecond
	dir := t.TempDir()
	data := filepath.Join(dir, "scenario")
	cfgS := scenario.Default()
	cfgS.Days, cfgS.Rate = days, rate
	truth, err := scenario.Generate(t.Context(), cfgS, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live")
	intelFile := filepath.Join(dir, "feed.csv")
	if err := os.WriteFile(intelFile, []byte("indicator,type,comment\n"+truth.Campaign.ExternalIPs[0]+",ip,a CERT's feed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hook, hookIn := alerttest.Webhook(t, 0)
	syslogAddr, syslogIn := alerttest.SyslogTCP(t)
	smtpAddr, ca, mailIn := alerttest.SMTP(t, false)
	db := filepath.Join(dir, "dwell.db")
	cfgFile := filepath.Join(dir, "dwell.yaml")
	cfg := fmt.Sprintf(`store: %s
sensor: %s
serve:
  listen: 127.0.0.1:0
  poll: 500ms
  hunt_after: 5s
  follow:
    - path: %s
    - path: %s
    - path: %s
  intel: [{source: %s, every: 1m}]
  alerts:
    min_severity: high
    webhooks: [{url: %q}]
    syslog: [{address: %q, network: tcp}]
    email: [{server: %q, from: dwell@ministry.example, to: [soc@ministry.example], ca_file: %q}]
`, db, truth.Sensor, live, filepath.Join(data, filepath.FromSlash(truth.DDoS.FlowFile)), filepath.Join(data, "hostlogs"), intelFile,
		hook, syslogAddr, smtpAddr, ca)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startServeProcess(t, cfgFile, db)
	var rssMu sync.Mutex
	var rss []int64
	samplerDone := make(chan struct{})
	sampleCtx, stopSampling := context.WithCancel(t.Context())
	var current struct {
		sync.Mutex
		pid int
	}
	current.pid = srv.Process.Pid
	go func() {
		defer close(samplerDone)
		for sampleCtx.Err() == nil {
			current.Lock()
			pid := current.pid
			current.Unlock()
			if kb := vmRSS(pid); kb > 0 {
				rssMu.Lock()
				rss = append(rss, kb)
				rssMu.Unlock()
			}
			select {
			case <-sampleCtx.Done():
			case <-time.After(time.Second):
			}
		}
	}()

	// The analyst's query loop, which also measures the lag.
	hours := replayHours(t, data, truth)
	type written struct {
		hour  int
		at    time.Time
		conns int64
	}
	type lagged struct {
		hour int
		at   time.Time // when the hour was written
		lag  time.Duration
	}
	var mu sync.Mutex
	var marks []written
	var lags []lagged
	var paused bool
	queryCtx, stopQueries := context.WithCancel(t.Context())
	queriesDone := make(chan int)
	go func() {
		n := 0
		defer func() { queriesDone <- n }()
		for queryCtx.Err() == nil {
			mu.Lock()
			p := paused
			mu.Unlock()
			if !p {
				code, out, _ := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) FROM conn")
				now := time.Now()
				if code == ExitOK {
					n++
					got, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(out, "count_star()\n")), 10, 64)
					mu.Lock()
					for len(marks) > 0 && marks[0].conns <= got {
						lags = append(lags, lagged{marks[0].hour, marks[0].at, now.Sub(marks[0].at)})
						marks = marks[1:]
					}
					mu.Unlock()
				}
			}
			select {
			case <-queryCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	var conns int64
	start := time.Now()
	for i, h := range hours {
		if i == len(hours)/2 {
			mu.Lock()
			paused = true
			mu.Unlock()
			_ = srv.Process.Signal(syscall.SIGKILL)
			_ = srv.Wait()
			t.Logf("killed the server with SIGKILL after %d of %d hours", i, len(hours))
			srv = startServeProcess(t, cfgFile, db)
			current.Lock()
			current.pid = srv.Process.Pid
			current.Unlock()
			mu.Lock()
			paused = false
			mu.Unlock()
		}
		h.write(t, live)
		conns += h.conns
		mu.Lock()
		marks = append(marks, written{i, time.Now(), conns})
		mu.Unlock()
		time.Sleep(hour)
	}
	replay := time.Since(start)
	t.Logf("replayed %d hours (%d days) in %s: %.0f times real time", len(hours), days, replay.Round(time.Second),
		float64(len(hours))*float64(time.Hour)/float64(replay))

	// Every record, once.
	waitFor(t, "every conn record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(marks) == 0
	})
	stopQueries()
	queries := <-queriesDone
	// The other logs of the last hours may still be on their way: each
	// gets the time to arrive, and none may exceed its count.
	for _, k := range []string{"conn", "dns", "http", "ssl", "x509", "files"} {
		var got string
		want := fmt.Sprintf("n\n%d", truth.Counts[k])
		for range 120 {
			code, out, errOut := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM "+k)
			if code != ExitOK {
				t.Fatalf("%s: %s", k, errOut)
			}
			if got = strings.TrimSpace(out); got == want {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if got != want {
			t.Errorf("%s: %s, want %s", k, strings.ReplaceAll(got, "\n", " "), strings.ReplaceAll(want, "\n", " "))
		}
	}
	// Connections have unique ids: none stored twice.
	if code, out, _ := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(DISTINCT uid) AS u FROM conn"); code != ExitOK ||
		strings.TrimSpace(out) != fmt.Sprintf("u\n%d", truth.Counts["conn"]) {
		t.Errorf("distinct conn uids: %s, want %d", out, truth.Counts["conn"])
	}

	// The feed was polled into the store.
	if code, out, _ := runDwell(t, "intel", "list", "--db", db, "--format", "json"); code != ExitOK || !strings.Contains(out, truth.Campaign.ExternalIPs[0]) {
		t.Errorf("the polled feed's indicator is not stored: %s", tail(out, 500))
	}

	// Every planted technique in an incident of the server's last hunt.
	waitFor(t, "a hunt of everything", func() bool {
		code, out, _ := runDwell(t, "status", "--db", db, "--format", "json")
		var s storeStatus
		return code == ExitOK && json.Unmarshal([]byte(out), &s) == nil && s.LastHunt != nil && s.LastHunt.After(start.Add(replay))
	})
	code, out, errOut := runDwell(t, "incidents", "--db", db, "--format", "json")
	if code != ExitOK {
		t.Fatal(errOut)
	}
	var doc struct {
		Incidents []correlate.Incident `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var findings []detect.Finding
	for _, inc := range doc.Incidents {
		findings = append(findings, inc.Findings...)
	}
	detect.Sort(findings)
	sc := score(truth, findings, 10)
	if f, n := sc.networkTechniques(); f != n {
		var buf bytes.Buffer
		sc.print(&buf, findings)
		t.Errorf("network techniques in incidents: %d of %d\n%s", f, n, buf.String())
	}
	if f, n := sc.hostTechniques(); f != n {
		t.Errorf("host techniques in incidents: %d of %d", f, n)
	}

	// Each receiver got each announced incident once, the campaign's
	// among them.
	campaign := map[string]bool{}
	for _, h := range truth.Campaign.Hosts {
		campaign[h] = true
	}
	perIncident := map[string]int{}
	aboutCampaign := 0
	for _, m := range hookIn.Messages() {
		var a alert.Alert
		if err := json.Unmarshal([]byte(m), &a); err != nil {
			t.Fatal(err)
		}
		if a.Event == "new" {
			perIncident[a.Incident]++
		}
		if slices.ContainsFunc(a.Hosts, func(h string) bool { return campaign[h] }) {
			aboutCampaign++
		}
	}
	for id, n := range perIncident {
		if n != 1 {
			t.Errorf("%s announced new %d times", id, n)
		}
	}
	if aboutCampaign == 0 {
		t.Errorf("no alert about the campaign's hosts (%d alerts)", len(hookIn.Messages()))
	}
	if w, s, m := len(hookIn.Messages()), len(syslogIn.Messages()), len(mailIn.Messages()); w != s || w != m {
		t.Errorf("alerts: %d by webhook, %d by syslog, %d by mail", w, s, m)
	}

	stopSampling()
	<-samplerDone
	_ = srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Errorf("the server did not stop cleanly on SIGTERM: %v", err)
	}
	// Every hunt and every ingest succeeded, while the other ran: the
	// server logged no error.
	serveLog, err := os.ReadFile(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	var errorLines []string
	hunted := 0
	for line := range strings.Lines(string(serveLog)) {
		switch {
		case strings.Contains(line, "level=ERROR"):
			errorLines = append(errorLines, strings.TrimSpace(line))
		case strings.Contains(line, "msg=hunted"):
			hunted++
		}
	}
	if len(errorLines) > 0 {
		t.Errorf("the server logged %d errors, %d hunts done; the first:\n%s", len(errorLines), hunted, strings.Join(errorLines[:min(5, len(errorLines))], "\n"))
	}
	mu.Lock()
	sort.Slice(lags, func(i, j int) bool { return lags[i].lag < lags[j].lag })
	p50, p99, maxLag := lags[len(lags)/2].lag, lags[len(lags)*99/100].lag, lags[len(lags)-1].lag
	var slowest strings.Builder
	for _, l := range lags[max(0, len(lags)-5):] {
		fmt.Fprintf(&slowest, " hour %d (written %s after the start, %s):", l.hour, l.at.Sub(start).Round(time.Millisecond), l.lag.Round(time.Millisecond))
	}
	mu.Unlock()
	rssMu.Lock()
	peak := slices.Max(rss)
	rssMu.Unlock()
	t.Logf("lag from an hour written to its rows queryable: median %s, p99 %s, max %s over %d hours (%.0f conn/s written); %d queries",
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), maxLag.Round(time.Millisecond), len(lags), float64(conns)/replay.Seconds(), queries)
	t.Logf("the slowest hours:%s", strings.TrimSuffix(slowest.String(), ":"))
	t.Logf("server RSS: peak %d MiB over %d samples; %d hunts done, %d incidents, %d alerts per channel", peak/1024, len(rss), hunted, len(doc.Incidents), len(hookIn.Messages()))
	if report := os.Getenv("DWELL_SOAK_REPORT"); report != "" {
		rssMu.Lock()
		series := fmt.Sprint(rss)
		rssMu.Unlock()
		_ = os.WriteFile(report, fmt.Appendf(nil, "days %d rate %d hours %d replay %s\nlag median %s p99 %s max %s\nrss_kib %s\n", days, rate,
			len(hours), replay, p50, p99, maxLag, series), 0o644)
	}
	if p99 > 10*time.Second {
		t.Errorf("lag p99 %s over the 10 s bound", p99)
	}
	if peak > 1536*1024 {
		t.Errorf("server RSS peaked at %d MiB", peak/1024)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startServeProcess starts dwell serve (this test binary standing in for
// it) and waits until it serves.
func startServeProcess(t *testing.T, cfgFile, db string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$", "--", "serve", "--config", cfgFile, "--wait", "30s")
	cmd.Env = append(os.Environ(), "DWELL_TEST_MAIN=1")
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(db), "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("server log (end):\n%s", tail(string(b), 4000))
		}
	})
	waitFor(t, "the server", func() bool {
		b, err := os.ReadFile(filepath.Join(db+".serve", serverFileName))
		var f serverFile
		return err == nil && json.Unmarshal(b, &f) == nil && f.PID == cmd.Process.Pid
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// vmRSS reads a process's resident memory in KiB, 0 when unknown.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// replayHour is one hour of the scenario's Zeek logs.
type replayHour struct {
	day   string
	files []string // the hour's rotated files (day/type.HH:MM:SS-HH:MM:SS.log.gz)
	conns int64
}

// replayHours lists the scenario's Zeek hours in time order.
func replayHours(t *testing.T, data string, truth *scenario.Truth) []replayHour {
	t.Helper()
	byHour := map[string]*replayHour{}
	for _, f := range truth.Files {
		day, name := filepath.Split(f)
		day = strings.TrimSuffix(day, "/")
		if len(day) != len(time.DateOnly) || !strings.HasSuffix(name, ".log.gz") {
			continue
		}
		_, span, _ := strings.Cut(name, ".")
		key := day + " " + span
		h := byHour[key]
		if h == nil {
			h = &replayHour{day: day}
			byHour[key] = h
		}
		p := filepath.Join(data, filepath.FromSlash(f))
		h.files = append(h.files, p)
		if strings.HasPrefix(name, "conn.") {
			h.conns += countRecords(t, p)
		}
	}
	out := make([]replayHour, 0, len(byHour))
	for _, k := range slices.Sorted(maps.Keys(byHour)) {
		out = append(out, *byHour[k])
	}
	return out
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countRecords(t *testing.T, path string) int64 {
	var n int64
	sc := bufio.NewScanner(bytes.NewReader(gunzip(t, path)))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 && sc.Bytes()[0] != '#' {
			n++
		}
	}
	return n
}

// write replays the hour as Zeek writes it: each log grows in current/
// in two parts, then is rotated: compressed into the day's directory and
// removed from current/.
func (h *replayHour) write(t *testing.T, live string) {
	t.Helper()
	cur := filepath.Join(live, "current")
	if err := os.MkdirAll(cur, 0o755); err != nil {
		t.Fatal(err)
	}
	type log struct {
		name, rotated string
		data          []byte
	}
	logs := make([]log, 0, len(h.files))
	for _, f := range h.files {
		name := filepath.Base(f)
		typ, _, _ := strings.Cut(name, ".")
		logs = append(logs, log{typ + ".log", filepath.Join(live, h.day, name), gunzip(t, f)})
	}
	for part := range 2 {
		for _, l := range logs {
			cut := bytes.IndexByte(l.data[len(l.data)/2:], '\n') + len(l.data)/2 + 1
			chunk := l.data[:cut]
			if part == 1 {
				chunk = l.data[cut:]
			}
			f, err := os.OpenFile(filepath.Join(cur, l.name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(chunk); err != nil {
				t.Fatal(err)
			}
			_ = f.Close()
		}
	}
	if err := os.MkdirAll(filepath.Join(live, h.day), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(l.data)
		_ = zw.Close()
		// Written beside the followed directory, then moved in whole.
		tmp := filepath.Join(filepath.Dir(live), "rotating.gz")
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, l.rotated); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(cur, l.name)); err != nil {
			t.Fatal(err)
		}
	}
}
