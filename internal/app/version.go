package app

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X github.com/dwell-nsm/dwell/internal/app.Version=v1.2.3";
// otherwise it comes from the module's build information.
var Version = ""

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print dwell's version and what it was built with",
		usage:   "version",
		run: func(_ context.Context, a *App, args []string) error {
			fs := a.newFlags(versionCommand(), nil)
			if _, err := parse(fs, args); err != nil {
				return err
			}
			fmt.Fprintln(a.Stdout, versionString())
			return nil
		},
	}
}

// versionString describes this build: dwell's version, Go's, and DuckDB's driver.
func versionString() string {
	v := Version
	duck := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += " (" + s.Value[:12] + ")"
				}
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/duckdb/duckdb-go/v2" {
				duck = d.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return fmt.Sprintf("dwell %s (%s %s/%s, duckdb-go %s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, duck)
}
