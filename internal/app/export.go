package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/export/misp"
	"github.com/dwell-nsm/dwell/internal/export/stix"
	"github.com/dwell-nsm/dwell/internal/intel"
)

func exportCommand() command {
	return command{
		name:    "export",
		summary: "export indicators and their sightings as a STIX 2.1 bundle or a MISP event, for sharing",
		usage:   "export stix|misp [--db FILE] --out FILE [--tlp LEVEL] [--source NAME] [--sighted] [--producer NAME]",
		example: `  dwell export stix --out case-42.stix.json --tlp amber --producer CERT.be
  dwell export misp --out case-42.misp.json --sighted
  dwell export stix --out - | jq .

--tlp leaves out what is marked more restrictively than LEVEL (clear,
green, amber, amber+strict, red); indicators their source did not mark
count as amber and are marked so in STIX. Only detection content is
exported to STIX (MISP attributes without to_ids stay out); MISP keeps
to_ids. Both files import back into dwell unchanged. docs/intel.md.
`,
		run: runExport,
	}
}

func runExport(ctx context.Context, a *App, args []string) error {
	format, err := subcommand(a, exportCommand(), args, "a format: stix or misp")
	if format == "" {
		return err
	}
	if format != "stix" && format != "misp" {
		return usagef("unknown export format %q: use stix or misp", format)
	}
	var co common
	c := exportCommand()
	c.name = "export " + format
	fs := a.newFlags(c, &co)
	out := fs.String("out", "", "write to `file` (\"-\": standard output)")
	tlp := fs.String("tlp", "", "leave out what is marked above `level` (clear, green, amber, amber+strict, red)")
	source := fs.String("source", "", "only indicators whose source contains `text`")
	sighted := fs.Bool("sighted", false, "only indicators seen in stored telemetry")
	producer := fs.String("producer", "dwell", "`name` of our organisation in the export")
	if rest, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *out == "" {
		return usagef("--out is required (a file, or - for standard output)")
	}
	max := ""
	if *tlp != "" {
		l, ok := intel.TLPOf("tlp:" + *tlp)
		if !ok {
			return usagef("--tlp: %q is not a TLP level (clear, green, amber, amber+strict, red)", *tlp)
		}
		max = l
	}
	_, st, err := co.open(ctx, true)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	var sightings []event.Sighting
	seen := map[string]bool{}
	err = st.Sightings(ctx, func(s *event.Sighting) error {
		sightings = append(sightings, *s)
		seen[s.Key] = true
		return nil
	})
	if err != nil {
		return err
	}
	var inds []event.Indicator
	err = st.Indicators(ctx, func(i *event.Indicator) error {
		if (*source == "" || strings.Contains(i.Source, *source)) && (!*sighted || seen[i.Key()]) {
			inds = append(inds, *i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(inds) == 0 {
		return fmt.Errorf("no indicators to export: dwell intel import adds some")
	}
	var data []byte
	var note string
	switch format {
	case "stix":
		data, err = stix.Bundle(inds, sightings, stix.Options{Producer: *producer, MaxTLP: max})
		note = "context (not to_ids) and above --tlp left out"
	case "misp":
		var skipped misp.Skipped
		data, skipped, err = misp.Event(inds, sightings, misp.Options{Producer: *producer, MaxTLP: max})
		for reason, n := range skipped {
			note += fmt.Sprintf("; %d %s", n, reason)
		}
		note = strings.TrimPrefix(note, "; ")
	}
	if err != nil {
		return err
	}
	if err := writeAtomic(*out, a, append(data, '\n')); err != nil {
		return err
	}
	if *out != "-" {
		fmt.Fprintf(a.Stdout, "wrote %s (%s, %d bytes) from %d indicator(s) and %d sighting(s)", *out, format, len(data), len(inds), len(sightings))
		if note != "" {
			fmt.Fprintf(a.Stdout, "; %s", note)
		}
		fmt.Fprintln(a.Stdout)
	}
	return nil
}

// writeAtomic writes data to path ("-": standard output) so that a reader
// never sees half a file: a temporary file beside it, renamed over it.
func writeAtomic(path string, a *App, data []byte) error {
	if path == "-" {
		_, err := a.Stdout.Write(data)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // after the rename, nothing to remove
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
