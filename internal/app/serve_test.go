package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/alert"
	"github.com/dwell-nsm/dwell/internal/alert/alerttest"
)

// lockedBuffer is a bytes.Buffer several goroutines write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs dwell serve in this process until the test ends, and
// returns once it serves. Its log is returned.
func startServe(t *testing.T, args ...string) (*lockedBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	a := &App{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, Logger: slog.New(slog.DiscardHandler), Now: time.Now}
	done := make(chan int, 1)
	go func() { done <- a.Main(ctx, append([]string{"serve"}, args...)) }()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("dwell serve did not stop:\n%s", out.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	for range 600 {
		if strings.Contains(out.String(), "dwell serve: ") {
			return out, stop
		}
		select {
		case code := <-done:
			t.Fatalf("dwell serve ended with %d:\n%s", code, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("dwell serve did not start:\n%s", out.String())
	return nil, nil
}

// readServerFile reads the server file a dwell serve of store db wrote.
func readServerFile(t *testing.T, db string) serverFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(db+".serve", serverFileName))
	if err != nil {
		t.Fatal(err)
	}
	var sf serverFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		t.Fatal(err)
	}
	return sf
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("waited a minute for %s", what)
}

// TestServe runs dwell serve over a followed directory: logs written
// there become queryable through the server, every command runs through
// it with the same output as without it, a hunt follows new data, the
// web-shell incident it finds is announced once by webhook, syslog and
// mail (receivers started here), and the server stops cleanly.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dwell.db")
	follow := filepath.Join(dir, "zeek")
	if err := os.MkdirAll(follow, 0o755); err != nil {
		t.Fatal(err)
	}
	hook, hookIn := alerttest.Webhook(t, 1) // the first delivery fails: retried
	syslogAddr, syslogIn := alerttest.SyslogUDP(t)
	smtpAddr, ca, mailIn := alerttest.SMTP(t, false)
	cfgFile := filepath.Join(dir, "dwell.yaml")
	cfg := fmt.Sprintf(`store: %s
serve:
  listen: 127.0.0.1:0
  poll: 100ms
  hunt_after: 200ms
  follow:
    - path: %s
      sensor: dmz
  alerts:
    min_severity: high
    webhooks: [{url: %q}]
    syslog: [{address: %q, format: cef}]
    email: [{server: %q, from: dwell@ministry.example, to: [soc@ministry.example], require_tls: true, ca_file: %q}]
`, db, follow, hook, syslogAddr, smtpAddr, ca)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log, stop := startServe(t, "--config", cfgFile)
	st, err := os.Stat(filepath.Join(db+".serve", "token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}

	// Logs arrive in the followed directory, in two parts.
	src, err := os.ReadFile("../detect/httpanom/testdata/http/http.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(string(src)), "\n")
	half := len(lines) / 2
	logFile := filepath.Join(follow, "http.log")
	if err := os.WriteFile(logFile, []byte(strings.Join(lines[:half], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	count := func() string {
		code, out, errOut := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM http")
		if code != ExitOK {
			t.Fatalf("query through the server: %d %s", code, errOut)
		}
		return strings.TrimSpace(out)
	}
	waitFor(t, "the first half", func() bool { return count() == fmt.Sprintf("n\n%d", half) })
	f, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Join(lines[half:], "") + "\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	waitFor(t, "the whole log", func() bool { return count() == fmt.Sprintf("n\n%d", len(lines)) })

	// A hunt follows, and its incident is announced by each channel once.
	waitFor(t, "the alerts", func() bool {
		return len(hookIn.Messages()) > 0 && len(syslogIn.Messages()) > 0 && len(mailIn.Messages()) > 0
	})
	var a alert.Alert
	if err := json.Unmarshal([]byte(hookIn.Messages()[0]), &a); err != nil {
		t.Fatal(err)
	}
	if a.Event != "new" || a.Severity != "critical" || !slices.Contains(a.Attack, "T1505.003") || a.TLP != "amber" || a.Hosts[0] != "10.2.0.25" {
		t.Errorf("webhook alert %+v", a)
	}
	if m := syslogIn.Messages()[0]; !strings.Contains(m, "CEF:0|dwell|dwell|1|incident-new|") || !strings.Contains(m, a.Incident) {
		t.Errorf("syslog: %s", m)
	}
	if m := mailIn.Messages()[0]; !strings.Contains(m, "Subject: [TLP:AMBER] dwell: new incident "+a.Incident) || !mailIn.Encrypted()[0] {
		t.Errorf("mail: %s", m)
	}

	// Commands through the server print what they print without it.
	code, status, _ := runDwell(t, "status", "--db", db)
	if code != ExitOK || !strings.Contains(status, "dmz") {
		t.Errorf("status through the server: %s", status)
	}
	if code, _, errOut := runDwell(t, "query", "--db", db, "DROP TABLE http"); code != ExitFail || !strings.Contains(errOut, "read-only") {
		t.Errorf("a write through the server's query: %d %s", code, errOut)
	}
	if code, _, errOut := runDwell(t, "ingest", "--db", db, "-"); code != ExitUsage || !strings.Contains(errOut, "standard input") {
		t.Errorf("ingest - through the server: %d %s", code, errOut)
	}
	// The API itself, with the token and without.
	sf := readServerFile(t, db)
	token, _ := os.ReadFile(filepath.Join(db+".serve", "token"))
	req, _ := http.NewRequestWithContext(t.Context(), "GET", sf.URL+"/api/v1/incidents/"+a.Incident, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"web shell`) && !strings.Contains(string(body), a.Incident) {
		t.Errorf("GET incident: %d %s", resp.StatusCode, body)
	}
	// An account's API token: what its role allows, as the account sees it.
	if code, out, errOut := runDwell(t, "users", "add", "--db", db, "--role", "viewer", "victor"); code != ExitOK {
		t.Fatalf("users add: %s %s", out, errOut)
	}
	code, out, errOut := runDwell(t, "users", "token", "--db", db, "--label", "report", "victor")
	userToken := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if code != ExitOK || !strings.HasPrefix(userToken, "dwl_") {
		t.Fatalf("users token: %q %s", out, errOut)
	}
	for path, want := range map[string]int{"/api/v1/incidents": 200, "/api/v1/status": 200} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", sf.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+userToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s with victor's token: %s", path, resp.Status)
		}
	}
	req, _ = http.NewRequestWithContext(t.Context(), "POST", sf.URL+"/api/v1/query", strings.NewReader(`{"sql": "SELECT 1"}`))
	req.Header.Set("Authorization", "Bearer "+userToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a viewer's token ran SQL: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	req, _ = http.NewRequestWithContext(t.Context(), "GET", sf.URL+"/metrics", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, m := range []string{`dwell_ingest_records_total{sensor="dmz",table="http"} 1211`, `dwell_hunts_total{outcome="done"}`,
		`dwell_alerts_total{outcome="delivered"} 9`, "dwell_store_bytes", "dwell_api_commands_total", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// The three incidents were announced once each, and more hunts
	// announce nothing again.
	if code, _, errOut := runDwell(t, "hunt", "--db", db, "--format", "json"); code != ExitOK {
		t.Fatalf("hunt through the server: %s", errOut)
	}
	// New data triggers another hunt.
	if err := os.WriteFile(filepath.Join(follow, "more.log"), []byte(lines[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the next hunt", func() bool { return strings.Count(log.String(), "msg=hunted") >= 3 })
	// So does data a command stores through the server.
	elsewhere := filepath.Join(dir, "elsewhere.log")
	if err := os.WriteFile(elsewhere, []byte(lines[2]), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runDwell(t, "ingest", "--db", db, "--complete", elsewhere); code != ExitOK {
		t.Fatalf("ingest through the server: %s %s", out, errOut)
	}
	waitFor(t, "a hunt after the command's ingest", func() bool { return strings.Count(log.String(), "msg=hunted") >= 4 })
	seen := map[string]bool{}
	for _, m := range hookIn.Messages() {
		var a alert.Alert
		if err := json.Unmarshal([]byte(m), &a); err != nil {
			t.Fatal(err)
		}
		if seen[a.Incident] {
			t.Errorf("%s announced twice", a.Incident)
		}
		seen[a.Incident] = true
	}
	if len(seen) != 3 || len(syslogIn.Messages()) != 3 || len(mailIn.Messages()) != 3 {
		t.Errorf("%d incidents announced; %d syslog messages, %d mails", len(seen), len(syslogIn.Messages()), len(mailIn.Messages()))
	}
	code, incidents, errOut := runDwell(t, "incidents", "--db", db, "--format", "json")
	if code != ExitOK || !strings.Contains(incidents, a.Incident) {
		t.Fatalf("incidents through the server: %d %s %s", code, incidents, errOut)
	}
	if code, out, errOut := runDwell(t, "incidents", "--db", db, "--history"); code != ExitOK || !strings.Contains(out, a.Incident+"  ") ||
		!regexp.MustCompile(`(?m)^    \S+ \S+  new `).MatchString(out) {
		t.Errorf("incident history: %d %s %s", code, out, errOut)
	}

	// SIGHUP: the configuration is read again; a directory added to it is
	// followed from then on.
	second := filepath.Join(dir, "zeek2")
	if err := os.MkdirAll(second, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second, "http.log"), []byte(lines[1]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = strings.Replace(cfg, "  follow:\n", fmt.Sprintf("  follow:\n    - path: %s\n      sensor: dmz2\n", second), 1)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded configuration's directory", func() bool {
		_, out, _ := runDwell(t, "query", "--db", db, "--format", "csv", "SELECT count(*) AS n FROM http WHERE sensor = 'dmz2'")
		return strings.TrimSpace(out) == "n\n1"
	})

	if code := stop(); code != ExitOK {
		t.Fatalf("serve ended with %d:\n%s", code, log.String())
	}
	if _, err := os.Stat(filepath.Join(db+".serve", serverFileName)); !os.IsNotExist(err) {
		t.Errorf("server file left behind: %v", err)
	}
	// Without the server the same command opens the store itself.
	code, direct, errOut := runDwell(t, "incidents", "--db", db, "--format", "json")
	if code != ExitOK || direct != incidents {
		t.Errorf("incidents without the server differ (%d %s):\n%s\n---\n%s", code, errOut, direct, incidents)
	}
}

// TestServeTLS: on a generated certificate the server's file names it, a
// command that finds the server through the store pins it, and one that
// names the server with --server and --token-file does too; a wrong
// token is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "dwell.db")
	cfgFile := filepath.Join(dir, "dwell.yaml")
	if err := os.WriteFile(cfgFile, []byte("store: "+db+"\nserve:\n  listen: 127.0.0.1:0\n  tls: auto\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, "--config", cfgFile)
	sf := readServerFile(t, db)
	if !strings.HasPrefix(sf.URL, "https://") || sf.Cert == "" {
		t.Fatalf("server file %+v", sf)
	}
	if code, out, errOut := runDwell(t, "ingest", "--db", db, "--complete", "../../examples/zeek"); code != ExitOK {
		t.Fatalf("ingest through the TLS server: %s %s", out, errOut)
	}
	code, out, errOut := runDwell(t, "query", "--server", sf.URL, "--token-file", filepath.Join(db+".serve", "token"), "--db", db,
		"--format", "csv", "SELECT count(*) > 0 AS ok FROM conn")
	if code != ExitOK || strings.TrimSpace(out) != "ok\ntrue" {
		t.Errorf("query with --server: %d %s %s", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(bad, []byte("not-the-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runDwell(t, "status", "--server", sf.URL, "--token-file", bad, "--db", db); code != ExitFail || !strings.Contains(errOut, "401") {
		t.Errorf("a wrong token: %d %s", code, errOut)
	}
	// A client that does not trust the certificate is refused by TLS.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", sf.URL+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusted client reached the server: %v", err)
	}
}
