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

// versionString describes this build: dwell's version (a release's tag,
// or for a build from a checkout the commit Go recorded, its time, and
// whether the tree had changes), Go's, and DuckDB's driver.
func versionString() string {
	v := Version
	duck := "?"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
			if v == "" || v == "(devel)" {
				v = "devel"
			}
			vcs := map[string]string{}
			for _, s := range bi.Settings {
				vcs[s.Key] = s.Value
			}
			if rev := vcs["vcs.revision"]; rev != "" && v == "devel" {
				v += "+" + rev[:min(len(rev), 12)]
				if vcs["vcs.modified"] == "true" {
					v += "-dirty"
				}
				if t := vcs["vcs.time"]; t != "" {
					v += " of " + t
				}
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/duckdb/duckdb-go/v2" {
				duck = d.Version
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	return fmt.Sprintf("dwell %s (%s %s/%s, duckdb-go %s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, duck)
}
