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

type key struct {
	sensor   string
	src, dst netip.Addr
	sni      string
}

type agg struct {
	count       int64
	first, last time.Time
	selfSigned  bool
	expired     bool
	invalid     string
	mismatch    bool
	ja3, ja4    []string // distinct, a few at most: slices cost far less than maps over millions of sessions
	subject     string
	issuer      string
	port        uint16 // the most recent handshake's
}

// Detect implements detect.Detector.
func (d *Detector) Detect(ctx context.Context, r store.Reader, w store.Window) ([]detect.Finding, error) {
	m := map[key]*agg{}
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
		k := key{s.Sensor, s.Src, s.Dst, strings.ToLower(s.ServerName)}
		a := m[k]
		if a == nil {
			a = &agg{first: s.First, last: s.Last}
			m[k] = a
		}
		a.count += s.Count
		if s.First.Before(a.first) {
			a.first = s.First
		}
		if s.Last.After(a.last) {
			a.last = s.Last
		}
		status := strings.ToLower(s.ValidationStatus)
		if strings.Contains(status, "self signed") || strings.Contains(status, "self-signed") || (s.Subject != "" && s.Subject == s.Issuer) {
			a.selfSigned = true
		}
		if strings.Contains(status, "expired") || (!s.NotAfter.IsZero() && s.NotAfter.Before(s.First)) {
			a.expired = true
		}
		if status != "" && status != "ok" && !a.selfSigned && !a.expired {
			a.invalid = s.ValidationStatus
		}
		if s.SNIMatchesCert == "F" || (s.ServerName != "" && len(s.CertNames) > 0 && !detect.CertCovers(s.CertNames, s.ServerName)) {
			a.mismatch = true
		}
		a.subject, a.issuer, a.port = s.Subject, s.Issuer, s.DstPort
		if s.JA3 != "" && !slices.Contains(a.ja3, s.JA3) {
			a.ja3 = append(a.ja3, s.JA3)
		}
		if s.JA4 != "" && !slices.Contains(a.ja4, s.JA4) {
			a.ja4 = append(a.ja4, s.JA4)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []detect.Finding
	for k, a := range m {
		rareFP, fps := false, []string{}
		for _, fp := range a.ja3 {
			fps = append(fps, fp)
			rareFP = rareFP || (len(tlsHosts) >= 10 && len(fpHosts[fp]) <= 2)
		}
		for _, fp := range a.ja4 {
			fps = append(fps, fp)
			rareFP = rareFP || (len(tlsHosts) >= 10 && len(fpHosts[fp]) <= 2)
		}
		sort.Strings(fps)
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
		add("invalid", 0.25, "a certificate that does not validate ("+a.invalid+")", a.invalid != "")
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
		f := detect.Finding{Detector: d.Name(), Sensor: k.sensor, Src: k.src, Dst: k.dst, Domain: k.sni, Score: score,
			Severity: detect.SeverityOf(score), FirstSeen: a.first, LastSeen: a.last, Components: c,
			Attack: []string{"T1573", "T1071.001"}}
		if score < 0.25 || d.env.Allowed(&f) {
			continue
		}
		f.Evidence = map[string]any{"handshakes": a.count, "subject": a.subject, "issuer": a.issuer, "fingerprints": fps, "port": a.port, "proto": "tcp",
			"internal_hosts_contacting": clients}
		name := k.dst.String()
		if k.sni != "" {
			name = k.sni + " (" + k.dst.String() + ")"
		}
		f.Summary = fmt.Sprintf("%s made %d TLS handshake(s) with %s, used by %d internal host(s), presenting %s.",
			k.src, a.count, name, clients, strings.Join(why, ", "))
		out = append(out, f)
	}
	return out, nil
}
