package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/ingest"
)

// follow ingests the followed paths every serve.poll, as dwell ingest
// does (idempotent and resumable: a growing file adds its new lines, a
// rotated one nothing it already gave), and says when records arrive.
func (s *served) follow(ctx context.Context) error {
	missing := map[string]bool{}
	seen := map[string]*ingest.Seen{}
	for {
		cfg := s.cfg.Load()
		if len(cfg.Serve.Follow) > 0 {
			s.followOnce(ctx, cfg, missing, seen)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Duration(cfg.Serve.Poll)):
		}
	}
}

// followOnce reads every followed path once, one ingest per sensor. seen
// keeps, per sensor, the files found stored to their end, which the next
// poll skips unopened while they do not change (ingest.Seen).
func (s *served) followOnce(ctx context.Context, cfg *config.Config, missing map[string]bool, seen map[string]*ingest.Seen) {
	bySensor := map[string][]string{}
	var sensors []string
	for _, f := range cfg.Serve.Follow {
		sensor := f.Sensor
		if sensor == "" {
			sensor = cfg.Sensor
		}
		if _, err := os.Stat(f.Path); err != nil {
			if !missing[f.Path] {
				s.logger.Warn("followed path not there yet", "path", f.Path, "err", err)
				missing[f.Path] = true
			}
			continue
		}
		delete(missing, f.Path)
		if bySensor[sensor] == nil {
			sensors = append(sensors, sensor)
		}
		bySensor[sensor] = append(bySensor[sensor], f.Path)
	}
	for sensor := range seen {
		if bySensor[sensor] == nil { // no longer followed, or not there now
			delete(seen, sensor)
		}
	}
	a := s.app(io.Discard, io.Discard)
	for _, sensor := range sensors {
		c := *cfg
		c.Sensor = sensor
		start := time.Now()
		if seen[sensor] == nil {
			seen[sensor] = &ingest.Seen{}
		}
		sum, err := a.ingest(ctx, s.store(), &c, bySensor[sensor], ingestMode{quiet: true, seen: seen[sensor]})
		s.metrics.pollSeconds.Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.metrics.pollErrors.Inc()
			s.logger.Error("live ingest", "sensor", sensor, "err", err)
		}
		if sum == nil {
			continue
		}
		for k, n := range sum.rows {
			s.metrics.records.WithLabelValues(sensor, k.String()).Add(float64(n))
		}
		s.metrics.bad.WithLabelValues(sensor).Add(float64(sum.Bad))
		s.metrics.held.WithLabelValues(sensor).Add(float64(sum.Held))
		lag := time.Duration(0)
		for _, f := range sum.Files {
			switch {
			case f.Gone:
				// Zeek rotated current/x.log between the listing and
				// the open: it is read where it went.
				s.logger.Debug("live ingest: input rotated before it was read", "sensor", sensor, "path", f.Path)
			case f.Err != "":
				s.logger.Warn("live ingest: input not read", "sensor", sensor, "path", f.Path, "err", f.Err)
			}
			// A file that gave records was last written at its
			// modification time: its newest lines waited this long.
			if f.Rows > 0 {
				if fi, err := os.Stat(f.Path); err == nil {
					lag = max(lag, time.Since(fi.ModTime()))
				}
			}
		}
		if lag > 0 {
			s.metrics.lag.WithLabelValues(sensor).Set(lag.Seconds())
		}
		if sum.Rows > 0 {
			now := s.now()
			s.metrics.lastData.WithLabelValues(sensor).Set(float64(now.UnixNano()) / 1e9)
			s.logger.Debug("ingested", "sensor", sensor, "records", sum.Rows, "bad", sum.Bad, "took", sum.Elapsed.Round(time.Millisecond))
		}
	}
}

// arrived notes that data a hunt reads changed at t (sharedStore tells).
func (s *served) arrived(t time.Time) {
	select {
	case s.data <- t:
	default: // a hunt is already due
	}
}

// hunts hunts all history serve.hunt_after after new data arrived, and at
// least every serve.hunt_every; each hunt's incidents update the lasting
// incident state and raise the alerts it calls for.
func (s *served) hunts(ctx context.Context) error {
	var pending, last time.Time
	for {
		cfg := s.cfg.Load()
		due := last.Add(time.Duration(cfg.Serve.HuntEvery))
		if !pending.IsZero() {
			if d := pending.Add(time.Duration(cfg.Serve.HuntAfter)); d.Before(due) {
				due = d
			}
		}
		wait := time.Until(due)
		if last.IsZero() && pending.IsZero() {
			wait = time.Duration(cfg.Serve.HuntEvery) // nothing new since the start: the last hunt stands
		}
		select {
		case <-ctx.Done():
			return nil
		case t := <-s.data:
			if pending.IsZero() {
				pending = t
			}
			continue
		case <-time.After(max(wait, 0)):
		}
		s.hunt(ctx, !pending.IsZero())
		pending, last = time.Time{}, time.Now()
	}
}

// hunt runs one hunt of everything, as dwell hunt does, then tracks its
// incidents and alerts.
func (s *served) hunt(ctx context.Context, newData bool) {
	start := time.Now()
	if newData {
		// The intel summary grew: sightings over all history again.
		if _, err := retrohuntAfterIngest(ctx, s.store()); err != nil && ctx.Err() == nil {
			s.logger.Error("retro-hunt", "err", err)
		}
	}
	var errs strings.Builder
	code := s.app(io.Discard, &errs).Main(ctx, []string{"hunt", "--format", "json"})
	took := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	if code != ExitOK {
		s.metrics.hunts.WithLabelValues("failed").Inc()
		msg := strings.TrimSpace(errs.String())
		if strings.Contains(msg, "nothing to hunt") {
			s.logger.Info("hunt: nothing stored yet")
			return
		}
		s.logger.Error("hunt", "err", msg)
		return
	}
	s.metrics.hunts.WithLabelValues("done").Inc()
	s.metrics.huntSeconds.Observe(took.Seconds())
	// A stop (SIGTERM, a restart) may end ctx at any step from here: the
	// steps cut short are not errors, and the next start hunts again.
	h, err := loadHunt(ctx, s.st)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Error("hunt: reading its result", "err", err)
		}
		return
	}
	s.metrics.incidents.Set(float64(len(h.Incidents)))
	s.metrics.findings.Set(float64(h.Findings))
	alerts, err := s.track(ctx, h)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Error("hunt: tracking incidents", "err", err)
		}
		return
	}
	s.logger.Info("hunted", "incidents", len(h.Incidents), "findings", h.Findings, "alerts", len(alerts), "took", took.Round(time.Millisecond))
	s.dispatch(ctx, alerts)
}

// pollIntel imports each configured intel source on its schedule, as
// dwell intel import does: new indicators are retro-hunted at once, and a
// hunt follows when any were added (the shared store says so).
func (s *served) pollIntel(ctx context.Context) error {
	next := map[string]time.Time{}
	for {
		cfg := s.cfg.Load()
		now := time.Now()
		for _, p := range cfg.Serve.Intel {
			if t, ok := next[p.Source]; ok && now.Before(t) {
				continue
			}
			next[p.Source] = now.Add(time.Duration(p.Every))
			var out, errs strings.Builder
			code := s.app(&out, &errs).Main(ctx, []string{"intel", "import", "--", p.Source})
			if ctx.Err() != nil {
				return nil
			}
			if code != ExitOK {
				s.metrics.intelPolls.WithLabelValues("failed").Inc()
				s.logger.Error("intel poll", "source", p.Source, "err", strings.TrimSpace(errs.String()))
				continue
			}
			s.metrics.intelPolls.WithLabelValues("done").Inc()
			s.logger.Info("intel polled", "source", p.Source, "result", firstLine(out.String()))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(15 * time.Second):
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// serveMetrics are what /metrics exposes besides Go's and the process's.
type serveMetrics struct {
	records     *prometheus.CounterVec
	bad, held   *prometheus.CounterVec
	lastData    *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	pollSeconds prometheus.Histogram
	pollErrors  prometheus.Counter
	hunts       *prometheus.CounterVec
	huntSeconds prometheus.Histogram
	incidents   prometheus.Gauge
	findings    prometheus.Gauge
	alerts      *prometheus.CounterVec
	intelPolls  *prometheus.CounterVec
	commands    *prometheus.CounterVec
	reloads     prometheus.Counter
	// detectorRuns counts, per detector, how each hunt got its findings
	// (memo.count).
	detectorRuns *prometheus.CounterVec
	// settledQueries counts the hunts' aggregate queries by how they
	// were answered (settled.Counts).
	settledQueries *prometheus.CounterVec
}

// newServeMetrics registers s's metrics in a new registry.
func newServeMetrics(s *served) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	m := &serveMetrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_ingest_records_total",
			Help: "Records stored by live ingest, per sensor and table."}, []string{"sensor", "table"}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_ingest_bad_lines_total",
			Help: "Lines live ingest could not read, per sensor."}, []string{"sensor"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_ingest_quarantined_total",
			Help: "Records live ingest held in quarantine (bad clocks), per sensor."}, []string{"sensor"}),
		lastData: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwell_ingest_last_data_timestamp_seconds",
			Help: "When live ingest last stored records of a sensor (time() minus it is the sensor's silence)."}, []string{"sensor"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dwell_ingest_lag_seconds",
			Help: "For the last read of a sensor that stored records: the longest a file's newest line waited, from its last write to stored."},
			[]string{"sensor"}),
		pollSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dwell_ingest_poll_seconds",
			Help: "Time one read of a sensor's followed paths took.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "dwell_ingest_poll_errors_total", Help: "Live ingest reads that failed."}),
		hunts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_hunts_total", Help: "Hunts run by the server, by outcome."},
			[]string{"outcome"}),
		huntSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "dwell_hunt_seconds", Help: "Time a hunt of all history took.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12)}),
		incidents: prometheus.NewGauge(prometheus.GaugeOpts{Name: "dwell_incidents", Help: "Incidents of the last hunt."}),
		findings:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "dwell_findings", Help: "Findings of the last hunt."}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_alerts_total",
			Help: "Alert deliveries per channel kind and outcome (delivered, failed: in the dead-letter file)."}, []string{"outcome"}),
		intelPolls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_intel_polls_total", Help: "Intel source polls, by outcome."},
			[]string{"outcome"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_api_commands_total",
			Help: "Commands run through the API, by command and exit code."}, []string{"command", "exit"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "dwell_config_reloads_total", Help: "Configuration reloads (SIGHUP)."}),
		detectorRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_hunt_detector_runs_total",
			Help: "Detector runs of the server's hunts, by detector and how: run (history read), reused (inputs unchanged), " +
				"tallied (from a running tally), tally_read (a new tally read history)."}, []string{"detector", "how"}),
		settledQueries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dwell_hunt_aggregate_queries_total",
			Help: "Aggregate queries of the server's hunts, by how they were answered: merged (settled history kept in memory, " +
				"the records after the cut read), settled_read (settled history read to be kept), extended (the days the cut moved over read " +
				"and added), passed (all history read)."}, []string{"how"}),
	}
	settledBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dwell_hunt_settled_bytes",
		Help: "About how much memory the hunts keep between them of the aggregates over settled history (serve.hunt_memory)."},
		func() float64 { return float64(s.memo.settled.Counts().Bytes) })
	storeBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dwell_store_bytes",
		Help: "Size of the embedded store's files (DuckDB: the database and its write-ahead log; 0 for ClickHouse)."},
		func() float64 { return float64(storeSize(s.cfg.Load().Store)) })
	reg.MustRegister(m.records, m.bad, m.held, m.lastData, m.lag, m.pollSeconds, m.pollErrors, m.hunts, m.huntSeconds, m.incidents, m.findings,
		m.alerts, m.intelPolls, m.commands, m.reloads, m.detectorRuns, m.settledQueries, settledBytes, storeBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = m
	s.memo.counter = m.detectorRuns
	s.memo.settledCounter = m.settledQueries
	return reg
}

// storeSize is the size of a DuckDB store's files.
func storeSize(path string) int64 {
	if strings.Contains(path, "://") {
		return 0
	}
	var n int64
	for _, p := range []string{path, path + ".wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// serverTLS returns the server's TLS configuration: the configured
// certificate, or one made at the first start and kept in the state
// directory (returned as the file clients pin).
func serverTLS(c *config.Serve, addr net.Addr) (*tls.Config, string, error) {
	certFile, keyFile := c.TLSCert, c.TLSKey
	generated := ""
	if c.TLS == "auto" {
		certFile, keyFile = filepath.Join(c.StateDir, "cert.pem"), filepath.Join(c.StateDir, "key.pem")
		generated = certFile
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := makeCert(certFile, keyFile, addr); err != nil {
				return nil, "", fmt.Errorf("serve.tls auto: %w", err)
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("serve.tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, generated, nil
}

// makeCert writes a self-signed certificate (ECDSA P-256, ten years) for
// this machine's names and the listening address.
func makeCert(certFile, keyFile string, addr net.Addr) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "dwell serve", Organization: []string{"dwell"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	if h, err := os.Hostname(); err == nil && h != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !ta.IP.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ta.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
