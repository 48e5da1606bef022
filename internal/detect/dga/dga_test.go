package dga

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

// TestRandomness: words and brand names look like words; generated
// labels do not.
func TestRandomness(t *testing.T) {
	for _, w := range []string{"google", "wikipedia", "microsoft", "cloudfront", "ministry", "timetoeatout", "windowsupdate", "digicert"} {
		if r := Randomness(w); r >= 0.4 {
			t.Errorf("%s: randomness %.2f", w, r)
		}
	}
	for _, w := range []string{"kqjxvbnmwer", "xjdhrtsq", "a8f3k2m9x1", "rgcnnfvtjbbrvmkp", "lpdbkfw"} {
		if r := Randomness(w); r < 0.8 {
			t.Errorf("%s: randomness %.2f", w, r)
		}
	}
}

// TestDGA: a host asking for sixty generated names, one of which
// resolves, is found with that one named; typos, browsers' single-label
// probes, random names under a content network's domain and a few
// random-looking names resolved by every host are not a DGA.
func TestDGA(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	gen := func() string {
		b := make([]byte, 10+rng.IntN(8))
		for i := range b {
			b[i] = "abcdefghijklmnopqrstuvwxyz"[rng.IntN(26)]
		}
		return string(b)
	}
	dt.Run(t, "dga", func(g *dt.Gen) {
		hosts := dt.Hosts(30)
		t0 := dt.Start.Add(9 * time.Hour)
		for i := range 60 {
			tld := []string{"com", "net", "org", "info", "biz"}[i%5]
			g.DNS(dt.DNS{TS: t0.Add(time.Duration(i) * time.Second), Src: "10.1.0.40", Query: gen() + "." + tld, RCode: "NXDOMAIN"})
		}
		g.DNS(dt.DNS{TS: t0.Add(61 * time.Second), Src: "10.1.0.40", Query: "qzvkxtrbwpmsl.net", Answers: []string{"203.0.113.99"}})
		for i, h := range hosts {
			for _, typo := range []string{"gogle.com", "wikipeda.org", "mircosoft.com", "facebok.com"} {
				g.DNS(dt.DNS{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Query: typo, RCode: "NXDOMAIN"})
			}
			for range 3 {
				g.DNS(dt.DNS{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Query: gen(), RCode: "NXDOMAIN"})
			}
			for range 10 {
				g.DNS(dt.DNS{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Query: fmt.Sprintf("%s.cloudfront.net", gen()), Answers: []string{"198.51.100.5"}})
			}
			for _, n := range []string{"xkcdqwrtz.com", "bvtrkqwza.net"} {
				g.DNS(dt.DNS{TS: t0.Add(time.Duration(i) * time.Minute), Src: h, Query: n, RCode: "NXDOMAIN"})
			}
		}
	}, New(dt.Env(), Config{}))
}
