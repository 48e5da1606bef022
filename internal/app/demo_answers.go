package app

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"

	"github.com/dwell-nsm/dwell/internal/config"
	"github.com/dwell-nsm/dwell/internal/correlate"
	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/scenario"
	"github.com/dwell-nsm/dwell/internal/store"
)

// demoIntelSource is the name the demo imports the scenario's CERT event
// under.
const demoIntelSource = "DEMO-CERT"

// demoIntel configures the scenario's reference data (its .mmdb and group
// catalogue) and imports its CERT's MISP event, before the hunt: the
// intel matches join the incident, as they would on a SOC's store.
func demoIntel(ctx context.Context, cfg *config.Config, st store.Store, env *detect.Env, data string, truth *scenario.Truth) (int, error) {
	in := truth.Intel
	if in.MISP == "" {
		return 0, nil
	}
	path := func(p string) string { return filepath.Join(data, filepath.FromSlash(p)) }
	cfg.Origin.MMDB = []string{path(in.MMDB)}
	cfg.Attribution.Groups = nil
	for _, g := range in.Groups {
		cfg.Attribution.Groups = append(cfg.Attribution.Groups, path(g))
	}
	r, err := (&intel.Loader{}).Load(ctx, path(in.MISP), demoIntelSource)
	if err != nil {
		return 0, err
	}
	(&intel.Scope{Local: env.Local, WidestIPv4: cfg.Intel.WidestIPv4, WidestIPv6: cfg.Intel.WidestIPv6}).Vet(r)
	inds := intel.Distinct(r.Indicators)
	if _, _, err := st.PutIndicators(ctx, inds); err != nil {
		return 0, err
	}
	if _, err := retrohunt(ctx, st, store.Window{}); err != nil {
		return 0, err
	}
	return len(inds), nil
}

// campaignIncident returns the incident holding most of the campaign's
// hosts, nil when none does.
func campaignIncident(incs []correlate.Incident, truth *scenario.Truth) *correlate.Incident {
	var best *correlate.Incident
	most := 0
	for i := range incs {
		n := 0
		for _, h := range incs[i].Hosts {
			if slices.Contains(truth.Campaign.Hosts, h.String()) {
				n++
			}
		}
		if n > most {
			best, most = &incs[i], n
		}
	}
	return best
}

// demoCheck is the answers to the three questions checked against the
// truth.
type demoCheck struct {
	registered, infra int // campaign addresses in the incident registered as planted, of those planted
	pivots            int // planted addresses no finding names, found by pivots
	taken             []string
	takenOK           bool
	actor             string
	actorOK           bool
}

// printDemoAnswers answers the prosecutors' three questions for the
// campaign's incident and checks them against the truth.
func printDemoAnswers(ctx context.Context, w io.Writer, cfg *config.Config, st store.Reader, incs []correlate.Incident, truth *scenario.Truth) (*demoCheck, error) {
	inc := campaignIncident(incs, truth)
	fmt.Fprintln(w, "\nthe prosecutors' three questions (docs/attribution.md), for the campaign's incident:")
	if inc == nil {
		fmt.Fprintln(w, "  MISSED: no incident holds the campaign's hosts")
		return &demoCheck{}, nil
	}
	if err := enrich(ctx, cfg, st, inc); err != nil {
		return nil, err
	}
	ck := &demoCheck{infra: len(truth.Campaign.Infrastructure)}
	planted := map[string]scenario.Registration{}
	for _, r := range truth.Campaign.Infrastructure {
		planted[r.Addr] = r
	}
	for _, x := range inc.Infrastructure {
		if r, ok := planted[x.Value]; ok && x.Origin != nil && x.Origin.ASN == uint(r.ASN) && x.Origin.Country == r.Country {
			ck.registered++
		}
	}
	fmt.Fprintf(w, "  where from: %s\n", sanitize(inc.OriginSentence(), 400))
	fmt.Fprintf(w, "    truth: %d of the %d planted outside addresses in the incident with their planted AS and country; first event %s\n",
		ck.registered, ck.infra, truth.Campaign.FirstEvent.UTC().Format("2006-01-02 15:04"))
	for _, want := range truth.Campaign.Pivots {
		i := slices.IndexFunc(inc.Infrastructure, func(x correlate.Infra) bool { return x.Value == want })
		if i < 0 {
			fmt.Fprintf(w, "    pivot to %s (no finding names it): MISSED\n", want)
			continue
		}
		ck.pivots++
		fmt.Fprintf(w, "    pivot to %s (no finding names it): found, %s\n", want, sanitize(cmp.Or(inc.Infrastructure[i].Pivot, "named by a finding"), 160))
	}
	ans := inc.Answers
	fmt.Fprintf(w, "  what was taken: %s\n", sanitize(ans.TakenSentence(), 300))
	ck.takenOK = true
	check := func(dst string, want int64, what string) {
		var got int64
		for _, t := range ans.Taken {
			if t.Dst.String() == dst {
				got = t.Bytes
			}
		}
		off := math.Abs(float64(got-want)) / float64(max(want, 1))
		verdict := "within 1%"
		if off > 0.01 {
			verdict, ck.takenOK = "MORE THAN 1% OFF", false
		}
		fmt.Fprintf(w, "    %-16s %-28s %10s taken, truth %10s: %.2f%% off, %s\n", dst, what, detect.HumanBytes(uint64(max(got, 0))),
			detect.HumanBytes(uint64(max(want, 0))), 100*off, verdict)
		ck.taken = append(ck.taken, dst)
	}
	for _, x := range truth.Campaign.Exfiltration {
		check(x.Dst, x.Bytes, x.Domain)
	}
	for _, f := range truth.Campaign.Taken {
		check(f.Dst, f.Bytes, f.Name)
		named := slices.ContainsFunc(ans.Taken, func(t correlate.Taken) bool {
			return slices.ContainsFunc(t.Transfers, func(x correlate.Transferred) bool { return x.Name == f.Name && x.SHA256 == f.SHA256 })
		})
		if !named {
			ck.takenOK = false
		}
		fmt.Fprintf(w, "    %s (sha256 %s…) named among the records: %s\n", f.Name, f.SHA256[:12], map[bool]string{true: "found", false: "MISSED"}[named])
	}
	for _, a := range ans.HostActions {
		fmt.Fprintf(w, "    host events: %s %s: %s\n", sanitize(a.Computer, 40), a.What, sanitize(a.Object, 120))
	}
	fmt.Fprintf(w, "  who: %s\n", sanitize(ans.WhoSentence(), 300))
	for i, h := range ans.Hypotheses {
		if i == 3 {
			break
		}
		fmt.Fprintf(w, "    %d. %-40s score %.2f (intel %.2f, behaviour %.2f)\n", i+1, sanitize(h.Line(), 80), h.Score, h.Intel, h.Behaviour)
	}
	if len(ans.Hypotheses) > 0 {
		ck.actor = ans.Hypotheses[0].Actor
		ck.actorOK = ck.actor == truth.Campaign.Actor.Name && ans.Hypotheses[0].Intel > 0
	}
	fmt.Fprintf(w, "    truth: %s (%s); %s\n", truth.Campaign.Actor.Name, truth.Campaign.Actor.Sponsor,
		map[bool]string{true: "the top hypothesis, with intel behind it", false: "NOT the top hypothesis with intel"}[ck.actorOK])
	return ck, nil
}
