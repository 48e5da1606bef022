// Package iocmatch turns indicator sightings into findings: a value a
// threat-intelligence source lists (an address, a name, a URL, a hash, a
// fingerprint) seen in the stored telemetry, with the hosts that touched
// it and since when. The earliest sighting of an intrusion's
// infrastructure is evidence of when it began.
//
// Matching itself is the store's (store.Analytics.MatchIndicators, over
// the value summary kept at ingest): it looks at all history, whenever
// the indicator was published.
package iocmatch

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/event"
	"github.com/dwell-nsm/dwell/internal/intel"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector.
type Config struct{}

// Detector is the indicator-match detector.
type Detector struct {
	env *detect.Env
}

var _ detect.Detector = (*Detector)(nil)

// New returns an indicator-match detector.
func New(env *detect.Env, _ Config) *Detector { return &Detector{env: env} }

// Name implements detect.Detector.
func (d *Detector) Name() string { return "iocmatch" }

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	// Indicators too broad to match on (intel.Scope) are refused at
	// import; one stored before that, or with another networks.local, is
	// not matched here either.
	scope := intel.Scope{Local: d.env.Local}
	inds := map[string]event.Indicator{}
	if err := r.Indicators(ctx, func(i *event.Indicator) error {
		if scope.Refuse(*i) == "" {
			inds[i.Key()] = *i
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(inds) == 0 {
		return nil, nil
	}
	var out []detect.Finding
	err := r.MatchIndicators(ctx, w, func(s *event.Sighting) error {
		ind, ok := inds[s.Key]
		if !ok {
			return nil
		}
		if f, ok := d.finding(&ind, s); ok {
			out = append(out, f)
		}
		return nil
	})
	return out, err
}

func (d *Detector) finding(ind *event.Indicator, s *event.Sighting) (detect.Finding, bool) {
	f := detect.Finding{Detector: d.Name(), Sensor: s.Sensor, FirstSeen: s.First, LastSeen: s.Last}
	var local, other []netip.Addr
	for _, p := range s.Peers {
		if d.env.IsLocal(p) {
			local = append(local, p)
		} else {
			other = append(other, p)
		}
	}
	observed, _ := netip.ParseAddr(s.Observed)
	switch {
	case observed.IsValid() && len(local) > 0:
		f.Src, f.Dst = local[0], observed
	case observed.IsValid() && d.env.IsLocal(observed) && len(other) > 0:
		f.Src, f.Dst = observed, other[0] // an internal address an outside host reached
	case observed.IsValid():
		f.Dst = observed
	default:
		if len(local) > 0 {
			f.Src = local[0]
		}
		if ind.Type == event.IOCDomain || ind.Type == event.IOCURL {
			f.Domain = strings.SplitN(s.Observed, "/", 2)[0]
		}
	}
	if d.env.Allowed(&f) {
		return f, false
	}
	conf := 0.5
	if ind.Confidence >= 0 {
		conf = float64(ind.Confidence) / 100
	}
	c := map[string]float64{
		"confidence":  detect.Round(conf, 3),
		"actionable":  map[bool]float64{true: 1, false: 0}[ind.Actionable],
		"persistence": detect.Round(detect.Ramp(float64(s.Days), 1, 5), 3),
		"hosts":       detect.Round(detect.Ramp(float64(len(local)), 1, 3), 3),
	}
	score := 0.5 + 0.2*conf + 0.15*c["actionable"] + 0.1*c["persistence"] + 0.05*c["hosts"]
	if !ind.Actionable {
		score = math.Min(score, 0.5) // context, not detection content
	}
	// Seen only after the source stopped vouching for it: reassigned
	// infrastructure, most likely.
	late := !ind.ValidUntil.IsZero() && s.First.After(ind.ValidUntil)
	if late {
		score *= 0.5
		c["after_validity"] = 1
	}
	f.Score, f.Severity, f.Components = score, detect.SeverityOf(score), c
	f.Attack = ind.Attack
	if len(f.Attack) == 0 {
		f.Attack = defaultAttack(ind.Type)
	}
	peers := make([]string, len(s.Peers))
	for i, p := range s.Peers {
		peers[i] = p.String()
	}
	f.Evidence = map[string]any{
		"indicator": map[string]any{"type": string(ind.Type), "value": ind.Value, "port": ind.Port, "source": ind.Source, "ref": ind.Ref,
			"group": ind.Group, "name": ind.Name, "tlp": ind.TLP, "confidence": ind.Confidence, "tags": ind.Tags},
		"observed": s.Observed, "log": s.Log, "records": s.Count, "days": s.Days, "peers": peers,
		"first_seen": s.First.UTC().Format(time.RFC3339), "last_seen": s.Last.UTC().Format(time.RFC3339),
	}
	who := "seen"
	if len(local) > 0 {
		who = local[0].String()
		if len(local) > 1 {
			who += fmt.Sprintf(" and %d other internal host(s)", len(local)-1)
		}
	}
	what := s.Observed
	if ind.Type == event.IOCDomain && s.Observed != ind.Value {
		what = s.Observed + " (under " + ind.Value + ")"
	}
	listed := ind.Source
	if ind.TLP != "" {
		listed += ", TLP:" + strings.ToUpper(ind.TLP)
	}
	if ind.Name != "" {
		listed += `: "` + shorten(ind.Name, 80) + `"`
	}
	f.Summary = fmt.Sprintf("%s %s %s, listed by %s; %d record(s) in %s on %d day(s), %s to %s.", who, verb(s.Log, len(local) > 0), what, listed,
		s.Count, s.Log, s.Days, s.First.UTC().Format("2006-01-02 15:04"), s.Last.UTC().Format("2006-01-02 15:04"))
	if late {
		f.Summary += " Every sighting is after the indicator's validity ended."
	}
	return f, true
}

func verb(log string, hasHost bool) string {
	if !hasHost {
		return "the indicator:"
	}
	switch log {
	case "dns":
		return "resolved"
	case "http":
		return "fetched from"
	case "files":
		return "transferred a file with hash"
	case "ssl", "x509":
		return "made TLS connections matching"
	case "flow":
		return "exchanged traffic (router flows) with"
	}
	return "connected with"
}

func defaultAttack(t event.IOCType) []string {
	switch t {
	case event.IOCMD5, event.IOCSHA1, event.IOCSHA256:
		return []string{"T1105"}
	case event.IOCJA3, event.IOCJA3S, event.IOCJA4, event.IOCCertSHA1, event.IOCCertSHA256:
		return []string{"T1573"}
	case event.IOCURL, event.IOCUserAgent:
		return []string{"T1071.001"}
	}
	return []string{"T1071"}
}

func shorten(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
