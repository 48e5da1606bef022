package capture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/capture"
	"github.com/dwell-nsm/dwell/internal/ingest/capture/capturetest"
)

const datasets = "../../../../shared/datasets"

func ipv4UDP() []byte {
	return []byte("\x45\x00\x00\x1c\x00\x01\x00\x00\x40\x11\x00\x00\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x35\x00\x35\x00\x08\x00\x00")
}

// Every link layer dwell reads gives the same IP packet.
func TestNetworkLinkTypes(t *testing.T) {
	ip := ipv4UDP()
	eth := append([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x08\x00"), ip...)
	vlan := append([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x88\xa8\x00\x64\x81\x00\x00\x65\x08\x00"), ip...)
	mpls := append([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x88\x47\x00\x01\x00\x40\x00\x02\x01\x40"), ip...)
	pppoe := append([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x88\x64\x11\x00\x00\x01\x00\x1e\x00\x21"), ip...)
	sll := append([]byte("\x00\x00\x00\x01\x00\x06\x00\x01\x02\x03\x04\x05\x00\x00\x08\x00"), ip...)
	sll2 := append([]byte("\x08\x00\x00\x00\x00\x00\x00\x02\x00\x01\x00\x06\x00\x01\x02\x03\x04\x05\x00\x00"), ip...)
	null := append([]byte("\x02\x00\x00\x00"), ip...)
	loop := append([]byte("\x00\x00\x00\x02"), ip...)
	for _, c := range []struct {
		name  string
		link  uint32
		frame []byte
	}{
		{"ethernet", capture.LinkEthernet, eth}, {"qinq", capture.LinkEthernet, vlan}, {"mpls", capture.LinkEthernet, mpls},
		{"pppoe", capture.LinkEthernet, pppoe}, {"sll", capture.LinkLinuxSLL, sll}, {"sll2", capture.LinkLinuxSL2, sll2},
		{"null", capture.LinkNull, null}, {"loop", capture.LinkLoop, loop}, {"raw", capture.LinkRaw, ip}, {"ipv4", capture.LinkIPv4, ip},
	} {
		got, ok := capture.Network(c.link, c.frame)
		if !ok || !bytes.Equal(got, ip) {
			t.Errorf("%s: %x %v", c.name, got, ok)
		}
	}
	if _, ok := capture.Network(capture.LinkEthernet, []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x08\x06arp")); ok {
		t.Error("ARP read as IP")
	}
	if _, ok := capture.Network(105, ip); ok {
		t.Error("802.11 read as IP")
	}
}

// A classic pcap, its pcapng rewrites in both byte orders and a
// nanosecond pcap give the same packets; truncation and corruption are
// told apart.
func TestReaders(t *testing.T) {
	t0 := time.Date(2024, 4, 19, 10, 0, 0, 123456000, time.UTC)
	frames := [][]byte{ipv4UDP(), ipv4UDP()[:20]}
	classic := capturetest.Pcap(capture.LinkRaw, []time.Time{t0, t0.Add(time.Second)}, frames)
	read := func(data []byte) ([]capture.Packet, error) {
		r := capture.NewReader(bytes.NewReader(data))
		var out []capture.Packet
		for {
			p, err := r.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				return out, err
			}
			p.Data = bytes.Clone(p.Data)
			out = append(out, p)
		}
	}
	want, err := read(classic)
	if err != nil || len(want) != 2 || !want[0].TS.Equal(t0) || want[1].Link != capture.LinkRaw || len(want[1].Data) != 20 {
		t.Fatalf("classic: %+v %v", want, err)
	}
	for _, o := range []capturetest.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		got, err := read(capturetest.ToPcapNG(t, classic, o))
		if err != nil || len(got) != 2 || !got[0].TS.Equal(t0) || !bytes.Equal(got[0].Data, want[0].Data) {
			t.Errorf("pcapng %v: %+v %v", o, got, err)
		}
	}
	// nanosecond magic, big-endian
	ns := bytes.Clone(classic)
	binary.BigEndian.PutUint32(ns, 0xa1b23c4d)
	for _, off := range []int{4, 6, 8, 12, 16, 20} {
		w := 4
		if off == 4 || off == 6 {
			w = 2
		}
		for i := 0; i < w/2; i++ {
			ns[off+i], ns[off+w-1-i] = ns[off+w-1-i], ns[off+i]
		}
	}
	at := 24
	for range 2 {
		for _, f := range []int{0, 4, 8, 12} {
			v := binary.LittleEndian.Uint32(ns[at+f:])
			if f == 4 {
				v *= 1000
			}
			binary.BigEndian.PutUint32(ns[at+f:], v)
		}
		at += 16 + int(binary.BigEndian.Uint32(ns[at+8:]))
	}
	got, err := read(ns)
	if err != nil || len(got) != 2 || !got[0].TS.Equal(t0) {
		t.Errorf("nanosecond big-endian: %+v %v", got, err)
	}
	if _, err := read(classic[:len(classic)-3]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v", err)
	}
	bad := bytes.Clone(classic)
	binary.LittleEndian.PutUint32(bad[24+8:], 1<<30)
	if _, err := read(bad); !errors.Is(err, capture.ErrCorrupt) {
		t.Errorf("huge record: %v", err)
	}
	if _, err := read([]byte("not a capture at all, no")); err == nil || errors.Is(err, capture.ErrCorrupt) {
		t.Errorf("not a capture: %v", err)
	}
}

// FuzzReader reads arbitrary capture files: no panic, and the offset
// never passes the input.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(datasets, "zeek-btest-pcap-to-logs/traces/*.pcap*"))
	for _, p := range files[:min(len(files), 6)] {
		if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
			f.Add(data)
			f.Add(capturetest.ToPcapNG(f, data, binary.BigEndian))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := capture.NewReader(bytes.NewReader(data))
		for range 100000 {
			p, err := r.Next()
			if err != nil {
				break
			}
			capture.Network(p.Link, p.Data)
		}
		if r.Offset() > int64(len(data)) {
			t.Fatalf("offset %d past the end (%d)", r.Offset(), len(data))
		}
	})
}
