package deadc2

import (
	"math/rand/v2"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

// TestDeadC2: an implant whose server was blocked keeps trying it every
// ten minutes (±20 %) for three days, all unanswered, and is found; a
// decommissioned update server every host still tries, failures at
// random, and a check-in that is answered are not dead C2.
func TestDeadC2(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dt.Run(t, "dead_c2", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		end := dt.Start.AddDate(0, 0, 3)
		for ts := dt.Start.Add(7 * time.Minute); ts.Before(end); ts = ts.Add(time.Duration(float64(10*time.Minute) * (0.8 + 0.4*rng.Float64()))) {
			g.Conn(dt.Conn{TS: ts, Src: "10.1.0.30", Dst: "203.0.113.66", DstPort: 8443, State: "S0", Duration: 3 * time.Second})
		}
		for ts := dt.Start.Add(3 * time.Minute); ts.Before(end); ts = ts.Add(15 * time.Minute) {
			g.Conn(dt.Conn{TS: ts, Src: "10.1.0.31", Dst: "198.51.100.33", DstPort: 443, SrcBytes: 300, DstBytes: 4000})
		}
		for _, h := range hosts {
			for ts := dt.Start.Add(time.Duration(rng.IntN(3600)) * time.Second); ts.Before(end); ts = ts.Add(time.Hour) {
				g.Conn(dt.Conn{TS: ts, Src: h, Dst: "198.51.100.200", DstPort: 443, State: "S0"})
			}
			for range 12 {
				g.Conn(dt.Conn{TS: dt.Start.Add(time.Duration(rng.IntN(3*86400)) * time.Second), Src: h, Dst: "192.0.2.44", DstPort: 80, State: "REJ"})
			}
		}
	}, New(dt.Env(), Config{}))
}
