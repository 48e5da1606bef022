// Package main is the goflowpeer command, which times goflow2's
// NetFlow/IPFIX decoders on the UDP payloads of a pcap capture: the peer
// bench/flows.sh measures dwell's decoder against (TARGETS.md: flow decode
// ≥ goflow2). The payloads are read into memory first; only decoding is
// timed, on one goroutine. It is a module of its own, so that dwell does
// not depend on goflow2.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

func main() {
	passes := flag.Int("passes", 20, "times to decode the whole capture")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: goflowpeer [-passes N] CAPTURE.pcap")
		os.Exit(2)
	}
	payloads, err := udpPayloads(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var records int
	start := time.Now()
	for range *passes {
		templates := netflow.CreateTemplateSystem()
		for _, p := range payloads {
			var nf netflow.NFv9Packet
			var ipfix netflow.IPFIXPacket
			if err := netflow.DecodeMessageVersion(bytes.NewBuffer(p), templates, &nf, &ipfix); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			for _, fs := range ipfix.FlowSets {
				if ds, ok := fs.(netflow.DataFlowSet); ok {
					records += len(ds.Records)
				}
			}
			for _, fs := range nf.FlowSets {
				if ds, ok := fs.(netflow.DataFlowSet); ok {
					records += len(ds.Records)
				}
			}
		}
	}
	took := time.Since(start)
	fmt.Printf("goflow2 %d messages x %d passes: %d records in %v: %.0f records/s\n", len(payloads), *passes, records, took.Round(time.Millisecond),
		float64(records)/took.Seconds())
}

// udpPayloads returns the UDP payloads of a classic pcap of Ethernet,
// IPv4 and UDP (as the scenario writes it).
func udpPayloads(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		return nil, fmt.Errorf("%s: not a little-endian microsecond pcap", path)
	}
	var out [][]byte
	for at := 24; at+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[at+8:]))
		at += 16
		if at+n > len(data) {
			break
		}
		pkt := data[at : at+n]
		at += n
		if len(pkt) < 14+20+8 || binary.BigEndian.Uint16(pkt[12:]) != 0x0800 {
			continue
		}
		ihl := int(pkt[14]&0x0f) * 4
		if pkt[23] != 17 || len(pkt) < 14+ihl+8 {
			continue
		}
		out = append(out, pkt[14+ihl+8:])
	}
	return out, nil
}
