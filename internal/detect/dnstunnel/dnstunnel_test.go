package dnstunnel

import (
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestTunnels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	dt.Run(t, "tunnels", func(g *dt.Gen) {
		hosts := dt.Hosts(50)
		for d := range 14 {
			day := dt.Start.AddDate(0, 0, d)
			// Everyone resolves popular names, CDN edge names and antivirus lookups.
			for i, h := range hosts {
				for _, q := range []string{"www.google.com", "outlook.office365.com", "www.bbc.co.uk"} {
					g.DNS(dt.DNS{TS: day.Add(time.Duration(8+i%9) * time.Hour), Src: h, Query: q, Answers: []string{"93.184.216.34"}})
				}
				g.DNS(dt.DNS{TS: day.Add(9 * time.Hour), Src: h, Query: fmt.Sprintf("r%d---sn-%s.googlevideo.com", rng.IntN(9), strings.ToLower(b32.EncodeToString(random(6)))[:8])})
				g.DNS(dt.DNS{TS: day.Add(10 * time.Hour), Src: h, QType: "TXT",
					Query: hex.EncodeToString(random(20)) + ".avqs.mcafee.com"})
			}
			// Internal names: many, but short and plain.
			for i := range 30 {
				g.DNS(dt.DNS{TS: day.Add(11 * time.Hour), Src: hosts[i], Query: fmt.Sprintf("ws-%03d.corp.example.org", (d*30+i)%400)})
			}
			// iodine-like: base32 payloads in NULL queries, heavy, from one host.
			for i := range 400 {
				g.DNS(dt.DNS{TS: day.Add(time.Duration(i) * 3 * time.Minute), Src: "10.1.0.77", QType: "NULL",
					Query: strings.ToLower(b32.EncodeToString(random(35))) + ".t1.tunnel-example.com"})
			}
			// dnscat2-like: hex in TXT/CNAME/MX, moderate, another host.
			for i := range 60 {
				g.DNS(dt.DNS{TS: day.Add(time.Duration(i) * 20 * time.Minute), Src: "10.1.0.78", QType: []string{"TXT", "CNAME", "MX"}[i%3],
					Query: "dnscat." + hex.EncodeToString(random(28)) + ".c2.example.net"})
			}
			// A backup tunnel used now and then: a few bursts a fortnight.
			if d%5 == 2 {
				for i := range 40 {
					g.DNS(dt.DNS{TS: day.Add(22*time.Hour + time.Duration(i)*10*time.Second), Src: "10.1.0.79", QType: "TXT",
						Query: strings.ToLower(b32.EncodeToString(random(30))) + ".upd.example-backup.org"})
				}
			}
		}
	}, New(dt.Env(), Config{}))
}
