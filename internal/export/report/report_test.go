package report

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/geo"
)

var t0 = time.Date(2025, 3, 4, 9, 20, 0, 0, time.UTC)

func sample() *Data {
	a := netip.MustParseAddr
	fs := []detect.Finding{
		{Detector: "httpanom", Score: 0.87, Src: a("203.0.113.46"), Dst: a("10.20.0.25"), FirstSeen: t0, LastSeen: t0.Add(72 * time.Hour),
			Summary: "13 POST(s) to /owa/auth/OutlookEN.aspx came from 3 outside addresses <script>alert(1)</script>"},
		{Detector: "beacon", Score: 0.93, Src: a("10.20.0.25"), Dst: a("198.51.100.23"), FirstSeen: t0.Add(2 * time.Hour), LastSeen: t0.Add(240 * time.Hour),
			Summary: "10.20.0.25 checks in with 198.51.100.23 every 4.1h"},
		{Detector: "exfil", Score: 0.75, Src: a("10.10.0.63"), Dst: a("198.51.100.50"), FirstSeen: t0.Add(150 * time.Hour), LastSeen: t0.Add(200 * time.Hour),
			Summary: "10.10.0.63 sent 131.6 MB to 198.51.100.50"},
	}
	inc := correlate.Incident{ID: "INC-5adc20b96c", Class: correlate.ClassEspionage, Score: 1, Severity: detect.SeverityOf(1),
		Summary: "espionage on 2 internal host(s)", Hosts: []netip.Addr{a("10.10.0.63"), a("10.20.0.25")}, Accounts: []string{},
		Infrastructure: []correlate.Infra{{Kind: "ip", Value: "198.51.100.23", Hosts: 1, Detectors: []string{"beacon"},
			Origin: &geo.Info{ASN: 64501, ASOrg: "Rent-A-Server B.V.", Country: "NL"}}},
		FirstContact: &correlate.Contact{At: t0.Add(-40 * 24 * time.Hour), Src: a("10.20.0.25"), Dst: a("198.51.100.23"), Port: 443, Proto: "tcp"},
		Answers: &correlate.Answers{TakenBytes: 131577698, Caveat: "hypotheses, not findings of fact",
			Taken: []correlate.Taken{{Dst: a("198.51.100.50"), Names: []string{"backup.vps-host.example"}, Hosts: []netip.Addr{a("10.10.0.63")},
				Bytes: 131577698, Conns: 40, PerDay: []correlate.DayBytes{{Day: "2025-03-10", Bytes: 131577698}},
				Transfers: []correlate.Transferred{{At: t0, Log: "files", Src: a("10.10.0.63"), Dst: a("198.51.100.50"), Bytes: 5000,
					Name: "budget<b>.xlsx", SHA256: "cafe", File: "/nsm/files.log", Line: 7}}}},
			HostActions: []correlate.HostAction{{At: t0, Computer: "WS-B", What: "archive created", Object: `C:\d.rar`, EventID: 11, Count: 1,
				File: "ws-b.evtx", Line: 4096}},
			Hypotheses: []correlate.Hypothesis{{Actor: "GLASS LYNX", Country: "ZZ", Score: 0.7, Intel: 0.6, Behaviour: 0.4,
				For: []string{"indicator 198.51.100.23, attributed to GLASS LYNX"}, Against: []string{}}}},
		DwellStart: t0, LastSeen: t0.Add(240 * time.Hour), Attack: []string{"T1190", "T1505.003", "T1071.001", "T1048"}, Findings: fs,
		BytesOut: []correlate.Transfer{{Src: a("10.10.0.63"), Dst: a("198.51.100.50"), Bytes: 131577698,
			PerDay: []correlate.DayBytes{{Day: "2025-03-10", Bytes: 100000000}, {Day: "2025-03-11", Bytes: 31577698}}}}}
	return &Data{Title: "Case 42", TLP: event.TLPAmber, Generated: t0.Add(1000 * time.Hour), Version: "dwell test", Command: "dwell export report --out r.html",
		HuntedAt: t0.Add(999 * time.Hour), Incidents: []correlate.Incident{inc},
		Evidence: [][]*Evidence{{{Table: "http", SourceFile: "/nsm/2025-03-04/http.09:00:00-10:00:00.log.gz", SourceLine: 243, Record: "method=POST uri=/owa/auth/OutlookEN.aspx"}, nil,
			{Table: "conn", SourceFile: "/nsm/conn.log", SourceLine: 9, Record: "orig_bytes=25069616"}}},
		Inputs: []Input{{Path: "/nsm/conn.log", Sensor: "dmz", Size: 1234, Rows: 10, SHA256: strings.Repeat("ab", 32)}, {Path: "/gone.log", Note: "not readable now"}}}
}

func TestHTML(t *testing.T) {
	out, err := HTML(sample())
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"TLP:AMBER", `id="summary"`, `id="INC-5adc20b96c"`, `class="timeline"`, `class="infrastructure"`,
		`class="exfiltration"`, "131577698", `aria-label="bytes per day"`, "T1190 → T1505.003 → T1071.001 → T1048", `class="evidence"`,
		"/nsm/2025-03-04/http.09:00:00-10:00:00.log.gz:243", `id="manifest"`, "Origin, data taken, attribution", "AS64501 Rent-A-Server B.V.",
		"40 days before the first finding", `class="taken"`, "budget&lt;b&gt;.xlsx", "/nsm/files.log:7", `class="collection"`, "ws-b.evtx:4096",
		"the leading hypothesis is GLASS LYNX (placed in ZZ)", "hypotheses, not findings of fact", strings.Repeat("ab", 32), "dwell export report --out r.html"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(s, "<script>") {
		t.Error("a finding's text is not escaped")
	}
	// Self-contained: nothing is fetched.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).FindString(s); m != "" {
		t.Errorf("the report fetches something: %s", m)
	}
	var back Data
	data, err := JSON(sample())
	if err != nil || json.Unmarshal(data, &back) != nil || back.Incidents[0].ID != "INC-5adc20b96c" {
		t.Errorf("JSON report: %v", err)
	}
}

// TestChromium renders the report in headless Chromium (Debian's
// chromium; .ci/run installs it), checks its sections in the rendered DOM
// and takes a screenshot (kept in DWELL_SCREENSHOTS when it names a
// directory).
func TestChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed: the report is not rendered")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	html, err := HTML(sample())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, html, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")}
	dom, err := exec.CommandContext(t.Context(), chromium, append(args, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, want := range []string{`id="tlp"`, `id="summary"`, `id="INC-5adc20b96c"`, `<svg class="timeline"`, `id="manifest"`} {
		if !bytes.Contains(dom, []byte(want)) {
			t.Errorf("rendered DOM lacks %s", want)
		}
	}
	shot := filepath.Join(dir, "report.png")
	if out, err := exec.CommandContext(t.Context(), chromium, append(args, "--screenshot="+shot, "--window-size=1280,2200", "file://"+page)...).CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 10000 {
		t.Fatalf("screenshot: %v, %d bytes", err, len(png))
	}
	if keep := os.Getenv("DWELL_SCREENSHOTS"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, "report.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
