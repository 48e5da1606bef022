// Package main is the dwell command, which hunts intruders in network
// telemetry: it ingests Zeek logs into an embedded store and answers from
// all of their history.
//
// Run "dwell help" for the commands. DWELL_CPUPROFILE=FILE writes a Go CPU
// profile of the run to FILE (docs/benchmarks.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/dwell-nsm/dwell/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if p := os.Getenv("DWELL_CPUPROFILE"); p != "" {
		f, err := os.Create(p) //nolint:gosec // G703: the operator names the profile file
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "dwell: DWELL_CPUPROFILE: %v\n", err)
			os.Exit(app.ExitFail)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	code := app.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if code != 0 {
		pprof.StopCPUProfile()
		os.Exit(code)
	}
}
