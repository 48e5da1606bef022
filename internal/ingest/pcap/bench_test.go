package pcap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

// benchCapture is the capture the benchmarks read: $DWELL_BENCH_PCAP (a
// large one built by bench/pcapbuild), or the largest of the shared ones.
func benchCapture(b *testing.B) []byte {
	p := os.Getenv("DWELL_BENCH_PCAP")
	if p == "" {
		p = filepath.Join(dataset(b, "labelled-network"), "caldera-c2-beacons/sandcat.pcap")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Skipf("no capture to read: %v", err)
	}
	return data
}

// BenchmarkSource reads a whole capture into records: capture reading,
// IP and TCP analysis, DNS, HTTP and TLS, files hashed.
func BenchmarkSource(b *testing.B) {
	data := benchCapture(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var rows int64
	for b.Loop() {
		in := &ingest.Input{Path: "bench.pcap", Head: data[:min(len(data), event.HeadSize)], Final: true}
		src, err := open(bytes.NewReader(data), in)
		if err != nil {
			b.Fatal(err)
		}
		var batch event.Batch
		for {
			err := src.Next(context.Background(), &batch, 4096)
			batch.Reset()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		rows = src.Report().Rows
	}
	b.ReportMetric(float64(rows), "records/op")
}

// BenchmarkDecode is dwell's packet decoding alone, the work gopacket's
// DecodingLayerParser does in bench/pcappeer: capture records, the link
// layer, IPv4 and IPv6 (fragments held for reassembly), and the TCP and
// UDP headers a connection is keyed and followed by (ports, flags,
// sequence numbers, window, the window scale option), down to the
// connection key. No connection table, no application parser, no hash:
// what the rest of BenchmarkSource's time pays for is the analysis
// gopacket does not do.
func BenchmarkDecode(b *testing.B) {
	data := benchCapture(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var packets, keyed int
	var sink uint64
	for b.Loop() {
		packets, keyed = 0, 0
		r := capture.NewReader(bytes.NewReader(data))
		frags := newReassembler()
		var p packet
		for {
			pk, err := r.Next()
			if err != nil {
				break
			}
			packets++
			ip, ok := capture.Network(pk.Link, pk.Data)
			if !ok {
				continue
			}
			p = packet{ts: pk.TS}
			if decodeIP(ip, &p, frags) != nil || len(p.l4) < 8 {
				continue
			}
			sp, dp := binary.BigEndian.Uint16(p.l4), binary.BigEndian.Uint16(p.l4[2:])
			if p.proto == protoTCP && len(p.l4) >= 20 {
				h := p.l4
				off := int(h[12]>>4) * 4
				seq, ack, win := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint16(h[14:])
				sink += uint64(seq) + uint64(ack) + uint64(win) + uint64(h[13])
				if h[13]&tcpSYN != 0 && off >= 20 && off <= len(h) {
					sink += uint64(windowScale(h[20:off]) + 1)
				}
			}
			k := makeKey(p.src, p.dst, sp, dp, p.proto)
			sink += uint64(k.pa) + uint64(k.pb)
			keyed++
		}
	}
	b.ReportMetric(float64(packets), "packets/op")
	b.ReportMetric(float64(keyed), "keyed/op")
	if sink == 42 {
		b.Log(sink)
	}
}
