package longconn

import (
	"testing"
	"time"

	dt "github.com/dwell-nsm/dwell/internal/detect/detecttest"
)

func TestLongAndOpen(t *testing.T) {
	dt.Run(t, "long_and_open", func(g *dt.Gen) {
		hosts := dt.Hosts(40)
		// A tunnel kept up for ten hours by one host.
		g.Conn(dt.Conn{TS: dt.Start.Add(9 * time.Hour), Src: "10.1.0.10", Dst: "198.51.100.66", DstPort: 443, Service: "ssl",
			Duration: 10 * time.Hour, SrcBytes: 900_000, DstBytes: 2_000_000})
		// A reverse shell still open at the end, seen only in open_conn reports.
		uid := "Copen000001"
		for h := 2; h <= 20; h += 2 {
			g.OpenConn(uid, dt.Conn{TS: dt.Start.Add(time.Hour), Src: "10.1.0.11", SrcPort: 50123, Dst: "203.0.113.5", DstPort: 22, Proto: "tcp",
				Service: "ssh", Duration: time.Duration(h) * time.Hour, SrcBytes: int64(h) * 1000, DstBytes: int64(h) * 5000})
		}
		// Every host keeps a two-hour session to the collaboration service: common, not suspicious.
		for d := range 5 {
			for _, h := range hosts {
				g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, d).Add(9 * time.Hour), Src: h, Dst: "52.112.0.10", DstPort: 443, Service: "ssl",
					Duration: 2 * time.Hour, SrcBytes: 50_000, DstBytes: 400_000})
				g.Conn(dt.Conn{TS: dt.Start.AddDate(0, 0, d).Add(10 * time.Hour), Src: h, Dst: "93.184.216.34", DstPort: 443, Service: "ssl",
					Duration: 30 * time.Second, SrcBytes: 900, DstBytes: 40_000})
			}
		}
	}, New(dt.Env(), Config{}))
}
