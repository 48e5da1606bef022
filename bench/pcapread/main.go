// Package main is the pcapread command, which reads a packet capture with
// dwell's analysis (ingest/pcap) and writes its records as tab-separated
// lines to standard output, the kind first (conn, dns, http, ssl, x509,
// files) and then the key fields Zeek's logs give them: the process to
// time beside tshark writing comparable fields (bench/pcap.sh).
//
//	pcapread [-count] FILE
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest"
	"github.com/dwell-nsm/dwell/internal/ingest/pcap"
)

func main() {
	count := flag.Bool("count", false, "count records instead of writing them")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pcapread [-count] FILE")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *count); err != nil {
		fmt.Fprintln(os.Stderr, "pcapread:", err)
		os.Exit(1)
	}
}

func run(path string, count bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // read only
	head := make([]byte, event.HeadSize)
	n, _ := f.ReadAt(head, 0)
	in := &ingest.Input{Path: path, Head: head[:n], Final: true}
	src, err := pcap.Formats()[0].Open(f, in)
	if err != nil {
		return err
	}
	// A bufio.Writer keeps its first error, and Flush returns it.
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var b event.Batch
	var line []byte
	for {
		err := src.Next(context.Background(), &b, 8192)
		if !count {
			for i := range b.Conns {
				line = appendConn(line[:0], &b.Conns[i])
				_, _ = out.Write(line)
			}
			for i := range b.DNS {
				d := &b.DNS[i]
				line = fmt.Appendf(line[:0], "dns\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", d.UID, d.SrcIP, d.SrcPort, d.DstIP, d.DstPort,
					d.Query, d.QTypeName, d.RCodeName, strings.Join(d.Answers, ","))
				_, _ = out.Write(line)
			}
			for i := range b.HTTP {
				h := &b.HTTP[i]
				line = fmt.Appendf(line[:0], "http\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", h.UID, h.Method, h.Host, h.URI, h.UserAgent,
					h.StatusCode.V, h.RequestBodyLen.V, h.ResponseBodyLen.V)
				_, _ = out.Write(line)
			}
			for i := range b.TLS {
				s := &b.TLS[i]
				line = fmt.Appendf(line[:0], "ssl\t%s\t%s\t%s\t%s\t%s\t%s\n", s.UID, s.Version, s.Cipher, s.ServerName, s.JA3, s.JA4)
				_, _ = out.Write(line)
			}
			for i := range b.X509 {
				x := &b.X509[i]
				line = fmt.Appendf(line[:0], "x509\t%s\t%s\t%s\n", x.Fingerprint, x.Subject, x.Issuer)
				_, _ = out.Write(line)
			}
			for i := range b.Files {
				x := &b.Files[i]
				line = fmt.Appendf(line[:0], "files\t%s\t%s\t%s\t%s\t%d\n", x.FUID, x.UID, x.MIMEType, x.SHA256, x.SeenBytes.V)
				_, _ = out.Write(line)
			}
		}
		b.Reset()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	rep := src.Report()
	fmt.Fprintf(os.Stderr, "%d records, %d bad\n", rep.Rows, rep.Bad)
	return out.Flush()
}

// appendConn writes a conn record's Zeek fields.
func appendConn(b []byte, c *event.Conn) []byte {
	b = append(b, "conn\t"...)
	b = strconv.AppendFloat(b, float64(c.TS.UnixMicro())/1e6, 'f', 6, 64)
	b = append(b, '\t')
	b = append(b, c.UID...)
	b = append(b, '\t')
	b = c.SrcIP.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.SrcPort), 10)
	b = append(b, '\t')
	b = c.DstIP.AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(c.DstPort), 10)
	b = append(b, '\t')
	b = append(b, c.Proto...)
	b = append(b, '\t')
	b = strconv.AppendFloat(b, c.Duration.V.Seconds(), 'f', 6, 64)
	for _, v := range []uint64{c.SrcBytes.V, c.DstBytes.V} {
		b = append(b, '\t')
		b = strconv.AppendUint(b, v, 10)
	}
	b = append(b, '\t')
	b = append(b, c.ConnState...)
	b = append(b, '\t')
	b = append(b, c.History...)
	for _, v := range []uint64{c.SrcPkts.V, c.SrcIPBytes.V, c.DstPkts.V, c.DstIPBytes.V} {
		b = append(b, '\t')
		b = strconv.AppendUint(b, v, 10)
	}
	b = append(b, '\t')
	b = append(b, c.CommunityID...)
	return append(b, '\n')
}
