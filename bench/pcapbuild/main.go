// Package main is the pcapbuild command, which concatenates Ethernet
// packet captures into one large classic pcap for benchmarks: the inputs
// are repeated until the output reaches the size asked for, each file's
// packets shifted in time to follow the previous file's by an hour, so
// that no connection of one copy merges with another's. Gaps between
// packets are kept, up to ten minutes (some captures hold packets years
// apart).
//
//	go run ./bench/pcapbuild -o /tmp/big.pcap -size 1GiB FILE|DIR...
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/ingest/capture"
)

func main() {
	out := flag.String("o", "big.pcap", "output file")
	size := flag.String("size", "1GiB", "size to reach (bytes, or with KiB, MiB, GiB)")
	flag.Parse()
	if err := run(*out, *size, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "pcapbuild:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

func run(out, sizeArg string, args []string) error {
	want, err := parseSize(sizeArg)
	if err != nil {
		return fmt.Errorf("bad -size: %w", err)
	}
	var files []string
	for _, a := range args {
		err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if head, err := readHead(p); err == nil && capture.IsCapture(head) {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(files) == 0 {
		return errors.New("no captures given")
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	o := binary.LittleEndian
	hdr := o.AppendUint32(nil, 0xa1b23c4d) // nanosecond pcap
	hdr = o.AppendUint16(hdr, 2)
	hdr = o.AppendUint16(hdr, 4)
	hdr = o.AppendUint64(hdr, 0)
	hdr = o.AppendUint32(hdr, capture.MaxCapLen)
	hdr = o.AppendUint32(hdr, capture.LinkEthernet)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	written, packets := int64(len(hdr)), 0
	cursor := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for written < want {
		before := written
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r := capture.NewReader(strings.NewReader(string(data)))
			var prevIn, last time.Time
			ts := cursor
			for {
				pk, err := r.Next()
				if err != nil {
					break
				}
				if pk.Link != capture.LinkEthernet || pk.TS.IsZero() {
					continue
				}
				if !prevIn.IsZero() {
					ts = ts.Add(min(max(pk.TS.Sub(prevIn), 0), 10*time.Minute))
				}
				prevIn, last = pk.TS, ts
				rec := o.AppendUint32(nil, uint32(ts.Unix()))
				rec = o.AppendUint32(rec, uint32(ts.Nanosecond()))
				rec = o.AppendUint32(rec, uint32(len(pk.Data)))
				rec = o.AppendUint32(rec, uint32(pk.Length))
				if _, err := w.Write(rec); err != nil {
					return err
				}
				if _, err := w.Write(pk.Data); err != nil {
					return err
				}
				written += int64(len(rec) + len(pk.Data))
				packets++
			}
			if !last.IsZero() {
				cursor = last.Add(time.Hour)
			}
			if written >= want {
				break
			}
		}
		if written == before {
			return errors.New("no Ethernet packets in the inputs")
		}
	}
	if err := w.Flush(); err != nil {
		f.Close() //nolint:errcheck // the write error is the one to report
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d packets, %d bytes, from %d captures\n", out, packets, written, len(files))
	return f.Close()
}

func readHead(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read only
	b := make([]byte, 64)
	n, err := io.ReadFull(f, b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return b[:n], err
}
