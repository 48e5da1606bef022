// Package server is dwell serve's HTTP side: the JSON API under /api/v1,
// authenticated by a bearer token, through which the command line and
// other programs use the store the server owns; /healthz, /readyz and
// /metrics for operations. What each request does is one dwell command
// run in the server against its store (Runner): the API gives the same
// answers as the command line, because it is the command line.
//
// docs/serve.md describes the API; /api/v1/openapi.json serves its
// OpenAPI document.
package server

import (
	"context"
	"crypto/subtle"
	_ "embed" // the OpenAPI document
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Runner runs one dwell command line (without the program name) against
// the served store, writing what it prints to stdout and stderr, and
// returns its exit code: 0 done, 1 failed, 2 a usage error.
type Runner interface {
	Run(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Options configure a Server.
type Options struct {
	// Token is the bearer token every /api/ request must carry.
	Token string
	// Runner runs the commands requests ask for.
	Runner Runner
	// Gatherer is what /metrics exposes; nil exposes nothing.
	Gatherer prometheus.Gatherer
	// Ready reports why the server cannot serve yet (nil: it can).
	Ready func() error
	// Logger logs each request (method, path, status, duration).
	Logger *slog.Logger
	// Console, when set, serves every path outside /api/, /healthz,
	// /readyz and /metrics: the web console.
	Console http.Handler
	// UserToken, when set, tells whose a bearer token other than Token is
	// (a console account's API token, for scripts); such a caller gets
	// the endpoints its role allows, and sees incidents as the account
	// would.
	UserToken func(token string) (Identity, bool)
}

// Identity is who a request comes from.
type Identity struct {
	Name string
	// Role is viewer, analyst or admin; the server's own token is the
	// owner, above them all.
	Role string
	// External is true for an account of another organisation.
	External bool
	Owner    bool
}

// roleRank orders the roles; the owner is above them all.
func roleRank(id Identity) int {
	if id.Owner {
		return 4
	}
	return map[string]int{"viewer": 1, "analyst": 2, "admin": 3}[id.Role]
}

// forbidden is a request the caller's role does not allow.
type forbidden string

func (f forbidden) Error() string { return string(f) }

type identityKey struct{}

// asUser is the options that make a command see what the caller may see.
func asUser(r *http.Request) []string {
	id, _ := r.Context().Value(identityKey{}).(Identity)
	if id.Owner {
		return nil
	}
	return []string{"--as", id.Name, fmt.Sprintf("--external=%t", id.External)}
}

// Server is the API's http.Handler.
type Server struct {
	o   Options
	mux *http.ServeMux
}

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

//go:embed openapi.json
var openAPI []byte

// New returns the API handler.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Ready == nil {
		o.Ready = func() error { return nil }
	}
	s := &Server{o: o, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.ready)
	if o.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	s.mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	if o.Console != nil {
		s.mux.Handle("/", o.Console)
	}
	s.api("POST /api/v1/run", "owner", s.run)
	s.api("GET /api/v1/status", "viewer", s.command(func(*http.Request) ([]string, error) { return []string{"status", "--format", "json"}, nil }))
	s.api("GET /api/v1/incidents", "viewer", s.command(func(r *http.Request) ([]string, error) {
		return append([]string{"incidents", "--format", "json"}, asUser(r)...), nil
	}))
	s.api("GET /api/v1/incidents/{id}", "viewer", s.command(func(r *http.Request) ([]string, error) {
		return append(append([]string{"incident", "--format", "json"}, asUser(r)...), "--", r.PathValue("id")), nil
	}))
	s.api("GET /api/v1/findings", "viewer", s.command(func(r *http.Request) ([]string, error) {
		return append([]string{"incidents", "--findings", "--format", "json"}, asUser(r)...), nil
	}))
	s.api("POST /api/v1/hunt", "analyst", s.command(func(*http.Request) ([]string, error) { return []string{"hunt", "--format", "json"}, nil }))
	s.api("POST /api/v1/query", "admin", s.command(func(r *http.Request) ([]string, error) {
		var q struct {
			SQL string `json:"sql"`
		}
		if err := decode(r, &q); err != nil {
			return nil, err
		}
		if strings.TrimSpace(q.SQL) == "" {
			return nil, errors.New(`the body wants {"sql": "SELECT ..."}`)
		}
		if id, _ := r.Context().Value(identityKey{}).(Identity); id.External {
			// The tables hold what TLP:AMBER+STRICT keeps in the organisation.
			return nil, forbidden(fmt.Sprintf("SQL is for the organisation's own admins; %s is of another organisation", id.Name))
		}
		return []string{"query", "--format", "json", "--", q.SQL}, nil
	}))
	s.api("GET /api/v1/intel", "admin", s.command(func(r *http.Request) ([]string, error) {
		if id, _ := r.Context().Value(identityKey{}).(Identity); id.External {
			// The list holds AMBER+STRICT and RED indicators whole.
			return nil, forbidden(fmt.Sprintf("the indicator list is for the organisation's own admins; %s is of another organisation", id.Name))
		}
		return []string{"intel", "list", "--format", "json"}, nil
	}))
	s.api("POST /api/v1/intel/import", "admin", s.command(func(r *http.Request) ([]string, error) {
		var q struct {
			Source string `json:"source"`
		}
		if err := decode(r, &q); err != nil {
			return nil, err
		}
		if q.Source == "" {
			return nil, errors.New(`the body wants {"source": "FILE or URL"}`)
		}
		return []string{"intel", "import", "--", q.Source}, nil
	}))
	s.api("POST /api/v1/ingest", "admin", s.command(func(r *http.Request) ([]string, error) {
		var q struct {
			Paths  []string `json:"paths"`
			Sensor string   `json:"sensor"`
		}
		if err := decode(r, &q); err != nil {
			return nil, err
		}
		if len(q.Paths) == 0 {
			return nil, errors.New(`the body wants {"paths": ["/nsm/zeek/logs"]}`)
		}
		args := []string{"ingest"}
		if q.Sensor != "" {
			args = append(args, "--sensor", q.Sensor)
		}
		return append(append(args, "--"), q.Paths...), nil
	}))
	s.api("GET /api/v1/export/{what}", "analyst", s.command(func(r *http.Request) ([]string, error) {
		what := r.PathValue("what")
		if what != "blocklist" && what != "stix" && what != "misp" {
			return nil, fmt.Errorf("%q: export blocklist, stix or misp here (a report is written to a file: POST /api/v1/run)", what)
		}
		id, _ := r.Context().Value(identityKey{}).(Identity)
		if what != "blocklist" && roleRank(id) < roleRank(Identity{Role: "admin"}) {
			return nil, forbidden(fmt.Sprintf("%s exports hold TLP:RED indicators: for admins; %s is a %s", what, id.Name, id.Role))
		}
		// Only the incidents the caller may see (TLP need-to-know), and
		// for another organisation's account nothing above TLP:AMBER.
		args := append([]string{"export", what, "--out", "-"}, asUser(r)...)
		for _, k := range []string{"format", "incident", "timeout", "tlp", "source", "producer"} {
			if v := r.URL.Query().Get(k); v != "" {
				args = append(args, "--"+k, v)
			}
		}
		if r.URL.Query().Get("sighted") == "true" {
			args = append(args, "--sighted")
		}
		return args, nil
	}))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rw, r)
	s.o.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", rw.status, "duration", time.Since(start).Round(time.Millisecond))
}

// api registers an authenticated route that needs at least role
// ("owner": the server's own token only).
func (s *Server) api(pattern, role string, h http.HandlerFunc) {
	need := roleRank(Identity{Role: role, Owner: role == "owner"})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dwell"`)
			writeError(w, http.StatusUnauthorized, "a bearer token is needed: the one in the server's state_dir/token, or an account's (dwell users token) (docs/serve.md)")
			return
		}
		if roleRank(id) < need {
			writeError(w, http.StatusForbidden, fmt.Sprintf("this needs the %s role; %s is a %s", role, id.Name, id.Role))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if err := s.o.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		h(w, r)
	})
}

// identify tells who a request's bearer token belongs to.
func (s *Server) identify(r *http.Request) (Identity, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return Identity{}, false
	}
	got = strings.TrimSpace(got)
	if s.o.Token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) == 1 {
		return Identity{Name: "owner", Owner: true}, true
	}
	if s.o.UserToken != nil && got != "" {
		return s.o.UserToken(got)
	}
	return Identity{}, false
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if err := s.o.Ready(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

// RunRequest is the body of POST /api/v1/run.
type RunRequest struct {
	// Args is the command line without the program name.
	Args []string `json:"args"`
}

// Frame is one line of POST /api/v1/run's answer (JSON lines): a piece of
// the command's standard output or standard error as it is written, and,
// last, its exit code.
type Frame struct {
	Out  string `json:"out,omitempty"`
	Err  string `json:"err,omitempty"`
	Exit *int   `json:"exit,omitempty"`
}

// run runs a whole command line and streams what it prints.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	var q RunRequest
	if err := decode(r, &q); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(q.Args) == 0 {
		writeError(w, http.StatusBadRequest, `the body wants {"args": ["query", "SELECT 1"]}`)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fw := &frameWriter{w: w, enc: json.NewEncoder(w)}
	if f, ok := w.(http.Flusher); ok {
		fw.flush = f.Flush
	}
	code := s.o.Runner.Run(r.Context(), q.Args, fw.stream(false), fw.stream(true))
	fw.exit(code)
}

// command returns a handler that runs the command line args gives for a
// request and answers with what it printed: its output with status 200,
// or its error with 400 (a usage error) or 500.
func (s *Server) command(args func(*http.Request) ([]string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := args(r)
		var f forbidden
		if errors.As(err, &f) {
			writeError(w, http.StatusForbidden, string(f))
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		var out, errs strings.Builder
		code := s.o.Runner.Run(r.Context(), a, &out, &errs)
		switch code {
		case 0:
			body := out.String()
			if strings.HasPrefix(strings.TrimSpace(body), "{") || strings.HasPrefix(strings.TrimSpace(body), "[") {
				w.Header().Set("Content-Type", "application/json")
			} else {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			}
			_, _ = io.WriteString(w, body)
		case 2:
			writeError(w, http.StatusBadRequest, strings.TrimSpace(errs.String()))
		default:
			writeError(w, http.StatusInternalServerError, strings.TrimSpace(errs.String()))
		}
	}
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// frameWriter turns the two output streams of a command into frames; the
// streams may be written from several goroutines (progress and output).
type frameWriter struct {
	mu    sync.Mutex
	w     io.Writer
	enc   *json.Encoder
	flush func()
}

type streamWriter struct {
	f   *frameWriter
	err bool
}

func (f *frameWriter) stream(isErr bool) io.Writer { return &streamWriter{f: f, err: isErr} }

func (s *streamWriter) Write(p []byte) (int, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	fr := Frame{Out: string(p)}
	if s.err {
		fr = Frame{Err: string(p)}
	}
	if err := s.f.enc.Encode(fr); err != nil {
		return 0, err
	}
	if s.f.flush != nil {
		s.f.flush()
	}
	return len(p), nil
}

func (f *frameWriter) exit(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.enc.Encode(Frame{Exit: &code})
	if f.flush != nil {
		f.flush()
	}
}

// recorder keeps the status a handler wrote, for the request log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush implements http.Flusher, so that streamed answers stream.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
