package console

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
)

// hostile is what an attacker puts in the fields dwell shows.
const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>"'><svg onload=alert(3)>javascript:alert(4)` + "\x00\x1b[31m"

// fakeDwell answers the console's commands from two incidents, one of
// them TLP:RED for alice only; it records the triage commands it runs.
type fakeDwell struct {
	mu     sync.Mutex
	triage []string
}

func (f *fakeDwell) incidents() []correlate.Incident {
	t0 := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	mk := func(id, summary string) correlate.Incident {
		return correlate.Incident{ID: id, Class: correlate.ClassEspionage, Score: 0.9, Severity: detect.SeverityCritical, Summary: summary,
			Hosts: []netip.Addr{netip.MustParseAddr("10.1.0.50")}, HostNames: []string{hostile}, DwellStart: t0, LastSeen: t0.Add(72 * time.Hour),
			Attack: []string{"T1071.001"}, Infrastructure: []correlate.Infra{{Kind: "domain", Value: hostile, Hosts: 1, Detectors: []string{"beacon"}}},
			BytesOut: []correlate.Transfer{{Dst: netip.MustParseAddr("198.51.100.7"), Domain: hostile, Bytes: 3 << 20,
				PerDay: []correlate.DayBytes{{Day: "2025-03-03", Bytes: 1 << 20}, {Day: "2025-03-05", Bytes: 2 << 20}}}},
			Answers: &correlate.Answers{TakenBytes: 3 << 20, Caveat: "hypotheses, not findings of fact",
				Taken: []correlate.Taken{{Dst: netip.MustParseAddr("198.51.100.7"), Names: []string{hostile}, Bytes: 3 << 20, Conns: 2,
					Transfers: []correlate.Transferred{{Log: "files", Name: hostile, SHA256: "abcd", File: "files.log", Line: 7}}}},
				HostActions: []correlate.HostAction{{At: t0, Computer: "WS-1", What: "archive created", Object: hostile, Count: 1}},
				Hypotheses:  []correlate.Hypothesis{{Actor: hostile, Country: "ZZ", Score: 0.7, Intel: 0.6, For: []string{hostile}}}},
			Findings: []detect.Finding{{Detector: "beacon", Score: 0.9, Severity: detect.SeverityCritical, Src: netip.MustParseAddr("10.1.0.50"),
				Dst: netip.MustParseAddr("198.51.100.7"), Domain: hostile, FirstSeen: t0, LastSeen: t0.Add(72 * time.Hour), Summary: hostile,
				Evidence: map[string]any{"user_agent": hostile}},
				{Detector: "exfil", Score: 0.5, Severity: detect.SeverityMedium, Src: netip.MustParseAddr("10.1.0.50"),
					Dst: netip.MustParseAddr("198.51.100.7"), FirstSeen: t0, LastSeen: t0.Add(48 * time.Hour), Summary: "uploads",
					Evidence: map[string]any{"host_median_daily_bytes_out": 5_000_000,
						"bytes_out_per_day": []map[string]any{{"day": "2025-03-03", "bytes": 400_000_000}, {"day": "2025-03-05", "bytes": 2_000}},
						"host_bytes_out_per_day": []map[string]any{{"day": "2025-02-20", "bytes": 4_000_000}, {"day": "2025-03-03", "bytes": 405_000_000},
							{"day": "2025-03-05", "bytes": 6_000_000}, {"day": "not a day", "bytes": 1}, {"day": "2025-03-06", "bytes": "x"}}}}}}
	}
	return []correlate.Incident{mk("INC-aaaa", "an espionage campaign "+hostile), mk("INC-bbbb", "the secret one"), mk("INC-cccc", "for the ministry only")}
}

func (f *fakeDwell) triageOf(id string) map[string]any {
	t := map[string]any{"status": "new", "tlp": "amber", "notes": []map[string]any{{"at": time.Now(), "by": "bob", "text": "**bold** " + hostile +
		"\n\n[click](javascript:alert(5)) <iframe src=x></iframe>"}}}
	switch id {
	case "INC-bbbb":
		t["tlp"], t["people"] = "red", []string{"alice"}
	case "INC-cccc":
		t["tlp"] = "amber+strict"
	default:
		t["status"], t["reason"] = "false_positive", "an authorised test"
	}
	return t
}

func (f *fakeDwell) Run(_ context.Context, args []string, stdout, stderr io.Writer) int {
	as := ""
	if i := slices.Index(args, "--as"); i >= 0 {
		as = args[i+1]
	}
	external := slices.Contains(args, "--external=true")
	visible := func(id string) bool { return (id != "INC-bbbb" || as == "alice") && (id != "INC-cccc" || !external) }
	switch args[0] {
	case "incidents":
		if slices.Contains(args, "--history") {
			_ = json.NewEncoder(stdout).Encode(map[string]any{"incidents": []map[string]any{
				{"id": "INC-aaaa", "first_reported": time.Now().Add(time.Hour), "last_changed": time.Now().Add(time.Hour)},
				{"id": "INC-bbbb", "first_reported": time.Now().Add(-time.Hour), "last_changed": time.Now().Add(time.Hour)}}})
			return 0
		}
		incs := slices.DeleteFunc(f.incidents(), func(i correlate.Incident) bool { return !visible(i.ID) })
		tri := map[string]any{}
		for _, i := range incs {
			tri[i.ID] = f.triageOf(i.ID)
		}
		_ = json.NewEncoder(stdout).Encode(map[string]any{"hunted_at": time.Now(), "incidents": incs, "triage": tri})
	case "incident":
		id := args[len(args)-1]
		for _, i := range f.incidents() {
			if i.ID == id && visible(id) {
				_ = json.NewEncoder(stdout).Encode(map[string]any{"incident": i, "triage": f.triageOf(id)})
				return 0
			}
		}
		fmt.Fprintf(stderr, "dwell incident: no incident %s in the last hunt\n", id)
		return 1
	case "intel":
		if args[1] == "sightings" {
			_ = json.NewEncoder(stdout).Encode(map[string]any{"sightings": []map[string]any{
				{"type": "ip", "observed": "203.0.113.9", "log": "conn", "sensor": "s", "count": 3, "peers": []string{"10.1.0.50"}, "tlp": "amber"},
				{"type": "domain", "observed": "red-secret.example", "log": "dns", "sensor": "s", "count": 1, "tlp": "red"}}})
			return 0
		}
		if args[1] == "import" {
			f.mu.Lock()
			f.triage = append(f.triage, strings.Join(args[:4], " "))
			f.mu.Unlock()
			fmt.Fprintln(stdout, "imported 1 indicator")
			return 0
		}
		_ = json.NewEncoder(stdout).Encode(map[string]any{"indicators": []map[string]any{
			{"Source": "cert.example", "Type": "ip", "Value": "203.0.113.9", "Name": hostile, "TLP": "amber"},
			{"Source": "partner", "Type": "domain", "Value": "red-secret.example", "Name": "the partner's source", "TLP": "red"},
			{"Source": "own", "Type": "domain", "Value": "strict-secret.example", "Name": "ours only", "TLP": "amber+strict"}}})
	case "export":
		if args[1] == "report" {
			out := args[slices.Index(args, "--out")+1]
			_ = os.WriteFile(out, []byte("<html>report of "+args[3]+"</html>"), 0o600)
			return 0
		}
		fmt.Fprintln(stdout, "value,kind\n198.51.100.7,ip")
	case "allow", "triage":
		f.mu.Lock()
		f.triage = append(f.triage, strings.Join(args, " "))
		f.mu.Unlock()
		fmt.Fprintln(stdout, "{}")
	case "query":
		w := csv.NewWriter(stdout)
		_ = w.WriteAll([][]string{{"n", "v"}, {"1", hostile}})
	}
	return 0
}

// site is a console under test with its accounts.
type site struct {
	*httptest.Server
	f     *fakeDwell
	audit string
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	for name, role := range map[string]string{"alice": RoleAnalyst, "victor": RoleViewer, "ada": RoleAdmin, "pierre": RoleViewer, "paula": RoleAdmin} {
		if err := users.Set(name, role, "correct horse battery "+name, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"pierre", "paula"} {
		if err := users.SetOrg(name, "cert.partner.example"); err != nil {
			t.Fatal(err)
		}
	}
	audit, err := OpenAudit(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDwell{}
	c, err := New(Options{Runner: f, Users: users, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	return &site{Server: httptest.NewServer(c), f: f, audit: filepath.Join(dir, "audit.jsonl")}
}

// client is a browser: it keeps cookies, does not follow redirects, and
// sends Origin like one.
func (s *site) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// answer is what a request got (its body read and closed).
type answer struct {
	StatusCode int
	Status     string
	Header     http.Header
	cookies    []*http.Cookie
}

func (a *answer) Cookies() []*http.Cookie { return a.cookies }

func read(t *testing.T, resp *http.Response) (*answer, string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return &answer{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header, cookies: resp.Cookies()}, string(b)
}

func (s *site) post(t *testing.T, c *http.Client, path string, form url.Values, origin string) (*answer, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func (s *site) get(t *testing.T, c *http.Client, path string) (*answer, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func (s *site) login(t *testing.T, name string) (*http.Client, string) {
	t.Helper()
	c := s.client(t)
	resp, _ := s.post(t, c, "/login", url.Values{"user": {name}, "password": {"correct horse battery " + name}}, s.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/incidents" {
		t.Fatalf("login %s: %s", name, resp.Status)
	}
	_, page := s.get(t, c, "/incidents")
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page")
	}
	return c, m[1]
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestLoginAndLockout(t *testing.T) {
	s := newSite(t)
	c := s.client(t)
	if resp, _ := s.get(t, c, "/incidents"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("unauthenticated: %s", resp.Status)
	}
	for i := range 5 {
		resp, body := s.post(t, c, "/login", url.Values{"user": {"alice"}, "password": {"wrong"}}, s.URL)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password") {
			t.Fatalf("attempt %d: %s", i, resp.Status)
		}
	}
	// Locked: even the right password is refused now.
	resp, body := s.post(t, c, "/login", url.Values{"user": {"alice"}, "password": {"correct horse battery alice"}}, s.URL)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Too many failed logins") {
		t.Fatalf("after five failures: %s %s", resp.Status, body)
	}
	// The address is locked out too now; the rest runs on a new console.
	s = newSite(t)
	u, _ := url.Parse(s.URL)
	// A login from another site's page is refused.
	resp, _ = s.post(t, s.client(t), "/login", url.Values{"user": {"ada"}, "password": {"correct horse battery ada"}}, "https://evil.example")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cross-site login: %s", resp.Status)
	}
	// Session fixation: a session id planted before login is not the one
	// after it, and it opens nothing.
	c2 := s.client(t)
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "planted-by-attacker"}})
	resp, _ = s.post(t, c2, "/login", url.Values{"user": {"ada"}, "password": {"correct horse battery ada"}}, s.URL)
	var sid string
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			sid = ck.Value
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
				t.Errorf("cookie flags: %+v", ck)
			}
		}
	}
	if sid == "" || sid == "planted-by-attacker" {
		t.Errorf("session id after login: %q", sid)
	}
	attacker := s.client(t)
	attacker.Jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "planted-by-attacker"}})
	if resp, _ := s.get(t, attacker, "/incidents"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the planted id opened a session: %s", resp.Status)
	}
}

func TestRolesCSRFAndNeedToKnow(t *testing.T) {
	s := newSite(t)
	victor, vtok := s.login(t, "victor")
	alice, atok := s.login(t, "alice")
	ada, _ := s.login(t, "ada")

	// TLP:RED: alice is named, victor and ada are not.
	if _, page := s.get(t, alice, "/incidents"); !strings.Contains(page, "INC-bbbb") {
		t.Errorf("alice does not see the RED incident she is named on")
	}
	if resp, page := s.get(t, alice, "/incidents/INC-bbbb"); resp.StatusCode != 200 || !strings.Contains(page, "TLP:RED") {
		t.Errorf("alice's view of the RED incident: %s", resp.Status)
	}
	for _, c := range []*http.Client{victor, ada} {
		if _, page := s.get(t, c, "/incidents"); strings.Contains(page, "INC-bbbb") || strings.Contains(page, "secret") {
			t.Errorf("the RED incident is listed for someone not named on it")
		}
		if resp, page := s.get(t, c, "/incidents/INC-bbbb"); resp.StatusCode != http.StatusNotFound || strings.Contains(page, "secret") {
			t.Errorf("the RED incident's page: %s", resp.Status)
		}
	}
	// A viewer cannot change anything, even with a valid token.
	if resp, _ := s.post(t, victor, "/incidents/INC-aaaa/triage", url.Values{"csrf": {vtok}, "status": {"closed"}}, s.URL); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer triage: %s", resp.Status)
	}
	if resp, _ := s.get(t, victor, "/sql"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer SQL: %s", resp.Status)
	}
	// CSRF: no token, a wrong token, or another origin change nothing.
	for _, tc := range []struct{ tok, origin string }{{"", s.URL}, {"forged", s.URL}, {atok, "https://evil.example"}, {atok, ""}} {
		resp, _ := s.post(t, alice, "/incidents/INC-aaaa/triage", url.Values{"csrf": {tc.tok}, "status": {"closed"}, "reason": {"x"}}, tc.origin)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("token %q origin %q: %s", tc.tok, tc.origin, resp.Status)
		}
	}
	if len(s.f.triage) != 0 {
		t.Fatalf("triage ran: %v", s.f.triage)
	}
	// The analyst's real change goes through, as her.
	resp, _ := s.post(t, alice, "/incidents/INC-aaaa/triage", url.Values{"csrf": {atok}, "status": {"investigating"}, "assignee": {"alice"},
		"note": {"seen"}}, s.URL)
	if resp.StatusCode != http.StatusSeeOther || len(s.f.triage) != 1 ||
		s.f.triage[0] != "triage --format json --by alice --status investigating --assignee alice --note seen -- INC-aaaa" {
		t.Errorf("triage: %s %v", resp.Status, s.f.triage)
	}
	// Logout ends the session.
	s.post(t, alice, "/logout", url.Values{"csrf": {atok}}, s.URL)
	if resp, _ := s.get(t, alice, "/incidents"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %s", resp.Status)
	}

	// The audit trail has it all, and an edit is caught.
	n, _, err := VerifyFile(s.audit)
	if err != nil || n < 5 {
		t.Fatalf("audit: %d entries, %v", n, err)
	}
	b, _ := os.ReadFile(s.audit)
	text := string(b)
	for _, want := range []string{`"action":"login","object"`, `"action":"view_red","object":"INC-bbbb"`, `"action":"triage"`, `"action":"logout"`} {
		if !strings.Contains(text, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	edited := strings.Replace(text, `"user":"alice","action":"triage"`, `"user":"victor","action":"triage"`, 1)
	_ = os.WriteFile(s.audit, []byte(edited), 0o600)
	if _, _, err := VerifyFile(s.audit); err == nil || !strings.Contains(err.Error(), "edited") {
		t.Errorf("an edited entry: %v", err)
	}
	lines := strings.SplitAfter(strings.TrimSpace(text), "\n")
	_ = os.WriteFile(s.audit, []byte(strings.Join(append(lines[:1], lines[2:]...), "")), 0o600)
	if _, _, err := VerifyFile(s.audit); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("a removed entry: %v", err)
	}
	swapped := append([]string{lines[1], lines[0]}, lines[2:]...)
	_ = os.WriteFile(s.audit, []byte(strings.Join(swapped, "")), 0o600)
	if _, _, err := VerifyFile(s.audit); err == nil {
		t.Errorf("reordered entries pass")
	}
}

// TestHostileValuesEscaped: what an attacker wrote in logs, intel or
// notes reaches the page as text; the browser test runs the same pages.
func TestHostileValuesEscaped(t *testing.T) {
	s := newSite(t)
	ada, tok := s.login(t, "ada")
	for _, path := range []string{"/incidents", "/incidents/INC-aaaa"} {
		resp, page := s.get(t, ada, path)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s headers: %v", path, resp.Header)
		}
		for _, bad := range []string{"<script>alert", "<img src=x onerror", "<svg onload", `href="javascript:`, "<iframe", "\x1b["} {
			if strings.Contains(page, bad) {
				t.Errorf("%s carries %q", path, bad)
			}
		}
	}
	_, page := s.get(t, ada, "/incidents/INC-aaaa")
	if !strings.Contains(page, "<strong>bold</strong>") || !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "<svg class=\"plot\"") {
		t.Errorf("the incident page lost its note's Markdown, the escaped text or the plot")
	}
	for _, want := range []string{`id="answers"`, `id="taken"`, "files.log:7", `id="host-actions"`, `id="hypotheses"`, "placed in ZZ", "hypotheses, not findings of fact"} {
		if !strings.Contains(page, want) {
			t.Errorf("the incident page lacks %q of the prosecutors' questions", want)
		}
	}
	_, page = s.post(t, ada, "/sql", url.Values{"csrf": {tok}, "q": {"SELECT 1"}, "format": {"table"}}, s.URL)
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("SQL results not escaped")
	}
	resp, csv := s.post(t, ada, "/sql", url.Values{"csrf": {tok}, "q": {"SELECT 1"}, "format": {"csv"}}, s.URL)
	if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") ||
		!strings.HasPrefix(csv, "n,v\n") {
		t.Errorf("CSV download: %v %q", resp.Header, csv)
	}
}

// TestHostAndIntelPages: a host's page lists only the incidents the user
// may see; TLP:RED indicators' values are for admins; importing intel
// needs an analyst and the CSRF token, and names the importer.
func TestHostAndIntelPages(t *testing.T) {
	s := newSite(t)
	victor, vtok := s.login(t, "victor")
	alice, atok := s.login(t, "alice")
	ada, _ := s.login(t, "ada")
	if _, page := s.get(t, alice, "/hosts/10.1.0.50"); !strings.Contains(page, "INC-aaaa") || !strings.Contains(page, "INC-bbbb") {
		t.Errorf("alice's host page lacks an incident")
	}
	if _, page := s.get(t, victor, "/hosts/10.1.0.50"); !strings.Contains(page, "INC-aaaa") || strings.Contains(page, "INC-bbbb") {
		t.Errorf("victor's host page shows the RED incident or misses the other")
	}
	if resp, _ := s.get(t, victor, "/hosts/10.1.0.50';DROP"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a host that is no address: %s", resp.Status)
	}
	if _, page := s.get(t, victor, "/intel"); strings.Contains(page, "red-secret.example") || !strings.Contains(page, "(TLP:RED)") ||
		strings.Contains(page, "<script>alert") {
		t.Errorf("victor's intel page shows a RED value or unescaped text")
	}
	if _, page := s.get(t, ada, "/intel"); !strings.Contains(page, "red-secret.example") {
		t.Errorf("the admin does not see the RED indicator")
	}
	if _, page := s.get(t, victor, "/intel"); !strings.Contains(page, "10.1.0.50") || strings.Count(page, "red-secret.example") != 0 {
		t.Errorf("victor's sightings: the AMBER one missing or the RED one shown")
	}
	upload := func(c *http.Client, tok string) *answer {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("csrf", tok)
		fw, _ := mw.CreateFormFile("file", "feed.csv")
		_, _ = fw.Write([]byte("indicator,type\n203.0.113.9,ip\n"))
		_ = mw.Close()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/intel/import", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", s.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := read(t, resp)
		return a
	}
	if a := upload(victor, vtok); a.StatusCode != http.StatusForbidden {
		t.Errorf("viewer import: %s", a.Status)
	}
	if a := upload(alice, "forged"); a.StatusCode != http.StatusForbidden {
		t.Errorf("import with a forged token: %s", a.Status)
	}
	if a := upload(alice, atok); a.StatusCode != http.StatusSeeOther || len(s.f.triage) != 1 ||
		s.f.triage[0] != "intel import --source console:alice:feed.csv" {
		t.Errorf("analyst import: %s %v", a.Status, s.f.triage)
	}
}

// TestAllowFromVerdict: an analyst turns a false-positive verdict into
// allow-list entries only with the confirmation ticked, and only for the
// incident's own infrastructure.
func TestAllowFromVerdict(t *testing.T) {
	s := newSite(t)
	alice, tok := s.login(t, "alice")
	victor, vtok := s.login(t, "victor")
	if _, page := s.get(t, alice, "/incidents/INC-aaaa"); !strings.Contains(page, `id="allow-confirm"`) {
		t.Fatalf("no allow-list form on a false positive")
	}
	if _, page := s.get(t, victor, "/incidents/INC-aaaa"); strings.Contains(page, `id="allow-confirm"`) {
		t.Errorf("a viewer gets the allow-list form")
	}
	post := func(c *http.Client, form url.Values) *answer {
		a, _ := s.post(t, c, "/incidents/INC-aaaa/allow", form, s.URL)
		return a
	}
	if a := post(victor, url.Values{"csrf": {vtok}, "value": {hostile}, "confirm": {"yes"}}); a.StatusCode != http.StatusForbidden {
		t.Errorf("viewer: %s", a.Status)
	}
	post(alice, url.Values{"csrf": {tok}, "value": {hostile}})                                     // not confirmed
	post(alice, url.Values{"csrf": {tok}, "value": {"8.8.8.8"}, "confirm": {"yes"}})               // not the incident's
	a := post(alice, url.Values{"csrf": {tok}, "value": {hostile, "8.8.8.8"}, "confirm": {"yes"}}) // one of each
	if a.StatusCode != http.StatusSeeOther || len(s.f.triage) != 1 ||
		s.f.triage[0] != "allow add --by alice --incident INC-aaaa --reason false positive: an authorised test -- "+hostile {
		t.Errorf("allow: %s %q", a.Status, s.f.triage)
	}
}

// TestExports: an incident's report and blocklist download for whoever
// may see it, and are audited; a TLP:RED incident's are refused to others.
func TestExports(t *testing.T) {
	s := newSite(t)
	victor, _ := s.login(t, "victor")
	a, body := s.get(t, victor, "/incidents/INC-aaaa/export/blocklist?format=csv")
	if a.StatusCode != 200 || !strings.Contains(a.Header.Get("Content-Disposition"), `INC-aaaa-blocklist.csv`) || !strings.Contains(body, "198.51.100.7") {
		t.Errorf("blocklist: %s %v %q", a.Status, a.Header, body)
	}
	a, body = s.get(t, victor, "/incidents/INC-aaaa/export/report")
	if a.StatusCode != 200 || body != "<html>report of INC-aaaa</html>" || !strings.Contains(a.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("report: %s %q", a.Status, body)
	}
	if a, _ := s.get(t, victor, "/incidents/INC-bbbb/export/report"); a.StatusCode != http.StatusNotFound {
		t.Errorf("the RED incident's report for someone not named: %s", a.Status)
	}
	if a, _ := s.get(t, victor, "/incidents/INC-aaaa/export/blocklist?format=../../x"); a.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad blocklist format: %s", a.Status)
	}
	b, _ := os.ReadFile(s.audit)
	if strings.Count(string(b), `"action":"export"`) != 2 {
		t.Errorf("exports audited: %s", b)
	}
}

// TestOrganisationsAndNewSinceLastLogin: TLP:AMBER+STRICT stays within the
// organisation that runs dwell; the list marks what is new or changed
// since the user's previous login, and nothing at a first login.
func TestOrganisationsAndNewSinceLastLogin(t *testing.T) {
	s := newSite(t)
	pierre, _ := s.login(t, "pierre")
	if _, page := s.get(t, pierre, "/incidents"); strings.Contains(page, "INC-cccc") || !strings.Contains(page, "INC-aaaa") {
		t.Errorf("a partner's list shows the AMBER+STRICT incident or misses the AMBER one")
	}
	if a, _ := s.get(t, pierre, "/incidents/INC-cccc"); a.StatusCode != http.StatusNotFound {
		t.Errorf("a partner opens the AMBER+STRICT incident: %s", a.Status)
	}
	if _, page := s.get(t, pierre, "/intel"); strings.Contains(page, "strict-secret.example") || strings.Contains(page, "red-secret.example") ||
		!strings.Contains(page, "(TLP:AMBER&#43;STRICT)") {
		t.Errorf("a partner's intel page shows an AMBER+STRICT or RED value")
	}
	// Another organisation's admin: no SQL (the tables hold what
	// AMBER+STRICT keeps in the organisation), no RED intel.
	paula, tok := s.login(t, "paula")
	if a, page := s.get(t, paula, "/sql"); a.StatusCode != http.StatusForbidden || strings.Contains(page, `href="/sql"`) {
		t.Errorf("a partner admin's SQL console: %s", a.Status)
	}
	if a, page := s.post(t, paula, "/sql", url.Values{"q": {"SELECT 1"}, "csrf": {tok}}, s.URL); a.StatusCode != http.StatusForbidden || strings.Contains(page, "<td>") {
		t.Errorf("a partner admin ran SQL: %s", a.Status)
	}
	if _, page := s.get(t, paula, "/intel"); strings.Contains(page, "strict-secret.example") || strings.Contains(page, "red-secret.example") {
		t.Errorf("a partner admin's intel page shows an AMBER+STRICT or RED value")
	}
	victor, _ := s.login(t, "victor")
	if _, page := s.get(t, victor, "/intel"); !strings.Contains(page, "strict-secret.example") {
		t.Errorf("the organisation's viewer does not see its AMBER+STRICT indicator")
	}
	if _, page := s.get(t, victor, "/incidents"); !strings.Contains(page, "INC-cccc") || strings.Contains(page, `class="fresh"`) {
		t.Errorf("victor's first login: AMBER+STRICT missing or something marked")
	}
	victor, _ = s.login(t, "victor")
	_, page := s.get(t, victor, "/incidents")
	if !strings.Contains(page, `INC-aaaa</a> <span class="fresh">new</span>`) || strings.Contains(page, `INC-bbbb</a> <span`) {
		t.Errorf("second login: new and changed marks wrong:\n%s", page)
	}
}

// TestExfilBaselinePlot: an exfiltration finding's page plots its days
// against the host's own days and its usual day; bad entries are left out.
func TestExfilBaselinePlot(t *testing.T) {
	s := newSite(t)
	alice, _ := s.login(t, "alice")
	a, page := s.get(t, alice, "/incidents/INC-aaaa/findings/1")
	if a.StatusCode != http.StatusOK || !strings.Contains(page, `id="baseline"`) {
		t.Fatalf("no baseline plot on the exfiltration finding: %s", a.Status)
	}
	for _, want := range []string{"usual day 5.0 MB", "2025-03-03 to this destination: 400.0 MB", "2025-02-20 the host, all destinations: 4.0 MB",
		"2025-03-05 to this destination: 2.0 kB"} {
		if !strings.Contains(page, want) {
			t.Errorf("the plot lacks %q", want)
		}
	}
	if got := strings.Count(page, "the host, all destinations:"); got != 3 {
		t.Errorf("%d host days plotted, want the 3 good ones", got)
	}
	if _, page := s.get(t, alice, "/incidents/INC-aaaa/findings/0"); strings.Contains(page, `id="baseline"`) {
		t.Error("a beacon finding got the exfiltration plot")
	}
}
