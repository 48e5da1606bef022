package netflow

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
	"github.com/dwell-nsm/dwell/internal/ingest/capture/capturetest"
)

// ipfixMessage builds a small IPFIX message: a template with a variable-
// length field and one data record.
func ipfixMessage() []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 10)
	b = append(b, 0, 0, 0x66, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7)
	tpl := []uint16{256, 4, 8, 4, 12, 4, 2, 8, 82, variable}
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, uint16(4+2*len(tpl)))
	for _, v := range tpl {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	rec := []byte{10, 0, 0, 1, 192, 0, 2, 9, 0, 0, 0, 0, 0, 0, 0, 5, 3, 'e', 't', 'h'}
	b = binary.BigEndian.AppendUint16(b, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// sflowMessage builds an sFlow v5 datagram from agent 10.0.0.1: one flow
// sample, 1 in 512, with a sampled IPv4 record of a DNS answer.
func sflowMessage() []byte {
	words := []uint32{5, 1, 0x0a000001, 0, 1, 100, 1, // header, one sample
		1, 72, 1, 0, 512, 0, 0, 1, 2, 1, // flow sample, one record
		3, 32, 1400, 17, 0xc0000201, 0x0a000002, 53, 40000, 0, 0} // sampled IPv4
	var b []byte
	for _, w := range words {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

func TestSFlowSampledIPv4(t *testing.T) {
	out, err := newDecoder().decode(datagram{payload: sflowMessage()}, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("decode = %+v, %v", out, err)
	}
	if f := out[0]; f.SrcIP.String() != "192.0.2.1" || f.SrcPort != 53 || f.DstIP.String() != "10.0.0.2" || f.DstPort != 40000 ||
		f.Proto != "udp" || f.Bytes != 1400 || f.Packets != 1 || f.Sampling != 512 || f.Exporter.String() != "10.0.0.1" || f.Export != event.ExportSFlow5 {
		t.Errorf("flow %+v", f)
	}
}

func TestIPFIXVariableLength(t *testing.T) {
	out, err := newDecoder().decode(datagram{src: netip.MustParseAddr("10.20.0.1"), payload: ipfixMessage()}, nil)
	if err != nil || len(out) != 1 || out[0].SrcIP.String() != "10.0.0.1" || out[0].DstIP.String() != "192.0.2.9" || out[0].Packets != 5 {
		t.Fatalf("decode = %+v, %v", out, err)
	}
}

// FuzzDecode feeds arbitrary messages to one decoder, which keeps the
// templates of earlier inputs as a collector does.
func FuzzDecode(f *testing.F) {
	f.Add(ipfixMessage())
	v5 := make([]byte, 24+48)
	v5[1], v5[3] = 5, 1
	f.Add(v5)
	f.Add([]byte{0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 1, 0, 0, 1})
	f.Add(sflowMessage())
	d := newDecoder()
	f.Fuzz(func(t *testing.T, p []byte) {
		out, _ := d.decode(datagram{src: netip.MustParseAddr("192.0.2.1"), payload: p}, nil)
		for _, fl := range out {
			if fl.End.Before(fl.TS) {
				t.Fatalf("flow ends before it starts: %+v", fl)
			}
		}
	})
}

// FuzzSource feeds arbitrary captures through the ingest Source.
func FuzzSource(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(datasets, "netflow-ipfix-sflow-akvorado/netflow/*.pcap"))
	for i, p := range files[:min(len(files), 6)] {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
			if i == 0 {
				f.Add(capturetest.ToPcapNG(f, data, binary.BigEndian))
			}
		}
	}
	f.Add(capturetest.Pcap(capture.LinkRaw, nil, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &ingest.Input{Path: "fuzz.pcap", Head: data[:min(len(data), event.HeadSize)], Final: true}
		src, err := open(bytes.NewReader(data), in)
		if err != nil {
			return
		}
		var b event.Batch
		for range 10000 {
			err := src.Next(context.Background(), &b, 100)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if p := src.Position(); p.Offset > int64(len(data)) {
			t.Fatalf("position %d past the end (%d)", p.Offset, len(data))
		}
		_ = src.Report()
	})
}
