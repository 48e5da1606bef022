// Package main is the ddoslatency command, which measures how soon dwell
// serve and FastNetMon (Debian's fastnetmon) report the scenario's DDoS
// when its edge router's IPFIX export is replayed to both over UDP at the
// capture's pace: each datagram goes to both collectors at once, the
// time the first datagram holding an attack record leaves is noted, and
// each tool's report is timed from it (dwell: its webhook alert;
// FastNetMon: its notify script). Both use the same threshold, 10,000
// packets/s per address of 10.20.0.0/16. It prints one Markdown table
// row per run for docs/benchmarks.md.
//
// usage: ddoslatency -dwell PATH [-runs N] [-before 1m] [-after 2m]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
	"github.com/dwell-nsm/dwell/internal/scenario"
)

func main() {
	dwell := flag.String("dwell", "bench/out/dwell", "the dwell binary")
	runs := flag.Int("runs", 3, "runs")
	before := flag.Duration("before", time.Minute, "capture replayed before the attack's first export")
	after := flag.Duration("after", 30*time.Second, "capture replayed after it")
	threshold := flag.Int("pps", 10_000, "packets/s threshold of both tools")
	flag.Parse()
	if err := run(*dwell, *runs, *before, *after, *threshold); err != nil {
		fmt.Fprintln(os.Stderr, "ddoslatency:", err)
		os.Exit(1)
	}
}

type message struct {
	ts      time.Time
	payload []byte
}

func run(dwell string, runs int, before, after time.Duration, pps int) error {
	if _, err := exec.LookPath("fastnetmon"); err != nil {
		return fmt.Errorf("fastnetmon not found: apt-get install fastnetmon")
	}
	dwell, err := filepath.Abs(dwell)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ddoslatency")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	cfg := scenario.Default()
	cfg.Days, cfg.Hosts, cfg.Rate = 4, 30, 2000
	truth, err := scenario.Generate(context.Background(), cfg, filepath.Join(dir, "scenario"), nil)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "scenario", filepath.FromSlash(truth.DDoS.FlowFile)))
	if err != nil {
		return err
	}
	first := truth.DDoS.From.Add(time.Minute) // the first attack records leave at the end of its first minute
	var msgs []message
	err = netflow.Messages(bytes.NewReader(data), func(m netflow.Message) error {
		if !m.TS.Before(first.Add(-before)) && m.TS.Before(first.Add(after)) {
			msgs = append(msgs, message{m.TS, bytes.Clone(m.Payload)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("| run | datagrams | dwell alert after the first attack datagram | FastNetMon ban after it |\n|---|---|---|---|\n")
	for i := range runs {
		d, f, err := once(dwell, filepath.Join(dir, fmt.Sprint(i)), msgs, first, pps)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %d | %s | %s |\n", i+1, len(msgs), d, f)
	}
	return nil
}

func freeUDP() (int, error) {
	c, err := new(net.ListenConfig).ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// once runs both tools on one replay.
func once(dwell, dir string, msgs []message, first time.Time, pps int) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// dwell serve, its alerts to a webhook here.
	var mu sync.Mutex
	var dwellAt time.Time
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a struct{ Event string }
		if json.Unmarshal(body, &a) == nil && a.Event == "ddos_start" {
			mu.Lock()
			if dwellAt.IsZero() {
				dwellAt = time.Now()
			}
			mu.Unlock()
		}
	})}
	hl, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	go func() { _ = hook.Serve(hl) }()
	defer func() { _ = hook.Close() }()
	dport, err := freeUDP()
	if err != nil {
		return "", "", err
	}
	conf := fmt.Sprintf(`store: %s
sensor: edge
serve:
  listen: 127.0.0.1:0
  collect: {listen: ["127.0.0.1:%d"]}
  ddos: {networks: [{prefix: 10.20.0.0/16, pps: %d}]}
  alerts: {min_severity: low, webhooks: [{url: "http://%s/"}]}
`, filepath.Join(dir, "dwell.db"), dport, pps, hl.Addr())
	if err := os.WriteFile(filepath.Join(dir, "dwell.yaml"), []byte(conf), 0o600); err != nil {
		return "", "", err
	}
	dcmd := exec.CommandContext(ctx, dwell, "serve", "--config", filepath.Join(dir, "dwell.yaml"))
	dout, err := dcmd.StdoutPipe()
	if err != nil {
		return "", "", err
	}
	dcmd.Stderr = io.Discard
	if err := dcmd.Start(); err != nil {
		return "", "", err
	}
	defer func() { _ = dcmd.Process.Signal(os.Interrupt); _ = dcmd.Wait() }()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(dout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "dwell serve: ") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		return "", "", fmt.Errorf("dwell serve did not start")
	}

	// FastNetMon with the same threshold; its notify script notes the time.
	fport, err := freeUDP()
	if err != nil {
		return "", "", err
	}
	notified := filepath.Join(dir, "fnm-notified")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$(date +%s.%N) $*\" >> "+notified+"\ncat > /dev/null\n"), 0o755); err != nil {
		return "", "", err
	}
	networks := filepath.Join(dir, "networks_list")
	white := filepath.Join(dir, "networks_whitelist")
	_ = os.WriteFile(networks, []byte("10.20.0.0/16\n"), 0o644)
	_ = os.WriteFile(white, nil, 0o644)
	fconf := fmt.Sprintf(`logging_level = info
enable_ban = on
process_incoming_traffic = on
process_outgoing_traffic = off
ban_time = 1900
networks_list_path = %s
white_list_path = %s
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = off
ban_for_flows = off
threshold_pps = %d
pcap = off
mirror_afpacket = off
netflow = on
sflow = off
netflow_port = %d
netflow_host = 127.0.0.1
netflow_sampling_ratio = 1
average_calculation_time = 5
speed_calculation_delay = 1
notify_script_path = %s
exabgp = off
gobgp = off
redis_enabled = off
mongodb_enabled = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
`, networks, white, pps, fport, script)
	if err := os.WriteFile(filepath.Join(dir, "fastnetmon.conf"), []byte(fconf), 0o644); err != nil {
		return "", "", err
	}
	fcmd := exec.CommandContext(ctx, "fastnetmon", "--configuration_file", filepath.Join(dir, "fastnetmon.conf"),
		"--log_file", filepath.Join(dir, "fastnetmon.log"), "--disable_pid_logic")
	fcmd.Stdout, fcmd.Stderr = io.Discard, io.Discard
	if err := fcmd.Start(); err != nil {
		return "", "", err
	}
	defer func() { _ = fcmd.Process.Kill(); _ = fcmd.Wait() }()
	if err := waitUDP(fport, 30*time.Second); err != nil {
		return "", "", fmt.Errorf("fastnetmon: %w (see %s)", err, filepath.Join(dir, "fastnetmon.log"))
	}
	time.Sleep(2 * time.Second)

	// The replay, each datagram to both, at the capture's pace.
	dc, err := new(net.Dialer).DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", dport))
	if err != nil {
		return "", "", err
	}
	defer func() { _ = dc.Close() }()
	fc, err := new(net.Dialer).DialContext(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", fport))
	if err != nil {
		return "", "", err
	}
	defer func() { _ = fc.Close() }()
	start := time.Now()
	var sentAt time.Time
	for i, m := range msgs {
		if d := time.Until(start.Add(m.ts.Sub(msgs[0].ts))); d > 0 {
			time.Sleep(d)
		}
		a, b := dc, fc
		if i%2 == 1 { // neither always first
			a, b = fc, dc
		}
		_, _ = a.Write(m.payload)
		_, _ = b.Write(m.payload)
		if sentAt.IsZero() && !m.ts.Before(first) {
			sentAt = time.Now()
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	var fnmAt time.Time
	for time.Now().Before(deadline) {
		if fnmAt.IsZero() {
			fnmAt = firstNotify(notified)
		}
		mu.Lock()
		done := !dwellAt.IsZero() && !fnmAt.IsZero()
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	return since(sentAt, dwellAt), since(sentAt, fnmAt), nil
}

func since(from, to time.Time) string {
	if to.IsZero() {
		return "none within 60 s"
	}
	return fmt.Sprintf("%.3f s", to.Sub(from).Seconds())
}

// firstNotify returns when FastNetMon's notify script first ran for a ban.
func firstNotify(path string) time.Time {
	data, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(line, "ban") || strings.Contains(line, "unban") {
			continue
		}
		if s, err := strconv.ParseFloat(f[0], 64); err == nil {
			return time.Unix(0, int64(s*1e9))
		}
	}
	return time.Time{}
}

// waitUDP waits until some process listens on the UDP port.
func waitUDP(port int, within time.Duration) error {
	hex := fmt.Sprintf(":%04X ", port)
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		data, _ := os.ReadFile("/proc/net/udp")
		if bytes.Contains(data, []byte(hex)) {
			return nil
		}
	}
	return fmt.Errorf("nothing listens on udp port %d", port)
}
