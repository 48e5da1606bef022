// Package main is the flowblast command, which offers a flow collector
// a steady load over loopback for bench/collect.sh: the flow messages of
// a capture, sent again and again at a given rate of datagrams a second
// for a given time, from one socket (templates included, as exporters
// repeat them). With -drops PORT it prints instead the datagrams the
// kernel dropped on the UDP sockets bound to PORT (from /proc/net/udp
// and udp6, whatever process holds them).
//
// usage: flowblast -to HOST:PORT -rate N -for 5s CAPTURE
//
//	flowblast -drops PORT
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/netflow"
)

func main() {
	to := flag.String("to", "127.0.0.1:2055", "the collector")
	rate := flag.Int("rate", 50_000, "datagrams a second")
	dur := flag.Duration("for", 5*time.Second, "how long")
	drops := flag.Int("drops", 0, "print the kernel's drops on this UDP port and exit")
	flag.Parse()
	if *drops > 0 {
		fmt.Println(kernelDrops(*drops))
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: flowblast -to HOST:PORT -rate N -for 5s CAPTURE | flowblast -drops PORT")
		os.Exit(2)
	}
	if err := blast(flag.Arg(0), *to, *rate, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "flowblast:", err)
		os.Exit(1)
	}
}

func blast(path, to string, rate int, dur time.Duration) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	var msgs [][]byte
	err = netflow.Messages(bufio.NewReaderSize(f, 1<<20), func(m netflow.Message) error {
		msgs = append(msgs, bytes.Clone(m.Payload))
		return nil
	})
	_ = f.Close()
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return fmt.Errorf("%s: no flow messages", path)
	}
	conn, err := new(net.Dialer).DialContext(context.Background(), "udp", to)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	var sent, bytesSent int64
	start := time.Now()
	const tick = time.Millisecond
	perTick := float64(rate) * tick.Seconds()
	var owed float64
	next := start
	i := 0
	for time.Since(start) < dur {
		owed += perTick
		for ; owed >= 1; owed-- {
			m := msgs[i%len(msgs)]
			i++
			if _, err := conn.Write(m); err != nil {
				continue // ECONNREFUSED while the collector is not there yet
			}
			sent++
			bytesSent += int64(len(m))
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	took := time.Since(start)
	fmt.Printf("sent %d datagrams (%d bytes) in %.2f s: %.0f datagrams/s offered\n", sent, bytesSent, took.Seconds(), float64(sent)/took.Seconds())
	return nil
}

// kernelDrops sums the drops column of the UDP sockets bound to port.
func kernelDrops(port int) int64 {
	suffix := fmt.Sprintf(":%04X", port)
	var n int64
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			fs := strings.Fields(line)
			if len(fs) < 13 || !strings.HasSuffix(fs[1], suffix) {
				continue
			}
			if d, err := strconv.ParseInt(fs[12], 10, 64); err == nil {
				n += d
			}
		}
	}
	return n
}
