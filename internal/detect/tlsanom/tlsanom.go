// Package tlsanom finds TLS that does not look like the ordinary web:
// self-signed, expired or otherwise invalid certificates on destinations
// few internal hosts use, a server name that the certificate does not
// cover, and client fingerprints (JA3/JA4) seen on one or two hosts only.
// Each alone is common on the Internet's long tail; together, on a rare
// destination, they are how hastily built C2 servers look.
package tlsanom

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dwell-nsm/dwell/internal/detect"
	"github.com/dwell-nsm/dwell/internal/store"
)

// Config tunes the detector (no options yet).
type Config struct{}

// Detector is the TLS anomaly detector.
type Detector struct {
	env *detect.Env
}

var _ detect.Detector = (*Detector)(nil)

// New returns a TLS anomaly detector.
func New(env *detect.Env, _ Config) *Detector { return &Detector{env: env} }

// Name implements detect.Detector.
func (d *Detector) Name() string { return "tlsanom" }

// key is an outbound TLS conversation. A month of a ministry's traffic
// has millions, so key and agg are kept small: strings (sensor, name,
// subject, issuer, fingerprints) are indexes into one table of distinct
// strings, times are Unix nanoseconds, and aggregates live in one slice.
type key struct {
	src, dst netip.Addr
	sensor   uint32
	sni      uint32
}

type agg struct {
	count       int64
	first, last int64    // Unix nanoseconds
	fps         []uint32 // distinct JA3 and JA4 fingerprints, a few at most
	invalid     uint32   // the validation status, when neither self-signed nor expired
	subject     uint32   // the most recent handshake's
	issuer      uint32
	port        uint16
	selfSigned  bool
	expired     bool
	mismatch    bool
}

// strtab numbers distinct strings; 0 is "".
type strtab struct {
	ids  map[string]uint32
	strs []string
}

func (t *strtab) id(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := t.ids[s]; ok {
		return i
	}
	t.strs = append(t.strs, s)
	i := uint32(len(t.strs) - 1) //nolint:gosec // G115: fewer distinct strings than 2^32
	t.ids[s] = i
	return i
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	m := map[key]int32{}
	var aggs []agg
	tab := &strtab{ids: map[string]uint32{}, strs: []string{""}}
	fpHosts := map[string]map[netip.Addr]bool{}      // JA3/JA4 -> internal hosts using it
	dstHosts := map[netip.Addr]map[netip.Addr]bool{} // destination -> internal hosts using TLS with it
	tlsHosts := map[netip.Addr]bool{}                // internal hosts seen making TLS handshakes
	err := r.TLSSessions(ctx, w, func(s *store.TLSSession) error {
		if d.env.IsLocal(s.Src) {
			tlsHosts[s.Src] = true
			if dstHosts[s.Dst] == nil {
				dstHosts[s.Dst] = map[netip.Addr]bool{}
			}
			dstHosts[s.Dst][s.Src] = true
		}
		for _, fp := range []string{s.JA3, s.JA4} {
			if fp != "" && d.env.IsLocal(s.Src) {
				if fpHosts[fp] == nil {
					fpHosts[fp] = map[netip.Addr]bool{}
				}
				fpHosts[fp][s.Src] = true
			}
		}
		if !d.env.IsLocal(s.Src) || d.env.IsLocal(s.Dst) {
			return nil // outbound TLS from the inside is what this detector judges
		}
		k := key{src: s.Src, dst: s.Dst, sensor: tab.id(s.Sensor), sni: tab.id(strings.ToLower(s.ServerName))}
		i, ok := m[k]
		if !ok {
			i = int32(len(aggs)) //nolint:gosec // G115: fewer conversations than 2^31
			aggs = append(aggs, agg{first: s.First.UnixNano(), last: s.Last.UnixNano()})
			m[k] = i
		}
		a := &aggs[i]
		a.count += s.Count
		a.first, a.last = min(a.first, s.First.UnixNano()), max(a.last, s.Last.UnixNano())
		status := strings.ToLower(s.ValidationStatus)
		if strings.Contains(status, "self signed") || strings.Contains(status, "self-signed") || (s.Subject != "" && s.Subject == s.Issuer) {
			a.selfSigned = true
		}
		if strings.Contains(status, "expired") || (!s.NotAfter.IsZero() && s.NotAfter.Before(s.First)) {
			a.expired = true
		}
		if status != "" && status != "ok" && !a.selfSigned && !a.expired {
			a.invalid = tab.id(s.ValidationStatus)
		}
		if s.SNIMatchesCert == "F" || (s.ServerName != "" && len(s.CertNames) > 0 && !detect.CertCovers(s.CertNames, s.ServerName)) {
			a.mismatch = true
		}
		a.subject, a.issuer, a.port = tab.id(s.Subject), tab.id(s.Issuer), s.DstPort
		for _, fp := range []string{s.JA3, s.JA4} {
			if id := tab.id(fp); id != 0 && !slices.Contains(a.fps, id) {
				a.fps = append(a.fps, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for k, i := range m {
		a := &aggs[i]
		rareFP, fps := false, []string{}
		for _, id := range a.fps {
			fp := tab.strs[id]
			fps = append(fps, fp)
			rareFP = rareFP || (len(tlsHosts) >= 10 && len(fpHosts[fp]) <= 2)
		}
		sort.Strings(fps)
		invalid, sni := tab.strs[a.invalid], tab.strs[k.sni]
		c := map[string]float64{}
		var why []string
		add := func(name string, v float64, reason string, on bool) {
			if on {
				c[name] = v
				why = append(why, reason)
			}
		}
		add("self_signed", 0.45, "a self-signed certificate", a.selfSigned)
		add("expired", 0.35, "an expired certificate", a.expired)
		add("invalid", 0.25, "a certificate that does not validate ("+invalid+")", invalid != "")
		add("sni_mismatch", 0.3, "a server name the certificate does not cover", a.mismatch)
		add("rare_fingerprint", 0.25, "a client fingerprint seen on two hosts or fewer", rareFP)
		raw := 0.0
		for _, v := range c {
			raw += v
		}
		if raw == 0 {
			continue
		}
		clients := len(dstHosts[k.dst])
		rarity := 1.0
		if len(tlsHosts) >= 10 {
			rarity = 1 - detect.Ramp(float64(clients), 1, 6)
		}
		c["rarity"] = detect.Round(rarity, 3)
		score := min(raw, 1) * (0.3 + 0.7*rarity)
		f := detect.Finding{Detector: d.Name(), Sensor: tab.strs[k.sensor], Src: k.src, Dst: k.dst, Domain: sni, Score: score,
			Severity: detect.SeverityOf(score), FirstSeen: time.Unix(0, a.first).UTC(), LastSeen: time.Unix(0, a.last).UTC(), Components: c,
			Attack: []string{"T1573", "T1071.001"}}
		if score < 0.25 || d.env.Allowed(&f) {
			continue
		}
		f.Evidence = map[string]any{"handshakes": a.count, "subject": tab.strs[a.subject], "issuer": tab.strs[a.issuer], "fingerprints": fps,
			"port": a.port, "proto": "tcp",
			"internal_hosts_contacting": clients}
		name := k.dst.String()
		if sni != "" {
			name = sni + " (" + k.dst.String() + ")"
		}
		f.Summary = fmt.Sprintf("%s made %d TLS handshake(s) with %s, used by %d internal host(s), presenting %s.",
			k.src, a.count, name, clients, strings.Join(why, ", "))
		out = append(out, f)
	}
	return out, nil
}
