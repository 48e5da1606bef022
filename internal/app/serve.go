package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/console"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/server"
	"github.com/dwell-nsm/dwell/internal/store"
	"github.com/dwell-nsm/dwell/internal/store/settled"
)

func serveCommand() command {
	return command{
		name:    "serve",
		summary: "own the store and serve it: the API, live ingest of followed directories, hunts on new data, intel polling, alerts, metrics",
		usage:   "serve [--config FILE] [--db FILE] [--listen HOST:PORT] [FOLLOW...]",
		example: `  dwell serve --config /etc/dwell/dwell.yaml
  dwell serve --db case42.db /nsm/zeek/logs      # follow one Zeek directory
  dwell query "SELECT count(*) FROM conn"        # from another shell: through the server

While dwell serve holds a store, the other commands given the same store
(--db or --config) run through it; --server URL names a server elsewhere.
docs/serve.md: the API, the configuration, metrics; docs/deploy.md: systemd.
`,
		run: runServe,
	}
}

// served is the store dwell serve holds, shared by the commands it runs.
type served struct {
	st  store.Store
	cfg atomic.Pointer[config.Config]
	// writeMu keeps store writes one at a time (store.Writer's contract);
	// ingestMu keeps ingests one at a time (two reading one file would
	// both store it); huntMu keeps hunts one at a time.
	writeMu, ingestMu, huntMu sync.Mutex
	metrics                   *serveMetrics
	logger                    *slog.Logger
	now                       func() time.Time
	// data says that records were stored: a hunt is due.
	data chan time.Time
	// ready is false until the store is open and the API listens.
	ready atomic.Bool
	// alertBackoff is the first wait before an alert is sent again (0: 1s).
	alertBackoff time.Duration
	// memo keeps detectors' findings between hunts, with the generations
	// of their inputs that the shared store's writes bump.
	memo memo
}

// remoteCommands are the commands that run through a server.
var remoteCommands = []string{"ingest", "query", "hunt", "intel", "export", "incidents", "incident", "triage", "allow", "status", "delete", "rules", "version"}

// sharedStore is the served store as one command sees it: its writes
// wait for each other and count as changes of their inputs (the memo's
// generations), and Close leaves it open for the others.
type sharedStore struct {
	store.Store
	mu      *sync.Mutex
	gens    *generations
	tallies *tallies
	settled *settled.Kept
	// changed says that data a hunt reads arrived (records, indicators, a
	// sensor removed), whoever wrote it: a hunt is due.
	changed func()
}

func (s sharedStore) Write(ctx context.Context, b *event.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tallies.before(b)
	s.settled.Before(b)
	err := s.Store.Write(ctx, b)
	s.settled.After(b)
	s.tallies.after(b, err == nil)
	if err == nil {
		s.gens.bumpBatch(b)
		if b.Len() > 0 {
			s.changed()
		}
	}
	return err
}

func (s sharedStore) DeleteSensor(ctx context.Context, sensor string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changed()
	defer s.gens.bumpAll()
	defer s.tallies.reset() // tallies only ever add
	defer s.settled.Reset() // nor is history before the cut settled
	return s.Store.DeleteSensor(ctx, sensor)
}

func (s sharedStore) PutIndicators(ctx context.Context, inds []event.Indicator) (int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.gens.bump(inputIntel)
	added, updated, err := s.Store.PutIndicators(ctx, inds)
	if err == nil && added+updated > 0 {
		s.changed()
	}
	return added, updated, err
}

func (s sharedStore) PutSightings(ctx context.Context, sg []event.Sighting) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.gens.bump(inputIntel)
	return s.Store.PutSightings(ctx, sg)
}

func (s sharedStore) SetState(ctx context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == allowKey {
		defer s.gens.bump(inputAllow)
	}
	return s.Store.SetState(ctx, key, value)
}

func (s sharedStore) DeleteIndicators(ctx context.Context, source string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.gens.bump(inputIntel)
	n, err := s.Store.DeleteIndicators(ctx, source)
	if err == nil && n > 0 {
		s.changed()
	}
	return n, err
}

// Close implements store.Store: the server closes the store, not a command.
func (s sharedStore) Close() error { return nil }

func (s *served) store() sharedStore {
	return sharedStore{Store: s.st, mu: &s.writeMu, gens: &s.memo.gens, tallies: &s.memo.tallies, settled: &s.memo.settled, changed: func() { s.arrived(s.now()) }}
}

// app returns an App that runs commands against the served store.
func (s *served) app(stdout, stderr io.Writer) *App {
	return &App{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Logger: s.logger, Now: s.now, served: s}
}

// Run implements server.Runner.
func (s *served) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !slices.Contains(remoteCommands, args[0]) {
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		fmt.Fprintf(stderr, "dwell %s: not run through the server (these are: %s)\n", sanitize(name, 40), strings.Join(remoteCommands, ", "))
		s.metrics.commands.WithLabelValues("other", "2").Inc()
		return ExitUsage
	}
	for _, a := range args[1:] {
		if a == "-" && args[0] == "ingest" {
			fmt.Fprintln(stderr, "dwell ingest: standard input is not read through a server: write it to a file and ingest that")
			s.metrics.commands.WithLabelValues(args[0], "2").Inc()
			return ExitUsage
		}
	}
	code := s.app(stdout, stderr).Main(ctx, args)
	if args[0] == "rules" {
		// Imported Sigma rules change what sigma finds in unchanged events.
		s.memo.forget()
	}
	s.metrics.commands.WithLabelValues(args[0], fmt.Sprint(code)).Inc()
	return code
}

// setConfig makes cfg the server's configuration, and its
// serve.hunt_memory the cap on the settled answers kept.
func (s *served) setConfig(cfg *config.Config) {
	s.cfg.Store(cfg)
	keep := int64(settled.DefaultMaxBytes)
	if n, err := config.ParseBytes(cfg.Serve.HuntMemory); err == nil { // checked by ValidateServe
		keep = n
	}
	s.memo.settled.SetMaxBytes(keep)
}

// serverFile is what dwell serve writes in its state directory for the
// commands that look for it.
type serverFile struct {
	URL     string    `json:"url"`
	PID     int       `json:"pid"`
	Store   string    `json:"store"`
	Started time.Time `json:"started"`
	// Cert is the certificate to trust (PEM file) when it is generated.
	Cert string `json:"cert,omitempty"`
}

const (
	serverFileName = "server.json"
	tokenFileName  = "token"
	usersFileName  = "users.json"
	auditFileName  = "audit.jsonl"
)

// serveGCPercent is the collector's target while dwell serve runs (GOGC
// overrides it; Go's default is 100): the heap may grow half its live size
// before a collection. The soak test's server (TestServeSoak, CI settings)
// peaked at 1,200–1,292 MiB resident with 50 and at 1,404–1,414 MiB with
// the default, in alternating runs with the same lag; its live heap is
// about 300 MB beside DuckDB's memory (docs/benchmarks.md).
const serveGCPercent = 50

func runServe(ctx context.Context, a *App, args []string) error {
	var co common
	c := serveCommand()
	fs := a.newFlags(c, &co)
	fs.StringVar(&co.sensor, "sensor", "", "`name` of the site followed paths given here come from")
	listen := fs.String("listen", "", "the API's `address` (default from config, else 127.0.0.1:7878)")
	follow, err := parse(fs, args)
	if err != nil {
		return err
	}
	if a.served != nil {
		return usagef("dwell serve does not run inside a server")
	}
	cfg, err := co.loadConfig()
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Serve.Listen = *listen
		cfg.Serve.TLS = ""
		cfg.ServeDefaults()
	}
	for _, p := range follow {
		cfg.Serve.Follow = append(cfg.Serve.Follow, config.Follow{Path: p, Sensor: co.sensor})
	}
	if err := cfg.ValidateServe(); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(serveGCPercent))
	}
	logger := serveLogger(a.Stderr, &cfg.Serve)
	if err := os.MkdirAll(cfg.Serve.StateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if f, err := findServer(cfg); err == nil {
		return fmt.Errorf("store %s is already served by process %d at %s", cfg.Store, f.PID, f.URL)
	}
	token, err := ensureToken(cfg.Serve.StateDir)
	if err != nil {
		return err
	}
	st, err := co.openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			logger.Error("closing the store", "err", err)
		}
	}()
	s := &served{st: st, logger: logger, now: a.Now, data: make(chan time.Time, 1)}
	s.setConfig(cfg)
	reg := newServeMetrics(s)
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Serve.Listen)
	if err != nil {
		return fmt.Errorf("serve.listen: %w", err)
	}
	scheme, certFile := "http", ""
	if cfg.Serve.TLS != "off" {
		tc, cf, err := serverTLS(&cfg.Serve, ln.Addr())
		if err != nil {
			_ = ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
		scheme, certFile = "https", cf
	}
	url := scheme + "://" + ln.Addr().String()
	audit, err := console.OpenAudit(filepath.Join(cfg.Serve.StateDir, auditFileName))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("the audit trail: %w (dwell audit verify shows where)", err)
	}
	users := console.OpenUsers(filepath.Join(cfg.Serve.StateDir, usersFileName))
	var sso *console.OIDC
	if o := cfg.Serve.OIDC; o.Issuer != "" {
		sso = &console.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, RedirectURL: o.RedirectURL, Claim: o.Claim, Label: o.Label}
		if o.ClientSecretFile != "" {
			b, err := os.ReadFile(o.ClientSecretFile)
			if err != nil {
				_ = ln.Close()
				return fmt.Errorf("serve.oidc.client_secret_file: %w", err)
			}
			sso.ClientSecret = strings.TrimSpace(string(b))
		}
	}
	web, err := console.New(console.Options{Runner: s, Users: users, Audit: audit, Secure: scheme == "https", OIDC: sso, Now: a.Now, Logger: logger})
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: server.New(server.Options{Token: token, Runner: s, Gatherer: reg, Logger: logger, Console: web,
			UserToken: func(t string) (server.Identity, bool) {
				u, ok := users.ByToken(t)
				if !ok {
					return server.Identity{}, false
				}
				return server.Identity{Name: u.Name, Role: u.Role, External: u.Org != ""}, true
			},
			Ready: func() error {
				if !s.ready.Load() {
					return errors.New("starting")
				}
				return nil
			}}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	sf := serverFile{URL: url, PID: os.Getpid(), Store: cfg.Store, Started: a.Now().UTC(), Cert: certFile}
	if err := writeJSONFile(filepath.Join(cfg.Serve.StateDir, serverFileName), sf, 0o600); err != nil {
		_ = ln.Close()
		return err
	}
	defer func() { _ = os.Remove(filepath.Join(cfg.Serve.StateDir, serverFileName)) }()
	def, err := s.newDefence(ctx, cfg, audit)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if def != nil {
		def.register(reg)
		for _, a := range def.col.Addrs() {
			logger.Info("collecting flows", "udp", a.String())
		}
	}
	// Said once every listener is bound, the collector's UDP sockets too:
	// what waits for this line may send flows at once.
	logger.Info("serving", "url", url, "store", cfg.Store, "backend", st.Backend(), "follow", len(cfg.Serve.Follow),
		"token_file", filepath.Join(cfg.Serve.StateDir, tokenFileName))
	fmt.Fprintf(a.Stdout, "dwell serve: %s serves %s (token in %s)\n", url, cfg.Store, filepath.Join(cfg.Serve.StateDir, tokenFileName))

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	if def != nil {
		g.Go(func() error { return def.run(gctx, s) })
	}
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// In-flight requests end (an ingest stops at a batch boundary:
		// every batch is stored whole or not at all).
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return s.follow(gctx) })
	g.Go(func() error { return s.hunts(gctx) })
	g.Go(func() error { return s.pollIntel(gctx) })
	cli := cfg.Serve.Follow[len(cfg.Serve.Follow)-len(follow):]
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error { return s.reloads(gctx, hup, co.config, co.db, cli) })
	s.ready.Store(true)
	err = g.Wait()
	logger.Info("stopped", "store", cfg.Store)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// reloads reads the configuration file again on SIGHUP: followed paths,
// schedules, intel sources and alert channels change at once; the store,
// the address and TLS need a restart.
func (s *served) reloads(ctx context.Context, hup <-chan os.Signal, path, db string, cli []config.Follow) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		if path == "" {
			s.logger.Warn("SIGHUP: no configuration file to read again (dwell serve --config FILE)")
			continue
		}
		cfg, err := config.Load(path)
		if err == nil {
			if db != "" {
				cfg.Store = db
			}
			cfg.ServeDefaults()
			err = cfg.ValidateServe()
		}
		if err != nil {
			s.logger.Error("SIGHUP: the configuration is not reloaded", "err", err)
			continue
		}
		old := s.cfg.Load()
		if cfg.Store != old.Store || cfg.Serve.Listen != old.Serve.Listen || cfg.Serve.TLS != old.Serve.TLS {
			s.logger.Warn("SIGHUP: store, listen and tls change only at a restart; kept as they were")
			cfg.Store, cfg.Serve.Listen, cfg.Serve.TLS, cfg.Serve.StateDir = old.Store, old.Serve.Listen, old.Serve.TLS, old.Serve.StateDir
		}
		// Paths given on the command line stay followed.
		cfg.Serve.Follow = append(cfg.Serve.Follow, cli...)
		s.setConfig(cfg)
		s.memo.forget() // detectors' settings may have changed
		s.metrics.reloads.Inc()
		s.logger.Info("configuration reloaded", "file", path, "follow", len(cfg.Serve.Follow), "intel", len(cfg.Serve.Intel))
	}
}

// serveLogger is the server's structured log on w.
func serveLogger(w io.Writer, c *config.Serve) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	o := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// ensureToken returns the server's token, making it (readable by its
// owner only) at the first start.
func ensureToken(dir string) (string, error) {
	path := filepath.Join(dir, tokenFileName)
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); len(t) >= 32 {
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				return "", fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
			}
			return t, nil
		}
		return "", fmt.Errorf("%s holds no token: remove it and a new one is made", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		_ = f.Close()
		return "", err
	}
	return t, f.Close()
}

// writeJSONFile writes v to path atomically with mode perm.
func writeJSONFile(path string, v any, perm os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
