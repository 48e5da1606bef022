package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeRunner records the command lines it is given and answers as told.
type fakeRunner struct {
	mu   sync.Mutex
	args [][]string
}

func (f *fakeRunner) Run(_ context.Context, args []string, stdout, stderr io.Writer) int {
	f.mu.Lock()
	f.args = append(f.args, args)
	f.mu.Unlock()
	switch args[0] {
	case "incident":
		if args[len(args)-1] != "INC-1" {
			fmt.Fprintln(stderr, "dwell incident: no incident INC-2 in the last hunt")
			return 1
		}
		fmt.Fprintln(stdout, `{"id": "INC-1"}`)
	case "query":
		if strings.Contains(args[len(args)-1], "DROP") {
			fmt.Fprintln(stderr, "dwell query: read-only")
			return 2
		}
		fmt.Fprintln(stdout, `[{"n": 3}]`)
	default:
		fmt.Fprintln(stdout, "line one")
		fmt.Fprintln(stderr, "progress")
		fmt.Fprintln(stdout, "line two")
		return 0
	}
	return 0
}

func (f *fakeRunner) last() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.args[len(f.args)-1]
}

func newTest(t *testing.T) (*httptest.Server, *fakeRunner, *bool) {
	t.Helper()
	r := &fakeRunner{}
	notReady := false
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "dwell_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	s := httptest.NewServer(New(Options{Token: "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken", Runner: r, Gatherer: reg,
		UserToken: func(tok string) (Identity, bool) {
			switch tok {
			case "dwl_viewer":
				return Identity{Name: "victor", Role: "viewer"}, true
			case "dwl_partner":
				return Identity{Name: "pierre", Role: "analyst", External: true}, true
			case "dwl_admin":
				return Identity{Name: "ada", Role: "admin"}, true
			case "dwl_partadmin":
				return Identity{Name: "paula", Role: "admin", External: true}, true
			}
			return Identity{}, false
		},
		Ready: func() error {
			if notReady {
				return errors.New("starting")
			}
			return nil
		}}))
	t.Cleanup(s.Close)
	return s, r, &notReady
}

func do(t *testing.T, method, url, token, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

const tok = "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken"

func TestAuth(t *testing.T) {
	s, r, _ := newTest(t)
	for _, token := range []string{"", "wrong", tok + "x", strings.ToUpper(tok)} {
		code, body, h := do(t, "GET", s.URL+"/api/v1/status", token, "")
		if code != http.StatusUnauthorized || !strings.Contains(body, "bearer token") || h.Get("WWW-Authenticate") == "" {
			t.Errorf("token %q: %d %s", token, code, body)
		}
	}
	if len(r.args) != 0 {
		t.Errorf("commands ran unauthenticated: %v", r.args)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"} {
		if code, body, _ := do(t, "GET", s.URL+p, "", ""); code != http.StatusOK {
			t.Errorf("%s without a token: %d %s", p, code, body)
		}
	}
}

func TestReadiness(t *testing.T) {
	s, _, notReady := newTest(t)
	*notReady = true
	if code, _, _ := do(t, "GET", s.URL+"/readyz", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("readyz while starting: %d", code)
	}
	if code, body, _ := do(t, "GET", s.URL+"/api/v1/incidents", tok, ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "starting") {
		t.Errorf("API while starting: %d %s", code, body)
	}
	if code, _, _ := do(t, "GET", s.URL+"/healthz", "", ""); code != http.StatusOK {
		t.Errorf("healthz while starting: %d", code)
	}
}

// TestRunStreams: /run answers with the command's output and errors as
// JSON lines in the order written, then the exit code.
func TestRunStreams(t *testing.T) {
	s, r, _ := newTest(t)
	code, body, h := do(t, "POST", s.URL+"/api/v1/run", tok, `{"args": ["status"]}`)
	if code != http.StatusOK || h.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s", code, h.Get("Content-Type"))
	}
	var frames []Frame
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var f Frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) != 4 || frames[0].Out != "line one\n" || frames[1].Err != "progress\n" || frames[2].Out != "line two\n" ||
		frames[3].Exit == nil || *frames[3].Exit != 0 {
		t.Errorf("frames %+v", frames)
	}
	if !slices.Equal(r.last(), []string{"status"}) {
		t.Errorf("ran %v", r.last())
	}
	for _, bad := range []string{``, `{}`, `{"args": []}`, `{"args": ["x"], "extra": 1}`, `[1]`} {
		if code, _, _ := do(t, "POST", s.URL+"/api/v1/run", tok, bad); code != http.StatusBadRequest {
			t.Errorf("body %q: %d", bad, code)
		}
	}
	big := `{"args": ["` + strings.Repeat("a", MaxBody) + `"]}`
	if code, _, _ := do(t, "POST", s.URL+"/api/v1/run", tok, big); code != http.StatusBadRequest {
		t.Errorf("a body over MaxBody: %d", code)
	}
}

// TestTypedEndpoints: each endpoint runs its command with --format json
// and answers with its output, or its error with the status the exit code
// calls for; arguments from the request never become options.
func TestTypedEndpoints(t *testing.T) {
	s, r, _ := newTest(t)
	cases := []struct {
		method, path, body string
		code               int
		args               []string
	}{
		{"GET", "/api/v1/status", "", 200, []string{"status", "--format", "json"}},
		{"GET", "/api/v1/incidents", "", 200, []string{"incidents", "--format", "json"}},
		{"GET", "/api/v1/incidents/INC-1", "", 200, []string{"incident", "--format", "json", "--", "INC-1"}},
		{"GET", "/api/v1/incidents/--db=x", "", 500, []string{"incident", "--format", "json", "--", "--db=x"}},
		{"GET", "/api/v1/findings", "", 200, []string{"incidents", "--findings", "--format", "json"}},
		{"POST", "/api/v1/hunt", "", 200, []string{"hunt", "--format", "json"}},
		{"POST", "/api/v1/query", `{"sql": "SELECT 1"}`, 200, []string{"query", "--format", "json", "--", "SELECT 1"}},
		{"POST", "/api/v1/query", `{"sql": "DROP TABLE conn"}`, 400, []string{"query", "--format", "json", "--", "DROP TABLE conn"}},
		{"POST", "/api/v1/query", `{"sql": ""}`, 400, nil},
		{"GET", "/api/v1/intel", "", 200, []string{"intel", "list", "--format", "json"}},
		{"POST", "/api/v1/intel/import", `{"source": "--db=/tmp/x"}`, 200, []string{"intel", "import", "--", "--db=/tmp/x"}},
		{"POST", "/api/v1/ingest", `{"paths": ["/nsm/zeek"], "sensor": "brussels"}`, 200,
			[]string{"ingest", "--sensor", "brussels", "--", "/nsm/zeek"}},
		{"GET", "/api/v1/export/blocklist?format=nft&incident=INC-1", "", 200,
			[]string{"export", "blocklist", "--out", "-", "--format", "nft", "--incident", "INC-1"}},
		{"GET", "/api/v1/export/report", "", 400, nil},
		{"DELETE", "/api/v1/incidents", "", 405, nil},
	}
	for _, c := range cases {
		n := len(r.args)
		code, body, h := do(t, c.method, s.URL+c.path, tok, c.body)
		if code != c.code {
			t.Errorf("%s %s: %d %s", c.method, c.path, code, body)
			continue
		}
		if c.args == nil {
			if len(r.args) != n {
				t.Errorf("%s %s ran %v", c.method, c.path, r.last())
			}
			continue
		}
		if !slices.Equal(r.last(), c.args) {
			t.Errorf("%s %s ran %q, want %q", c.method, c.path, r.last(), c.args)
		}
		if code == 200 && strings.HasPrefix(body, "{") && h.Get("Content-Type") != "application/json" {
			t.Errorf("%s: content type %s", c.path, h.Get("Content-Type"))
		}
		if code >= 400 && !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s: error body %s", c.path, body)
		}
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	s, _, _ := newTest(t)
	_, body, _ := do(t, "GET", s.URL+"/metrics", "", "")
	if !strings.Contains(body, "dwell_test_total 1") {
		t.Errorf("metrics: %s", body)
	}
	_, body, _ = do(t, "GET", s.URL+"/api/v1/openapi.json", "", "")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	// Every route the server has is documented.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/run", "/api/v1/status", "/api/v1/incidents", "/api/v1/incidents/{id}",
		"/api/v1/findings", "/api/v1/hunt", "/api/v1/query", "/api/v1/intel", "/api/v1/intel/import", "/api/v1/ingest", "/api/v1/export/{what}"} {
		if doc.Paths[p] == nil {
			t.Errorf("%s is not in the OpenAPI document", p)
		}
	}
}

// TestAccountTokens: an account's token reaches what its role allows, sees
// incidents as the account would, and never the whole command line.
func TestAccountTokens(t *testing.T) {
	s, r, _ := newTest(t)
	cases := []struct {
		token, method, path, body string
		code                      int
		args                      []string
	}{
		{"dwl_viewer", "GET", "/api/v1/incidents", "", 200, []string{"incidents", "--format", "json", "--as", "victor", "--external=false"}},
		{"dwl_viewer", "GET", "/api/v1/incidents/INC-1", "", 200, []string{"incident", "--format", "json", "--as", "victor", "--external=false", "--", "INC-1"}},
		{"dwl_partner", "GET", "/api/v1/findings", "", 200, []string{"incidents", "--findings", "--format", "json", "--as", "pierre", "--external=true"}},
		{"dwl_partner", "POST", "/api/v1/hunt", "", 200, []string{"hunt", "--format", "json"}},
		{"dwl_viewer", "POST", "/api/v1/hunt", "", 403, nil},
		{"dwl_viewer", "POST", "/api/v1/query", `{"sql": "SELECT 1"}`, 403, nil},
		{"dwl_partner", "GET", "/api/v1/export/stix", "", 403, nil},
		{"dwl_admin", "GET", "/api/v1/export/stix?incident=INC-1", "", 200,
			[]string{"export", "stix", "--out", "-", "--as", "ada", "--external=false", "--incident", "INC-1"}},
		{"dwl_admin", "GET", "/api/v1/export/misp", "", 200, []string{"export", "misp", "--out", "-", "--as", "ada", "--external=false"}},
		{"dwl_admin", "POST", "/api/v1/query", `{"sql": "SELECT 1"}`, 200, []string{"query", "--format", "json", "--", "SELECT 1"}},
		{"dwl_partadmin", "POST", "/api/v1/query", `{"sql": "SELECT 1"}`, 403, nil},
		{"dwl_partadmin", "GET", "/api/v1/intel", "", 403, nil},
		{"dwl_admin", "GET", "/api/v1/intel", "", 200, []string{"intel", "list", "--format", "json"}},
		{"dwl_partadmin", "GET", "/api/v1/export/misp", "", 200, []string{"export", "misp", "--out", "-", "--as", "paula", "--external=true"}},
		{"dwl_viewer", "GET", "/api/v1/export/blocklist?format=csv", "", 403, nil},
		{"dwl_partner", "GET", "/api/v1/export/blocklist?format=csv", "", 200,
			[]string{"export", "blocklist", "--out", "-", "--as", "pierre", "--external=true", "--format", "csv"}},
		{"dwl_partner", "POST", "/api/v1/run", `{"args": ["status"]}`, 403, nil},
		{"dwl_nobody", "GET", "/api/v1/status", "", 401, nil},
		{tok, "GET", "/api/v1/incidents", "", 200, []string{"incidents", "--format", "json"}},
	}
	for _, c := range cases {
		n := len(r.args)
		code, body, _ := do(t, c.method, s.URL+c.path, c.token, c.body)
		if code != c.code {
			t.Errorf("%s %s %s: %d %s", c.token, c.method, c.path, code, body)
			continue
		}
		if c.args == nil {
			if len(r.args) != n {
				t.Errorf("%s %s ran %v", c.token, c.path, r.last())
			}
			continue
		}
		if !slices.Equal(r.last(), c.args) {
			t.Errorf("%s %s ran %q, want %q", c.token, c.path, r.last(), c.args)
		}
	}
}
