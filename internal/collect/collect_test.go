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

// Real exporters' sFlow v5 and NetFlow v5 datagrams (the akvorado
// fixtures), received live: every sample and record decoded, sFlow's
// agent kept as the exporter.
func TestCollectSFlowAndV5(t *testing.T) {
	base := filepath.Join(datasets, "netflow-ipfix-sflow-akvorado")
	if _, err := os.Stat(base); err != nil {
		t.Skipf("dataset netflow-ipfix-sflow-akvorado is not here (%v); skipping", err)
	}
	sflows, err := filepath.Glob(filepath.Join(base, "sflow", "*.pcap"))
	if err != nil || len(sflows) == 0 {
		t.Fatalf("no sFlow captures: %v", err)
	}
	r := start(t, Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, Flush: 10 * time.Millisecond}, nil)
	for _, p := range append(sflows, filepath.Join(base, "netflow", "nfv5.pcap")) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Replay(t.Context(), bytes.NewReader(data), r.addr(), ReplayOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r.stop()
	kinds := map[string]int{}
	agents := map[string]bool{}
	for _, f := range r.stored {
		kinds[f.Export]++
		if f.Export == event.ExportSFlow5 {
			agents[f.Exporter.String()] = true
		}
	}
	// The agents the datagrams name (three fixtures' agent is 127.0.0.1).
	if !agents["49.49.49.49"] || !agents["172.16.0.3"] || !agents["172.19.64.116"] {
		t.Errorf("sFlow agents %v", agents)
	}
	// The samples ingest/netflow's TestAkvoradoSFlow counts in the same
	// files; NetFlow v5's records.
	if s := r.c.Stats(); kinds[event.ExportSFlow5] != 16 || kinds[event.ExportNetFlow5] == 0 || s.Bad != 0 {
		t.Errorf("flows by export %v, stats %+v", kinds, s)
	}
}

// With a spool, a store that cannot keep up loses nothing: the flows the
// queue cannot take wait on disk and are stored once the writer caught
// up; a collector stopped first leaves them for the next, which stores
// them at its start. Each flow is stored once.
func TestCollectSpool(t *testing.T) {
	_, data, truth := scenariotest.FlowCapture(t)
	want := truth.Counts["flows"]
	dir := filepath.Join(t.TempDir(), "spool")
	var mu sync.Mutex
	lines := map[event.Source]int{}
	keep := func(fs []event.Flow) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range fs {
			lines[event.Source{File: f.Src.File, Line: f.Src.Line, Sensor: f.DstIP.String() + f.SrcIP.String() + f.TS.String()}]++
		}
	}
	release := make(chan struct{})
	var calls atomic.Int64
	blocked := func(_ context.Context, fs []event.Flow) error {
		if calls.Add(1) == 1 {
			<-release
		}
		keep(fs)
		return nil
	}
	cfg := Config{Listen: []string{"127.0.0.1:0"}, Sockets: 1, Queue: 4, Batch: 1000, Flush: 20 * time.Millisecond, Spool: dir}
	a := start(t, cfg, blocked)
	if _, err := Replay(t.Context(), bytes.NewReader(data), a.addr(), ReplayOptions{Speed: 18_000}); err != nil {
		t.Fatal(err)
	}
	for a.c.Stats().Datagrams < int64(3879) && a.c.Stats().KernelDrops == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	// Stopped while the store still blocks: the spool stays on disk.
	a.cancel()
	close(release)
	<-a.done
	a.cancel = nil
	sa := a.c.Stats()
	if sa.Spooled == 0 || sa.Dropped != 0 || sa.Flows != want {
		t.Fatalf("first run: %+v", sa)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+spoolExt))
	if len(files) == 0 {
		t.Fatal("no spool file left")
	}
	b := start(t, cfg, func(_ context.Context, fs []event.Flow) error { keep(fs); return nil })
	for b.c.Stats().Stored < sa.Spooled {
		time.Sleep(10 * time.Millisecond)
	}
	b.stop()
	if got := sa.Stored + b.c.Stats().Stored; got != want {
		t.Errorf("stored %d + %d, want %d", sa.Stored, b.c.Stats().Stored, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range lines {
		if n != 1 {
			t.Fatalf("flow %+v stored %d times", k, n)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*"+spoolExt)); len(files) != 0 {
		t.Errorf("spool files left: %v", files)
	}
}

// FuzzSpoolRecord: a spool file's record, whatever its bytes, decodes or
// fails without a panic; a flow written decodes as itself.
func FuzzSpoolRecord(f *testing.F) {
	fl := event.Flow{TS: time.Unix(1700000000, 5).UTC(), End: time.Unix(1700000060, 0).UTC(), SrcIP: netip.MustParseAddr("2001:db8::1"),
		SrcPort: 53, DstIP: netip.MustParseAddr("10.20.0.40"), DstPort: 4444, Proto: "udp", Packets: 7, Bytes: 9000, Sampling: 10,
		Exporter: netip.MustParseAddr("10.20.0.1"), Export: event.ExportIPFIX, Src: event.Source{Sensor: "edge", File: "udp:10.20.0.1", Line: 3}}
	rec := encodeFlow(nil, &fl)
	if got, err := decodeFlow(rec[4:]); err != nil || got != fl {
		f.Fatalf("round trip: %+v %v", got, err)
	}
	f.Add(rec[4:])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := decodeFlow(b); err == nil {
			if again, err := decodeFlow(encodeFlow(nil, &got)[4:]); err != nil || again != got {
				t.Fatalf("%+v re-decodes as %+v (%v)", got, again, err)
			}
		}
	})
}
