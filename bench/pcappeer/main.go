// Package main is the pcappeer command, which decodes every packet of a
// classic pcap with gopacket's DecodingLayerParser (Ethernet, 802.1Q,
// IPv4, IPv6, TCP, UDP, ICMP, DNS and the payload) and prints how many
// packets, layers and bytes it decoded and how fast: the raw decode rate
// dwell's analysis is compared with in docs/benchmarks.md. Only gopacket,
// layers and pcapgo are used: no cgo, no libpcap.
//
//	go run . FILE.pcap
package main

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pcappeer FILE.pcap")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "pcappeer:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	// The capture is read into memory first, as dwell's BenchmarkDecode
	// reads it: only decoding is timed.
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r, err := pcapgo.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	var (
		eth     layers.Ethernet
		dot1q   layers.Dot1Q
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		udp     layers.UDP
		icmp4   layers.ICMPv4
		icmp6   layers.ICMPv6
		dns     layers.DNS
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp, &icmp4, &icmp6, &dns, &payload)
	parser.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 10)
	start := time.Now()
	var packets, layerCount, size int64
	for {
		data, _, err := r.ZeroCopyReadPacketData()
		if err != nil {
			break
		}
		packets++
		size += int64(len(data)) + 16
		_ = parser.DecodeLayers(data, &decoded) // errors are part of real traffic
		layerCount += int64(len(decoded))
	}
	d := time.Since(start)
	fmt.Printf("gopacket DecodingLayerParser: %d packets, %d layers, %.1f MB in %.2fs: %.1f MB/s, %.0f packets/s\n",
		packets, layerCount, float64(size)/1e6, d.Seconds(), float64(size)/1e6/d.Seconds(), float64(packets)/d.Seconds())
	return nil
}
