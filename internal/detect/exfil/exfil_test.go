package exfil

import (
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestUploads(t *testing.T) {
	dt.Run(t, "uploads", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		for d := range 14 {
			day := dt.Start.AddDate(0, 0, d)
			for i, h := range hosts {
				// Downloads from a CDN: big, but inbound.
				g.Conn(dt.Conn{TS: day.Add(9 * time.Hour), Src: h, Dst: "151.101.1.69", DstPort: 443, Service: "ssl", SrcBytes: 40_000, DstBytes: 80_000_000})
				// Everyone syncs to the cloud office suite, both ways.
				g.Conn(dt.Conn{TS: day.Add(10 * time.Hour), Src: h, Dst: "52.96.10.10", DstPort: 443, Service: "ssl", SrcBytes: 6_000_000, DstBytes: 9_000_000})
				// Backups go to an internal server.
				if i < 5 {
					g.Conn(dt.Conn{TS: day.Add(20 * time.Hour), Src: h, Dst: "10.9.9.9", DstPort: 445, SrcBytes: 900_000_000, DstBytes: 10_000})
				}
				// Developers push code to a forge a few of them use.
				if i < 8 {
					g.Conn(dt.Conn{TS: day.Add(15 * time.Hour), Src: h, Dst: "140.82.121.3", DstPort: 443, Service: "ssl", SrcBytes: 30_000_000, DstBytes: 25_000_000})
				}
			}
			// Low and slow: 15 MB a day in 200 kB pieces to a rented server.
			for i := range 75 {
				g.Conn(dt.Conn{TS: day.Add(time.Duration(i) * 17 * time.Minute), Src: "10.1.0.30", Dst: "198.51.100.99", DstPort: 443,
					Service: "ssl", SrcBytes: 200_000, DstBytes: 2_000})
			}
		}
		// One large upload.
		g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, 9).Add(23 * time.Hour), Src: "10.1.0.31", Dst: "203.0.113.44", DstPort: 443,
			Service: "ssl", Duration: 40 * time.Minute, SrcBytes: 800_000_000, DstBytes: 50_000})
	}, New(dt.Env(), Config{}))
}
