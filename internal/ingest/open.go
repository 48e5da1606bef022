package ingest

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/dwell-nsm/dwell/internal/event"
)

// Compression names what an input was compressed with.
type Compression string

// Compressions dwell recognises by their magic bytes, not by file name.
const (
	CompressionNone  Compression = ""
	CompressionGzip  Compression = "gzip"
	CompressionZstd  Compression = "zstd"
	CompressionBzip2 Compression = "bzip2"
)

// opened is an input file ready to decode.
type opened struct {
	f       *os.File
	comp    Compression
	size    int64 // on-disk size
	head    []byte
	decoded io.Reader // decoded stream from byte 0 (head included)
	closers []func() error
}

// openInput opens path and prepares its decoded stream and head.
func openInput(path string) (*opened, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	o := &opened{f: f, closers: []func() error{f.Close}}
	st, err := f.Stat()
	if err != nil {
		o.close()
		return nil, err
	}
	o.size = st.Size()
	dec, comp, closeDec, err := Decompressed(f)
	if err != nil {
		o.close()
		return nil, err
	}
	o.comp = comp
	o.closers = append(o.closers, closeDec)
	if o.comp != CompressionNone && o.size > readaheadSize {
		// Large compressed files decompress on another core.
		ra := newReadahead(dec)
		o.closers = append(o.closers, ra.Close)
		dec = ra
	}
	head := make([]byte, event.HeadSize)
	n, err := io.ReadFull(dec, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		o.close()
		return nil, fmt.Errorf("reading the start of the file: %w", err)
	}
	o.head = head[:n]
	o.decoded = io.MultiReader(bytes.NewReader(o.head), dec)
	return o, nil
}

// Decompressed returns r's content decoded as its first bytes say (gzip,
// zstd, bzip2, or none), what it was compressed with, and a function that
// releases the decoder (not r).
func Decompressed(r io.Reader) (io.Reader, Compression, func() error, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	nothing := func() error { return nil }
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, CompressionGzip, nothing, fmt.Errorf("reading gzip header: %w", err)
		}
		return zr, CompressionGzip, zr.Close, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, CompressionZstd, nothing, fmt.Errorf("reading zstd header: %w", err)
		}
		return zr, CompressionZstd, func() error { zr.Close(); return nil }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), CompressionBzip2, nothing, nil
	}
	return br, CompressionNone, nothing, nil
}

// inputID returns the identity of an input from the log word of its name
// and its head; extra distinguishes inputs that only start alike.
func inputID(word string, head []byte, extra string) event.InputID {
	h := sha256.New()
	h.Write([]byte(word))
	h.Write([]byte{0})
	h.Write(head)
	if extra != "" {
		h.Write([]byte{0})
		h.Write([]byte(extra))
	}
	return event.InputID(hex.EncodeToString(h.Sum(nil)))
}

// checkLen is how many bytes before a checkpoint event.Progress.Check covers.
const checkLen = 256

// checkSum returns the Check of the bytes before a checkpoint.
func checkSum(before []byte) string {
	if len(before) > checkLen {
		before = before[len(before)-checkLen:]
	}
	sum := sha256.Sum256(before)
	return hex.EncodeToString(sum[:])
}

// from returns the decoded stream positioned at offset, and the bytes just
// before it (up to checkLen).
func (o *opened) from(offset int64) (io.Reader, []byte, error) {
	if offset == 0 {
		return o.decoded, nil, nil
	}
	if o.comp == CompressionNone {
		start := max(offset-checkLen, 0)
		before := make([]byte, offset-start)
		if _, err := o.f.ReadAt(before, start); err != nil {
			return nil, nil, fmt.Errorf("reading at the checkpoint (byte %d): %w", offset, err)
		}
		if _, err := o.f.Seek(offset, io.SeekStart); err != nil {
			return nil, nil, err
		}
		return bufio.NewReaderSize(o.f, 64<<10), before, nil
	}
	t := &tailWriter{}
	n, err := io.CopyN(t, o.decoded, offset)
	if err != nil {
		return nil, nil, fmt.Errorf("skipping the %d bytes already ingested (got %d): %w", offset, n, err)
	}
	return o.decoded, t.buf, nil
}

// tailWriter keeps the last checkLen bytes written to it.
type tailWriter struct{ buf []byte }

func (t *tailWriter) Write(p []byte) (int, error) {
	if len(p) >= checkLen {
		t.buf = append(t.buf[:0], p[len(p)-checkLen:]...)
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > checkLen {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-checkLen:]...)
	}
	return len(p), nil
}

func (o *opened) close() {
	for i := len(o.closers) - 1; i >= 0; i-- {
		_ = o.closers[i]() // read-only file: nothing to lose on close
	}
	o.closers = nil
}

// KindHint returns the Zeek log type a file name implies: "conn.log",
// "conn.00:00:00-01:00:00.log.gz", "conn_20240101.log" and "conn.json"
// all name conn, and so do names with a sensor or a prefix before or
// after the type, separated by "_" or "-" ("dmz-sensor_conn.log",
// "conn_brussels.log", "json_streaming_conn.1.log"). It returns 0 for
// names that name no Zeek log dwell stores, or several.
func KindHint(path string) event.Kind {
	word := strings.ToLower(logWord(path))
	if k, ok := event.ParseKind(word); ok {
		return zeekKind(k)
	}
	tokens := strings.FieldsFunc(word, func(r rune) bool { return r == '_' || r == '-' })
	var found event.Kind
	for i := 0; i < len(tokens); i++ {
		if tokens[i] == "summary" {
			return 0 // Zeek's conn-summary: a text report about a log
		}
		k, ok := event.ParseKind(tokens[i])
		if tokens[i] == "open" && i+1 < len(tokens) && tokens[i+1] == "conn" {
			k, ok = event.KindOpenConn, true
			i++
		}
		if !ok || zeekKind(k) == 0 {
			continue
		}
		if found != 0 && found != k {
			return 0 // "dns_http": which one?
		}
		found = k
	}
	return found
}

// zeekKind returns k if it is the kind of a Zeek log, else 0 (flows come
// from routers, not from Zeek).
func zeekKind(k event.Kind) event.Kind {
	if k == event.KindFlow {
		return 0
	}
	return k
}

// logWord returns the part of a file name before its first dot: the log
// type of Zeek's file names.
func logWord(path string) string {
	base := filepath.Base(path)
	if i := strings.IndexByte(base, '.'); i > 0 {
		return base[:i]
	}
	return base
}
