// Package collect receives flow exports over UDP, as routers send them:
// NetFlow v5, v9, IPFIX and sFlow v5 from many exporters at once. It is
// the live counterpart of ingest/netflow, which reads the same messages
// from packet captures, and shares its decoder.
//
// Several sockets share each address (SO_REUSEPORT), one reader
// goroutine each, so the kernel spreads exporters over the cores; each
// socket asks for a large receive buffer, and the drops the kernel
// counts on them are read back and reported beside dwell's own. A
// reader decodes a datagram at once and hands its flows to the live
// consumer (the streaming DDoS detector) before queueing them for the
// store; a full queue drops and counts flows rather than stalling the
// socket, so detection keeps up when the store cannot. Templates and
// sampling rates of every exporter and observation domain are saved to
// a state file, so a restart decodes the data sets that follow it.
package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
)

// Config configures a collector.
type Config struct {
	// Listen are the UDP addresses, host:port ("0.0.0.0:2055",
	// "[::]:4739", "127.0.0.1:0" for any free port).
	Listen []string
	// Sockets is how many sockets share each address; default the
	// number of CPUs.
	Sockets int
	// ReadBuffer is the kernel receive buffer asked for each socket, in
	// bytes; default 16 MiB (Linux grants at most net.core.rmem_max
	// unless dwell runs as root; the size granted is reported).
	ReadBuffer int
	// Exporters are the addresses flows are accepted from; empty: any. A
	// message from anywhere else is counted and dropped, so a forged
	// exporter cannot plant flows.
	Exporters []netip.Prefix
	// Queue is how many datagrams' flows wait for the store at most;
	// default 8192. Beyond it flows are dropped and counted.
	Queue int
	// Batch is how many flows make a store write at most, and Flush the
	// longest a flow waits for one; defaults 50,000 and 1 s.
	Batch int
	Flush time.Duration
	// Sensor names the site in the stored flows.
	Sensor string
	// StateFile keeps the exporters' templates and sampling rates
	// across restarts; empty: not kept.
	StateFile string
	// Spool is a directory where flows wait on disk when the store queue
	// is full, to be stored once the writer has caught up (and at the next
	// start, if the collector stopped first); empty: such flows are
	// dropped. SpoolMax bounds its size (default 1 GiB).
	Spool    string
	SpoolMax int64
}

// Stats are a collector's counters since it started.
type Stats struct {
	Datagrams   int64 // received
	Flows       int64 // decoded
	Bad         int64 // datagrams that were not a flow message or were malformed
	Refused     int64 // datagrams from an exporter not in Config.Exporters
	Dropped     int64 // flows decoded but not stored: the store queue and the spool were full, or a write failed
	Spooled     int64 // flows that waited in the spool (stored later, or at the next start)
	Stored      int64 // flows written to the store
	Unknown     int64 // data sets whose template had not been seen
	KernelDrops int64 // datagrams the kernel dropped on the sockets (full buffers)
	ReadBuffer  int   // receive buffer the kernel granted each socket, bytes
	Sockets     int
}

// Collector receives flow exports. Listen binds its sockets; Run reads
// them until its context ends.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	conns   []*net.UDPConn
	readers []*reader
	queue   chan []event.Flow
	rcvbuf  int
	spool   *spool

	datagrams, flows, bad, refused, dropped, stored, spooled atomic.Int64
}

// reader is one socket's decoder; its lock is taken by the socket's
// goroutine and by State.
type reader struct {
	mu  sync.Mutex
	dec *netflow.Decoder
}

// New returns a collector for cfg, with its defaults filled in.
func New(cfg Config, log *slog.Logger) *Collector {
	if cfg.Sockets <= 0 {
		cfg.Sockets = runtime.NumCPU()
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = 16 << 20
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8192
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 50_000
	}
	if cfg.Flush <= 0 {
		cfg.Flush = time.Second
	}
	if cfg.SpoolMax <= 0 {
		cfg.SpoolMax = 1 << 30
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Collector{cfg: cfg, log: log, queue: make(chan []event.Flow, cfg.Queue)}
}

// Listen binds the sockets. With a port of 0 the first socket of an
// address picks the port and the others share it.
func (c *Collector) Listen(ctx context.Context) error {
	if len(c.cfg.Listen) == 0 {
		return errors.New("collect: no address to listen on")
	}
	if c.cfg.Spool != "" {
		sp, err := openSpool(c.cfg.Spool, c.cfg.SpoolMax)
		if err != nil {
			return fmt.Errorf("collect: spool: %w", err)
		}
		c.spool = sp
	}
	var state []byte
	if c.cfg.StateFile != "" {
		data, err := os.ReadFile(c.cfg.StateFile)
		switch {
		case err == nil:
			state = data
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("collect: %w", err)
		}
	}
	for _, addr := range c.cfg.Listen {
		for i := range c.cfg.Sockets {
			conn, err := listenUDP(ctx, addr, c.cfg.Sockets > 1)
			if err != nil {
				c.Close()
				return fmt.Errorf("collect: listening on %s: %w", addr, err)
			}
			if i == 0 {
				addr = conn.LocalAddr().String() // the port chosen, for the others
			}
			if err := conn.SetReadBuffer(c.cfg.ReadBuffer); err != nil {
				c.log.Warn("collect: receive buffer not set", "addr", addr, "err", err)
			}
			if c.rcvbuf = readBuffer(conn); c.rcvbuf < c.cfg.ReadBuffer {
				forceReadBuffer(conn, c.cfg.ReadBuffer)
				c.rcvbuf = readBuffer(conn)
			}
			r := &reader{dec: netflow.NewDecoder()}
			if state != nil {
				if err := r.dec.Restore(state); err != nil {
					c.log.Warn("collect: saved templates not restored", "file", c.cfg.StateFile, "err", err)
					state = nil
				}
			}
			c.conns = append(c.conns, conn)
			c.readers = append(c.readers, r)
		}
	}
	if c.rcvbuf < c.cfg.ReadBuffer {
		c.log.Warn("collect: the kernel granted a smaller receive buffer than asked (raise net.core.rmem_max)",
			"asked", c.cfg.ReadBuffer, "granted", c.rcvbuf)
	}
	return nil
}

// Addrs returns the bound addresses, one per listen address.
func (c *Collector) Addrs() []net.Addr {
	var out []net.Addr
	for i, conn := range c.conns {
		if i%c.cfg.Sockets == 0 {
			out = append(out, conn.LocalAddr())
		}
	}
	return out
}

// Close closes the sockets.
func (c *Collector) Close() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// Run reads the sockets until ctx ends. Each datagram's flows go to live
// at once (from the socket's goroutine: live must be safe for concurrent
// use and quick), then to store in batches (from one goroutine). Run
// closes the sockets, writes what is queued and saves the templates
// before it returns.
func (c *Collector) Run(ctx context.Context, live func([]event.Flow), store func(context.Context, []event.Flow) error) error {
	if len(c.conns) == 0 {
		if err := c.Listen(ctx); err != nil {
			return err
		}
	}
	var readers sync.WaitGroup
	for i, conn := range c.conns {
		readers.Go(func() { c.read(conn, c.readers[i], live) })
	}
	written := make(chan error, 1)
	go func() { written <- c.write(ctx, store) }()
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.saveState()
			}
		}
	}()
	<-ctx.Done()
	c.Close()
	readers.Wait()
	close(c.queue)
	<-saved
	c.saveState()
	return <-written
}

// read is one socket's loop.
func (c *Collector) read(conn *net.UDPConn, r *reader, live func([]event.Flow)) {
	buf := make([]byte, 65536)
	var flows []event.Flow
	var seq int64
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("collect: read", "err", err)
			continue
		}
		c.datagrams.Add(1)
		exporter := from.Addr().Unmap()
		if !c.allowed(exporter) {
			c.refused.Add(1)
			continue
		}
		p := buf[:n]
		if !netflow.IsFlowMessage(p) {
			c.bad.Add(1)
			continue
		}
		now := time.Now()
		r.mu.Lock()
		flows, err = r.dec.Decode(exporter, now, p, flows[:0])
		r.mu.Unlock()
		if err != nil {
			c.bad.Add(1)
			c.log.Debug("collect: malformed flow message", "exporter", exporter, "bytes", n, "err", err)
		}
		if len(flows) == 0 {
			continue
		}
		seq++
		file := "udp:" + exporter.String()
		for i := range flows {
			flows[i].Src = event.Source{Sensor: c.cfg.Sensor, File: file, Line: seq}
		}
		c.flows.Add(int64(len(flows)))
		if live != nil {
			live(flows)
		}
		select {
		case c.queue <- slices.Clone(flows):
		default:
			if c.spool != nil && c.spool.add(flows) {
				c.spooled.Add(int64(len(flows)))
			} else {
				c.dropped.Add(int64(len(flows)))
			}
		}
	}
}

func (c *Collector) allowed(a netip.Addr) bool {
	if len(c.cfg.Exporters) == 0 {
		return true
	}
	for _, p := range c.cfg.Exporters {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// write batches queued flows into the store until the queue closes. A
// failed write is logged and its flows counted as dropped: the sockets
// must go on. Only the last write's failure, when the queue closed, is
// returned (flows received before a stop were not stored). Once ctx is
// done, the spool is left for the next start.
func (c *Collector) write(ctx context.Context, store func(context.Context, []event.Flow) error) error {
	var batch []event.Flow
	t := time.NewTicker(c.cfg.Flush)
	defer t.Stop()
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// The store write outlives the collector's context: what was
		// received is written before Run returns.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n := len(batch)
		err := store(ctx, batch)
		batch = nil
		if err != nil {
			c.dropped.Add(int64(n))
			c.log.Error("collect: storing flows", "flows", n, "err", err)
			return err
		}
		c.stored.Add(int64(n))
		return nil
	}
	for {
		select {
		case fs, ok := <-c.queue:
			if !ok {
				err := flush()
				if c.spool != nil {
					_ = c.spool.rotate() // stored at the next start
				}
				return err
			}
			batch = append(batch, fs...)
			if len(batch) >= c.cfg.Batch {
				_ = flush() // logged and counted
			}
		case <-t.C:
			_ = flush()
			c.unspool(ctx, store)
		}
	}
}

// unspool stores the spooled files while the queue is empty (the writer
// has caught up with what arrives) and the collector is not stopping (a
// stop leaves them for the next start, at once).
func (c *Collector) unspool(ctx context.Context, store func(context.Context, []event.Flow) error) {
	if c.spool == nil {
		return
	}
	for ctx.Err() == nil && len(c.queue) == 0 && c.spool.pending() {
		if c.spool.next() == "" {
			if err := c.spool.rotate(); err != nil {
				c.log.Error("collect: spool", "err", err)
			}
		}
		name := c.spool.next()
		if name == "" {
			return
		}
		flows, err := readSpoolFile(name)
		if err != nil {
			c.log.Error("collect: reading the spool", "err", err) // what was read before the fault is stored
		}
		for len(flows) > 0 {
			n := min(len(flows), c.cfg.Batch)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := store(ctx, flows[:n])
			cancel()
			if err != nil {
				c.log.Error("collect: storing spooled flows; they stay in the spool", "file", name, "err", err)
				if err := rewriteSpoolFile(name, flows); err != nil { // the rest only: none stored twice
					c.log.Error("collect: spool", "err", err)
				}
				return
			}
			c.stored.Add(int64(n))
			flows = flows[n:]
		}
		if err := c.spool.done(name); err != nil {
			c.log.Error("collect: spool", "err", err)
		}
	}
}

// State returns the templates and sampling rates all sockets know.
func (c *Collector) State() []byte {
	merged := netflow.NewDecoder()
	for _, r := range c.readers {
		r.mu.Lock()
		st := r.dec.State()
		r.mu.Unlock()
		_ = merged.Restore(st) // made by State: cannot fail
	}
	return merged.State()
}

func (c *Collector) saveState() {
	if c.cfg.StateFile == "" || len(c.readers) == 0 {
		return
	}
	tmp := c.cfg.StateFile + ".tmp"
	err := os.MkdirAll(filepath.Dir(c.cfg.StateFile), 0o700)
	if err == nil {
		err = os.WriteFile(tmp, c.State(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, c.cfg.StateFile)
	}
	if err != nil {
		c.log.Warn("collect: saving templates", "file", c.cfg.StateFile, "err", err)
	}
}

// Stats returns the counters.
func (c *Collector) Stats() Stats {
	s := Stats{Datagrams: c.datagrams.Load(), Flows: c.flows.Load(), Bad: c.bad.Load(), Refused: c.refused.Load(),
		Dropped: c.dropped.Load(), Stored: c.stored.Load(), Spooled: c.spooled.Load(), ReadBuffer: c.rcvbuf, Sockets: len(c.conns)}
	for _, r := range c.readers {
		r.mu.Lock()
		s.Unknown += r.dec.Unknown()
		r.mu.Unlock()
	}
	s.KernelDrops = kernelDrops(c.conns)
	return s
}
