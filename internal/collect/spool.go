package collect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dwell-nsm/dwell/internal/event"
)

// The spool: when the store queue is full (a flood's flows arrive faster
// than the store writes them), readers append the flows to a file on
// disk instead of dropping them, and the writer stores the spooled files
// once it has caught up with the queue. Files are kept across restarts
// and stored at the next start. Beyond the spool's size limit, flows are
// dropped and counted as before.
//
// A file is a sequence of records, each a little-endian uint32 length
// then the flow in spoolCodec's layout. A file cut short by a crash ends
// at its last whole record.

// spool is the directory of spooled flow files.
type spool struct {
	dir string
	max int64 // bytes on disk at most

	mu      sync.Mutex
	cur     *os.File
	w       *bufio.Writer
	name    string
	size    int64 // bytes in all files, the current one included
	curSize int64 // bytes in the current file
	seq     int
	buf     []byte
	ready   []string // closed files, oldest first, to store
}

const spoolExt = ".flows"

// spoolFile is the size at which a spool file is closed and the next
// begun: the writer reads a file whole, so its memory stays bounded
// however long an overload lasts.
const spoolFile = 64 << 20

// openSpool opens the spool directory, with the files a previous run
// left ready to store.
func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sp := &spool{dir: dir, max: max}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), spoolExt) {
			continue
		}
		if info, err := e.Info(); err == nil {
			sp.size += info.Size()
		}
		sp.ready = append(sp.ready, filepath.Join(dir, e.Name()))
	}
	slices.Sort(sp.ready)
	return sp, nil
}

// add appends flows to the current file; false when the spool is full
// or cannot be written (the flows are then the caller's to drop).
func (sp *spool) add(flows []event.Flow) bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.size >= sp.max {
		return false
	}
	if sp.cur == nil {
		sp.seq++
		sp.name = filepath.Join(sp.dir, fmt.Sprintf("%s-%06d%s", time.Now().UTC().Format("20060102T150405.000000000"), sp.seq, spoolExt))
		f, err := os.OpenFile(sp.name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return false
		}
		sp.cur, sp.w = f, bufio.NewWriterSize(f, 1<<20)
	}
	for i := range flows {
		sp.buf = encodeFlow(sp.buf[:0], &flows[i])
		if _, err := sp.w.Write(sp.buf); err != nil {
			return false
		}
		sp.size += int64(len(sp.buf))
		sp.curSize += int64(len(sp.buf))
	}
	if sp.curSize >= spoolFile {
		return sp.closeCurrent() == nil
	}
	return true
}

// rotate closes the current file, making it ready to store.
func (sp *spool) rotate() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.closeCurrent()
}

// closeCurrent closes the current file, if any, and queues it; sp.mu is
// held.
func (sp *spool) closeCurrent() error {
	if sp.cur == nil {
		return nil
	}
	err := sp.w.Flush()
	if cerr := sp.cur.Close(); err == nil {
		err = cerr
	}
	sp.ready = append(sp.ready, sp.name)
	sp.cur, sp.w, sp.curSize = nil, nil, 0
	return err
}

// next returns the oldest file ready to store, "" when none is.
func (sp *spool) next() string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.ready) == 0 {
		return ""
	}
	return sp.ready[0]
}

// done removes a stored file.
func (sp *spool) done(name string) error {
	info, _ := os.Stat(name)
	err := os.Remove(name)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if info != nil {
		sp.size -= info.Size()
	}
	sp.ready = slices.DeleteFunc(sp.ready, func(n string) bool { return n == name })
	return err
}

// pending reports whether flows wait in the spool.
func (sp *spool) pending() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.cur != nil || len(sp.ready) > 0
}

// readSpoolFile reads a spooled file's flows; a record cut short ends
// it (a crash while writing), a malformed one is an error.
func readSpoolFile(name string) ([]event.Flow, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []event.Flow
	for off := 0; off+4 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if off+4+n > len(data) {
			break // cut short
		}
		f, err := decodeFlow(data[off+4 : off+4+n])
		if err != nil {
			return out, fmt.Errorf("%s: record at byte %d: %w", name, off, err)
		}
		out = append(out, f)
		off += 4 + n
	}
	return out, nil
}

// rewriteSpoolFile replaces a spooled file by the flows still to store.
func rewriteSpoolFile(name string, flows []event.Flow) error {
	var b []byte
	for i := range flows {
		b = encodeFlow(b, &flows[i])
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// encodeFlow appends f's record, its length first, to b.
func encodeFlow(b []byte, f *event.Flow) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.TS.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(f.End.UnixNano()))
	b = appendAddr(b, f.SrcIP)
	b = binary.LittleEndian.AppendUint16(b, f.SrcPort)
	b = appendAddr(b, f.DstIP)
	b = binary.LittleEndian.AppendUint16(b, f.DstPort)
	b = appendString(b, f.Proto)
	b = append(b, f.TCPFlags)
	b = binary.LittleEndian.AppendUint64(b, f.Packets)
	b = binary.LittleEndian.AppendUint64(b, f.Bytes)
	b = binary.LittleEndian.AppendUint32(b, f.Sampling)
	b = appendAddr(b, f.Exporter)
	b = appendString(b, f.Export)
	b = appendString(b, f.Src.Sensor)
	b = appendString(b, f.Src.File)
	b = binary.LittleEndian.AppendUint64(b, uint64(f.Src.Line))      //nolint:gosec // G115: round-trips
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4)) //nolint:gosec // G115: a record is far below 4 GiB
	return b
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, 0)
	}
	if a.Is4() {
		v := a.As4()
		return append(append(b, 4), v[:]...)
	}
	v := a.As16()
	return append(append(b, 16), v[:]...)
}

func appendString(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	return append(binary.LittleEndian.AppendUint16(b, uint16(len(s))), s...) //nolint:gosec // G115: capped above
}

var errSpoolRecord = errors.New("malformed spool record")

// spoolReader reads a record's fields in order; a read past its end sets
// err.
type spoolReader struct {
	b   []byte
	err error
}

func (r *spoolReader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errSpoolRecord
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *spoolReader) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }
func (r *spoolReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *spoolReader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *spoolReader) str() string { return string(r.take(int(r.u16()))) }

func (r *spoolReader) addr() netip.Addr {
	switch n := r.take(1)[0]; n {
	case 0:
		return netip.Addr{}
	case 4:
		return netip.AddrFrom4([4]byte(r.take(4)))
	case 16:
		return netip.AddrFrom16([16]byte(r.take(16)))
	default:
		r.err = errSpoolRecord
		return netip.Addr{}
	}
}

// decodeFlow reads one record (without its length).
func decodeFlow(b []byte) (event.Flow, error) {
	r := &spoolReader{b: b}
	var f event.Flow
	f.TS = time.Unix(0, int64(r.u64())).UTC()  //nolint:gosec // G115: written from an int64
	f.End = time.Unix(0, int64(r.u64())).UTC() //nolint:gosec // G115: written from an int64
	f.SrcIP, f.SrcPort = r.addr(), r.u16()
	f.DstIP, f.DstPort = r.addr(), r.u16()
	f.Proto = r.str()
	f.TCPFlags = r.take(1)[0]
	f.Packets, f.Bytes, f.Sampling = r.u64(), r.u64(), r.u32()
	f.Exporter = r.addr()
	f.Export = r.str()
	f.Src.Sensor, f.Src.File = r.str(), r.str()
	f.Src.Line = int64(r.u64()) //nolint:gosec // G115: written from an int64
	if r.err == nil && len(r.b) != 0 {
		r.err = errSpoolRecord
	}
	return f, r.err
}
