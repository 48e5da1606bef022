package app

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/export/blocklist"
	"github.com/dwell-nsm/dwell/internal/export/misp"
	"github.com/dwell-nsm/dwell/internal/export/stix"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/store"
)

func exportCommand() command {
	return command{
		name:    "export",
		summary: "export indicators and sightings (STIX 2.1, MISP), or the last hunt's incidents as blocklists or a report",
		usage: "export stix|misp [--db FILE] --out FILE [--tlp LEVEL] [--source NAME] [--sighted] [--producer NAME]\n" +
			"       dwell export blocklist [--db FILE] --format nft|ipset|rpz|crowdsec|csv [--incident ID] [--timeout D] --out FILE\n" +
			"       dwell export report [--db FILE] [--incident ID] [--tlp LEVEL] [--title T] --out FILE.html|FILE.json",
		example: `  dwell export stix --out case-42.stix.json --tlp amber --producer CERT.be
  dwell export misp --out case-42.misp.json --sighted
  dwell export stix --out - | jq .
  dwell export blocklist --format nft --incident INC-5adc20b96c --out block.nft && nft -f block.nft
  dwell export blocklist --format rpz --out /etc/bind/rpz.dwell.zone
  dwell export report --incident INC-5adc20b96c --tlp amber --out case-42.html

--tlp leaves out what is marked more restrictively than LEVEL (clear,
green, amber, amber+strict, red); indicators their source did not mark
count as amber and are marked so in STIX. Only detection content is
exported to STIX (MISP attributes without to_ids stay out); MISP keeps
to_ids. Both files import back into dwell unchanged. docs/intel.md.

Blocklists hold the outside addresses and names that strong findings of
the last dwell hunt's incidents name (espionage, commodity, suspicious);
never internal, special-purpose, allow-listed or widely shared ones, nor
what only weak findings name. What is left out is listed with the reason.
The report is one self-contained HTML file (or JSON) with the evidence
behind each finding and a manifest of the input files' SHA-256; its own
SHA-256 goes to FILE.sha256. docs/incidents.md.
`,
		run: runExport,
	}
}

func runExport(ctx context.Context, a *App, args []string) error {
	format, err := subcommand(a, exportCommand(), args, "a kind: stix, misp, blocklist or report")
	if format == "" {
		return err
	}
	switch format {
	case "blocklist":
		return runExportBlocklist(ctx, a, args[1:])
	case "report":
		return runExportReport(ctx, a, args[1:])
	case "stix", "misp":
	default:
		return usagef("unknown export %q: use stix, misp, blocklist or report", format)
	}
	var co common
	c := exportCommand()
	c.name = "export " + format
	fs := a.newFlags(c, &co)
	out := fs.String("out", "", "write to `file` (default, or \"-\": standard output)")
	tlp := fs.String("tlp", "", "leave out what is marked above `level` (clear, green, amber, amber+strict, red)")
	source := fs.String("source", "", "only indicators whose source contains `text`")
	sighted := fs.Bool("sighted", false, "only indicators seen in stored telemetry")
	producer := fs.String("producer", "dwell", "`name` of our organisation in the export")
	incident := fs.String("incident", "", "stix: export this incident (`ID`) instead of indicators: its infrastructure, data taken and attribution")
	as := fs.String("as", "", "as `user` may see it: --incident only if the user may see the incident (TLP need-to-know)")
	external := fs.Bool("external", false, "with --as: the user is of another organisation (nothing above TLP:AMBER)")
	if rest, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *out == "" {
		*out = "-" // standard output; what is said about it goes to standard error
	}
	max := ""
	if *tlp != "" {
		l, ok := intel.TLPOf("tlp:" + *tlp)
		if !ok {
			return usagef("--tlp: %q is not a TLP level (clear, green, amber, amber+strict, red)", *tlp)
		}
		max = l
	}
	if *as != "" && *external && (max == "" || event.TLPRank(max) > event.TLPRank(event.TLPAmber)) {
		max = event.TLPAmber // AMBER+STRICT and RED stay in the organisation
	}
	if *incident != "" {
		if format != "stix" {
			return usagef("--incident: only for stix")
		}
		return exportIncidentSTIX(ctx, a, &co, *incident, max, *producer, *out, viewer{*as, *external})
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
	data = append(data, '\n')
	if err := writeAtomic(*out, a, data); err != nil {
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

func runExportBlocklist(ctx context.Context, a *App, args []string) error {
	var co common
	c := exportCommand()
	c.name = "export blocklist"
	fs := a.newFlags(c, &co)
	format := fs.String("format", "", "`format`: nft, ipset, rpz, crowdsec or csv")
	out := fs.String("out", "", "write to `file` (default, or \"-\": standard output)")
	incident := fs.String("incident", "", "only this incident's infrastructure (`ID`; default every incident)")
	timeout := fs.Duration("timeout", 24*time.Hour, "how long nft, ipset and CrowdSec keep an entry (`duration`)")
	as := fs.String("as", "", "only the incidents `user` may see (TLP need-to-know, as in the console)")
	external := fs.Bool("external", false, "with --as: the user is of another organisation")
	verbose := fs.Bool("v", false, "list everything left out, with the reason")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *out == "" {
		*out = "-" // standard output; what is said about it goes to standard error
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	cfg, st, h, err := co.openHunt(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	env, err := environment(cfg)
	if err != nil {
		return err
	}
	if err := (viewer{*as, *external}).only(ctx, st, h); err != nil {
		return err
	}
	if *incident != "" && !slices.ContainsFunc(h.Incidents, func(i correlate.Incident) bool { return strings.EqualFold(i.ID, *incident) }) {
		return fmt.Errorf("no incident %s in the last hunt (dwell incidents lists them)", sanitize(*incident, 40))
	}
	entries, skipped := blocklist.Entries(h.Incidents, blocklist.Options{IsLocal: env.IsLocal, Allow: &env.Allow, Incident: *incident})
	var data []byte
	switch *format {
	case "nft":
		data = blocklist.NFT(entries, *timeout)
	case "ipset":
		data = blocklist.IPSet(entries, *timeout)
	case "rpz":
		data = blocklist.RPZ(entries, h.At)
	case "crowdsec":
		if data, err = blocklist.CrowdSec(entries, *timeout); err != nil {
			return err
		}
		data = append(data, '\n')
	case "csv":
		data = blocklist.CSV(entries)
	default:
		return usagef("--format: want nft, ipset, rpz, crowdsec or csv")
	}
	if err := writeAtomic(*out, a, data); err != nil {
		return err
	}
	msg := a.Stdout
	if *out == "-" {
		msg = a.Stderr
	}
	ips := 0
	for _, e := range entries {
		if e.Kind == "ip" {
			ips++
		}
	}
	fmt.Fprintf(msg, "%s: %d address(es), %d name(s) from the hunt of %s; %d left out\n", *format, ips, len(entries)-ips,
		h.At.Format("2006-01-02 15:04 UTC"), len(skipped))
	if (*format == "nft" || *format == "ipset" || *format == "crowdsec") && len(entries) > ips {
		fmt.Fprintf(msg, "  the %d name(s) are not in a %s list: export --format rpz for them\n", len(entries)-ips, *format)
	}
	reasons := map[string]int{}
	for _, s := range skipped {
		reasons[s.Reason]++
		if *verbose {
			fmt.Fprintf(msg, "  left out %s: %s\n", sanitize(s.Value, 100), s.Reason)
		}
	}
	if !*verbose {
		for _, r := range slices.Sorted(maps.Keys(reasons)) {
			fmt.Fprintf(msg, "  left out %d: %s\n", reasons[r], r)
		}
	}
	return nil
}

// exportIncidentSTIX writes one incident of the last hunt as STIX 2.1: its
// infrastructure, first contact, data taken and attribution hypotheses
// (docs/attribution.md), marked at level (TLP:AMBER when none is given);
// an incident the viewer may not see is answered as one that does not
// exist.
func exportIncidentSTIX(ctx context.Context, a *App, co *common, id, level, producer, out string, as viewer) error {
	cfg, st, h, err := co.openHunt(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	if err := as.only(ctx, st, h); err != nil {
		return err
	}
	i := slices.IndexFunc(h.Incidents, func(inc correlate.Incident) bool { return strings.EqualFold(inc.ID, id) })
	if i < 0 {
		return fmt.Errorf("no incident %s in the last hunt (dwell incidents lists them)", sanitize(id, 40))
	}
	inc := &h.Incidents[i]
	if err := enrich(ctx, cfg, st, inc); err != nil {
		return err
	}
	data, err := stix.Incident(inc, level, stix.Options{Producer: producer, Created: h.At})
	if err != nil {
		return err
	}
	if err := writeAtomic(out, a, append(data, '\n')); err != nil {
		return err
	}
	if out != "-" {
		n := 0
		if inc.Answers != nil {
			n = min(len(inc.Answers.Hypotheses), stix.MaxHypotheses)
		}
		fmt.Fprintf(a.Stderr, "wrote %s: incident %s as STIX 2.1 (infrastructure, observed data, %d attribution hypothesis(es))\n", out, inc.ID, n)
	}
	return nil
}

// viewer is the account a command answers for (--as, --external); the
// zero viewer is the store's owner, who sees everything.
type viewer struct {
	name     string
	external bool
}

// only leaves in h the incidents the viewer may see (TLP need-to-know,
// as the console applies it).
func (v viewer) only(ctx context.Context, st store.Store, h *savedHunt) error {
	if v.name == "" {
		return nil
	}
	tri, err := triages(ctx, st, h)
	if err != nil {
		return err
	}
	h.Incidents = slices.DeleteFunc(h.Incidents, func(i correlate.Incident) bool { return !tri[i.ID].Visible(v.name, v.external) })
	return nil
}
