package lateral

import (
	"fmt"
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestMovement(t *testing.T) {
	dt.Run(t, "movement", func(g *dt.Gen) {
		hosts := dt.Hosts(30)
		for d := range 21 {
			ts := dt.Start.AddDate(0, 0, d).Add(9 * time.Hour)
			for i, h := range hosts {
				// Everyone maps the file server over SMB, every day.
				g.Conn(dt.Conn{TS: ts.Add(time.Duration(i) * time.Minute), Src: h, Dst: "10.3.0.5", DstPort: 445, SrcBytes: 20_000, DstBytes: 300_000})
			}
			// The admin workstation RDPs to servers, as always.
			g.Conn(dt.Conn{TS: ts, Src: "10.1.9.9", Dst: fmt.Sprintf("10.3.0.%d", 10+d%5), DstPort: 3389, Duration: time.Hour, SrcBytes: 2e6, DstBytes: 9e6})
		}
		// After the baseline, a workstation starts using WinRM and RDP on servers.
		late := dt.Start.AddDate(0, 0, 15)
		g.Conn(dt.Conn{TS: late.Add(2 * time.Hour), Src: "10.1.0.15", Dst: "10.3.0.5", DstPort: 5985, SrcBytes: 40_000, DstBytes: 90_000})
		g.Conn(dt.Conn{TS: late.Add(3 * time.Hour), Src: "10.1.0.15", Dst: "10.3.0.20", DstPort: 3389, Duration: 20 * time.Minute, SrcBytes: 1e6, DstBytes: 4e6})
		// And the admin workstation reaches a new server over RDP: its usual tool.
		g.Conn(dt.Conn{TS: late.Add(4 * time.Hour), Src: "10.1.9.9", Dst: "10.3.0.30", DstPort: 3389, Duration: time.Hour, SrcBytes: 2e6, DstBytes: 9e6})
		// A discovery sweep: SMB to every host, most refused, and a port scan.
		for i, h := range hosts {
			state := "REJ"
			if i%4 == 0 {
				state = "SF"
			}
			g.Conn(dt.Conn{TS: late.Add(5*time.Hour + time.Duration(i)*time.Second), Src: "10.1.0.16", Dst: h, DstPort: 445, State: state})
		}
		for p := 1; p <= 200; p++ {
			g.Conn(dt.Conn{TS: late.Add(6*time.Hour + time.Duration(p)*time.Second), Src: "10.1.0.16", Dst: "10.3.0.5", DstPort: p, State: "REJ"})
		}
	}, New(dt.Env(), Config{}))
}
