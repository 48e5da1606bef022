package collect

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/scenario/scenariotest"
)

const datasets = "../../../shared/datasets"

// running is a collector started for a test.
type running struct {
	c      *Collector
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	stored []event.Flow
	live   atomic.Int64
}

func start(t *testing.T, cfg Config, store func(context.Context, []event.Flow) error) *running {
	t.Helper()
	r := &running{c: New(cfg, nil), done: make(chan error, 1)}
	if err := r.c.Listen(t.Context()); err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = func(_ context.Context, fs []event.Flow) error {
			r.mu.Lock()
			r.stored = append(r.stored, fs...)
			r.mu.Unlock()
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.c.Run(ctx, func(fs []event.Flow) { r.live.Add(int64(len(fs))) }, store) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) addr() string { return r.c.Addrs()[0].String() }

// stop ends the collector once the datagrams sent have been read.
func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	for prev := int64(-1); ; time.Sleep(50 * time.Millisecond) {
		n := r.c.Stats().Datagrams
		if n == prev {
			break
		}
		prev = n
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// The scenario's edge export, replayed over loopback to two sockets
// sharing the port: every flow the capture holds is decoded, handed to
// the live consumer and stored, with its exporter and provenance; none
// is dropped.
func TestCollectScenario(t *testing.T) {
	_, data, truth := scenariotest.FlowCapture(t)
	r := start(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 2, Sensor: "edge", Batch: 1000, Flush: 50 * time.Millisecond}, nil)
	// About 18,000 times the capture's pace: its five hours in a second.
	st, err := Replay(t.Context(), bytes.NewReader(data), r.addr(), ReplayOptions{Speed: 18_000})
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	s := r.c.Stats()
	t.Logf("replay %+v; collector %+v", st, s)
	want := truth.Counts["flows"]
	if s.Flows != want || s.Stored != want || r.live.Load() != want || int64(len(r.stored)) != want || s.Dropped != 0 || s.Bad != 0 ||
		s.KernelDrops != 0 || s.Datagrams != st.Messages || s.Sockets != 2 {
		t.Fatalf("stats %+v, live %d, stored %d; want %d flows", s, r.live.Load(), len(r.stored), want)
	}
	f := r.stored[0]
	if f.Export != event.ExportIPFIX || f.Src.Sensor != "edge" || f.Src.File != "udp:127.0.0.1" || f.Src.Line < 1 || !f.Exporter.IsLoopback() {
		t.Errorf("flow %+v", f)
	}
}

// Templates survive a restart: one collector learns an exporter's
// templates and stops; the next, from the saved state, decodes the data
// sets that follow without having seen them.
func TestCollectTemplatesKept(t *testing.T) {
	dir := filepath.Join(datasets, "netflow-ipfix-sflow-akvorado", "netflow")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("dataset netflow-ipfix-sflow-akvorado is not here (%v); skipping", err)
	}
	state := filepath.Join(t.TempDir(), "templates.json")
	send := func(r *running, name string) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Replay(t.Context(), bytes.NewReader(data), r.addr(), ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, StateFile: state, Flush: 10 * time.Millisecond}
	r := start(t, cfg, nil)
	send(r, "template.pcap")
	r.stop()
	if _, err := os.Stat(state); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg, nil)
	send(r, "data.pcap")
	r.stop()
	if s := r.c.Stats(); s.Flows == 0 || s.Unknown != 0 {
		t.Errorf("after the restart: %+v", s)
	}
	// Without the state, the same data cannot be decoded.
	cfg.StateFile = ""
	r = start(t, cfg, nil)
	send(r, "data.pcap")
	r.stop()
	if s := r.c.Stats(); s.Flows != 0 || s.Unknown == 0 {
		t.Errorf("without templates: %+v", s)
	}
}

// Exporters outside the allowed prefixes are refused; a store that
// cannot keep up makes the collector drop and count flows, never stall
// its sockets: the live consumer still sees every flow.
func TestCollectRefusedAndBackPressure(t *testing.T) {
	_, data, truth := scenariotest.FlowCapture(t)
	r := start(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, Exporters: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}, nil)
	st, err := Replay(t.Context(), bytes.NewReader(data), r.addr(), ReplayOptions{Speed: 18_000})
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	if s := r.c.Stats(); s.Refused != st.Messages || s.Flows != 0 {
		t.Errorf("forged exporter: %+v (sent %d)", s, st.Messages)
	}

	release := make(chan struct{})
	var calls atomic.Int64
	slow := func(ctx context.Context, fs []event.Flow) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	}
	r = start(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, Queue: 4, Batch: 10}, slow)
	if _, err := Replay(t.Context(), bytes.NewReader(data), r.addr(), ReplayOptions{Speed: 18_000}); err != nil {
		t.Fatal(err)
	}
	for r.c.Stats().Datagrams < st.Messages && r.c.Stats().KernelDrops == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r.stop()
	s := r.c.Stats()
	t.Logf("%+v", s)
	if s.Dropped == 0 || s.Stored+s.Dropped != s.Flows || r.live.Load() != s.Flows || s.Flows != truth.Counts["flows"] {
		t.Errorf("back-pressure: %+v, live %d, want %d flows", s, r.live.Load(), truth.Counts["flows"])
	}
}
