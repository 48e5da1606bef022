package detect

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/dwell-nsm/dwell/internal/store"
)

// A channel's behaviour alone (a steady rhythm, a long session) is shared
// by command and control and by the telemetry of operating systems,
// antivirus and cloud services: what tells them apart is what the data
// says about the other end. Support collects it; Corroborate keeps a
// behavioural finding below high unless something supports it.

// Corroborated is implemented by detectors whose findings judge a
// channel by its behaviour: their findings reach high only with support
// (Corroborate).
type Corroborated interface {
	Detector
	// Behavioural marks the detector; it does nothing.
	Behavioural()
}

// SessionsToo is implemented by detectors that judge connections alone
// (no DNS, TLS or HTTP records): a hunt runs them over the sessions
// stitched from flow records as well (store.FlowSessions), so that a
// network that exports only flows is hunted too.
type SessionsToo interface {
	Detector
	// ConnsOnly marks the detector; it does nothing.
	ConnsOnly()
}

// Signals that support a finding, with the weight each carries.
var supportWeights = map[string]float64{
	"unnamed":           0.5,  // no DNS answer, server name or Host named the address, though the client's DNS queries are seen
	"unusual_port":      0.5,  // a port no everyday service uses outbound
	"tls_invalid":       0.6,  // a self-signed, expired, invalid or mismatched certificate
	"http_bare_address": 0.4,  // HTTP without a Host header, or to the bare address
	"rare":              0.5,  // one or two internal hosts of ten or more reach it
	"download":          0.35, // it sent a host hundreds of kilobytes, and nothing named it (set by the c2 detector)
}

// Support is what corroborates a finding about a channel between an
// internal host and an outside address.
type Support struct {
	// Signals are the supporting signals present, each in (0, 1].
	Signals map[string]float64
	// Vetted is true when the address is reached by a name, over TLS
	// that validates for it (Peers.Vetted).
	Vetted bool
}

// Strength combines the signals: 1 − Π(1 − weight × signal).
func (s Support) Strength() float64 {
	miss := 1.0
	for k, v := range s.Signals {
		miss *= 1 - supportWeights[k]*v
	}
	return 1 - miss
}

// Names lists the signals present, sorted.
func (s Support) Names() []string {
	var out []string
	for k := range s.Signals {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// supportFloor is the strength under which a finding counts as
// unsupported: one full signal of weight 0.5, or two weak ones.
const supportFloor = 0.25

// Unsupported is the highest score an unsupported behavioural finding
// keeps: medium, below high.
const Unsupported = 0.69

// SupportOf collects what supports a channel from inside to outside on
// a port and protocol.
func SupportOf(prev *Prevalence, peers *Peers, inside, outside netip.Addr, port uint16, proto string) Support {
	s := Support{Signals: map[string]float64{}, Vetted: peers.Vetted(outside)}
	add := func(name string, v float64) {
		if v > 0 {
			s.Signals[name] = min(v, 1)
		}
	}
	add("unnamed", peers.Naming(inside, outside))
	if port != 0 {
		add("unusual_port", PortOddity(port, proto))
	}
	p := peers.Of(outside)
	if p.TLSBad != "" {
		add("tls_invalid", 1)
	}
	if p.HTTPBare {
		add("http_bare_address", 1)
	}
	if prev != nil && prev.Hosts >= 10 {
		if prev.Of(outside).Clients <= 2 {
			add("rare", 1)
		}
	}
	return s
}

// Corroborate caps each finding of a behavioural detector about a
// channel between an internal host and an outside address at
// Unsupported when nothing supports it, and records the support in its
// components and evidence. Findings about two internal hosts, or with an
// end missing, are left as they are. Over flow sessions the support
// comes from what the Zeek logs of the same window say, where there are
// any.
func Corroborate(ctx context.Context, r store.Reader, w store.Window, env *Env, fs []Finding) error {
	if len(fs) == 0 {
		return nil
	}
	peers, err := PeersOf(ctx, r, w, env)
	if err != nil {
		return err
	}
	prev, err := PrevalenceOf(ctx, r, w, env)
	if err != nil {
		return err
	}
	for i := range fs {
		f := &fs[i]
		inside, outside := f.Src, f.Dst
		if !env.IsLocal(inside) {
			inside, outside = outside, inside
		}
		if !inside.IsValid() || !outside.IsValid() || !env.IsLocal(inside) || env.IsLocal(outside) {
			continue
		}
		port, proto := evidencePort(f)
		s := SupportOf(prev, peers, inside, outside, port, proto)
		strength := s.Strength()
		if f.Components == nil {
			f.Components = map[string]float64{}
		}
		f.Components["support"] = Round(strength, 3)
		if f.Evidence == nil {
			f.Evidence = map[string]any{}
		}
		f.Evidence["support"] = s.Names()
		if s.Vetted {
			f.Evidence["peer_vetted"] = true
		}
		if strength < supportFloor && f.Score > Unsupported {
			f.Score = Unsupported
			f.Severity = SeverityOf(f.Score)
			f.Summary = strings.TrimSuffix(f.Summary, ".") + fmt.Sprintf("; nothing else marks %s (named, usual port, no invalid certificate): at most medium.", outside)
		}
	}
	return nil
}

// evidencePort finds the port and protocol a finding's evidence names.
func evidencePort(f *Finding) (uint16, string) {
	proto, _ := f.Evidence["proto"].(string)
	for _, k := range []string{"port", "main_port"} {
		switch v := f.Evidence[k].(type) {
		case uint16:
			return v, proto
		case int:
			return uint16(v), proto //nolint:gosec // G115: ports
		case float64:
			return uint16(v), proto
		}
	}
	return 0, proto
}
