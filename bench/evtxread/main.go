// Package main is the evtxread command, which reads EVTX files with
// dwell's reader and writes each record as one JSON line, as evtxexport
// writes each as XML: the process to time beside evtxexport
// (bench/evtx.sh).
//
//	evtxread [-j FILES_IN_PARALLEL] [-chunks WORKERS] [-count] [-rules DIR] FILE...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/dwell-nsm/dwell/internal/detect/sigma"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/ingest/evtx"
)

func main() {
	files := flag.Int("j", 1, "files read at once")
	chunks := flag.Int("chunks", 1, "chunk workers per file")
	count := flag.Bool("count", false, "count records instead of writing them")
	rules := flag.String("rules", "", "match the records with the Sigma rules under this `directory` (dwell's log-source mapping) instead of writing them")
	flag.Parse()
	var en *sigma.Engine
	if *rules != "" {
		rs, errs := sigma.LoadDir(*rules, sigma.Options{})
		var nerrs []error
		en, nerrs = sigma.NewEngine(rs, sigma.DefaultConfig())
		fmt.Fprintf(os.Stderr, "%d rules, %d refused\n", len(rs), len(errs)+len(nerrs))
		*count = true
	}
	var matches atomic.Int64
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var mu sync.Mutex
	var total evtx.Stats
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range max(*files, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for path := range jobs {
				f, err := os.Open(path)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					continue
				}
				fi, _ := f.Stat()
				rd := evtx.Reader{File: path}
				var lines []byte
				st, err := rd.ReadAll(context.Background(), f, fi.Size(), *chunks, func(e *event.HostEvent) error {
					if en != nil {
						en.Match(e, func(*sigma.Rule) { matches.Add(1) })
					}
					if *count {
						return nil
					}
					buf, _ = json.Marshal(e)
					lines = append(append(lines, buf...), '\n')
					return nil
				})
				_ = f.Close() // read-only
				if err != nil {
					fmt.Fprintln(os.Stderr, path+":", err)
				}
				mu.Lock()
				total.Add(st)
				_, werr := out.Write(lines)
				mu.Unlock()
				if werr != nil {
					fmt.Fprintln(os.Stderr, "evtxread:", werr)
					os.Exit(1)
				}
			}
		}()
	}
	for _, p := range flag.Args() {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	if err := out.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "evtxread:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%d records (%d carved), %d bad, %d bytes, %d rule matches\n", total.Records, total.Carved, total.BadRecords, total.Bytes, matches.Load())
}
