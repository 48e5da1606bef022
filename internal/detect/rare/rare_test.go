package rare

import (
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestRare(t *testing.T) {
	dt.Run(t, "rare", func(g *dt.Gen) {
		hosts := dt.Hosts(30)
		for d := range 20 {
			day := dt.Start.AddDate(0, 0, d)
			for _, h := range hosts {
				g.Conn(dt.Conn{TS: day.Add(9 * time.Hour), Src: h, Dst: "93.184.216.34", DstPort: 443, SrcBytes: 900, DstBytes: 40_000})
			}
			// A new destination from day 8, one host, most days.
			if d >= 8 && d%3 != 0 {
				for i := range 4 {
					g.Conn(dt.Conn{TS: day.Add(time.Duration(10+i) * time.Hour), Src: "10.1.0.12", Dst: "192.0.2.200", DstPort: 8443, SrcBytes: 2000, DstBytes: 3000})
				}
			}
			// A site one host visited once: not persistent.
			if d == 5 {
				g.Conn(dt.Conn{TS: day.Add(11 * time.Hour), Src: "10.1.0.13", Dst: "198.51.100.3", DstPort: 443, SrcBytes: 900, DstBytes: 9000})
			}
		}
	}, New(dt.Env(), Config{}))
}
