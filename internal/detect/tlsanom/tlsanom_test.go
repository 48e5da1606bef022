package tlsanom

import (
	"fmt"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestCerts(t *testing.T) {
	dt.Run(t, "certs", func(g *dt.Gen) {
		hosts := dt.Hosts(30)
		day := dt.Start
		g.Cert(day, "fp-good", "CN=*.example.com", "CN=Good CA", day.AddDate(-1, 0, 0), day.AddDate(1, 0, 0), "*.example.com", "example.com")
		g.Cert(day, "fp-self", "CN=localhost", "CN=localhost", day.AddDate(0, -1, 0), day.AddDate(5, 0, 0))
		g.Cert(day, "fp-old", "CN=old.example.org", "CN=Good CA", day.AddDate(-3, 0, 0), day.AddDate(-1, 0, 0), "old.example.org")
		g.Cert(day, "fp-intranet", "CN=intranet", "CN=intranet", day.AddDate(-1, 0, 0), day.AddDate(4, 0, 0))
		no := false
		for d := range 7 {
			ts := day.AddDate(0, 0, d).Add(9 * time.Hour)
			for i, h := range hosts {
				// The ordinary web: a valid certificate, a browser everyone runs.
				g.TLS(dt.TLS{TS: ts.Add(time.Duration(i) * time.Minute), Src: h, Dst: "93.184.216.34", ServerName: "www.example.com", JA3: "browser", Cert: "fp-good"})
				// Intranet service with its self-signed certificate, internal.
				g.TLS(dt.TLS{TS: ts, Src: h, Dst: "10.5.5.5", ServerName: "intranet", JA3: "browser", Validation: "self signed certificate", Cert: "fp-intranet"})
			}
			// The implant: self-signed, to a rare host, with its own client stack.
			for i := range 6 {
				g.TLS(dt.TLS{TS: ts.Add(time.Duration(i) * time.Hour), Src: "10.1.0.40", Dst: "203.0.113.66", ServerName: "cdn-update.example.net",
					JA3: "implant", Validation: "self signed certificate", Cert: "fp-self", SNIMatches: &no})
			}
		}
		// An expired certificate on a site one host visits.
		g.TLS(dt.TLS{TS: day.Add(12 * time.Hour), Src: "10.1.0.41", Dst: "198.51.100.8", ServerName: "old.example.org", JA3: "browser",
			Validation: "certificate has expired", Cert: "fp-old"})
		_ = fmt.Sprint()
	}, New(dt.Env(), Config{}))
}
