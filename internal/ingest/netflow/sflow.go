package netflow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/dwell-nsm/dwell/internal/ingest/capture"
	"net/netip"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// sFlow version 5 (sflow.org's specification): an agent sends samples of
// the packets it forwards, one in every sampling_rate, each with the first
// bytes of the packet (a "raw packet header") or its decoded addresses.
// Each flow sample becomes one Flow of one packet, with the sampling rate
// kept, so that packets × sampling estimates the traffic, as for sampled
// NetFlow. Counter samples are skipped.

// isSFlow reports whether p starts an sFlow v5 datagram (its version is a
// 32-bit word, where NetFlow's is 16 bits: 0 then 5).
func isSFlow(p []byte) bool {
	return len(p) >= 28 && binary.BigEndian.Uint32(p) == 5
}

// xdr reads sFlow's big-endian words.
type xdr struct {
	b   []byte
	err error
}

func (x *xdr) u32() uint32 {
	if x.err != nil || len(x.b) < 4 {
		x.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(x.b)
	x.b = x.b[4:]
	return v
}

// bytes returns the next n bytes, skipping the padding to 4.
func (x *xdr) bytes(n int) []byte {
	padded := (n + 3) &^ 3
	if x.err != nil || n < 0 || len(x.b) < padded {
		x.fail()
		return nil
	}
	v := x.b[:n]
	x.b = x.b[padded:]
	return v
}

func (x *xdr) fail() {
	if x.err == nil {
		x.err = errors.New("sFlow datagram cut short")
	}
}

// addr reads an sFlow address: a type (1 IPv4, 2 IPv6) and the address.
func (x *xdr) addr() netip.Addr {
	switch x.u32() {
	case 1:
		if b := x.bytes(4); b != nil {
			return netip.AddrFrom4([4]byte(b))
		}
	case 2:
		if b := x.bytes(16); b != nil {
			return netip.AddrFrom16([16]byte(b))
		}
	default:
		if x.err == nil {
			x.err = errors.New("sFlow agent address of unknown type")
		}
	}
	return netip.Addr{}
}

// sflow appends a flow per flow sample of an sFlow v5 datagram captured at
// ts.
func sflow(p []byte, ts time.Time, out []event.Flow) ([]event.Flow, error) {
	x := &xdr{b: p}
	x.u32() // version
	agent := x.addr()
	x.u32() // sub-agent
	x.u32() // sequence
	x.u32() // uptime
	n := x.u32()
	for i := uint32(0); i < n && x.err == nil; i++ {
		format, length := x.u32(), x.u32()
		body := x.bytes(int(length))
		if x.err != nil {
			break
		}
		if format>>12 != 0 || (format&0xfff != 1 && format&0xfff != 3) {
			continue // counters, or an enterprise's own
		}
		f, ok, err := flowSample(body, format&0xfff == 3)
		if err != nil {
			return out, fmt.Errorf("sample %d: %w", i+1, err)
		}
		if ok {
			f.TS, f.End, f.Exporter, f.Export = ts, ts, agent, event.ExportSFlow5
			out = append(out, f)
		}
	}
	return out, x.err
}

// flowSample reads a flow sample (expanded: the expanded form) into a flow
// of one packet; ok is false when it carries no addresses dwell reads.
func flowSample(b []byte, expanded bool) (f event.Flow, ok bool, err error) {
	x := &xdr{b: b}
	x.u32() // sequence
	if expanded {
		x.u32() // source id type
	}
	x.u32() // source id (index)
	rate := x.u32()
	x.u32() // sample pool
	x.u32() // drops
	if expanded {
		x.u32() // input format
		x.u32() // input
		x.u32() // output format
		x.u32() // output
	} else {
		x.u32() // input
		x.u32() // output
	}
	n := x.u32()
	f.Packets, f.Sampling = 1, rate
	for i := uint32(0); i < n && x.err == nil; i++ {
		format, length := x.u32(), x.u32()
		body := x.bytes(int(length))
		if x.err != nil || format>>12 != 0 {
			continue
		}
		r := &xdr{b: body}
		switch format & 0xfff {
		case 1: // raw packet header
			proto, frame := r.u32(), r.u32()
			r.u32() // stripped
			header := r.bytes(int(r.u32()))
			if r.err != nil {
				return f, false, r.err
			}
			if packetFlow(&f, proto, header) {
				f.Bytes, ok = uint64(frame), true
			}
		case 3, 4: // sampled IPv4, IPv6
			size := 4
			if format&0xfff == 4 {
				size = 16
			}
			length, proto := r.u32(), r.u32()
			src, dst := r.bytes(size), r.bytes(size)
			sport, dport, flags := r.u32(), r.u32(), r.u32()
			if r.err != nil {
				return f, false, r.err
			}
			if !ok { // a raw header, when there is one, says more
				f.SrcIP, _ = netip.AddrFromSlice(src)
				f.DstIP, _ = netip.AddrFromSlice(dst)
				f.SrcPort, f.DstPort, f.TCPFlags = uint16(sport), uint16(dport), uint8(flags) //nolint:gosec // G115: ports and flags in 32-bit words
				f.Proto, f.Bytes, ok = protoName(uint8(proto)), uint64(length), true          //nolint:gosec // G115: a protocol number
			}
		}
	}
	return f, ok, x.err
}

// Header protocols of sFlow's raw packet header.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
)

// packetFlow fills f's addresses, ports, protocol and TCP flags from the
// first bytes of a sampled packet; false when they are not there.
func packetFlow(f *event.Flow, proto uint32, b []byte) bool {
	switch proto {
	case headerEthernet:
		var ok bool
		if b, ok = capture.Network(capture.LinkEthernet, b); !ok {
			return false
		}
	case headerIPv4, headerIPv6:
	default:
		return false
	}
	if len(b) < 1 {
		return false
	}
	var l4 []byte
	var p uint8
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 {
			return false
		}
		f.SrcIP, f.DstIP = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		p = b[9]
		if binary.BigEndian.Uint16(b[6:])&0x1fff == 0 && len(b) >= ihl { // first fragment: ports follow
			l4 = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return false
		}
		f.SrcIP, f.DstIP = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		p, l4 = b[6], b[40:]
	default:
		return false
	}
	f.Proto = protoName(p)
	switch p {
	case 6, 17:
		if len(l4) >= 4 {
			f.SrcPort, f.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
		if p == 6 && len(l4) >= 14 {
			f.TCPFlags = l4[13]
		}
	case 1, 58:
		if len(l4) >= 2 {
			f.SrcPort, f.DstPort = uint16(l4[0]), uint16(l4[1]) // type, code, as Zeek has them
		}
	}
	return true
}
