// Package scenario writes a synthetic ministry network's telemetry with a
// planted espionage campaign, commodity malware, Internet background noise
// and a DDoS, together with the ground truth (truth.json): what a new user
// needs to see dwell work, and what every detector is tested and measured
// against at scale.
//
// Output, under the output directory:
//
//	YYYY-MM-DD/{conn,dns,http,ssl,x509,files}.HH:00:00-HH:00:00.log.gz   Zeek logs (TSV or JSON)
//	flows/ddos.pcap                                                     IPFIX export of the DDoS hours
//	hostlogs/YYYY-MM-DD.jsonl.gz                                        Windows events (Sysmon, Security)
//	truth.json                                                          what was planted
//
// Everything is a function of the seed: the same configuration writes the
// same bytes. Days are generated in parallel, each hour from its own random
// stream, and the campaign is planned up front, so parallelism does not
// change the output.
package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Formats of the Zeek logs written.
const (
	FormatTSV  = "zeek-tsv"
	FormatJSON = "zeek-json"
)

// Config describes a scenario. Zero fields take the defaults of Default.
type Config struct {
	Days   int       // length of the period
	Hosts  int       // machines on the network, servers included (at least 20)
	Seed   uint64    // everything random derives from it
	Start  time.Time // first day (UTC midnight)
	Rate   int       // background connections per day, on average
	Format string    // FormatTSV or FormatJSON
	Sensor string    // sensor name, for truth.json
	// BeaconMin and BeaconMax bound the implants' check-in periods: the
	// mail server's implant uses the minimum, the last workstation's the
	// maximum (4h and 24h by default).
	BeaconMin, BeaconMax time.Duration
	// Workers generate hours in parallel; default one per core.
	Workers int
	// Level is the gzip level (1, fastest, by default).
	Level int
}

// Default returns the default scenario: two weeks of a 300-host ministry.
func Default() Config {
	return Config{Days: 14, Hosts: 300, Seed: 1, Start: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), Rate: 100_000,
		Format: FormatTSV, Sensor: "ministry-core", BeaconMin: 4 * time.Hour, BeaconMax: 24 * time.Hour, Level: gzip.BestSpeed}
}

func (c Config) withDefaults() Config {
	d := Default()
	if c.Days <= 0 {
		c.Days = d.Days
	}
	if c.Hosts <= 0 {
		c.Hosts = d.Hosts
	}
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	c.Start = c.Start.UTC().Truncate(24 * time.Hour)
	if c.Rate <= 0 {
		c.Rate = d.Rate
	}
	if c.Format == "" {
		c.Format = d.Format
	}
	if c.Sensor == "" {
		c.Sensor = d.Sensor
	}
	if c.BeaconMin <= 0 {
		c.BeaconMin = d.BeaconMin
	}
	if c.BeaconMax <= 0 {
		c.BeaconMax = d.BeaconMax
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Level == 0 {
		c.Level = d.Level
	}
	return c
}

// Validate reports what is wrong with a configuration.
func (c Config) Validate() error {
	var errs []error
	c = c.withDefaults()
	if c.Days < 4 || c.Days > 3650 {
		errs = append(errs, fmt.Errorf("days: %d is not between 4 and 3650", c.Days))
	}
	if c.Hosts < 20 || c.Hosts > 60000 {
		errs = append(errs, fmt.Errorf("hosts: %d is not between 20 and 60000", c.Hosts))
	}
	if c.Format != FormatTSV && c.Format != FormatJSON {
		errs = append(errs, fmt.Errorf("format: %q is not %s or %s", c.Format, FormatTSV, FormatJSON))
	}
	if c.BeaconMin > c.BeaconMax {
		errs = append(errs, errors.New("beacon period: minimum above maximum"))
	}
	return errors.Join(errs...)
}

// Progress reports hours written out of the total.
type Progress func(done, total int)

// Generate writes the scenario into dir (created if needed) and returns
// its truth, also written as dir/truth.json.
func Generate(ctx context.Context, cfg Config, dir string, progress Progress) (*Truth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := newModel(cfg)
	p := newPlan(m)
	truth := p.truth
	truth.Counts = map[string]int64{}
	hours := cfg.Days * 24
	weights := m.hourWeights()

	var mu sync.Mutex
	var done atomic.Int64
	// One set of buffers per worker, kept for the whole run (a sync.Pool
	// drops them at every collection, and they grow back each day).
	free := make(chan *hourBufs, cfg.Workers)
	for range cfg.Workers {
		free <- new(hourBufs)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	// Days are the unit of work: certificates are logged once a day per
	// sensor, as Zeek's X509::relog_known_certificates_after does.
	for d := range cfg.Days {
		g.Go(func() error {
			hb := <-free
			defer func() { free <- hb }()
			certs := map[string]bool{}
			siteLogged := make([]bool, len(m.sites))
			for h := d * 24; h < (d+1)*24; h++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				hb.b.Reset()
				gen := &hourGen{m: m, hour: h, start: cfg.Start.Add(time.Duration(h) * time.Hour),
					rng: rand.New(rand.NewPCG(cfg.Seed, uint64(h)+1)), b: &hb.b, certs: certs, siteLogged: siteLogged, times: hb.times}
				gen.background(int(float64(cfg.Rate*cfg.Days) * weights[h]))
				hb.times = gen.times
				p.into(h, &hb.b, certs)
				files, counts, err := writeHour(dir, cfg, gen.start, hb)
				if err != nil {
					return err
				}
				mu.Lock()
				truth.Files = append(truth.Files, files...)
				for k, v := range counts {
					truth.Counts[k] += v
				}
				mu.Unlock()
				if progress != nil {
					progress(int(done.Add(1)), hours)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	flowFile, flows, err := writeFlows(dir, m, &truth.DDoS)
	if err != nil {
		return nil, err
	}
	truth.Files = append(truth.Files, flowFile)
	truth.Counts["flows"] = flows
	hostFiles, events, err := writeHostLogs(dir, m, p)
	if err != nil {
		return nil, err
	}
	truth.Files = append(truth.Files, hostFiles...)
	truth.Counts["host_events"] = events
	if truth.Intel, err = writeIntel(dir, truth); err != nil {
		return nil, err
	}
	truth.Files = append(truth.Files, truth.Intel.MISP, truth.Intel.MMDB)
	truth.Files = append(truth.Files, truth.Intel.Groups...)
	sort.Strings(truth.Files)
	data, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "truth.json"), append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return truth, nil
}

// hourBufs are the buffers one hour's generation needs, pooled so that
// hours reuse them instead of feeding the garbage collector.
type hourBufs struct {
	b     event.Batch
	keys  []uint64
	out   []byte
	times []int64
	gz    gzipFiles
}

// gzipFiles writes compressed files one after another with one
// compressor, reset for each: a new one costs a megabyte of state.
type gzipFiles struct {
	zw    *gzip.Writer
	bw    *bufio.Writer
	level int // zw's
}

// order returns the indexes of n records sorted by time (microseconds
// after base, from ts), stable: Zeek writes each log in time order. Each
// key packs the offset above the index, so sorting plain integers is
// enough.
func order(keys []uint64, n int, base time.Time, ts func(i int) time.Time) []uint64 {
	keys = keys[:0]
	b := base.UnixMicro()
	for i := range n {
		off := max(ts(i).UnixMicro()-b, 0)
		keys = append(keys, uint64(off)<<24|uint64(i))
	}
	slices.Sort(keys)
	return keys
}

const indexMask = 1<<24 - 1

// writeHour writes one hour's logs as Zeek's hourly rotated files.
func writeHour(dir string, cfg Config, start time.Time, hb *hourBufs) ([]string, map[string]int64, error) {
	b := &hb.b
	day := start.Format("2006-01-02")
	if err := os.MkdirAll(filepath.Join(dir, day), 0o755); err != nil {
		return nil, nil, err
	}
	end := start.Add(time.Hour)
	suffix := fmt.Sprintf(".%s-%s.log.gz", start.Format("15:04:05"), end.Format("15:04:05"))
	json := cfg.Format == FormatJSON
	var files []string
	counts := map[string]int64{}
	write := func(l logSpec, n int, ts func(i int) time.Time, each func(e *enc, i int)) error {
		if n == 0 {
			return nil
		}
		if n > indexMask {
			return fmt.Errorf("%s %s: %d records in one hour is more than the generator handles", l.path, start.Format(time.DateTime), n)
		}
		// A record may start a little before its hour (a lookup just
		// before a timer's connection); the keys start an hour earlier.
		hb.keys = order(hb.keys, n, start.Add(-time.Hour), ts)
		e := &enc{json: json, b: hb.out[:0]}
		if !json {
			e.b = append(e.b, tsvHeader(l, start)...)
		}
		for _, k := range hb.keys {
			each(e, int(k&indexMask))
		}
		if !json {
			e.b = append(e.b, tsvFooter(end)...)
		}
		hb.out = e.b
		name := filepath.Join(day, l.path+suffix)
		if err := hb.gz.write(filepath.Join(dir, name), e.b, cfg.Level, start); err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(name))
		counts[l.path] += int64(n)
		return nil
	}
	errs := []error{
		write(connLog, len(b.Conns), func(i int) time.Time { return b.Conns[i].TS }, func(e *enc, i int) { e.conn(&b.Conns[i]) }),
		write(dnsLog, len(b.DNS), func(i int) time.Time { return b.DNS[i].TS }, func(e *enc, i int) { e.dns(&b.DNS[i]) }),
		write(httpLog, len(b.HTTP), func(i int) time.Time { return b.HTTP[i].TS }, func(e *enc, i int) { e.http(&b.HTTP[i]) }),
		write(sslLog, len(b.TLS), func(i int) time.Time { return b.TLS[i].TS }, func(e *enc, i int) { e.ssl(&b.TLS[i]) }),
		write(x509Log, len(b.X509), func(i int) time.Time { return b.X509[i].TS }, func(e *enc, i int) { e.x509(&b.X509[i]) }),
		write(filesLog, len(b.Files), func(i int) time.Time { return b.Files[i].TS }, func(e *enc, i int) { e.file(&b.Files[i]) }),
	}
	return files, counts, errors.Join(errs...)
}

// write writes data gzip-compressed, with a fixed header time so that
// the same data gives the same bytes.
func (g *gzipFiles) write(path string, data []byte, level int, mtime time.Time) error {
	if g.zw == nil || g.level != level {
		zw, err := gzip.NewWriterLevel(nil, level)
		if err != nil {
			return err
		}
		// The compressor hands over a few hundred bytes at a time:
		// buffered, that is one write call per 256 KiB instead of one per
		// block.
		g.zw, g.bw, g.level = zw, bufio.NewWriterSize(nil, 256<<10), level
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw, zw := g.bw, g.zw
	bw.Reset(f)
	zw.Reset(bw)
	zw.ModTime = mtime
	if _, err := zw.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := errors.Join(zw.Close(), bw.Flush()); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// uid returns a Zeek-like connection id, unique for (seed, hour, n) in
// practice: 17 base-62 characters from two rounds of the splitmix64 mixer.
func uid(prefix byte, seed uint64, hour, n int) string {
	return string(appendUID(make([]byte, 0, uidLen), prefix, seed, hour, n))
}

// uidLen is the length of a uid: the prefix and 17 base-62 characters.
const uidLen = 18

// appendUID appends uid(prefix, seed, hour, n) to b.
func appendUID(b []byte, prefix byte, seed uint64, hour, n int) []byte {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out [uidLen]byte
	out[0] = prefix
	x := mix64(seed ^ mix64(uint64(hour)<<32|uint64(uint32(n))))
	y := mix64(x ^ 0x9e3779b97f4a7c15)
	for i := 1; i < uidLen; i++ {
		if i == 10 {
			x = y
		}
		out[i] = alphabet[x%62]
		x /= 62
	}
	return append(b, out[:]...)
}

// mix64 is the splitmix64 finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
