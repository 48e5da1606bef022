// Package capturetest writes packet captures for tests: classic pcap and
// pcapng files made from packets, and pcapng rewrites of classic files.
package capturetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

// ByteOrder is a byte order that can also append.
type ByteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// Pcap returns a classic little-endian pcap file (microsecond times) of
// the given link type holding frames, captured at the given times.
func Pcap(link uint32, times []time.Time, frames [][]byte) []byte {
	o := binary.LittleEndian
	out := o.AppendUint32(nil, 0xa1b2c3d4)
	out = o.AppendUint16(out, 2)
	out = o.AppendUint16(out, 4)
	out = o.AppendUint64(out, 0)
	out = o.AppendUint32(out, 262144)
	out = o.AppendUint32(out, link)
	for i, f := range frames {
		t := times[i]
		out = o.AppendUint32(out, uint32(t.Unix()))           //nolint:gosec // G115: test times
		out = o.AppendUint32(out, uint32(t.Nanosecond()/1e3)) //nolint:gosec // G115: below 1e6
		out = o.AppendUint32(out, uint32(len(f)))             //nolint:gosec // G115: test frames
		out = o.AppendUint32(out, uint32(len(f)))             //nolint:gosec // G115: test frames
		out = append(out, f...)
	}
	return out
}

// ToPcapNG rewrites a classic pcap as pcapng in byte order order: a
// section, an interface with nanosecond timestamps, and an enhanced packet
// block per packet.
func ToPcapNG(tb testing.TB, classic []byte, order ByteOrder) []byte {
	tb.Helper()
	var out []byte
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		total := uint32(12 + len(body)) //nolint:gosec // G115: test blocks
		out = order.AppendUint32(out, typ)
		out = order.AppendUint32(out, total)
		out = append(out, body...)
		out = order.AppendUint32(out, total)
	}
	var shb []byte
	shb = order.AppendUint32(shb, 0x1A2B3C4D)
	shb = order.AppendUint16(shb, 1)
	shb = order.AppendUint16(shb, 0)
	shb = order.AppendUint64(shb, ^uint64(0))
	block(0x0A0D0D0A, shb)
	first := true
	Each(tb, "classic pcap", classic, func(p capture.Packet) {
		if first {
			var idb []byte
			idb = order.AppendUint16(idb, uint16(p.Link)) //nolint:gosec // G115: link types are 16-bit
			idb = order.AppendUint16(idb, 0)
			idb = order.AppendUint32(idb, 0)
			idb = order.AppendUint16(idb, 9) // if_tsresol: 10^-9
			idb = order.AppendUint16(idb, 1)
			idb = append(idb, 9, 0, 0, 0)
			idb = order.AppendUint32(idb, 0) // opt_endofopt
			block(1, idb)
			first = false
		}
		ns := uint64(p.TS.UnixNano())
		var epb []byte
		epb = order.AppendUint32(epb, 0)
		epb = order.AppendUint32(epb, uint32(ns>>32))
		epb = order.AppendUint32(epb, uint32(ns))          //nolint:gosec // G115: the low half
		epb = order.AppendUint32(epb, uint32(len(p.Data))) //nolint:gosec // G115: bounded by the reader
		epb = order.AppendUint32(epb, uint32(p.Length))    //nolint:gosec // G115: bounded by the reader
		block(6, append(epb, p.Data...))
	})
	return out
}

// Each calls fn with each packet of the capture data (named name in
// failures). A packet's data is valid during the call.
func Each(tb testing.TB, name string, data []byte, fn func(capture.Packet)) {
	tb.Helper()
	r := capture.NewReader(bytes.NewReader(data))
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		fn(p)
	}
}
