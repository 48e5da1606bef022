package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// A classic pcap file (libpcap's format): a 24-byte header giving the
// byte order, the time resolution and the link type, then records of a
// 16-byte header and the captured bytes.

const (
	pcapHeaderLen = 24
	pcapRecordLen = 16
	// MaxCapLen bounds a record's captured length: larger is a corrupt
	// file, whose records cannot be found again.
	MaxCapLen = 256 << 10
)

// pcapFile is what a pcap header says.
type pcapFile struct {
	order binary.ByteOrder
	nanos bool
	link  uint32
}

// parsePcapHeader reads a pcap file header.
func parsePcapHeader(h []byte) (pcapFile, error) {
	if len(h) < pcapHeaderLen {
		return pcapFile{}, errors.New("shorter than a pcap header")
	}
	var f pcapFile
	switch binary.LittleEndian.Uint32(h) {
	case 0xa1b2c3d4:
		f.order = binary.LittleEndian
	case 0xa1b23c4d:
		f.order, f.nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		f.order = binary.BigEndian
	case 0x4d3cb2a1:
		f.order, f.nanos = binary.BigEndian, true
	default:
		return pcapFile{}, errors.New("not a pcap or pcapng file (bad magic number)")
	}
	f.link = f.order.Uint32(h[20:]) & 0x0fffffff
	return f, nil
}

func (r *Reader) nextPcap() (Packet, error) {
	h, err := r.br.Peek(pcapRecordLen)
	if err != nil {
		if len(h) == 0 && errors.Is(err, io.EOF) {
			return Packet{}, io.EOF
		}
		return Packet{}, io.ErrUnexpectedEOF
	}
	o := r.order
	sec, frac := o.Uint32(h[0:]), o.Uint32(h[4:])
	capLen, origLen := o.Uint32(h[8:]), o.Uint32(h[12:])
	if capLen > MaxCapLen {
		return Packet{}, fmt.Errorf("%w: record at byte %d claims %d captured bytes", ErrCorrupt, r.read, capLen)
	}
	if _, err := r.br.Peek(pcapRecordLen + int(capLen)); err != nil {
		return Packet{}, io.ErrUnexpectedEOF
	}
	r.discard(pcapRecordLen)
	data, err := r.record(int(capLen))
	if err != nil {
		return Packet{}, err
	}
	ns := int64(frac) * 1000
	if r.nanos {
		ns = int64(frac)
	}
	return Packet{TS: time.Unix(int64(sec), ns).UTC(), Data: data, Length: int(max(origLen, capLen)), Link: r.link}, nil
}
