package evtx

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/dwell-nsm/dwell/internal/event"
)

// checkEvent fails on what a reader must never hand on, whatever the
// input: text that is not UTF-8 (the stores refuse it) or a record
// outside the input.
func checkEvent(t *testing.T, e *event.HostEvent, size int64) {
	t.Helper()
	for _, s := range []string{e.Channel, e.Provider, e.Computer, e.UserID} {
		if !utf8.ValidString(s) {
			t.Fatalf("system field not UTF-8: %q", s)
		}
	}
	for _, f := range e.Fields {
		if !utf8.ValidString(f.Name) || !utf8.ValidString(f.Value) {
			t.Fatalf("field not UTF-8: %q=%q", f.Name, f.Value)
		}
	}
	if e.Src.Line < fileHeaderSize || e.Src.Line >= size {
		t.Fatalf("record offset %d outside the file (%d bytes)", e.Src.Line, size)
	}
}

// FuzzFile reads whole files: the test builder's, and the first chunk of
// each edge-case sample when the shared datasets are present.
func FuzzFile(f *testing.F) {
	f.Add(build(logons(5)))
	seeds, _ := filepath.Glob(filepath.Join(datasets, "evtx-parser-edgecases", "*.evtx"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data[:min(len(data), fileHeaderSize+chunkSize)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, workers := range []int{1, 2} {
			rd := Reader{File: "fuzz.evtx", Problems: func(Problem) {}}
			_, _ = rd.ReadAll(context.Background(), bytes.NewReader(data), int64(len(data)), workers, func(e *event.HostEvent) error {
				checkEvent(t, e, int64(len(data)))
				return nil
			})
		}
	})
}

// FuzzRecords puts the input where a chunk's records go, behind a valid
// chunk header with matching checksums, so that the fuzzer spends its
// time in the record and Binary XML code rather than on signatures.
func FuzzRecords(f *testing.F) {
	chunk := chunkAt(build(logons(3)), 0)
	free := int(binary.LittleEndian.Uint32(chunk[48:]))
	f.Add(bytes.Clone(chunk[chunkHeaderSize:free]))
	f.Fuzz(func(t *testing.T, recs []byte) {
		if len(recs) > chunkSize-chunkHeaderSize {
			return
		}
		c := make([]byte, chunkHeaderSize+len(recs))
		copy(c, chunk[:chunkHeaderSize])
		copy(c[chunkHeaderSize:], recs)
		le := binary.LittleEndian
		le.PutUint32(c[48:], uint32(len(c)))
		le.PutUint32(c[52:], crc32.ChecksumIEEE(c[chunkHeaderSize:]))
		le.PutUint32(c[124:], crc32.Update(crc32.ChecksumIEEE(c[:120]), crc32.IEEETable, c[128:chunkHeaderSize]))
		rd := Reader{File: "fuzz.evtx"}
		_, err := rd.Chunk(c, fileHeaderSize, func(e *event.HostEvent) error {
			checkEvent(t, e, fileHeaderSize+int64(len(c)))
			return nil
		})
		if err != nil {
			t.Fatalf("a damaged chunk is a problem, not an error: %v", err)
		}
	})
}
